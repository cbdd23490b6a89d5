import ActAMQP
import ActStore
internal import Foundation
public import Logging
public import ServiceLifecycle
internal import Synchronization

/// Consumes one queue (`hms-act.triggers` or `hms-act.results`) in batches: up to
/// ``ServiceConfiguration/Engine-swift.struct/batchSize`` deliveries (or what arrived within
/// `batchWaitMilliseconds` of the first) are applied in one transaction, then acknowledged with one
/// `multiple` ack. A message that cannot be read or applied is copied to `hms.dead` with the reason in the
/// `x-hms-reason` header and acknowledged, so it never blocks the queue.
///
/// On graceful shutdown it stops consuming, applies and acknowledges what it holds, and returns. If the
/// database is unreachable it keeps the batch unacknowledged and retries with backoff; if the process dies
/// instead, the broker redelivers and the inbox makes the repeat harmless.
public struct DeliveryConsumer: Service {
    public enum Kind: String, Sendable {
        case triggers
        case results
    }

    let kind: Kind
    let queue: String
    let orchestrator: Orchestrator
    let logger: Logger

    public init(kind: Kind, orchestrator: Orchestrator, logger: Logger) {
        self.kind = kind
        self.orchestrator = orchestrator
        self.queue = kind == .triggers ? orchestrator.configuration.amqp.queues.triggers
            : orchestrator.configuration.amqp.queues.results
        var logger = logger
        logger[metadataKey: "amqp.queue"] = "\(queue)"
        self.logger = logger
    }

    /// Deliveries received and not yet applied, filled by the reading task, drained by the batch loop.
    private final class Buffer: Sendable {
        struct State {
            var deliveries: [AMQPDelivery] = []
            var finished = false
        }

        let state = Mutex(State())
        let signal = Signal()

        func append(_ delivery: AMQPDelivery) {
            state.withLock { $0.deliveries.append(delivery) }
            signal.signal()
        }

        func finish() {
            state.withLock { $0.finished = true }
            signal.signal()
        }

        func take(upTo limit: Int) -> (batch: [AMQPDelivery], finished: Bool) {
            state.withLock { state in
                let batch = Array(state.deliveries.prefix(limit))
                state.deliveries.removeFirst(batch.count)
                return (batch, state.finished && state.deliveries.isEmpty)
            }
        }
    }

    public func run() async throws {
        let engine = orchestrator.configuration.engine
        let prefetch = UInt16(clamping: orchestrator.configuration.amqp.prefetch)
        let consumer = try await orchestrator.broker.consume(queue: queue, prefetch: prefetch,
            consumerTag: "hms-act.\(kind.rawValue).\(ProcessInfo.processInfo.processIdentifier)")
        ServiceMetrics.consumerUp(queue: queue, true)
        defer { ServiceMetrics.consumerUp(queue: queue, false) }
        let buffer = Buffer()
        let broker = orchestrator.broker
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Reading stops at graceful shutdown; what was read is still applied below.
                defer { buffer.finish() }
                do {
                    try await cancelWhenGracefulShutdown {
                        for try await delivery in consumer { buffer.append(delivery) }
                    }
                } catch is CancellationError {
                    // Graceful shutdown (or cancellation) stopped the reading; what was read is applied below.
                }
                try? await broker.cancel(consumer)
            }
            group.addTask {
                while true {
                    var (batch, finished) = buffer.take(upTo: engine.batchSize)
                    if batch.isEmpty {
                        if finished { return }
                        await buffer.signal.wait(timeout: .seconds(1))
                        continue
                    }
                    if batch.count < engine.batchSize, engine.batchWaitMilliseconds > 0 {
                        try? await Task.sleep(for: .milliseconds(engine.batchWaitMilliseconds))
                        batch += buffer.take(upTo: engine.batchSize - batch.count).batch
                    }
                    await process(batch)
                    if finished { return }
                }
            }
            try await group.waitForAll()
        }
        logger.info("consumer stopped")
    }

    /// Applies one batch, retrying while the store is unreachable, then acknowledges it.
    private func process(_ deliveries: [AMQPDelivery]) async {
        var inputs: [BatchInput] = []
        var positions: [Int] = []  // delivery index of each input
        var rejected: [(Int, String)] = []
        for (index, delivery) in deliveries.enumerated() {
            let message = InboundMessage(delivery: delivery)
            do {
                switch kind {
                case .triggers: inputs.append(.trigger(try TriggerEvent(message: message)))
                case .results: inputs.append(.worker(try WorkerMessage(message: message), messageID: message.messageID))
                }
                positions.append(index)
            } catch {
                rejected.append((index, error.reason))
            }
        }
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                let applied = try await orchestrator.apply(inputs)
                var appliedCount = 0
                var ignoredCount = 0
                for (position, outcome) in zip(positions, applied.outcomes) {
                    switch outcome {
                    case .applied: appliedCount += 1
                    case .ignored(let reason):
                        ignoredCount += 1
                        logger.debug("message ignored", metadata: ["message.reason": "\(reason)"])
                    case .rejected(let reason): rejected.append((position, reason))
                    }
                }
                ServiceMetrics.message(queue: queue, outcome: "applied", count: appliedCount)
                ServiceMetrics.message(queue: queue, outcome: "ignored", count: ignoredCount)
                break
            } catch {
                logger.warning("batch could not be applied; retrying",
                    metadata: ["error": "\(error)", "batch.size": "\(deliveries.count)", "retry.in": "\(backoff)"])
                do { try await Task.sleep(for: backoff) } catch {
                    return  // cancelled: unacknowledged deliveries go back to the queue
                }
                backoff = min(backoff * 2, .seconds(10))
            }
        }
        if !rejected.isEmpty {
            await deadLetter(rejected.map { (deliveries[$0.0], $0.1) })
        }
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        for delivery in deliveries {
            if let timestamp = delivery.properties.timestamp {
                ServiceMetrics.queueWait(queue: queue, milliseconds: now - Int64(timestamp.timeIntervalSince1970 * 1_000))
            }
        }
        guard let last = deliveries.last else { return }
        do {
            try await orchestrator.broker.ack(last.deliveryTag, multiple: true)
        } catch {
            // The connection went away: the broker redelivers, and the inbox ignores the repeats.
            logger.info("ack failed after commit; the broker will redeliver", metadata: ["error": "\(error)"])
        }
    }

    /// Publishes copies of unreadable messages to the dead-letter exchange with the reason, confirmed,
    /// before their originals are acknowledged.
    private func deadLetter(_ items: [(AMQPDelivery, String)]) async {
        let amqp = orchestrator.configuration.amqp
        let messages = items.map { delivery, reason in
            var properties = delivery.properties
            properties.headers["x-hms-reason"] = .string(reason)
            properties.headers["x-hms-original-exchange"] = .string(delivery.exchange)
            properties.headers["x-hms-original-queue"] = .string(queue)
            return AMQPMessage(body: delivery.body, exchange: amqp.exchanges.dead, routingKey: delivery.routingKey,
                properties: properties, mandatory: false)
        }
        for (delivery, reason) in items {
            logger.warning("message dead-lettered", metadata: ["message.reason": "\(reason)",
                "message.routing_key": "\(delivery.routingKey)"])
        }
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                _ = try await orchestrator.broker.publish(messages)
                ServiceMetrics.message(queue: queue, outcome: "dead_lettered", count: messages.count)
                return
            } catch {
                do { try await Task.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }
}
