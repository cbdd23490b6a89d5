import ActAMQP
import ActPlaybook
import ActStore
public import Logging
public import ServiceLifecycle

/// Publishes committed outbox rows: claims a batch (`FOR UPDATE SKIP LOCKED`, so replicas share the work
/// without publishing a row twice at once), publishes it with `mandatory` and publisher confirms, and
/// deletes each row only after its confirm, in the same transaction as the claim.
///
/// A task that no queue receives (returned by the broker) is not dropped: an `unroutable_task` incident
/// records it and the row is retried with backoff until a worker queue is bound. A returned governance
/// message means nobody subscribed to that kind; it is confirmed and removed. A nack or a lost
/// connection leaves the rows for the next attempt, so delivery is at-least-once.
public struct OutboxRelay: Service {
    let orchestrator: Orchestrator
    let logger: Logger
    /// This relay's share of the runs: `index` of `count` (see ``StoreTransaction/claimOutbox(limit:partition:)``).
    let partition: (index: Int, count: Int)

    public init(orchestrator: Orchestrator, logger: Logger, partition: (index: Int, count: Int) = (0, 1)) {
        self.orchestrator = orchestrator
        self.partition = partition
        var logger = logger
        if partition.count > 1 { logger[metadataKey: "outbox.relay"] = "\(partition.index + 1)/\(partition.count)" }
        self.logger = logger
    }

    public func run() async throws {
        let batchSize = orchestrator.configuration.engine.outboxBatchSize
        // Graceful shutdown ends the loop after the current batch: everything committed is either
        // published and deleted or still in the outbox for the next start.
        await cancelWhenGracefulShutdown {
            var backoff = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    let published = try await relayOnce(limit: batchSize)
                    backoff = .milliseconds(100)
                    if published < batchSize {
                        await orchestrator.outboxSignal.wait(timeout: .milliseconds(200))
                    }
                } catch {
                    logger.warning("outbox relay failed; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(10))
                }
            }
        }
        logger.info("outbox relay stopped")
    }

    /// Publishes up to `limit` rows in one confirm batch.
    ///
    /// - Returns: How many rows were claimed.
    @discardableResult
    public func relayOnce(limit: Int) async throws -> Int {
        let broker = orchestrator.broker
        let store = orchestrator.store
        let logger = self.logger
        return try await store.withTransaction { transaction in
            let rows = try await transaction.claimOutbox(limit: limit, partition: partition)
            guard !rows.isEmpty else { return 0 }
            let outcomes = try await broker.publish(rows.map(AMQPMessage.init(outbox:)))
            var done: [Int64] = []
            var retry: [Int64] = []
            var incidents: [Incident] = []
            var nacked = 0
            for (row, outcome) in zip(rows, outcomes) {
                switch outcome {
                case .confirmed:
                    done.append(row.outboxID)
                case .nacked:
                    nacked += 1
                    retry.append(row.outboxID)
                case .returned(let code, let text):
                    if row.type == "hms.task" {
                        retry.append(row.outboxID)
                        if row.attempts == 0 {
                            incidents.append(Incident(kind: "unroutable_task", runID: row.correlationID, detail: [
                                "exchange": .string(row.exchange), "routing_key": .string(row.routingKey),
                                "message_id": .string(row.messageID), "reply": .string("\(code) \(text)"),
                                "fix": .string("bind a worker queue to \(row.routingKey) on \(row.exchange.isEmpty ? "the default exchange" : row.exchange); the task is retried until then"),
                            ], createdAt: row.createdAt))
                            logger.warning("task is unroutable: no queue is bound to its routing key",
                                metadata: ["amqp.routing_key": "\(row.routingKey)", "run.id": "\(row.correlationID ?? "")"])
                        }
                    } else {
                        done.append(row.outboxID)
                    }
                }
            }
            try await transaction.deleteOutbox(done)
            try await transaction.deferOutbox(retry, error: nacked > 0 ? "nacked by the broker" : "unroutable")
            if !incidents.isEmpty {
                var batch = StoreBatch()
                batch.incidents = incidents
                try await transaction.write(batch)
                ServiceMetrics.incidents(kind: "unroutable_task", count: incidents.count)
            }
            ServiceMetrics.published(outcome: "confirmed", count: done.count)
            if !retry.isEmpty { ServiceMetrics.published(outcome: "retried", count: retry.count) }
            return rows.count
        }
    }
}
