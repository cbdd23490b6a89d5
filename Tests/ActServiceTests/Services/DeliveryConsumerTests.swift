import ActAMQP
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Testing

/// The consumer over the in-memory ports: ack after commit, retry while the store cannot commit, poison
/// isolation, lost acks, unreadable messages, and a graceful shutdown that loses nothing.
@Suite("delivery consumer, in memory")
struct DeliveryConsumerTests {
    @Test func aTriggerStartsOneRunAndIsAcknowledgedOnlyAfterItsCommit() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let triggers = system.configuration.amqp.queues.triggers
        let run = Playbooks.run("TwoSteps.v1", "e-1")
        // The first commit fails: the trigger must still be unacknowledged, waiting in the queue.
        system.store.faults.fail(.commit, with: PostgresError(code: .connectionClosed, reason: "injected"))
        try await system.publishTrigger(id: "e-1", type: "case.filed")
        try await system.run {
            try await system.wait("the first task") { system.tasks(of: run).count == 1 }
            try await system.wait("the ack") { system.broker.messages(in: triggers).isEmpty }
        }
        #expect(system.store.faults.count(.commit) >= 2)
        #expect(system.status(of: run) == "running")
        #expect(system.tasks(of: run).map(\.step) == ["intake"])
    }

    @Test func aBatchIsRetriedWhileTheStoreCannotCommitAndTheReplicaShowsRetrying() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let triggers = system.configuration.amqp.queues.triggers
        system.store.faults.fail(.begin, times: 50, with: PostgresError(code: .connectionFailed, reason: "injected"))
        for index in 0..<3 { try await system.publishTrigger(id: "e-\(index)", type: "case.filed") }
        try await system.run {
            try await system.wait("the consumer to report retrying") {
                system.orchestrator.health.retryingQueues == [triggers] || system.store.committed.runs.count == 3
            }
            try await system.wait("every run") { system.store.committed.runs.count == 3 }
            try await system.wait("the ack") { system.broker.messages(in: triggers).isEmpty }
        }
        #expect(system.store.faults.count(.begin) > 50)
        #expect(system.orchestrator.health.retryingQueues.isEmpty)
    }

    @Test func aLostAckRedeliversAndTheInboxMakesTheRepeatHarmless() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let triggers = system.configuration.amqp.queues.triggers
        let run = Playbooks.run("TwoSteps.v1", "e-1")
        // The commit succeeds; the ack never reaches the broker; the connection then drops.
        system.broker.faults.fail(.ack)
        try await system.publishTrigger(id: "e-1", type: "case.filed")
        try await system.run {
            try await system.wait("the first task") { system.tasks(of: run).count == 1 }
            try await system.wait("the lost ack") { system.broker.faults.count(.ack) == 1 }
            #expect(system.broker.messages(in: triggers).count == 1)
            system.broker.dropConnection()
            try await system.wait("the redelivery's ack") {
                system.broker.faults.count(.ack) == 2 && system.broker.messages(in: triggers).isEmpty
            }
        }
        #expect(system.store.committed.runs.count == 1)
        #expect(system.tasks(of: run).count == 1)
        #expect(system.store.committed.tasks.count == 1)
    }

    @Test func aMessageTheDatabaseRefusesIsDeadLetteredAndTheRestOfItsBatchCommits() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let dead = system.configuration.amqp.queues.dead
        for index in 0..<5 {
            let note: JSONValue = index == 2 ? "a\u{0}b" : "fine"
            try await system.publishTrigger(id: "e-\(index)", type: "case.filed", payload: ["note": note])
        }
        try await system.run {
            try await system.wait("four runs and one dead letter") {
                system.store.committed.runs.count == 4 && system.broker.messages(in: dead).count == 1
            }
        }
        let poisoned = try #require(system.broker.messages(in: dead).first)
        #expect(poisoned.message.properties.headers["x-hms-reason"]?.stringValue?.isEmpty == false)
        #expect(system.status(of: Playbooks.run("TwoSteps.v1", "e-2")) == nil)
        for index in [0, 1, 3, 4] {
            #expect(system.status(of: Playbooks.run("TwoSteps.v1", "e-\(index)")) == "running")
        }
        #expect(system.broker.messages(in: system.configuration.amqp.queues.triggers).isEmpty)
    }

    @Test func anUnreadableMessageIsDeadLetteredWithItsReasonAndDoesNotBlockTheQueue() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let events = system.configuration.amqp.exchanges.events
        try await system.publish(Array("not json".utf8), exchange: events, routingKey: "case.filed")
        try await system.publishTrigger(id: "after", type: "case.filed")
        try await system.run {
            try await system.wait("the run after the bad message") {
                system.status(of: Playbooks.run("TwoSteps.v1", "after")) == "running"
            }
            try await system.wait("the dead letter") {
                system.broker.messages(in: system.configuration.amqp.queues.dead).count == 1
            }
        }
        let dead = try #require(system.broker.messages(in: system.configuration.amqp.queues.dead).first)
        #expect(dead.message.body == Array("not json".utf8))
        #expect(dead.message.properties.headers["x-hms-original-queue"]?.stringValue
            == system.configuration.amqp.queues.triggers)
    }

    @Test func aGracefulShutdownLosesNothing() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let triggers = system.configuration.amqp.queues.triggers
        for index in 0..<40 { try await system.publishTrigger(id: "e-\(index)", type: "case.filed") }
        try await system.run {
            try await system.wait("the first run") { !system.store.committed.runs.isEmpty }
        }
        // Every trigger either started its run or is still in the queue for the next start; none both.
        let waiting = Set(system.broker.messages(in: triggers).compactMap {
            (try? JSONValue(parsing: $0.message.body))?["id"]?.stringValue
        })
        for index in 0..<40 {
            let started = system.status(of: Playbooks.run("TwoSteps.v1", "e-\(index)")) != nil
            #expect(started != waiting.contains("e-\(index)"), "e-\(index): started \(started)")
        }
    }

    @Test func resultsMoveTheRunToItsEnd() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        let run = Playbooks.run("TwoSteps.v1", "e-1")
        try await system.publishTrigger(id: "e-1", type: "case.filed")
        try await system.run {
            try await system.wait("the first task") { system.tasks(of: run).count == 1 }
            try await system.complete(taskID: system.tasks(of: run)[0].task)
            try await system.wait("the second task") { system.tasks(of: run).count == 2 }
            try await system.complete(taskID: system.tasks(of: run)[1].task)
            try await system.wait("the end") { system.governance.contains { $0.routingKey == "run.completed" } }
        }
        #expect(system.status(of: run) == "completed")
        let sequence = system.store.committed.audit[run]?.map(\.entry.sequence) ?? []
        #expect(!sequence.isEmpty && sequence == Array(1...Int64(sequence.count)))
    }
}
