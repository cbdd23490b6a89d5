import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Issue 10's wedges against the real servers: a value valid in a message but refused by PostgreSQL, a
/// message the broker refuses, a consumer that cannot commit, a replica with a skewed clock. Each used to
/// stop work for everyone, silently; now the bad input is isolated with a reason and the rest flows.
@Suite(.serialized) struct NothingWedgesTests {
    static let noise = ChapterStoriesTests.noise

    /// Reads what sits in the dead-letter queue (waiting up to `timeout` for `count` messages).
    static func deadLetters(_ system: System, count: Int, timeout: Duration = .seconds(20)) async throws
        -> [(reason: String, body: [UInt8])]
    {
        let consumer = try await system.worker.consume(queue: system.configuration.amqp.queues.dead, prefetch: 50)
        var found: [(String, [UInt8])] = []
        let reader = Task {
            var found: [(String, [UInt8])] = []
            for try await delivery in consumer {
                found.append((delivery.properties.headers["x-hms-reason"]?.stringValue ?? "", delivery.body))
                try await system.worker.ack(delivery.deliveryTag)
                if found.count == count { break }
            }
            return found
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            reader.cancel()
        }
        found = (try? await reader.value) ?? []
        timer.cancel()
        try? await system.worker.cancel(consumer)
        return found
    }

    /// The first open incident of `kind`, waiting for the transaction that records it to commit.
    static func incident(_ kind: String, _ system: System) async throws -> Incident {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline {
            if let found = try await system.store.openIncidents(limit: 50).first(where: { $0.kind == kind }) {
                return found
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no \(kind) incident within 20 s")
        throw CancellationError()
    }

    @Test func aTriggerHoldingU0000IsDeadLetteredAndTheRestOfItsBatchCommits() async throws {
        // A batch wait long enough that the poison trigger and the valid ones share one transaction.
        try await SystemHarness.run(playbooks: [Self.noise], configure: { $0.engine.batchWaitMilliseconds = 500 }) { _ in
            .complete(["ok": true])
        } _: { system in
            try await system.emit("noise.complaint.filed", id: "before", payload: ["address": "1 Oak St"])
            try await system.emit("noise.complaint.filed", id: "poison", payload: ["note": "a\u{0}b"])
            try await system.emit("noise.complaint.filed", id: "after", payload: ["address": "2 Oak St"])
            for id in ["before", "after"] {
                #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: id))
                    == "run.completed")
            }
            let dead = try await Self.deadLetters(system, count: 1)
            #expect(dead.count == 1)
            #expect(dead.first?.reason.contains("U+0000") == true)
            let deadBody = String(decoding: dead.first?.body ?? [], as: UTF8.self)
            #expect(deadBody.contains("poison"))
            // The queue keeps flowing, and the poison trigger started nothing.
            try await system.emit("noise.complaint.filed", id: "next", payload: [:])
            #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "next"))
                == "run.completed")
            let runs = try await system.store.listRuns(status: nil, playbookID: nil, after: nil, limit: 10)
            #expect(Set(runs.runs.map(\.runID)) == Set(["before", "after", "next"].map {
                System.runID(playbook: "NoiseComplaint.v1", eventID: $0)
            }))
        }
    }

    @Test func aResultHoldingU0000IsDeadLetteredAndACorrectedAnswerCompletesTheRun() async throws {
        try await SystemHarness.run(playbooks: [Self.noise]) { task in
            task.stepID == "intake" ? .complete(["summary": "broken\u{0}text"]) : .complete([:])
        } _: { system in
            try await system.emit("noise.complaint.filed", id: "r-1")
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "r-1")
            let dead = try await Self.deadLetters(system, count: 1)
            #expect(dead.first?.reason.contains("U+0000") == true)
            // The worker fixes its answer: the run goes on.
            let intake = try #require(system.tasks.all.first { $0.body["step_id"] == "intake" })
            try await system.reply(["task_id": intake.body["task_id"]!, "attempt": 1, "status": "completed",
                "output": ["summary": "fixed"]])
            #expect(try await system.waitForEnd(of: run) == "run.completed")
        }
    }

    /// Ten steps whose AI outputs are ~950 KB each: the last task used to carry all nine earlier outputs
    /// (8.5 MB), over the broker's message limit, and the run stalled with the relay retrying for ever.
    @Test func largeOutputsNeverMakeATaskTooLargeToPublish() async throws {
        let steps = (1...10).map { "  - id: s\($0)\n    agent: ai.writer\($0)" }.joined(separator: "\n")
        let playbook = "id: Large.v1\ntrigger: large\nsteps:\n" + steps
        let output: JSONValue = ["text": .string(String(repeating: "y", count: 950_000))]
        try await SystemHarness.run(playbooks: [playbook]) { _ in .complete(output) } _: { system in
            try await system.emit("large", id: "l-1")
            let run = System.runID(playbook: "Large.v1", eventID: "l-1")
            #expect(try await system.waitForEnd(of: run, timeout: .seconds(90)) == "run.completed")
            let last = try #require(system.tasks.all.first { $0.body["step_id"] == "s10" })
            guard case .array(let omitted)? = last.body["context"]?["omitted"]?["fields"] else {
                Issue.record("the last task's context left nothing out: \(last.body["context"]?["omitted"] ?? .null)")
                return
            }
            #expect(omitted.count >= 8, "the last task carried \(omitted.count) fewer outputs")
            #expect(last.body["context"]?["omitted"]?["read"] == .string("GET /v1/runs/\(run)"))
        }
    }

    @Test func anOutboxMessageTheBrokerRefusesIsDeferredAloneAndTheOthersArePublishedOnce() async throws {
        try await SystemHarness.run(playbooks: [Self.noise], configure: { $0.amqp.maxMessageBytes = 1 << 20 }) { _ in
            .complete([:])
        } _: { system in
            let governance = system.configuration.amqp.exchanges.governance
            func message(_ id: String, bytes: Int) -> OutboxMessage {
                let body: JSONValue = ["type": "test.refusal", "id": .string(id), "pad": .string(String(repeating: "x", count: bytes))]
                return OutboxMessage(exchange: governance, routingKey: "test.refusal", messageID: id, correlationID: "wf_\(id)",
                    type: "test.refusal", headers: [:], body: body.canonicalEncoding, createdAt: 1_800_000_000_000)
            }
            var batch = StoreBatch()
            batch.outbox = [message("small-1", bytes: 10), message("too-large", bytes: 2 << 20), message("small-2", bytes: 10)]
            try await system.store.withTransaction { try await $0.write(batch) }
            try await system.governance.wait("both small messages") { messages in
                Set(messages.filter { $0.routingKey == "test.refusal" }.compactMap { $0.body["id"]?.stringValue })
                    == ["small-1", "small-2"]
            }
            // The refused row waits alone, with an incident that says why; nothing was published twice.
            let incident = try await Self.incident("unpublishable_message", system)
            #expect(incident.detail["reason"]?.stringValue?.contains("amqp.max_message_bytes") == true)
            try await Task.sleep(for: .seconds(2))
            #expect(system.governance.count("test.refusal") == 2)
            #expect(try await system.store.outboxLag().count == 1)
            #expect(try await system.store.openIncidents(limit: 10).filter { $0.kind == "unpublishable_message" }.count == 1)
        }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["HMS_AMQP_MAX_MESSAGE_SIZE"] != nil,
        "needs the broker's max_message_size (scripts/stack)"))
    func aMessageTheBrokerItselfRefusesDoesNotHoldBackTheRowsAroundIt() async throws {
        let limit = Int(ProcessInfo.processInfo.environment["HMS_AMQP_MAX_MESSAGE_SIZE"]!)!
        // No check on our side: the broker closes the channel on the large row.
        try await SystemHarness.run(playbooks: [Self.noise], configure: {
            $0.amqp.maxMessageBytes = 0
            $0.engine.outboxRelays = 1
        }) { _ in .complete([:]) } _: { system in
            let governance = system.configuration.amqp.exchanges.governance
            var batch = StoreBatch()
            for (index, bytes) in [10, 10, limit + 1, 10].enumerated() {
                let body: JSONValue = ["id": .string("m\(index)"), "pad": .string(String(repeating: "x", count: bytes))]
                batch.outbox.append(OutboxMessage(exchange: governance, routingKey: "test.refusal", messageID: "m\(index)",
                    correlationID: nil, type: "test.refusal", headers: [:], body: body.canonicalEncoding,
                    createdAt: 1_800_000_000_000))
            }
            try await system.store.withTransaction { try await $0.write(batch) }
            try await system.governance.wait("the three small messages") { messages in
                Set(messages.filter { $0.routingKey == "test.refusal" }.compactMap { $0.body["id"]?.stringValue })
                    == ["m0", "m1", "m3"]
            }
            let incident = try await Self.incident("unpublishable_message", system)
            #expect(incident.detail["reason"]?.stringValue?.contains("406") == true)
            try await Task.sleep(for: .seconds(2))
            // Each small message arrived once: a confirmed row is never published again for another's fault.
            let ids = system.governance.all.filter { $0.routingKey == "test.refusal" }.compactMap { $0.body["id"]?.stringValue }
            #expect(ids.sorted() == ["m0", "m1", "m3"])
            #expect(try await system.store.outboxLag().count == 1)
        }
    }

    @Test func aConsumerThatCannotCommitShowsInReadinessAndRecoversWithoutLoss() async throws {
        try await SystemHarness.run(playbooks: [Self.noise]) { _ in .complete([:]) } _: { system in
            let schema = system.configuration.postgres.schema
            let triggers = system.configuration.amqp.queues.triggers
            // A fault that is not the data's: every batch fails (SQLSTATE 42P01), and must be retried, not dropped.
            try await TestDatabase.execute("ALTER TABLE inbox RENAME TO inbox_away", schema: schema)
            try await system.emit("noise.complaint.filed", id: "during-outage")
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            while !system.orchestrator.health.retryingQueues.contains(triggers), clock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(system.orchestrator.health.retryingQueues == [triggers])
            try await TestDatabase.execute("ALTER TABLE inbox_away RENAME TO inbox", schema: schema)
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "during-outage")
            #expect(try await system.waitForEnd(of: run, timeout: .seconds(40)) == "run.completed")
            #expect(system.orchestrator.health.retryingQueues.isEmpty)
            let dead = try await Self.deadLetters(system, count: 1, timeout: .seconds(1))
            #expect(dead.isEmpty, "a transient failure must never dead-letter a message")
        }
    }

    @Test func aTimerWhoseRunTheDatabaseRefusesIsPostponedAndOtherTimersStillFire() async throws {
        let playbook = """
            id: Timed.v1
            trigger: timed
            steps:
              - id: review
                agent: human.reviewer
                sla: 1s
                on_timeout: escalate
              - id: escalate
                agent: human.supervisor
            """
        try await SystemHarness.run(playbooks: [playbook]) { _ in .ignore } _: { system in
            let schema = system.configuration.postgres.schema
            let poisoned = System.runID(playbook: "Timed.v1", eventID: "poisoned")
            let healthy = System.runID(playbook: "Timed.v1", eventID: "healthy")
            try await system.emit("timed", id: "poisoned")
            try await system.emit("timed", id: "healthy")
            try await system.tasks.wait("both review tasks") { messages in
                Set(messages.filter { $0.body["step_id"] == "review" }.compactMap { $0.body["run_id"]?.stringValue })
                    == [poisoned, healthy]
            }
            // From now on PostgreSQL refuses any change to the poisoned run (SQLSTATE 23514, a data error).
            try await TestDatabase.execute("""
                ALTER TABLE runs ADD CONSTRAINT poisoned CHECK (run_id <> '\(poisoned)' OR audit_seq < 0) NOT VALID
                """, schema: schema)
            try await system.governance.wait("the healthy run's breach", timeout: .seconds(20)) {
                $0.contains { $0.routingKey == "sla.violation" && $0.body["run_id"]?.stringValue == healthy }
            }
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            var incidents: [Incident] = []
            while clock.now < deadline {
                incidents = try await system.store.openIncidents(limit: 10).filter { $0.kind == "poison_timer" }
                if !incidents.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            // Both of the run's timers (SLA warning and breach) are postponed, each with its incident.
            #expect(Set(incidents.map(\.runID)) == [poisoned])
            #expect(incidents.first?.detail["reason"]?.stringValue?.contains("23514") == true)
            #expect(system.governance.count("sla.violation", run: poisoned) == 0)
            // Postponed, not lost: the timer is still there.
            #expect(try await system.store.pendingTimerCount() >= 1)
        }
    }
}

/// Issue 10's wedges that need an `hms-act serve` process of their own.
@Suite(.serialized) struct NothingWedgesProcessTests {
    static let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"

    @Test func sigtermDrainsEvenWhileABatchCannotCommit() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [NothingWedgesTests.noise], replicas: 0) { _ in .complete([:]) } _: { system in
            let serve = try ServeProcess.start(binary: Self.binary, system: system)
            defer { serve.kill() }
            try await system.emitWhenBound("noise.complaint.filed", id: "warm-up")
            try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "warm-up"))
            try await TestDatabase.execute("ALTER TABLE inbox RENAME TO inbox_away", schema: system.configuration.postgres.schema)
            try await system.emit("noise.complaint.filed", id: "stuck")
            try await Task.sleep(for: .seconds(2))  // the consumer is now retrying its batch
            let started = ContinuousClock.now
            let status = try await serve.terminate(within: .seconds(45))
            #expect(status == 0, "hms-act serve exited \(String(describing: status)) on SIGTERM")
            #expect(ContinuousClock.now - started < .seconds(30), "the drain waited for a batch that cannot commit")
            // Nothing was lost: the unacknowledged trigger completes once the table is back and a replica runs.
            try await TestDatabase.execute("ALTER TABLE inbox_away RENAME TO inbox", schema: system.configuration.postgres.schema)
            let again = try ServeProcess.start(binary: Self.binary, system: system)
            defer { again.kill() }
            #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "stuck"),
                timeout: .seconds(60)) == "run.completed")
        }
    }

    static let libfaketime = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"].first { FileManager.default.fileExists(atPath: $0) }

    static let skewed = """
        id: Skewed.v1
        trigger: skewed
        steps:
          - id: review
            agent: human.reviewer
            sla: 6s
            on_timeout: escalate
          - id: escalate
            agent: human.supervisor
        """

    /// A real `hms-act serve` under libfaketime, its clock two hours slow: it says so at start, and the
    /// deadline it gives the task is on PostgreSQL's clock, not its own. (Under libfaketime the process's
    /// own timed waits misbehave, so the breach itself is checked in-process below, with the same skew.)
    @Test(.enabled(if: libfaketime != nil, "needs libfaketime (apt-get install libfaketime)"))
    func aReplicaWhoseClockIsTwoHoursSlowWarnsAndGivesDeadlinesOnTheDatabaseClock() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [Self.skewed], replicas: 0) { _ in .ignore } _: { system in
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("serve-skew-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            defer { try? FileManager.default.removeItem(at: log) }
            let serve = try ServeProcess.start(binary: Self.binary, system: system, environment: [
                "LD_PRELOAD": Self.libfaketime!, "FAKETIME": "-2h", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            ], standardError: handle)
            defer { serve.kill() }
            try await system.emitWhenBound("skewed", id: "s-1")
            let run = System.runID(playbook: "Skewed.v1", eventID: "s-1")
            try await system.tasks.wait("the review task") { $0.contains { $0.body["run_id"]?.stringValue == run } }
            let task = try #require(system.tasks.all.first { $0.body["run_id"]?.stringValue == run })
            let deadline = try #require(task.body["deadline"]?.stringValue.flatMap { try? Date($0, strategy: .iso8601) })
            // 6 s after the run started, on the real clock (not two hours earlier).
            #expect(abs(deadline.timeIntervalSinceNow - 6) < 5, "deadline \(deadline) is not about 6 s from now")
            try handle.close()
            let output = try String(contentsOf: log, encoding: .utf8)
            #expect(output.contains("this replica's clock differs from PostgreSQL's"))
            #expect(output.contains("clock.offset_ms=72"))
        }
    }
}

/// Deadlines follow PostgreSQL's clock: a replica two hours slow fires no false breach (it used to fire
/// every SLA at once), with the skew injected at the replica's wall clock.
@Suite struct SkewedClockTests {
    @Test func aReplicaWhoseClockIsTwoHoursSlowFiresNoFalseBreach() async throws {
        let twoHoursSlow: @Sendable () -> Instant = {
            Instant(millisecondsSinceEpoch: Orchestrator.wallClock().millisecondsSinceEpoch - 7_200_000)
        }
        try await SystemHarness.run(playbooks: [NothingWedgesProcessTests.skewed], wallClock: twoHoursSlow) { _ in
            .ignore
        } _: { system in
            try await system.emit("skewed", id: "s-2")
            let run = System.runID(playbook: "Skewed.v1", eventID: "s-2")
            try await system.tasks.wait("the review task") { $0.contains { $0.body["run_id"]?.stringValue == run } }
            let dispatched = ContinuousClock.now
            try await system.governance.wait("the breach", timeout: .seconds(30)) {
                $0.contains { $0.routingKey == "sla.violation" && $0.body["run_id"]?.stringValue == run }
            }
            #expect(ContinuousClock.now - dispatched >= .seconds(4), "the SLA breached early: deadlines follow the replica's clock")
        }
    }
}
