import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// DESIGN §4's guarantees against the real servers: duplicates are harmless, bad input never blocks a queue,
/// replicas never double-apply, and a killed process loses nothing it acknowledged.
@Suite struct ReliabilityTests {
    static let noise = ChapterStoriesTests.noise

    @Test func aRepeatedTriggerStartsOneRunAndARepeatedResultChangesNothing() async throws {
        try await SystemHarness.run(playbooks: [Self.noise]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("noise.complaint.filed", id: "dup-1")
            try await system.emit("noise.complaint.filed", id: "dup-1")
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "dup-1")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            // Replay the first task's result: the run is finished, nothing is dispatched or emitted again.
            let first = try #require(system.tasks.all.first { $0.body["step_id"] == "intake" })
            let before = (system.tasks.all.count, system.governance.all.count)
            try await system.reply(["task_id": first.body["task_id"]!, "attempt": 1, "status": "completed", "output": [:]])
            try await system.emit("noise.complaint.filed", id: "after-dup")
            #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "after-dup"))
                == "run.completed")
            #expect(system.tasks.all.filter { $0.body["run_id"]?.stringValue == run }.count == 3)
            #expect(system.governance.count("run.completed", run: run) == 1)
            #expect(system.tasks.all.count == before.0 + 3)
            let runs = try await system.store.listRuns(status: nil, playbookID: nil, after: nil, limit: 10)
            #expect(runs.runs.count == 2)
        }
    }

    @Test func aPoisonMessageIsDeadLetteredWithItsReasonAndTheQueueKeepsFlowing() async throws {
        try await SystemHarness.run(playbooks: [Self.noise]) { _ in .complete([:]) } _: { system in
            let dead = system.configuration.amqp.queues.dead
            try await system.emitRaw("noise.complaint.filed", body: Array("{not json".utf8))
            try await system.emitRaw("noise.complaint.filed", body: Array("[1, 2, 3]".utf8))
            try await system.emit("noise.complaint.filed", id: "after-poison")
            #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "after-poison"))
                == "run.completed")
            // Both poison messages sit in the dead-letter queue, each with the reason in a header.
            let consumer = try await system.worker.consume(queue: dead, prefetch: 10)
            var reasons: [String] = []
            for try await delivery in consumer {
                reasons.append(delivery.properties.headers["x-hms-reason"]?.stringValue ?? "")
                try await system.worker.ack(delivery.deliveryTag)
                if reasons.count == 2 { break }
            }
            #expect(reasons.allSatisfy { $0.contains("JSON") })
        }
    }

    @Test func twoReplicasCompleteEveryRunOnceAndReportEachBreachOnce() async throws {
        let playbook = """
            id: Replicated.v1
            trigger: replicated
            steps:
              - id: first
                agent: ai.first
              - id: review
                agent: human.reviewer
                sla: 1s
                on_timeout: escalate
              - id: escalate
                agent: human.supervisor
            """
        try await SystemHarness.run(playbooks: [playbook], replicas: 2) { task in
            task.assignee == "human.reviewer" ? .ignore : .complete([:])
        } _: { system in
            let ids = (0..<40).map { "r-\($0)" }
            for id in ids { try await system.emit("replicated", id: id) }
            let runs = ids.map { System.runID(playbook: "Replicated.v1", eventID: $0) }
            try await system.governance.wait("all 40 runs to finish", timeout: .seconds(60)) { messages in
                Set(messages.filter { $0.routingKey == "run.completed" }.compactMap { $0.body["run_id"]?.stringValue })
                    .count == runs.count
            }
            for run in runs {
                #expect(system.governance.count("run.completed", run: run) == 1, "run \(run) completed more than once")
                #expect(system.governance.count("sla.violation", run: run) == 1, "run \(run): breach not reported once")
            }
            // Both replicas did work: each one's store applied batches (they share the database).
            let rows = try await system.store.listRuns(status: "completed", playbookID: nil, after: nil,
                limit: 100)
            #expect(rows.runs.count == runs.count)
        }
    }

    @Test func aKilledServeLosesNoAcknowledgedTrigger() async throws {
        let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [Self.noise], replicas: 0) { _ in .complete([:]) } _: { system in
            let first = try ServeProcess.start(binary: binary, system: system)
            let ids = (0..<150).map { "k-\($0)" }
            try await system.emitWhenBound("noise.complaint.filed", id: ids[0])
            for id in ids.dropFirst() { try await system.emit("noise.complaint.filed", id: id) }
            // Kill it mid-load, without warning.
            try await system.governance.wait("some runs to complete", timeout: .seconds(60)) {
                $0.filter { $0.routingKey == "run.completed" }.count >= 10
            }
            first.kill()
            let second = try ServeProcess.start(binary: binary, system: system)
            defer { second.kill() }
            let runs = Set(ids.map { System.runID(playbook: "NoiseComplaint.v1", eventID: $0) })
            try await system.governance.wait("every run to complete after the restart", timeout: .seconds(120)) {
                Set($0.filter { $0.routingKey == "run.completed" }.compactMap { $0.body["run_id"]?.stringValue })
                    .isSuperset(of: runs)
            }
        }
    }
}

extension ReliabilityTests {
    @Test func sigtermDrainsAndExitsZero() async throws {
        let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [Self.noise], replicas: 0) { _ in .complete([:]) } _: { system in
            let serve = try ServeProcess.start(binary: binary, system: system)
            try await system.emitWhenBound("noise.complaint.filed", id: "term-1")
            try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "term-1"))
            let status = try await serve.terminate()
            #expect(status == 0, "hms-act serve exited \(status) on SIGTERM")
        }
    }
}

/// An `hms-act serve` child process on the system's schema and exchanges.
struct ServeProcess {
    let process: Process

    /// - Parameter namespace: A network namespace to run it in (`ip netns exec`), for `network-packet-loss`.
    static func start(binary: String, system: System, environment extra: [String: String] = [:],
        standardError: FileHandle = .nullDevice, namespace: String? = nil) throws -> ServeProcess
    {
        let c = system.configuration
        var environment = ProcessInfo.processInfo.environment
        environment["AMQP_URL"] = c.amqp.url
        environment["POSTGRES_URL"] = c.postgres.url
        environment["HMS_POSTGRES_SCHEMA"] = c.postgres.schema
        environment["HMS_AMQP_QUEUE_TYPE"] = c.amqp.queueType
        environment["HMS_EXCHANGE_EVENTS"] = c.amqp.exchanges.events
        environment["HMS_EXCHANGE_TASKS"] = c.amqp.exchanges.tasks
        environment["HMS_EXCHANGE_RESULTS"] = c.amqp.exchanges.results
        environment["HMS_EXCHANGE_GOVERNANCE"] = c.amqp.exchanges.governance
        environment["HMS_EXCHANGE_DEAD"] = c.amqp.exchanges.dead
        environment["HMS_QUEUE_TRIGGERS"] = c.amqp.queues.triggers
        environment["HMS_QUEUE_RESULTS"] = c.amqp.queues.results
        environment["HMS_QUEUE_DEAD"] = c.amqp.queues.dead
        environment["HMS_AUDIT_SIGNING_KEY"] = c.audit.signingKeyText
        environment["HMS_HTTP_PORT"] = "0"
        environment["HMS_HTTP_HOST"] = "127.0.0.1"
        environment["HMS_LOG_LEVEL"] = "warning"
        environment["HMS_CONFIG"] = nil
        environment.merge(extra) { _, new in new }
        let process = Process()
        let arguments = ["serve", "--playbooks", system.playbooksDirectory, "--agents", "/nonexistent"]
        if let namespace {
            // `ip netns exec` enters the namespace and execs the binary: the process is the server itself.
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, binary] + arguments
        } else if extra["LD_PRELOAD"] != nil {
            // Spawned directly with a preloaded library, the Swift runtime saw no arguments here; through a
            // shell's exec it sees them as usual.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "exec \"$0\" \"$@\"", binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = standardError
        try process.run()
        return ServeProcess(process: process)
    }

    /// SIGTERM, then the exit status once the process is gone (waited for off the cooperative pool).
    func terminate() async throws -> Int32 {
        process.terminate()
        let process = self.process
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
    }

    /// SIGTERM, then the exit status if the process is gone within `timeout`; otherwise SIGKILL and nil.
    func terminate(within timeout: Duration) async throws -> Int32? {
        process.terminate()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning, clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        guard !process.isRunning else {
            kill()
            return nil
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: no drain, no goodbye.
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}
