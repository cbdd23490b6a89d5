internal import ActAMQP
public import ActEngine
public import ActPlaybook
public import ActService
internal import Foundation
internal import ActStore
public import Logging
public import ServiceLifecycle
internal import Synchronization

/// A clock a test moves by hand: the in-memory store's `now()` and the orchestrator's clock.
public final class ManualClock: Sendable {
    private let milliseconds: Atomic<Int64>

    public init(millisecondsSinceEpoch: Int64 = 1_800_000_000_000) {
        milliseconds = Atomic(millisecondsSinceEpoch)
    }

    public var now: Instant { Instant(millisecondsSinceEpoch: milliseconds.load(ordering: .relaxed)) }

    public func advance(by duration: Duration) {
        let (seconds, attoseconds) = duration.components
        milliseconds.add(seconds * 1_000 + attoseconds / 1_000_000_000_000_000, ordering: .relaxed)
    }
}

/// hms-act's services over the in-memory ports: a ``ServiceStore``, a ``MessageBroker`` with hms-act's
/// topology declared, a manual clock, and an orchestrator with the given playbooks registered. Tests drive
/// one service directly (``Orchestrator/apply(_:)``, ``OutboxRelay/relayOnce(limit:)``) or run them all
/// (``run(_:)``), inject faults through ``store`` and ``broker``, and look at the tables and queues.
public struct InMemorySystem: Sendable {
    public let store: InMemoryStore
    public let broker: InMemoryBroker
    public let clock: ManualClock
    public let orchestrator: Orchestrator
    public let configuration: ServiceConfiguration
    public let logger: Logger

    /// - Parameters:
    ///   - playbooks: YAML sources to register.
    ///   - connections: The in-memory pool's size.
    ///   - maxMessageBytes: The broker's `max_message_size` (0: none).
    ///   - workerQueues: Queues bound to every task routing key (`#` on the tasks exchange) and every
    ///     governance key, so tasks and governance messages are routable; empty to leave tasks unroutable.
    ///   - wrapStore: Wraps the store the orchestrator uses (``store`` stays the in-memory one underneath),
    ///     e.g. a deliberately broken store that shows a checker catches what it breaks.
    public init(playbooks: [String], agents: [Agent] = [], connections: Int = 4, maxMessageBytes: Int = 0,
        workerQueues: Bool = true, wrapStore: (@Sendable (any ServiceStore) -> any ServiceStore)? = nil,
        configure: (inout ServiceConfiguration) -> Void = { _ in }) async throws
    {
        var configuration = ServiceConfiguration()
        configuration.amqp.queueType = "classic"
        configuration.engine.batchWaitMilliseconds = 0
        configuration.audit.signingKeyText = AuditSigningKey.generate().base64
        configure(&configuration)
        let clock = ManualClock()
        let store = InMemoryStore(connections: connections) { clock.now.millisecondsSinceEpoch }
        var logger = Logger(label: "test.in-memory")
        logger.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["HMS_TEST_LOG"] ?? "") ?? .critical
        var triggers: [String] = []
        for source in playbooks {
            let registration = try await PlaybookRegistrar.register(source: source, file: nil, extraTriggers: [],
                agents: agents, store: store, logger: logger)
            triggers += registration.version.triggers
        }
        let topology = configuration.topology(triggerTypes: triggers)
        var bindings = topology.bindings
        if workerQueues {
            bindings.append(AMQPTopology.Binding(queue: "workers", exchange: configuration.amqp.exchanges.tasks,
                routingKey: "#"))
            bindings.append(AMQPTopology.Binding(queue: "governance", exchange: configuration.amqp.exchanges.governance,
                routingKey: "#"))
        }
        let broker = InMemoryBroker(queues: topology.queues.map(\.name), bindings: bindings,
            maxMessageBytes: maxMessageBytes)
        self.store = store
        self.broker = broker
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.orchestrator = Orchestrator(store: wrapStore?(store) ?? store, broker: broker, configuration: configuration, agents: agents,
            logger: logger, clock: { clock.now }, sleep: { _ in await Task.yield() })
        try await orchestrator.refreshCatalog()
    }

    /// Every service of `hms-act serve` but the pool and the HTTP server, as ``ServiceRuntime`` lists them.
    public var services: [any Service] {
        [
            OutboxRelay(orchestrator: orchestrator, logger: logger),
            TimerScanner(orchestrator: orchestrator, notifications: store, logger: logger),
            DeliveryConsumer(kind: .results, orchestrator: orchestrator, logger: logger),
            DeliveryConsumer(kind: .triggers, orchestrator: orchestrator, logger: logger),
        ]
    }

    /// Runs the services while `body` runs, then shuts them down gracefully (consumers drain what they hold).
    public func run<Result: Sendable>(_ body: @Sendable () async throws -> Result) async throws -> Result {
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [], logger: logger)
        let running = Task { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await running.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
    }

    // MARK: Messages in

    /// Publishes a trigger event on the events exchange, as a platform would.
    public func publishTrigger(id: String, type: String, payload: JSONValue = [:]) async throws {
        let body: JSONValue = ["id": .string(id), "type": .string(type), "payload": payload]
        try await publish(body.canonicalEncoding, exchange: configuration.amqp.exchanges.events, routingKey: type)
    }

    /// Publishes raw bytes (a worker's answer, or something unreadable) with `mandatory` and a confirm.
    public func publish(_ body: [UInt8], exchange: String, routingKey: String, type: String? = nil) async throws {
        let outcomes = try await broker.publish([AMQPMessage(body: body, exchange: exchange, routingKey: routingKey,
            properties: AMQPProperties(contentType: "application/json", type: type), mandatory: true)])
        guard case .confirmed = outcomes[0] else {
            throw InjectedFault("the test's publish to \(exchange) \(routingKey) was not confirmed: \(outcomes[0])")
        }
    }

    /// Completes a task as a worker would, on the results exchange.
    public func complete(taskID: String, attempt: Int = 1, output: JSONValue = [:]) async throws {
        let body: JSONValue = ["task_id": .string(taskID), "attempt": .int(Int64(attempt)), "status": "completed",
            "output": output]
        try await publish(body.canonicalEncoding, exchange: configuration.amqp.exchanges.results,
            routingKey: "result.test")
    }

    // MARK: Looking

    /// The tasks published to workers, as JSON, in order.
    public var tasksPublished: [JSONValue] {
        broker.confirmed.filter { $0.exchange == configuration.amqp.exchanges.tasks }
            .compactMap { try? JSONValue(parsing: $0.body) }
    }

    /// The governance messages published, by routing key, in order.
    public var governance: [(routingKey: String, body: JSONValue)] {
        broker.confirmed.filter { $0.exchange == configuration.amqp.exchanges.governance }
            .compactMap { message in (try? JSONValue(parsing: message.body)).map { (message.routingKey, $0) } }
    }

    /// Waits until `condition` holds, yielding to the services meanwhile (at most `timeout`).
    public func wait(_ what: String, timeout: Duration = .seconds(10), until condition: () async throws -> Bool)
        async throws
    {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try await !condition() {
            guard clock.now < deadline else { throw InjectedFault("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
