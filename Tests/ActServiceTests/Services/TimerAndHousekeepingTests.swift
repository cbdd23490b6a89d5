import ActEngine
import ActPlaybook
import Foundation
import ActService
import ActStore
import ActTesting
import Testing

/// Timers and housekeeping over the in-memory ports, on a clock the test moves.
@Suite("timers and housekeeping, in memory")
struct TimerAndHousekeepingTests {
    static var run: String { Playbooks.run("Timed.v1", "t-1") }

    static func started() async throws -> (InMemorySystem, OutboxRelay) {
        let system = try await InMemorySystem(playbooks: [Playbooks.timed])
        _ = try await system.orchestrator.apply([.trigger(TriggerEvent(id: "t-1", type: "case.timed",
            payload: [:]))])
        return (system, OutboxRelay(orchestrator: system.orchestrator, logger: system.logger))
    }

    @Test func aBreachFiresOnceWhenItsTimeComesAndIsPublished() async throws {
        let (system, relay) = try await Self.started()
        #expect(try await system.orchestrator.fireDueTimers(limit: 10) == 0)
        system.clock.advance(by: .seconds(61))
        #expect(try await system.orchestrator.fireDueTimers(limit: 10) >= 1)
        #expect(try await system.orchestrator.fireDueTimers(limit: 10) == 0)
        try await relay.relayOnce(limit: 100)
        #expect(system.governance.filter { $0.routingKey == "sla.violation" }.count == 1)
        #expect(system.store.committed.audit[Self.run]?.filter { $0.entry.kind.contains("sla") }.isEmpty == false)
    }

    @Test func aTimerWhoseRunTheDatabaseRefusesIsPostponedWithAnIncident() async throws {
        let (system, _) = try await Self.started()
        // From now on the database refuses any change to the run (SQLSTATE 23514, a data error).
        let run = Self.run
        system.store.addConstraint("poisoned") { $0.runID != run }
        system.clock.advance(by: .seconds(61))
        let fired = try await system.orchestrator.fireDueTimers(limit: 10)
        #expect(fired >= 1)
        let incidents = system.store.committed.incidents.filter { $0.kind == "poison_timer" }
        #expect(incidents.count == fired)
        // Still there, an hour later.
        let timers = system.store.committed.timers.values.filter { $0.runID == Self.run }
        #expect(!timers.isEmpty)
        #expect(timers.allSatisfy { $0.dueAt == system.clock.now.millisecondsSinceEpoch + 3_600_000 })
    }

    @Test func theScannerFiresTimersAsTheClockMoves() async throws {
        let (system, _) = try await Self.started()
        try await system.run {
            system.clock.advance(by: .seconds(61))
            try await system.wait("the breach") {
                system.governance.contains { $0.routingKey == "sla.violation" }
            }
        }
        #expect(system.store.committed.timers.isEmpty)
    }

    @Test func housekeepingCheckpointsTheHeadsThatMovedThroughTheOutbox() async throws {
        let (system, relay) = try await Self.started()
        let housekeeping = Housekeeping(orchestrator: system.orchestrator, logger: system.logger)
        try await housekeeping.tick(0)
        #expect(system.store.committed.checkpoints.count == 1)
        try await relay.relayOnce(limit: 100)
        let checkpoint = try #require(system.governance.first { $0.routingKey == "audit.checkpoint" })
        #expect(checkpoint.body["heads_count"] == 1)
        // The message alone verifies with the service's public key: no database needed.
        let published = try PublishedCheckpoint(messageBody: checkpoint.body.canonicalEncoding)
        let publicKey = try system.configuration.audit.signingKey().publicKey
        #expect(checkpoint.body["public_key"]?.stringValue == publicKey.base64)
        #expect(AuditCheckpoint.verifyPublished([published], trusted: [publicKey], legacyKeys: [:]).isEmpty)
        let stranger = AuditSigningKey.generate().publicKey
        #expect(AuditCheckpoint.verifyPublished([published], trusted: [stranger], legacyKeys: [:]).count == 1)
        // Nothing moved since: no second checkpoint.
        system.clock.advance(by: .seconds(60))
        try await housekeeping.tick(60)
        #expect(system.store.committed.checkpoints.count == 1)
    }

    @Test func aHousekeepingTickThatFailsLeavesNothingHalfDone() async throws {
        let (system, _) = try await Self.started()
        system.store.faults.fail(.write)
        let housekeeping = Housekeeping(orchestrator: system.orchestrator, logger: system.logger)
        await #expect(throws: InjectedFault.self) { try await housekeeping.tick(0) }
        #expect(system.store.committed.checkpoints.isEmpty)
        try await housekeeping.tick(0)
        #expect(system.store.committed.checkpoints.count == 1)
    }
}

/// The pool deadlock that the nested lease allowed: a batch holding a connection refreshed the catalog
/// through a second one, so as many concurrent batches as connections waited for each other for ever.
@Suite("no nested lease, in memory")
struct NestedLeaseTests {
    @Test func aBatchThatMeetsAVersionItDoesNotKnowNeedsNoSecondConnection() async throws {
        let system = try await InMemorySystem(playbooks: [], connections: 1)
        // Another replica registers a playbook and starts a run that this replica's catalog does not know.
        let other = Orchestrator(store: system.store, broker: system.broker, configuration: system.configuration,
            agents: [], logger: system.logger, clock: { system.clock.now })
        _ = try await other.register(source: Playbooks.twoSteps, file: nil)
        _ = try await other.apply([.trigger(TriggerEvent(id: "e-1", type: "case.filed", payload: [:]))])
        let run = Playbooks.run("TwoSteps.v1", "e-1")
        let task = try #require(system.store.committed.tasks.values.first { $0.runID == run })
        #expect(system.orchestrator.catalog.byVersion.isEmpty)

        let result = WorkerMessage.taskResult(.init(taskID: task.taskID, attempt: 1, outcome: .completed(output: [:])))
        let applied = try await system.orchestrator.apply([.worker(result, messageID: nil)])
        guard case .applied = applied.outcomes[0] else {
            Issue.record("the result was not applied: \(applied.outcomes[0])")
            return
        }
        #expect(system.orchestrator.catalog.byVersion.count == 1)
    }

    @Test func concurrentBatchesOnAPoolOfOneAllFinish() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps], connections: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                group.addTask {
                    _ = try await system.orchestrator.apply([.trigger(TriggerEvent(id: "e-\(index)", type: "case.filed",
                        payload: [:]))])
                }
            }
            try await group.waitForAll()
        }
        #expect(system.store.committed.runs.count == 20)
    }
}

/// The database clock over the in-memory store: deadlines follow the store's clock, whatever the
/// replica's own clock says.
@Suite("database clock, in memory")
struct DatabaseClockTests {
    @Test func theOffsetFollowsTheStoresClockAndItsJumps() async throws {
        let database = ManualClock(millisecondsSinceEpoch: 1_800_000_000_000)
        let store = InMemoryStore { database.now.millisecondsSinceEpoch }
        let wall = ManualClock(millisecondsSinceEpoch: 1_800_000_000_000 - 7_200_000)  // two hours slow
        let monotonic = ManualClock(millisecondsSinceEpoch: 5_000)
        let clock = DatabaseClock(wall: { wall.now }, monotonic: { monotonic.now.millisecondsSinceEpoch })
        try await clock.synchronize(with: store)
        #expect(clock.offsetMilliseconds == 7_200_000)
        #expect(clock.now() == database.now)
        database.advance(by: .seconds(30))  // the database's clock jumped; the replica's did not move
        let (offset, previous) = try await clock.synchronize(with: store)
        #expect(previous == 7_200_000 && offset == 7_230_000)
        #expect(clock.now() == database.now)
    }

    /// The wall clock jumping between two readings moves no deadline: time runs on the monotonic clock.
    @Test func aWallClockJumpBetweenReadingsMovesNoDeadline() async throws {
        let database = ManualClock(millisecondsSinceEpoch: 1_800_000_000_000)
        let store = InMemoryStore { database.now.millisecondsSinceEpoch }
        let wall = ManualClock(millisecondsSinceEpoch: 1_800_000_000_000)
        let monotonic = ManualClock(millisecondsSinceEpoch: 42)
        let clock = DatabaseClock(wall: { wall.now }, monotonic: { monotonic.now.millisecondsSinceEpoch })
        try await clock.synchronize(with: store)
        wall.advance(by: .seconds(7_200))  // an NTP step, before the next reading
        #expect(clock.now() == database.now)
        monotonic.advance(by: .seconds(3))
        database.advance(by: .seconds(3))
        #expect(clock.now() == database.now)
        wall.advance(by: .seconds(-14_400))
        #expect(clock.now() == database.now)
        // The next reading reports the jump (for the warning) and keeps the time.
        let (offset, _) = try await clock.synchronize(with: store)
        #expect(offset == 2 * 3_600_000 + 3_000 && clock.now() == database.now)
    }

    @Test func aStoreThatCannotAnswerLeavesTheOffsetAsItWas() async throws {
        let database = ManualClock()
        let store = InMemoryStore { database.now.millisecondsSinceEpoch }
        let clock = DatabaseClock { Instant(millisecondsSinceEpoch: database.now.millisecondsSinceEpoch - 1_000) }
        try await clock.synchronize(with: store)
        store.faults.fail(.databaseTime)
        await #expect(throws: InjectedFault.self) { try await clock.synchronize(with: store) }
        #expect(clock.offsetMilliseconds == 1_000)
    }
}
