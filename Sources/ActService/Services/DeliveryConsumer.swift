import ActAMQP
import ActStore
internal import Foundation
public import Logging
public import ServiceLifecycle
internal import Synchronization
import ActThreads

/// Consumes one queue (`hms-act.triggers` or `hms-act.results`) in batches: up to
/// ``ServiceConfiguration/Engine-swift.struct/batchSize`` deliveries (or what arrived within
/// `batchWaitMilliseconds` of the first) are applied in one transaction, then acknowledged with one
/// `multiple` ack. A message that cannot be read or applied is copied to `hms.dead` with the reason in the
/// `x-hms-reason` header and acknowledged, so it never blocks the queue. That includes a message the
/// database refuses (U+0000 in a payload, a date out of range): a batch failing with a data error is split
/// until the message at fault is alone (see ``ApplyFailure``), and the rest of the batch commits.
///
/// On graceful shutdown it stops consuming, applies and acknowledges what it holds, and returns. If the
/// database is unreachable it keeps the batch unacknowledged and retries with backoff, marks itself
/// retrying (readiness false, `hms_act_consumer_retrying`), and gives up the batch at graceful shutdown
/// so the drain never waits on it; the broker redelivers what was not acknowledged, and the inbox makes a
/// repeat harmless.
public struct DeliveryConsumer: Service {
    public enum Kind: String, Sendable {
        case triggers
        case results
    }

    let kind: Kind
    let queue: String
    let orchestrator: Orchestrator
    let logger: Logger
    /// Who may send what on the results queue (`amqp.actors`).
    let identities: BrokerIdentities

    public init(kind: Kind, orchestrator: Orchestrator, logger: Logger) {
        self.kind = kind
        self.orchestrator = orchestrator
        // `serve` validated the entries at start; entries that do not read refuse everyone rather than no one.
        identities = (try? BrokerIdentities(entries: orchestrator.configuration.amqp.actors)) ?? .refusingEveryone
        self.queue = kind == .triggers ? orchestrator.configuration.amqp.queues.triggers
            : orchestrator.configuration.amqp.queues.results
        var logger = logger
        logger[metadataKey: "amqp.queue"] = "\(queue)"
        self.logger = logger
    }

    /// Deliveries received and not yet applied, filled by the reading task, drained by the batch loop;
    /// ``ConsumerBuffer`` decides the batches.
    private final class Buffer: Sendable {
        private let state: Mutex<ConsumerBuffer<AMQPDelivery>>
        private let start = ContinuousClock.now
        let signal = Signal()

        init(_ engine: ServiceConfiguration.Engine) {
            state = Mutex(ConsumerBuffer(limit: engine.batchSize, maxBytes: engine.batchBytes,
                batchWait: .milliseconds(engine.batchWaitMilliseconds)) { $0.body.count })
        }

        var now: Duration { ContinuousClock.now - start }

        func append(_ deliveries: [AMQPDelivery]) {
            let now = self.now
            state.withLock { $0.append(deliveries, at: now) }
            signal.signal()
        }

        func finish() {
            state.withLock { $0.finish() }
            signal.signal()
        }

        func next() -> ConsumerBuffer<AMQPDelivery>.Action {
            let now = self.now
            return state.withLock { $0.next(at: now) }
        }
    }

    public func run() async throws {
        let engine = orchestrator.configuration.engine
        let prefetch = UInt16(clamping: Self.prefetch(orchestrator.configuration))
        let subscription = try await orchestrator.broker.subscribe(queue: queue, prefetch: prefetch,
            consumerTag: "hms-act.\(kind.rawValue).\(ProcessInfo.processInfo.processIdentifier)")
        ServiceMetrics.consumerUp(queue: queue, true)
        defer { ServiceMetrics.consumerUp(queue: queue, false) }
        let buffer = Buffer(engine)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Reading stops at graceful shutdown; what was read is still applied below.
                defer { buffer.finish() }
                do {
                    try await cancelWhenGracefulShutdown {
                        // The batches the connection read, as it read them (not split and batched again).
                        while case let deliveries = try await subscription.next(), !deliveries.isEmpty {
                            buffer.append(deliveries)
                        }
                    }
                } catch is CancellationError {
                    // Graceful shutdown (or cancellation) stopped the reading; what was read is applied below.
                }
                try? await subscription.cancel()
            }
            group.addTask {
                while true {
                    switch buffer.next() {
                    case .apply(let batch): await process(batch)
                    case .wait(let until):
                        // Cancelled (not a graceful shutdown): stop; the broker redelivers what was not acked.
                        // (A cancelled wait returns at once: looping on it would hold a thread for ever.)
                        if Task.isCancelled { return }
                        await buffer.signal.wait(timeout: until.map { max(.zero, $0 - buffer.now) } ?? .seconds(1))
                    case .stop: return
                    }
                }
            }
            try await group.waitForAll()
        }
        logger.info("consumer stopped")
    }

    /// Unacknowledged deliveries the broker may push: `amqp.prefetch`, but no more than
    /// `engine.consumer_buffer_bytes` of bodies of the largest size a message may have (1 MiB), so what
    /// a consumer holds is bounded in bytes, not only in messages.
    static func prefetch(_ configuration: ServiceConfiguration) -> Int {
        let byBytes = max(1, configuration.engine.consumerBufferBytes / TriggerEvent.maximumBodySize)
        return min(configuration.amqp.prefetch, byBytes)
    }

    /// Applies one batch, retrying while the store is unreachable, then acknowledges it.
    private func process(_ deliveries: [AMQPDelivery]) async {
        if Mutant.ackBeforeApply.isArmed, let last = deliveries.last {
            // The fault suite's broken binary (debug builds only): the very bug the ack-after-commit rule prevents.
            try? await orchestrator.broker.ack(last.deliveryTag, multiple: true)
        }
        var inputs: [BatchInput] = []
        var positions: [Int] = []  // delivery index of each input
        var rejected: [(Int, String)] = []
        var keyedSignals: [(Int, WorkerMessage.KeyedSignal, InboundMessage)] = []
        for (index, delivery) in deliveries.enumerated() {
            let message = InboundMessage(delivery: delivery)
            do {
                switch kind {
                case .triggers:
                    var event = try TriggerEvent(message: message)
                    event.arrivedOnTriggerQueue = true
                    inputs.append(.trigger(event))
                case .results:
                    let worker: WorkerMessage
                    switch try WorkerMessage.read(message) {
                    case .message(let read): worker = read
                    case .keyedSignal(let keyed):
                        // Resolved to runs just before the batch applies (below).
                        keyedSignals.append((index, keyed, message))
                        continue
                    }
                    switch identities.authorize(worker, userID: message.userID) {
                    case .success(let worker): inputs.append(.worker(worker, messageID: message.messageID))
                    case .failure(let attempt):
                        logger.warning("result refused: not sent by an identity that may send it",
                            metadata: ["message.reason": "\(attempt.reason)"])
                        inputs.append(.refusedAttempt(attempt, messageID: message.messageID))
                    }
                }
                positions.append(index)
            } catch {
                rejected.append((index, error.reason))
            }
        }
        var backoff = Duration.milliseconds(100)
        var retrying = false
        defer { if retrying { orchestrator.health.consumer(queue, retrying: false) } }
        while true {
            do {
                // This attempt's inputs: the batch's, plus one signal per run each keyed signal reaches now.
                var attemptInputs = inputs
                var attemptPositions = positions
                var ignoredCount = 0
                for (index, keyed, message) in keyedSignals {
                    let runs = try await orchestrator.store.activeRunIDs(correlationKey: keyed.key, playbook: keyed.playbook)
                    if runs.isEmpty {
                        ignoredCount += 1
                        logger.info("signal by key reached no running run", metadata: [
                            "signal.name": "\(keyed.name)", "signal.key": "\(keyed.key)", "signal.playbook": "\(keyed.playbook ?? "any")",
                        ])
                    }
                    for run in runs {
                        let (worker, messageID) = keyed.signal(to: run, messageID: message.messageID)
                        switch identities.authorize(worker, userID: message.userID) {
                        case .success(let worker): attemptInputs.append(.worker(worker, messageID: messageID))
                        case .failure(let attempt): attemptInputs.append(.refusedAttempt(attempt, messageID: messageID))
                        }
                        attemptPositions.append(index)
                    }
                }
                let outcomes = try await applyIsolatingPoison(attemptInputs)
                var appliedCount = 0
                for (position, outcome) in zip(attemptPositions, outcomes) {
                    switch outcome {
                    case .applied: appliedCount += 1
                    case .ignored(let reason):
                        ignoredCount += 1
                        logger.debug("message ignored", metadata: ["message.reason": "\(reason)"])
                    case .rejected(let reason), .forbidden(let reason): rejected.append((position, reason))
                    }
                }
                ServiceMetrics.message(queue: queue, outcome: "applied", count: appliedCount)
                ServiceMetrics.message(queue: queue, outcome: "ignored", count: ignoredCount)
                break
            } catch {
                // Transient: the batch may commit later. Nothing is acknowledged, nothing dead-lettered.
                if !retrying {
                    retrying = true
                    orchestrator.health.consumer(queue, retrying: true)
                }
                ServiceMetrics.batchRetried(queue: queue)
                if Task.isShuttingDownGracefully || Task.isCancelled {
                    logger.warning("shutting down with a batch that could not be applied; the broker redelivers it",
                        metadata: ["error": "\(error)", "batch.size": "\(deliveries.count)"])
                    return
                }
                logger.warning("batch could not be applied; retrying",
                    metadata: ["error": "\(error)", "batch.size": "\(deliveries.count)", "retry.in": "\(backoff)"])
                // Graceful shutdown ends the wait: a batch that cannot commit must not hold up the drain.
                let wait = backoff
                try? await cancelWhenGracefulShutdown { try await orchestrator.sleep(wait) }
                backoff = min(backoff * 2, .seconds(10))
            }
        }
        if !rejected.isEmpty {
            // A keyed signal rejected for several runs is one delivery: dead-letter it once.
            var seen = Set<Int>()
            rejected = rejected.filter { seen.insert($0.0).inserted }
            await deadLetter(rejected.map { (deliveries[$0.0], $0.1) })
        }
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        for delivery in deliveries {
            if let timestamp = delivery.properties.timestamp {
                ServiceMetrics.queueWait(queue: queue, milliseconds: now - Int64(timestamp.timeIntervalSince1970 * 1_000))
            }
        }
        guard let last = deliveries.last, !Mutant.ackBeforeApply.isArmed else { return }
        Failpoint.afterCommitBeforeAck.pass()
        do {
            try await orchestrator.broker.ack(last.deliveryTag, multiple: true)
        } catch {
            // The connection went away: the broker redelivers, and the inbox ignores the repeats.
            logger.info("ack failed after commit; the broker will redeliver", metadata: ["error": "\(error)"])
        }
    }

    /// Applies `inputs` in one transaction. When PostgreSQL refuses the data (``ApplyFailure/permanent(reason:)``)
    /// the batch is split in halves, recursively, until each input at fault is alone: those are rejected
    /// (dead-lettered with the reason) and every other input commits. A transient error is thrown for the
    /// caller to retry; halves that committed before it are then repeats, which the inbox ignores.
    private func applyIsolatingPoison(_ inputs: [BatchInput]) async throws -> [BatchOutcome] {
        guard !inputs.isEmpty else { return [] }
        do {
            return try await orchestrator.apply(inputs).outcomes
        } catch {
            guard case .permanent(let reason) = ApplyFailure(error) else { throw error }
            if inputs.count == 1 {
                logger.warning("message refused by the database; dead-lettering it",
                    metadata: ["message.reason": "\(reason)"])
                return [.rejected(reason: reason)]
            }
            let middle = inputs.count / 2
            let first = try await applyIsolatingPoison(Array(inputs[..<middle]))
            return first + (try await applyIsolatingPoison(Array(inputs[middle...])))
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
            var metadata: Logger.Metadata = ["message.reason": "\(reason)", "message.routing_key": "\(delivery.routingKey)"]
            if let id = delivery.properties.messageID { metadata["message.id"] = "\(id)" }
            if let traceID = OutboundMessages.traceID(in: delivery.properties.headers["traceparent"]?.stringValue) {
                metadata["trace_id"] = "\(traceID)"
            }
            logger.warning("message dead-lettered", metadata: metadata)
        }
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                _ = try await orchestrator.broker.publish(messages)
                ServiceMetrics.message(queue: queue, outcome: "dead_lettered", count: messages.count)
                return
            } catch {
                do { try await orchestrator.sleep(backoff) } catch { return }
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }
}
