import ActAMQP
import ActEngine
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Foundation
import Logging
import Synchronization
import Testing

/// One behaviour suite for each port, run against both implementations: the in-memory ones the service
/// unit tests use and the real PostgreSQL and RabbitMQ ones. What the unit tests prove about the services
/// holds in production only as far as the in-memory ports behave like the real ones; this suite is where
/// they are held to it.
@Suite("port conformance", .serialized)
struct PortConformanceTests {
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case memory
        case real
        var testDescription: String { rawValue }
    }

    /// Runs `body` with a fresh store of `kind`, and the store's clock now.
    static func withStore(_ kind: Kind, connections: Int = 4,
        _ body: @Sendable (any ServiceStore, Int64) async throws -> Void) async throws
    {
        switch kind {
        case .memory:
            let clock = ManualClock()
            let store = InMemoryStore(connections: connections) { clock.now.millisecondsSinceEpoch }
            try await body(store, clock.now.millisecondsSinceEpoch)
        case .real:
            try await TestDatabase.withStore(maxConnections: connections) { store in
                try await body(store, try await store.databaseTimeMilliseconds())
            }
        }
    }

    static func run(_ id: String, state: String = "{}", at now: Int64) -> RunRow {
        RunRow(runID: id, playbookID: "P.v1", versionID: 1, status: "running", state: Array(state.utf8), traceID: "t",
            triggerEventID: nil, triggerType: nil, auditSequence: 0, auditHead: [], createdAt: now, updatedAt: now,
            finishedAt: nil)
    }

    static func outbox(_ correlation: String, bytes: Int, at now: Int64) -> OutboxMessage {
        OutboxMessage(exchange: "x", routingKey: "k", messageID: "m-\(correlation)", correlationID: correlation,
            type: "hms.task", headers: [:], body: Array(repeating: UInt8(ascii: "a"), count: bytes), createdAt: now)
    }

    /// Stores need a registered version for runs (a foreign key in PostgreSQL).
    static func registerVersion(_ store: any ServiceStore) async throws {
        _ = try await store.registerPlaybook(id: "P.v1", checksum: "c1", source: "id: P.v1", model: Array("{}".utf8),
            triggers: ["p"])
    }

    // MARK: ServiceStore

    @Test(arguments: Kind.allCases)
    func inboxKeysAreClaimedOnceAndARollbackReleasesThem(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, _ in
            let first = try await store.transaction { try await $0.claimInbox(["a", "b"]) }
            #expect(first == ["a", "b"])
            await #expect(throws: InjectedFault.self) {
                try await store.transaction { transaction in
                    #expect(try await transaction.claimInbox(["b", "c"]) == ["c"])
                    throw InjectedFault("roll back")
                }
            }
            #expect(try await store.transaction { try await $0.claimInbox(["b", "c"]) } == ["c"])
        }
    }

    @Test(arguments: Kind.allCases)
    func runsAreUpsertedAndLockingBoundsTheStatesLoadedInBytes(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, now in
            try await Self.registerVersion(store)
            let state = "{\"pad\":\"" + String(repeating: "x", count: 90) + "\"}"
            var batch = StoreBatch()
            batch.runs = ["r1", "r2", "r3"].map { Self.run($0, state: state, at: now) }
            try await store.transaction { try await $0.write(batch) }
            var finished = Self.run("r2", state: "{\"done\":true}", at: now + 5)
            finished.status = "completed"
            finished.finishedAt = now + 5
            batch.runs = [finished]
            try await store.transaction { try await $0.write(batch) }

            let all = try await store.transaction { try await $0.lockRuns(["r3", "r1", "r2", "missing"]) }
            #expect(all.keys.sorted() == ["r1", "r2", "r3"])
            #expect(all["r2"]?.status == "completed")
            #expect(all["r2"]?.finishedAt == now + 5)
            let r1State = try #require(all["r1"]?.state)
            #expect(try JSONValue(parsing: r1State) == JSONValue(parsing: Array(state.utf8)))

            let bounded = try await store.transaction { try await $0.lockRuns(["r1", "r3"], maxBytes: 150) }
            #expect(bounded.runs.keys.sorted() == ["r1"])
            #expect(bounded.leftOut == ["r3"])
            let roomy = try await store.transaction { try await $0.lockRuns(["r1", "r3"], maxBytes: 1 << 20) }
            #expect(roomy.runs.keys.sorted() == ["r1", "r3"] && roomy.leftOut.isEmpty)
        }
    }

    @Test(arguments: Kind.allCases)
    func dueTimersAreClaimedOnceEarliestFirstAndARollbackPutsThemBack(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, now in
            try await Self.registerVersion(store)
            var batch = StoreBatch()
            batch.runs = [Self.run("r1", at: now)]
            batch.scheduledTimers = [
                TimerRow(timerID: "late", runID: "r1", kind: "sla_breach", dueAt: now - 1_000),
                TimerRow(timerID: "early", runID: "r1", kind: "sla_warning", dueAt: now - 2_000),
                TimerRow(timerID: "future", runID: "r1", kind: "wait", dueAt: now + 3_600_000),
            ]
            try await store.transaction { try await $0.write(batch) }
            await #expect(throws: InjectedFault.self) {
                try await store.transaction { transaction in
                    #expect(try await transaction.claimDueTimers(limit: 10).count == 2)
                    throw InjectedFault("roll back")
                }
            }
            let claimed = try await store.transaction { try await $0.claimDueTimers(limit: 10) }
            #expect(claimed.map(\.timerID) == ["early", "late"])
            #expect(try await store.transaction { try await $0.claimDueTimers(limit: 10) }.isEmpty)
            #expect(try await store.gauges().pendingTimers == 1)
        }
    }

    @Test(arguments: Kind.allCases)
    func outboxRowsAreClaimedInOrderWithinTheByteBoundAndSplitByPartition(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, now in
            var batch = StoreBatch()
            batch.outbox = (1...6).map { Self.outbox("r\($0)", bytes: 100, at: now) }
            try await store.transaction { try await $0.write(batch) }

            let bounded = try await store.transaction {
                try await $0.claimOutbox(limit: 10, partition: (0, 1), maxBytes: 250)
            }
            #expect(bounded.map(\.correlationID) == ["r1", "r2"])
            var seen: [String] = []
            for index in 0..<3 {
                let share = try await store.transaction {
                    try await $0.claimOutbox(limit: 10, partition: (index, 3), maxBytes: 1 << 20)
                }
                #expect(share.map(\.outboxID) == share.map(\.outboxID).sorted())
                seen += share.compactMap(\.correlationID)
            }
            #expect(seen.sorted() == (1...6).map { "r\($0)" })
        }
    }

    @Test(arguments: Kind.allCases)
    func deferredRowsWaitAndCountTheirAttemptsAndDeletedRowsAreGone(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, now in
            var batch = StoreBatch()
            batch.outbox = [Self.outbox("r1", bytes: 10, at: now), Self.outbox("r2", bytes: 10, at: now)]
            try await store.transaction { try await $0.write(batch) }
            try await store.transaction { transaction in
                let rows = try await transaction.claimOutbox(limit: 10, partition: (0, 1), maxBytes: 1 << 20)
                try await transaction.deleteOutbox([rows[0].outboxID])
                try await transaction.deferOutbox([rows[1].outboxID], error: "nacked by the broker")
            }
            #expect(try await store.transaction {
                try await $0.claimOutbox(limit: 10, partition: (0, 1), maxBytes: 1 << 20)
            }.isEmpty)
            #expect(try await store.gauges().outboxPending == 1)
        }
    }

    @Test(arguments: Kind.allCases)
    func dataTheDatabaseRefusesIsAPermanentErrorAndLeavesNothingHalfWritten(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, now in
            try await Self.registerVersion(store)
            let entry = AuditEntry(runID: "r1", sequence: 1, at: now, kind: "run.started", actor: "hms-act", data: [:])
            var batch = StoreBatch()
            batch.runs = [Self.run("r1", at: now)]
            batch.audit = [AuditChain.StoredEntry(entry: entry, previousHash: [], hash: AuditChain.hash(previous: [],
                entry: entry))]
            try await store.transaction { try await $0.write(batch) }

            // The same audit sequence again (a unique violation) with a change to the run.
            var repeated = batch
            repeated.runs[0].status = "completed"
            do {
                try await store.transaction { try await $0.write(repeated) }
                Issue.record("a repeated audit sequence was accepted")
            } catch {
                guard case .permanent = ApplyFailure(error) else {
                    Issue.record("not a permanent failure: \(error)")
                    return
                }
            }
            // U+0000 in a state, which jsonb cannot hold.
            var nul = StoreBatch()
            nul.runs = [Self.run("r1", state: "{\"note\":\"a\\u0000b\"}", at: now)]
            do {
                try await store.transaction { try await $0.write(nul) }
                Issue.record("U+0000 was accepted")
            } catch {
                guard case .permanent = ApplyFailure(error) else {
                    Issue.record("not a permanent failure: \(error)")
                    return
                }
            }
            #expect(try await store.transaction { try await $0.lockRuns(["r1"]) }["r1"]?.status == "running")
        }
    }

    @Test(arguments: Kind.allCases)
    func playbookVersionsAreStoredOncePerChecksumAndReadInOrder(_ kind: Kind) async throws {
        try await Self.withStore(kind) { store, _ in
            let first = try await store.registerPlaybook(id: "A.v1", checksum: "1", source: "a", model: Array("{}".utf8),
                triggers: ["a"])
            let again = try await store.registerPlaybook(id: "A.v1", checksum: "1", source: "a", model: Array("{}".utf8),
                triggers: ["a"])
            let second = try await store.registerPlaybook(id: "A.v1", checksum: "2", source: "b", model: Array("{}".utf8),
                triggers: ["a", "b"])
            #expect(first.created && !again.created && second.created)
            #expect(again.version.versionID == first.version.versionID)
            #expect(try await store.playbookVersions(after: 0).map(\.versionID)
                == [first.version.versionID, second.version.versionID])
            #expect(try await store.playbookVersions(after: first.version.versionID).map(\.triggers) == [["a", "b"]])
            // Read on the transaction's own connection too.
            #expect(try await store.transaction {
                try await $0.playbookVersions(after: 0)
            }.count == 2)
        }
    }

    /// The nested lease, under load, on a pool of one connection: a batch that meets a playbook version
    /// its replica does not know loads it on its own connection, so concurrent batches never wait on
    /// each other for a second one.
    @Test(arguments: Kind.allCases)
    func batchesOnAPoolOfOneNeverWaitForASecondConnection(_ kind: Kind) async throws {
        try await Self.withStore(kind, connections: 1) { store, _ in
            var configuration = ServiceConfiguration()
            configuration.engine.batchWaitMilliseconds = 0
            let logger = TestEnvironment.logger("test.conformance")
            let broker = InMemoryBroker()
            let clock: @Sendable () -> Instant = Orchestrator.wallClock
            let other = Orchestrator(store: store, broker: broker, configuration: configuration, agents: [],
                logger: logger, clock: clock)
            let replica = Orchestrator(store: store, broker: broker, configuration: configuration, agents: [],
                logger: logger, clock: clock)
            try await replica.refreshCatalog()
            _ = try await other.register(source: """
                id: Nested.v1
                trigger: nested
                steps:
                  - id: a
                    agent: ai.a
                  - id: b
                    agent: ai.b
                """, file: nil)
            let started = try await other.apply((0..<10).map {
                .trigger(TriggerEvent(id: "n-\($0)", type: "nested", payload: [:]))
            })
            // Results for runs of a version `replica` has never seen, applied concurrently.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for run in started.started {
                    group.addTask {
                        let result = WorkerMessage.taskResult(.init(taskID: "\(run.rawValue)/a/1", attempt: 1,
                            outcome: .completed(output: [:])))
                        let applied = try await replica.apply([.worker(result, messageID: nil)])
                        guard case .applied = applied.outcomes[0] else {
                            Issue.record("not applied: \(applied.outcomes[0])")
                            return
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(started.started.count == 10)
            #expect(replica.catalog.byVersion.count == 1)
        }
    }

    // MARK: MessageBroker

    /// Runs `body` with a broker of `kind` on which exchange `x` routes `a.*` to queue `q`.
    static func withBroker(_ kind: Kind, _ body: @Sendable (any MessageBroker, _ exchange: String, _ queue: String)
        async throws -> Void) async throws
    {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let exchange = "conf.\(suffix).x"
        let queue = "conf.\(suffix).q"
        let binding = AMQPTopology.Binding(queue: queue, exchange: exchange, routingKey: "a.*")
        let maxMessageBytes = Int(ProcessInfo.processInfo.environment["HMS_AMQP_MAX_MESSAGE_SIZE"] ?? "") ?? 8_388_608
        switch kind {
        case .memory:
            try await body(InMemoryBroker(queues: [queue], bindings: [binding], maxMessageBytes: maxMessageBytes),
                exchange, queue)
        case .real:
            let topology = AMQPTopology(exchanges: [AMQPTopology.Exchange(exchange, kind: .topic, durable: false,
                autoDelete: true)], queues: [AMQPTopology.Queue(queue, durable: false, autoDelete: true)],
                bindings: [binding])
            let client = AMQPClient(configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), topology: topology,
                logger: TestEnvironment.logger("test.conformance"))
            let running = Task { try await client.run() }
            defer { running.cancel() }
            try await body(client, exchange, queue)
        }
    }

    @Test(arguments: Kind.allCases)
    func publishesAreRoutedByTopicAndAMandatoryMessageNobodyReceivesIsReturned(_ kind: Kind) async throws {
        try await Self.withBroker(kind) { broker, exchange, queue in
            let outcomes = try await broker.publish([
                AMQPMessage(body: Array("one".utf8), exchange: exchange, routingKey: "a.b"),
                AMQPMessage(body: Array("lost".utf8), exchange: exchange, routingKey: "c.d"),
                AMQPMessage(body: Array("dropped".utf8), exchange: exchange, routingKey: "c.d", mandatory: false),
                AMQPMessage(body: Array("two".utf8), exchange: exchange, routingKey: "a.c"),
            ])
            #expect(outcomes.count == 4)
            guard case .confirmed = outcomes[0], case .returned(312, _) = outcomes[1], case .confirmed = outcomes[2],
                case .confirmed = outcomes[3]
            else {
                Issue.record("unexpected outcomes: \(outcomes)")
                return
            }
            let subscription = try await broker.subscribe(queue: queue, prefetch: 10, consumerTag: "conf-\(kind)")
            var received: [AMQPDelivery] = []
            while received.count < 2 { received += try await subscription.next() }
            #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == ["one", "two"])
            #expect(received.allSatisfy { !$0.redelivered })
            try await broker.ack(received[1].deliveryTag, multiple: true)
            try await subscription.cancel()
        }
    }

    @Test(arguments: Kind.allCases)
    func prefetchBoundsTheUnacknowledgedAndAMultipleAckReleasesTheRest(_ kind: Kind) async throws {
        try await Self.withBroker(kind) { broker, exchange, queue in
            _ = try await broker.publish((0..<5).map {
                AMQPMessage(body: [UInt8(48 + $0)], exchange: exchange, routingKey: "a.b")
            })
            let subscription = try await broker.subscribe(queue: queue, prefetch: 2, consumerTag: "conf-\(kind)")
            var held: [AMQPDelivery] = []
            while held.count < 2 { held += try await subscription.next() }
            #expect(held.count == 2)
            try await broker.ack(held[1].deliveryTag, multiple: true)
            var rest: [AMQPDelivery] = []
            while rest.count < 3 {
                let batch = try await subscription.next()
                #expect(batch.count <= 2)
                rest += batch
                try await broker.ack(batch.last!.deliveryTag, multiple: true)
            }
            #expect((held + rest).map(\.body) == (0..<5).map { [UInt8(48 + $0)] })
            try await subscription.cancel()
        }
    }

    @Test(arguments: Kind.allCases)
    func aMessageAboveTheBrokersLimitClosesTheChannelAndLeavesTheRestUnsettled(_ kind: Kind) async throws {
        guard let limit = Int(ProcessInfo.processInfo.environment["HMS_AMQP_MAX_MESSAGE_SIZE"] ?? "") else { return }
        try await Self.withBroker(kind) { broker, exchange, _ in
            let outcomes = try await broker.publish([
                AMQPMessage(body: Array(repeating: 1, count: limit + 1), exchange: exchange, routingKey: "a.b"),
                AMQPMessage(body: Array("after".utf8), exchange: exchange, routingKey: "a.b"),
            ])
            guard case .channelClosed(406, _) = outcomes[0], case .channelClosed = outcomes[1] else {
                Issue.record("unexpected outcomes: \(outcomes)")
                return
            }
            // The broker goes on taking messages.
            guard case .confirmed = try await broker.publish([
                AMQPMessage(body: Array("next".utf8), exchange: exchange, routingKey: "a.b"),
            ])[0] else {
                Issue.record("the next publish was not confirmed")
                return
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func subscribingToAQueueThatDoesNotExistFailsWith404(_ kind: Kind) async throws {
        try await Self.withBroker(kind) { broker, _, queue in
            // At once when connected, else with the first `next()` (the consumer starts on connect).
            do {
                let subscription = try await broker.subscribe(queue: queue + ".missing", prefetch: 1,
                    consumerTag: "conf-missing")
                _ = try await subscription.next()
                Issue.record("consumed from a missing queue")
            } catch let error as AMQPError {
                #expect(error.replyCode == 404)
            }
        }
    }
}
