import ActAMQP
import ActService
import ActTesting
import Testing

/// The in-memory broker's routing, the part of RabbitMQ's behaviour the conformance suite cannot reach
/// cheaply (every pattern).
@Suite("in-memory broker")
struct InMemoryBrokerTests {
    @Test(arguments: [
        ("result.#", "result", true), ("result.#", "result.a.b", true), ("result.*", "result.a", true),
        ("result.*", "result.a.b", false), ("result.*", "result", false), ("#", "anything.at.all", true),
        ("task.*.b", "task.a.b", true), ("task.*.b", "task.a.c", false), ("noise.complaint.filed",
        "noise.complaint.filed", true), ("a.#.z", "a.z", true), ("a.#.z", "a.b.c.z", true), ("a.#.z", "a.b.c", false),
    ])
    func topicMatching(pattern: String, key: String, matches: Bool) {
        #expect(InMemoryBroker.topic(pattern, matches: key) == matches)
    }

    @Test func prefetchBoundsWhatAConsumerHoldsAndAMultipleAckFreesIt() async throws {
        let broker = InMemoryBroker(queues: ["q"])
        _ = try await broker.publish((0..<5).map { AMQPMessage(body: [UInt8($0)], exchange: "", routingKey: "q") })
        let subscription = try await broker.subscribe(queue: "q", prefetch: 2, consumerTag: "c")
        let first = try await subscription.next()
        #expect(first.map(\.body) == [[0], [1]])
        try await broker.ack(first[1].deliveryTag, multiple: true)
        let second = try await subscription.next()
        #expect(second.map(\.body) == [[2], [3]])
        // Dropped: the unacknowledged come again first, marked redelivered; old tags are stale.
        broker.dropConnection()
        let third = try await subscription.next()
        #expect(third.map(\.body) == [[2], [3]])
        #expect(third.allSatisfy { $0.redelivered })
        await #expect(throws: AMQPError.self) { try await broker.ack(second[1].deliveryTag, multiple: true) }
    }
}
