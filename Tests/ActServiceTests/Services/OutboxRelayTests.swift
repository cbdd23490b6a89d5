import ActAMQP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Testing

/// The relay over the in-memory ports, one `relayOnce` at a time: confirm, nack, return, refusal, a lost
/// connection before and after the broker took the messages, and per-run order.
@Suite("outbox relay, in memory")
struct OutboxRelayTests {
    /// A system with one run started (its first task and metrics in the outbox), and its relay.
    static func started(workerQueues: Bool = true, maxMessageBytes: Int = 0,
        configure: (inout ServiceConfiguration) -> Void = { _ in }) async throws -> (InMemorySystem, OutboxRelay)
    {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps], maxMessageBytes: maxMessageBytes,
            workerQueues: workerQueues, configure: configure)
        _ = try await system.orchestrator.apply([.trigger(TriggerEvent(id: "e-1", type: "case.filed",
            payload: ["note": .string(String(repeating: "x", count: 2_000))]))])
        return (system, OutboxRelay(orchestrator: system.orchestrator, logger: system.logger))
    }

    static var run: String { Playbooks.run("TwoSteps.v1", "e-1") }

    @Test func confirmedRowsAreDeletedAndPublishedInTheOrderTheyWereWritten() async throws {
        let (system, relay) = try await Self.started()
        let written = system.store.committed.outbox.values.sorted { $0.message.outboxID < $1.message.outboxID }
            .map(\.message.messageID)
        #expect(written.count >= 2)
        let relayed = try await relay.relayOnce(limit: 100)
        #expect(relayed.rows == written.count)
        #expect(system.store.committed.outbox.isEmpty)
        #expect(system.broker.confirmed.map { $0.properties.messageID } == written)
    }

    @Test func aNackedRowStaysForALaterAttemptAndTheOthersAreDeleted() async throws {
        let (system, relay) = try await Self.started()
        let count = system.store.committed.outbox.count
        system.broker.nackNext(1)
        try await relay.relayOnce(limit: 100)
        let left = Array(system.store.committed.outbox.values)
        #expect(left.count == 1)
        #expect(left.first?.message.attempts == 1)
        #expect(left.first?.lastError == "nacked by the broker")
        #expect(system.broker.confirmed.count == count - 1)
        // Deferred: not available again until its backoff passed.
        #expect(try await relay.relayOnce(limit: 100).rows == 0)
        system.clock.advance(by: .seconds(2))
        #expect(try await relay.relayOnce(limit: 100).rows == 1)
        #expect(system.store.committed.outbox.isEmpty)
    }

    @Test func anUnroutableTaskIsKeptWithAnIncidentAndUnboundGovernanceIsDropped() async throws {
        let (system, relay) = try await Self.started(workerQueues: false)
        try await relay.relayOnce(limit: 100)
        let left = system.store.committed.outbox.values.map(\.message)
        #expect(left.map(\.type) == ["hms.task"])
        #expect(left.first?.attempts == 1)
        let incidents = system.store.committed.incidents
        #expect(incidents.map(\.kind) == ["unroutable_task"])
        #expect(incidents.first?.runID == Self.run)
        // Retried, but the incident is recorded once.
        system.clock.advance(by: .seconds(2))
        try await relay.relayOnce(limit: 100)
        #expect(system.store.committed.incidents.count == 1)
        #expect(system.store.committed.outbox.first?.value.message.attempts == 2)
    }

    @Test func aMessageTheBrokerRefusesIsIsolatedAndTheRestGoThrough() async throws {
        // The broker takes at most 1,500 bytes; the task carries 2,000 bytes of payload.
        let (system, relay) = try await Self.started(maxMessageBytes: 1_500)
        let count = system.store.committed.outbox.count
        try await relay.relayOnce(limit: 100)
        let left = system.store.committed.outbox.values.map(\.message)
        #expect(left.map(\.type) == ["hms.task"])
        #expect(system.broker.confirmed.count == count - 1)
        #expect(system.store.committed.incidents.map(\.kind) == ["unpublishable_message"])
        let reason = system.store.committed.outbox.first?.value.lastError ?? ""
        #expect(reason.contains("406"), "\(reason)")
    }

    @Test func aRowAboveTheConfiguredLimitIsNotEvenTried() async throws {
        let (system, relay) = try await Self.started { $0.amqp.maxMessageBytes = 1_500 }
        try await relay.relayOnce(limit: 100)
        #expect(system.store.committed.outbox.values.map(\.message.type) == ["hms.task"])
        // The reason names the settings that fix it, by the names the configuration file uses.
        let reason = system.store.committed.outbox.first?.value.lastError ?? ""
        #expect(reason.contains("amqp.max_message_bytes") && reason.contains("engine.task_context_bytes"), "\(reason)")
        #expect(!system.broker.confirmed.contains { $0.properties.type == "hms.task" })
    }

    @Test func aConnectionLostBeforeThePublishLeavesEveryRowUntouched() async throws {
        let (system, relay) = try await Self.started()
        let before = system.store.committed.outbox
        system.broker.faults.fail(.publish, with: AMQPError(.connectionClosed, replyText: "injected"))
        await #expect(throws: AMQPError.self) { try await relay.relayOnce(limit: 100) }
        #expect(system.store.committed.outbox == before)
        #expect(system.broker.confirmed.isEmpty)
        try await relay.relayOnce(limit: 100)
        #expect(system.store.committed.outbox.isEmpty)
    }

    @Test func aConfirmLostAfterTheBrokerTookTheMessagesPublishesThemAgainWithTheSameIDs() async throws {
        let (system, relay) = try await Self.started()
        let count = system.store.committed.outbox.count
        system.broker.faults.fail(.publish, moment: .after, with: AMQPError(.connectionClosed, replyText: "injected"))
        await #expect(throws: AMQPError.self) { try await relay.relayOnce(limit: 100) }
        #expect(system.store.committed.outbox.count == count)
        try await relay.relayOnce(limit: 100)
        #expect(system.store.committed.outbox.isEmpty)
        // At least once: each message twice, with its idempotency key (message id) unchanged.
        let ids = system.broker.confirmed.compactMap(\.properties.messageID)
        #expect(ids.count == 2 * count)
        #expect(Array(ids[..<count]) == Array(ids[count...]))
    }

    @Test func aDeleteThatFailsRollsBackAndTheRowsComeAgain() async throws {
        let (system, relay) = try await Self.started()
        let before = system.store.committed.outbox
        system.store.faults.fail(.deleteOutbox)
        await #expect(throws: InjectedFault.self) { try await relay.relayOnce(limit: 100) }
        #expect(system.store.committed.outbox == before)
    }

    @Test func relaysSplitTheRunsBetweenThemWithoutOverlap() async throws {
        let system = try await InMemorySystem(playbooks: [Playbooks.twoSteps])
        for index in 0..<20 {
            _ = try await system.orchestrator.apply([.trigger(TriggerEvent(id: "e-\(index)", type: "case.filed",
                payload: [:]))])
        }
        let written = system.store.committed.outbox.count
        for index in 0..<3 {
            try await OutboxRelay(orchestrator: system.orchestrator, logger: system.logger, partition: (index, 3))
                .relayOnce(limit: 1_000)
        }
        #expect(system.store.committed.outbox.isEmpty)
        #expect(system.broker.confirmed.count == written)
        #expect(Set(system.broker.confirmed.compactMap(\.properties.messageID)).count == written)
    }
}
