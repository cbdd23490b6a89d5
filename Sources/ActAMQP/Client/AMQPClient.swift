import ActThreads
public import Logging
public import ServiceLifecycle

/// A RabbitMQ client that keeps one ``AMQPConnection`` alive: it connects, declares the topology, starts the
/// registered consumers and runs the frame pump; when the connection dies it reconnects with capped
/// exponential backoff and does all of that again.
///
/// Run it as a `Service` (``run()``) in the application's `ServiceGroup`; on graceful shutdown it closes
/// its channels and the connection cleanly. Calls made while it is disconnected wait for the next
/// connection, up to ``AMQPConfiguration/connectTimeout``.
///
/// ```swift
/// let client = AMQPClient(configuration: try AMQPConfiguration(url: url), topology: topology, logger: logger)
/// // in a ServiceGroup, or: group.addTask { try await client.run() }
/// let outcomes = try await client.publish(messages)
/// for try await delivery in try await client.consume(queue: "hms-act.triggers", prefetch: 100) { … }
/// ```
public actor AMQPClient: Service {
    /// Connection settings.
    public nonisolated let configuration: AMQPConfiguration
    /// Declared after every (re)connect.
    public nonisolated let topology: AMQPTopology
    let logger: Logger

    private var connection: AMQPConnection?
    private var connectionWaiters: [Int: Waiter<AMQPConnection>] = [:]
    private var nextWaiterID = 0
    private var consumers: [Int: ConsumerRegistration] = [:]
    private var nextConsumerID = 0
    private var lastError: AMQPError?
    private var isShutDown = false
    /// How many connections were established (1 after the first connect); tests watch reconnects with it.
    public private(set) var connectionCount = 0

    /// A client; nothing connects until ``run()``.
    public init(configuration: AMQPConfiguration, topology: AMQPTopology = AMQPTopology(), logger: Logger) {
        self.configuration = configuration
        self.topology = topology
        var logger = logger
        logger[metadataKey: "amqp.server"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
    }

    /// Connects and keeps the connection alive until graceful shutdown or cancellation, then closes it
    /// cleanly and returns.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.connectionLoop()
        }
        shutDown()
    }

    private func connectionLoop() async {
        var failures = 0
        while !Task.isCancelled {
            let connection: AMQPConnection
            do {
                connection = try await AMQPConnection.connect(configuration: configuration, logger: logger)
                try await connection.declare(topology)
                // Installed before the consumers start, so their first deliveries can be acked through the client.
                install(connection)
                try await startConsumers(on: connection)
            } catch {
                self.connection = nil
                failures += 1
                let delay = configuration.reconnect.delay(afterFailures: failures)
                lastError = error as? AMQPError ?? AMQPError(.connectionFailed, replyText: "\(error)")
                logger.info(
                    "amqp connect failed; retrying",
                    metadata: ["amqp.error": "\(error)", "amqp.retry_in": "\(delay)", "amqp.attempt": "\(failures)"])
                do { try await Task.sleep(for: delay) } catch { return }
                continue
            }
            failures = 0
            logger.info("amqp connected", metadata: ["amqp.connection.id": "\(connection.id)"])
            do {
                try await connection.run()
            } catch {
                lastError = error as? AMQPError
                logger.info("amqp connection lost; reconnecting", metadata: ["amqp.error": "\(error)"])
            }
            self.connection = nil
            if Task.isCancelled {
                await connection.close()
                return
            }
        }
    }

    private func install(_ connection: AMQPConnection) {
        self.connection = connection
        connectionCount += 1
        let waiters = connectionWaiters
        connectionWaiters = [:]
        for waiter in waiters.values { waiter.resume(returning: connection) }
    }

    private func shutDown() {
        isShutDown = true
        connection = nil
        let error = AMQPError(.shutdown, replyText: "the AMQP client shut down")
        for waiter in connectionWaiters.values { waiter.resume(throwing: error) }
        connectionWaiters = [:]
        for (id, registration) in consumers {
            registration.waiter?.resume(throwing: error)
            consumers[id]?.waiter = nil
        }
        logger.info("amqp client stopped")
    }

    // MARK: Scoped access

    /// Runs `body` with the current connection, waiting for one (up to ``AMQPConfiguration/connectTimeout``)
    /// while the client reconnects.
    ///
    /// - Throws: ``AMQPError/Code/timeout`` (with the last connect error's text) when no connection comes up,
    ///   ``AMQPError/Code/shutdown`` after shutdown, and whatever `body` throws.
    @discardableResult
    public func withConnection<Result: Sendable>(
        _ body: (AMQPConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await currentConnection()
        return try await body(connection)
    }

    /// The live connection, or the next one.
    public func currentConnection() async throws -> AMQPConnection {
        if let connection { return connection }
        if isShutDown { throw AMQPError(.shutdown, replyText: "the AMQP client shut down") }
        let waiter = Waiter<AMQPConnection>()
        let waiterID = nextWaiterID
        nextWaiterID += 1
        connectionWaiters[waiterID] = waiter
        let timeout = configuration.connectTimeout
        let last = lastError
        return try await withThrowingTaskGroup(of: AMQPConnection?.self) { group in
            group.addTask { try await waiter.wait() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let connection = first else {
                connectionWaiters[waiterID] = nil
                throw AMQPError(.timeout, replyText: "no AMQP connection within \(timeout); last error: \(last.map { "\($0)" } ?? "none")")
            }
            return connection
        }
    }

    // MARK: Publishing

    /// Publishes a batch with confirms on the current connection. See ``AMQPConnection/publish(_:)-([AMQPMessage])``.
    ///
    /// On a connection loss the call fails with ``AMQPError/Code/connectionClosed``: the outcome of the
    /// unconfirmed messages is unknown, so keep them (e.g. outbox rows) and publish again.
    public func publish(_ messages: [AMQPMessage]) async throws -> [PublishOutcome] {
        try await withConnection { try await $0.publish(messages) }
    }

    /// Publishes one message and waits for its confirm.
    public func publish(_ message: AMQPMessage) async throws -> PublishOutcome {
        try await withConnection { try await $0.publish(message) }
    }

    // MARK: Consuming

    /// Registers a consumer that runs on every connection of this client, and returns its deliveries.
    ///
    /// If connected, the consumer starts now, so a missing queue throws here (404). Ack with
    /// ``ack(_:multiple:)`` (or ``AMQPConnection/ack(_:multiple:)``).
    public func consume(queue: String, prefetch: UInt16, consumerTag: String? = nil) async throws -> AMQPConsumer {
        let id = nextConsumerID
        nextConsumerID += 1
        var registration = ConsumerRegistration(queue: queue, prefetch: prefetch, consumerTag: consumerTag)
        if let connection {
            let tag = try await connection.startConsumer(queue: queue, prefetch: prefetch, consumerTag: consumerTag)
            registration.binding = (connection, tag)
        }
        consumers[id] = registration
        return AMQPConsumer(source: .client(self, id))
    }

    /// Cancels a consumer registered with ``consume(queue:prefetch:consumerTag:)``; its sequence ends.
    public func cancel(_ consumer: AMQPConsumer) async throws {
        guard case .client(_, let id) = consumer.source, let registration = consumers.removeValue(forKey: id) else {
            return
        }
        registration.waiter?.resume(returning: nil)
        if let (connection, tag) = registration.binding {
            try await connection.cancel(consumerTag: tag)
        }
    }

    private func startConsumers(on connection: AMQPConnection) async throws {
        for (id, registration) in consumers {
            do {
                let tag = try await connection.startConsumer(
                    queue: registration.queue, prefetch: registration.prefetch, consumerTag: registration.consumerTag)
                consumers[id]?.binding = (connection, tag)
                if let waiter = consumers[id]?.waiter {
                    consumers[id]?.waiter = nil
                    waiter.resume(returning: (connection, tag))
                }
            } catch let error as AMQPError where !error.isConnectionLevel {
                // This consumer cannot run (e.g. its queue is gone): it ends with the error, others go on.
                consumers[id] = nil
                registration.waiter?.resume(throwing: error)
            }
        }
    }

    /// The consumer's next deliveries (all that are buffered, at least one); empty once it ended.
    func nextDeliveries(consumerID id: Int) async throws -> [AMQPDelivery] {
        while true {
            guard let (connection, tag) = try await binding(for: id) else { return [] }
            do {
                let deliveries = try await connection.nextDeliveries(consumerTag: tag)
                if !deliveries.isEmpty { return deliveries }
                // Ended cleanly: cancelled, or its connection closed during shutdown.
                if isShutDown || consumers[id] == nil { return [] }
                unbind(id, from: connection)
            } catch let error as AMQPError where error.isConnectionLevel {
                unbind(id, from: connection)  // wait for the next connection
            } catch {
                consumers[id] = nil
                throw error
            }
        }
    }

    private func unbind(_ id: Int, from connection: AMQPConnection) {
        if let binding = consumers[id]?.binding, binding.connection === connection {
            consumers[id]?.binding = nil
        }
    }

    /// Where the consumer runs now, waiting for a reconnect if needed; nil once it was cancelled.
    private func binding(for id: Int) async throws -> (connection: AMQPConnection, tag: String)? {
        guard let registration = consumers[id] else { return nil }
        if let binding = registration.binding { return binding }
        if isShutDown { return nil }
        let waiter = Waiter<(connection: AMQPConnection, tag: String)?>()
        consumers[id]?.waiter = waiter
        do {
            return try await waiter.wait()
        } catch let error as AMQPError where error.code == .shutdown {
            return nil
        }
    }

    /// Acknowledges a delivery on the connection it came from.
    ///
    /// - Throws: ``AMQPError/Code/staleDeliveryTag`` when that connection is gone (the broker redelivers).
    public func ack(_ tag: AMQPDeliveryTag, multiple: Bool = false) async throws {
        try await connection(for: tag).ack(tag, multiple: multiple)
    }

    /// Negatively acknowledges a delivery (see ``AMQPConnection/nack(_:multiple:requeue:)``).
    public func nack(_ tag: AMQPDeliveryTag, multiple: Bool = false, requeue: Bool) async throws {
        try await connection(for: tag).nack(tag, multiple: multiple, requeue: requeue)
    }

    /// Rejects a delivery (see ``AMQPConnection/reject(_:requeue:)``).
    public func reject(_ tag: AMQPDeliveryTag, requeue: Bool) async throws {
        try await connection(for: tag).reject(tag, requeue: requeue)
    }

    private func connection(for tag: AMQPDeliveryTag) throws -> AMQPConnection {
        guard let connection, connection.id == tag.connectionID else {
            throw AMQPError(.staleDeliveryTag, replyText: "delivery \(tag.value) came on a connection that is gone")
        }
        return connection
    }
}

private struct ConsumerRegistration {
    let queue: String
    let prefetch: UInt16
    let consumerTag: String?
    var binding: (connection: AMQPConnection, tag: String)?
    var waiter: Waiter<(connection: AMQPConnection, tag: String)?>?
}
