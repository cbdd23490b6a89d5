/// The deliveries of one consumer, as an `AsyncSequence`.
///
/// From ``AMQPClient/consume(queue:prefetch:consumerTag:)`` the sequence survives reconnects: after a
/// connection loss the client starts the consumer again on the new connection and the sequence goes on
/// (deliveries that were not acked come again, with ``AMQPDelivery/redelivered`` set). It ends when the
/// consumer is cancelled or the client shuts down, and throws on a channel error (e.g. 404 for a missing
/// queue) or when the broker cancels the consumer.
///
/// From ``AMQPConnection/consume(queue:prefetch:consumerTag:)`` it ends with its connection.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery
    public typealias Failure = any Error

    enum Source: Sendable {
        case connection(AMQPConnection, String)
        case client(AMQPClient, Int)
    }

    let source: Source

    /// Fetches every delivery buffered for the consumer in one hop and hands them out one by one.
    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let source: Source
        var fetched: [AMQPDelivery] = []
        var index = 0

        public mutating func next() async throws -> AMQPDelivery? {
            if index == fetched.count {
                fetched = try await AMQPConsumer(source: source).nextDeliveries()
                index = 0
                if fetched.isEmpty { return nil }
            }
            defer { index += 1 }
            return fetched[index]
        }
    }

    /// Every delivery buffered for the consumer, at least one, in one hop (as the connection read them);
    /// empty once the consumer ended.
    public func nextDeliveries() async throws -> [AMQPDelivery] {
        switch source {
        case .connection(let connection, let tag): try await connection.nextDeliveries(consumerTag: tag)
        case .client(let client, let id): try await client.nextDeliveries(consumerID: id)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(source: source)
    }
}
