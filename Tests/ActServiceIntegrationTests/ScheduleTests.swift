import ActEngine
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Playbook schedules against the real servers: fires claimed once across replicas, with deterministic run ids,
/// and what pausing and resuming does.
@Suite(.serialized) struct ScheduleTests {
    static let pulse = """
        id: Pulse.v1
        schedules:
          - id: pulse
            every: 1s
            overlap: allow
            payload: {kind: heartbeat}
        steps:
          - id: beat
            agent: ai.beat
        """

    /// The fire instants of the runs a schedule started, from their trigger event ids, sorted.
    static func fires(_ system: System, playbook: String, schedule: String) async throws -> [String] {
        try await fires(system.store, playbook: playbook, schedule: schedule)
    }

    static func fires(_ store: Store, playbook: String, schedule: String) async throws -> [String] {
        var fires: [String] = []
        var cursor: String?
        repeat {
            let page = try await store.listRuns(status: nil, playbookID: playbook, after: cursor, limit: 500)
            let prefix = "schedule:\(playbook)/\(schedule)/"
            for summary in page.runs {
                guard let event = try await store.run(id: summary.runID)?.triggerEventID, event.hasPrefix(prefix)
                else { continue }
                fires.append(String(event.dropFirst(prefix.count)))
            }
            cursor = page.nextCursor
        } while cursor != nil
        return fires.sorted()
    }

    static func instant(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    @Test func everySecondForAMinuteFiresSixtyTimesThoughAReplicaIsKilled() async throws {
        let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [Self.pulse], replicas: 0) { _ in .complete(["ok": true]) } _: { system in
            // No replica in this process: the test reads the schema through a store of its own.
            var postgres = TestEnvironment.postgres
            postgres.searchPath = system.configuration.postgres.schema
            let client = PostgresClient(configuration: .init(connection: postgres, maxConnections: 2),
                logger: TestEnvironment.logger("test.schedules"))
            let store = Store(client: client, schema: system.configuration.postgres.schema,
                logger: TestEnvironment.logger("test.schedules"))
            let pool = Task { try await client.run() }
            defer { pool.cancel() }
            let first = try ServeProcess.start(binary: binary, system: system)
            let second = try ServeProcess.start(binary: binary, system: system)
            var fires: [String] = []
            for _ in 0..<600 where fires.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
                fires = (try? await Self.fires(store, playbook: "Pulse.v1", schedule: "pulse")) ?? []
            }
            let begin = try #require(fires.first.flatMap(Self.instant), "no fire within a minute")
            // Half way through, one replica dies without warning (mid-transaction, perhaps holding the row).
            try await Task.sleep(until: .now + .seconds(begin.timeIntervalSinceNow + 30), clock: .continuous)
            first.kill()
            try await Task.sleep(until: .now + .seconds(begin.timeIntervalSinceNow + 62), clock: .continuous)
            _ = try await second.terminate(within: .seconds(20))

            let all = try await Self.fires(store, playbook: "Pulse.v1", schedule: "pulse")
            #expect(Set(all).count == all.count, "a fire started two runs")
            let minute = all.compactMap(Self.instant).filter { $0 >= begin && $0 < begin.addingTimeInterval(60) }
            #expect(minute.count == 60, "\(minute.count) fires in the minute from \(begin)")
            for (earlier, later) in zip(minute, minute.dropFirst()) {
                #expect(abs(later.timeIntervalSince(earlier) - 1) < 0.001, "a gap between \(earlier) and \(later)")
            }
        }
    }

    @Test func aPausedScheduleFiresNothingAndResumesFromNowWithoutMakingUp() async throws {
        try await SystemHarness.run(playbooks: [Self.pulse], replicas: 1) { _ in .complete([:]) } _: { system in
            var rows: [ScheduleRow] = []
            for _ in 0..<100 where rows.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
                rows = try await system.store.schedules()
            }
            let row = try #require(rows.first)
            #expect(row.playbookID == "Pulse.v1" && row.scheduleID == "pulse" && row.definition.spec == .every(.seconds(1)))
            try await system.governance.wait("a scheduled run to complete") { $0.contains { $0.routingKey == "run.completed" } }

            let paused = try await system.store.setSchedulePaused(playbook: "Pulse.v1", schedule: "pulse", paused: true,
                by: "ops", now: system.orchestrator.now().millisecondsSinceEpoch)
            #expect(paused?.paused == true && paused?.pausedBy == "ops")
            try await Task.sleep(for: .seconds(1))
            let before = try await Self.fires(system, playbook: "Pulse.v1", schedule: "pulse")
            try await Task.sleep(for: .seconds(3))
            #expect(try await Self.fires(system, playbook: "Pulse.v1", schedule: "pulse") == before)

            let resumedAt = Date()
            _ = try await system.store.setSchedulePaused(playbook: "Pulse.v1", schedule: "pulse", paused: false,
                by: "ops", now: system.orchestrator.now().millisecondsSinceEpoch)
            try await Task.sleep(for: .seconds(3))
            let after = try await Self.fires(system, playbook: "Pulse.v1", schedule: "pulse")
            let new = after.filter { !before.contains($0) }.compactMap(Self.instant)
            #expect(!new.isEmpty, "the resumed schedule did not fire")
            // Nothing from the paused seconds was made up.
            #expect(new.allSatisfy { $0 > resumedAt.addingTimeInterval(-1) }, "\(new) made up fires from before \(resumedAt)")
            // The run's payload says which schedule and fire started it.
            let run = System.runID(playbook: "Pulse.v1", eventID: "schedule:Pulse.v1/pulse/\(after[0])")
            let state = try JSONDecoder().decode(RunState.self, from: Data(try #require(try await system.store.run(id: run)).state))
            #expect(state.payload == ["kind": "heartbeat", "schedule": ["id": "pulse", "fire_time": .string(after[0])]])
        }
    }
}
