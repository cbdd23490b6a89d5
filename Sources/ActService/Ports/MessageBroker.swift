public import ActAMQP

/// What the services need from RabbitMQ: publish with confirms and returns, consume in batches,
/// acknowledge, bind trigger types. The services take this port, never a connection.
///
/// Two implementations: ``ActAMQP/AMQPClient`` (below) and `InMemoryBroker` (`ActTesting`), a broker in
/// memory with topic routing, `mandatory` returns, prefetch, redelivery and faults on a chosen call. One
/// behaviour suite (`PortConformanceTests`) runs against both.
public protocol MessageBroker: Sendable {
    /// Publishes the messages and waits for their confirms: one outcome per message, in order.
    ///
    /// - Throws: When the connection is lost: the outcome of every unconfirmed message is then unknown.
    func publish(_ messages: [AMQPMessage]) async throws -> [PublishOutcome]

    /// Starts consuming `queue`, with at most `prefetch` unacknowledged deliveries. The subscription
    /// survives reconnects (unacknowledged deliveries come again, `redelivered` set).
    func subscribe(queue: String, prefetch: UInt16, consumerTag: String) async throws -> any BrokerSubscription

    /// Acknowledges a delivery (and, with `multiple`, every earlier one of its channel).
    ///
    /// - Throws: When the delivery's connection is gone; the broker then redelivers it.
    func ack(_ tag: AMQPDeliveryTag, multiple: Bool) async throws

    /// Declares the bindings (durable; repeating one is harmless).
    func bind(_ bindings: [AMQPTopology.Binding]) async throws

    /// Whether a connection is open now.
    func isConnected() async -> Bool
}

/// The deliveries of one consumer.
public protocol BrokerSubscription: Sendable {
    /// Every delivery that arrived, at least one, in order; empty once the subscription ended. Cancelling
    /// the calling task ends the wait.
    func next() async throws -> [AMQPDelivery]

    /// Stops the consumer; `next()` then returns what is left and then nothing.
    func cancel() async throws
}

// MARK: The RabbitMQ implementation

extension AMQPClient: MessageBroker {
    public func subscribe(queue: String, prefetch: UInt16, consumerTag: String) async throws -> any BrokerSubscription {
        let consumer = try await consume(queue: queue, prefetch: prefetch, consumerTag: consumerTag)
        return AMQPSubscription(client: self, consumer: consumer)
    }

    public func bind(_ bindings: [AMQPTopology.Binding]) async throws {
        guard !bindings.isEmpty else { return }
        try await withConnection { connection in
            for binding in bindings { try await connection.bind(binding) }
        }
    }

    public func isConnected() async -> Bool {
        do {
            return try await withConnection { connection in await connection.isOpen }
        } catch {
            return false
        }
    }
}

/// A consumer of ``ActAMQP/AMQPClient``: the batches the connection read, as it read them.
struct AMQPSubscription: BrokerSubscription {
    let client: AMQPClient
    let consumer: AMQPConsumer

    func next() async throws -> [AMQPDelivery] {
        try await consumer.nextDeliveries()
    }

    func cancel() async throws {
        try await client.cancel(consumer)
    }
}
