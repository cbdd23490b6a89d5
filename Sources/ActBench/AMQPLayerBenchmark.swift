import ActAMQP
import Foundation
import Logging

/// Measures the AMQP layer alone against a real broker: persistent publishes with confirms awaited one at
/// a time, in batches of 100 and of 1,000, then consuming everything with one multiple-ack per 100.
///
/// Uses its own durable classic queue (published through the default exchange) and deletes it at the end.
///
/// - Parameters:
///   - configuration: the broker.
///   - messages: messages per publish phase; the consume phase reads all of them (3 × `messages`).
///   - messageSize: body size in bytes.
/// - Returns: one figure per phase, in messages per second.
func runAMQPLayerBenchmark(
    configuration: AMQPConfiguration, messages: Int, messageSize: Int, logger: Logger
) async throws -> [LayerBenchmarkFigure] {
    let queue = "hms-act.bench.\(UUID().uuidString.prefix(8))"
    let client = AMQPClient(
        configuration: configuration, topology: AMQPTopology(queues: [.init(queue)]), logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        let figures = try await measureAMQPLayer(client: client, queue: queue, messages: messages, messageSize: messageSize)
        _ = try? await client.withConnection { try await $0.deleteQueue(queue) }
        return figures
    }
}

private func measureAMQPLayer(
    client: AMQPClient, queue: String, messages: Int, messageSize: Int
) async throws -> [LayerBenchmarkFigure] {
    let body = [UInt8](repeating: UInt8(ascii: "x"), count: messageSize)
    let message = AMQPMessage(body: body, exchange: "", routingKey: queue)
    let clock = ContinuousClock()
    var figures: [LayerBenchmarkFigure] = []

    func publish(batchSize: Int) async throws -> Duration {
        try await clock.measure {
            var sent = 0
            while sent < messages {
                let count = min(batchSize, messages - sent)
                let outcomes = try await client.publish(Array(repeating: message, count: count))
                guard outcomes.allSatisfy({ $0 == .confirmed }) else {
                    throw AMQPError(.protocolError, replyText: "benchmark publish not confirmed: \(outcomes.first { $0 != .confirmed }!)")
                }
                sent += count
            }
        }
    }

    for batchSize in [1, 100, 1000] {
        let elapsed = try await publish(batchSize: batchSize)
        figures.append(
            LayerBenchmarkFigure(
                name: "amqp.publish.confirmed.batch_\(batchSize)", value: benchRate(messages, elapsed), unit: "messages/s"))
    }

    let total = messages * 3
    let consumer = try await client.consume(queue: queue, prefetch: 1000)
    let consumeElapsed = try await clock.measure {
        var received = 0
        var iterator = consumer.makeAsyncIterator()
        while received < total, let delivery = try await iterator.next() {
            received += 1
            // One ack per 100 deliveries (and one for the tail), each covering the deliveries before it.
            if received % 100 == 0 || received == total {
                try await client.ack(delivery.deliveryTag, multiple: true)
            }
        }
    }
    try await client.cancel(consumer)
    figures.append(
        LayerBenchmarkFigure(name: "amqp.consume.acked.multiple_100", value: benchRate(total, consumeElapsed), unit: "messages/s"))
    return figures
}

/// The broker's end-to-end ceiling for one message stream: persistent messages of `messageSize` bytes
/// published with confirms (a window of `window`) while a consumer on the same queue reads and acks them
/// (one multiple ack per 100), both at once, as hms-act and its workers use RabbitMQ.
///
/// - Returns: messages per second from the first publish to the last delivery.
func runAMQPRoundTripCeiling(
    configuration: AMQPConfiguration, kind: AMQPTopology.Queue.Kind, messages: Int, messageSize: Int, window: Int,
    logger: Logger
) async throws -> Double {
    let queue = "hms-act.bench.ceiling.\(UUID().uuidString.prefix(8))"
    let publisher = AMQPClient(
        configuration: configuration, topology: AMQPTopology(queues: [.init(queue, kind: kind)]), logger: logger)
    let consumer = AMQPClient(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await publisher.run() }
        group.addTask { try await consumer.run() }
        defer { group.cancelAll() }
        // The first call waits for the connection and the declared queue.
        _ = try await publisher.withConnection { _ in }
        let deliveries = try await consumer.consume(queue: queue, prefetch: UInt16(clamping: window * 2))
        let message = AMQPMessage(
            body: [UInt8](repeating: UInt8(ascii: "x"), count: messageSize), exchange: "", routingKey: queue,
            properties: AMQPProperties(persistent: true))
        let elapsed = try await ContinuousClock().measure {
            try await withThrowingTaskGroup(of: Void.self) { phase in
                phase.addTask {
                    var sent = 0
                    while sent < messages {
                        let count = min(window, messages - sent)
                        let outcomes = try await publisher.publish(Array(repeating: message, count: count))
                        guard outcomes.allSatisfy({ $0 == .confirmed }) else {
                            throw BenchError("the ceiling's publish was not confirmed")
                        }
                        sent += count
                    }
                }
                phase.addTask {
                    var received = 0
                    for try await delivery in deliveries {
                        received += 1
                        if received % 100 == 0 || received == messages {
                            try await consumer.ack(delivery.deliveryTag, multiple: true)
                        }
                        if received == messages { break }
                    }
                }
                try await phase.waitForAll()
            }
        }
        try await consumer.cancel(deliveries)
        _ = try? await publisher.withConnection { try await $0.deleteQueue(queue) }
        return benchRate(messages, elapsed)
    }
}
