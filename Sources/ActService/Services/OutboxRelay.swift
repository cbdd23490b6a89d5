import ActAMQP
import ActPlaybook
import ActStore
import ActThreads
public import Logging
public import ServiceLifecycle

/// Publishes committed outbox rows: claims a batch (`FOR UPDATE SKIP LOCKED`, so replicas share the work
/// without publishing a row twice at once), publishes it with `mandatory` and publisher confirms, and
/// deletes each row only after its confirm, in the same transaction as the claim.
///
/// A task that no queue receives (returned by the broker) is not dropped: an `unroutable_task` incident
/// records it and the row is retried with backoff until a worker queue is bound. A returned governance
/// message means nobody subscribed to that kind; it is confirmed and removed. A nack or a lost
/// connection leaves the rows for the next attempt, so delivery is at-least-once. A message the broker
/// refuses (too large, or closing the channel) is isolated: it is deferred alone with an incident and
/// never holds back the rows around it (see ``relayOnce(limit:)``).
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
                    let claimed = try await relayOnce(limit: batchSize)
                    backoff = .milliseconds(100)
                    if !claimed.full {
                        await orchestrator.outboxSignal.wait(timeout: .milliseconds(200))
                    }
                } catch {
                    ServiceMetrics.loopFailed(service: "outbox_relay")
                    logger.warning("outbox relay failed; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                    try? await orchestrator.sleep(backoff)
                    backoff = min(backoff * 2, .seconds(10))
                }
            }
        }
        logger.info("outbox relay stopped")
    }

    /// Rows larger than this are published in a confirm batch of their own (1 MiB: no trigger or result
    /// body is larger, so only tasks carrying large outputs are).
    static let publishAloneAbove = 1 << 20

    /// Publishes up to `limit` rows in one confirm batch.
    ///
    /// Each row has its own outcome: a confirmed row is deleted (and never published again because another
    /// row failed), a nacked or unroutable one is deferred, and one the broker refuses (above
    /// `amqp.max_message_bytes`, or closing the channel) is deferred alone with its error and attempt count
    /// and an `unpublishable_message` incident, while the rest of the batch goes through.
    ///
    /// - Returns: How many rows were claimed, and whether the claim was full (by count or by
    ///   `engine.outbox_batch_bytes`), so more may be waiting.
    @discardableResult
    public func relayOnce(limit: Int) async throws -> (rows: Int, full: Bool) {
        let broker = orchestrator.broker
        let store = orchestrator.store
        let maxBytes = orchestrator.configuration.amqp.maxMessageBytes
        let batchBytes = orchestrator.configuration.engine.outboxBatchBytes
        return try await store.transaction { transaction in
            let claimed = try await transaction.claimOutbox(limit: limit, partition: partition, maxBytes: batchBytes)
            guard !claimed.isEmpty else { return (0, false) }
            let rows = try await holdForRateLimits(claimed, in: transaction)
            // Every row waits for its agent's rate: nothing to publish before the next token.
            guard !rows.isEmpty else { return (claimed.count, false) }
            var outcomes = [RowOutcome?](repeating: nil, count: rows.count)
            // Too large for the broker: refusing it would close the channel; say why without trying.
            var sendable: [Int] = []
            for (index, row) in rows.enumerated() {
                if maxBytes > 0, row.body.count > maxBytes {
                    outcomes[index] = .refused("the message is \(row.body.count) bytes, above amqp.max_message_bytes "
                        + "(\(maxBytes)); raise RabbitMQ's max_message_size and the setting together, or bound what "
                        + "the message carries (engine.task_context_bytes)")
                } else {
                    sendable.append(index)
                }
            }
            // Large rows go alone: if the broker refuses one it closes the channel, and the outcome of
            // everything unconfirmed on it becomes unknown; alone, only that row is affected.
            let batched = sendable.filter { rows[$0].body.count <= Self.publishAloneAbove }
            let alone = sendable.filter { rows[$0].body.count > Self.publishAloneAbove }
            for group in [batched] + alone.map({ [$0] }) where !group.isEmpty {
                let published = try await broker.publish(group.map { AMQPMessage(outbox: rows[$0]) })
                let unsettled = zip(group, published).filter {
                    if case .channelClosed = $0.1 { return true } else { return false }
                }
                for (index, outcome) in zip(group, published) { outcomes[index] = RowOutcome(outcome) }
                // The broker closed the channel: the row at fault is among the unsettled ones, whose outcome
                // is unknown. Alone, each either goes through or is the one refused.
                if unsettled.count > 1 {
                    for (index, _) in unsettled {
                        let alone = try await broker.publish([AMQPMessage(outbox: rows[index])])
                        outcomes[index] = RowOutcome(alone[0])
                    }
                }
            }
            try await settle(rows, outcomes.map { $0! }, in: transaction)
            let bytes = rows.reduce(0) { $0 + $1.body.count }
            return (rows.count, rows.count == limit || bytes > batchBytes / 2)
        }
    }

    /// Takes a token for each claimed task of an agent with a `rate_limit` (the bucket is shared by every
    /// replica, ``StoreTransaction/takeRateTokens(key:wanted:interval:burst:)``); the tasks without one stay in
    /// the outbox until their token is due. Tokens go by the run's priority (`x-hms-priority`, higher first),
    /// then by age, and the held tasks' tokens fall due in that order too. Returns the rows to publish now, in
    /// order.
    private func holdForRateLimits(_ rows: [OutboxMessage], in transaction: any ServiceTransaction) async throws
        -> [OutboxMessage]
    {
        let limits = orchestrator.rateLimits
        guard !limits.isEmpty else { return rows }
        var byAgent: [String: [Int]] = [:]
        for (index, row) in rows.enumerated() where row.type == "hms.task" {
            if let agent = row.headers["x-hms-agent"], limits[agent] != nil { byAgent[agent, default: []].append(index) }
        }
        guard !byAgent.isEmpty else { return rows }
        var held: Set<Int> = []
        var holds: [(id: Int64, milliseconds: Double)] = []
        for agent in byAgent.keys.sorted() {
            guard let limit = limits[agent], let claimed = byAgent[agent] else { continue }
            let indices = Self.byPriority(claimed, of: rows)
            let (granted, waits) = try await transaction.takeRateTokens(key: "agent:" + agent, wanted: indices.count,
                interval: limit.interval, burst: limit.burst)
            for (index, wait) in zip(indices.dropFirst(granted), waits) {
                held.insert(index)
                holds.append((rows[index].outboxID, wait))
            }
            if !waits.isEmpty { ServiceMetrics.rateLimited(agent: agent, count: waits.count) }
        }
        try await transaction.holdOutbox(holds)
        return rows.enumerated().filter { !held.contains($0.offset) }.map(\.element)
    }

    /// Row indices by the run's priority (higher first), then by age (outbox order); rows without a priority
    /// count as 0.
    static func byPriority(_ indices: [Int], of rows: [OutboxMessage]) -> [Int] {
        func priority(_ index: Int) -> Int { rows[index].headers["x-hms-priority"].flatMap { Int($0) } ?? 0 }
        return indices.sorted { priority($0) != priority($1) ? priority($0) > priority($1) : rows[$0].outboxID < rows[$1].outboxID }
    }

    /// What to do with one claimed row after publishing.
    private enum RowOutcome {
        case confirmed
        case nacked
        case returned(code: UInt16, text: String)
        /// The broker will not take this message as it is.
        case refused(String)

        init(_ outcome: PublishOutcome) {
            switch outcome {
            case .confirmed: self = .confirmed
            case .nacked: self = .nacked
            case .returned(let code, let text): self = .returned(code: code, text: text)
            case .channelClosed(let code, let text): self = .refused("RabbitMQ refused the message: \(code) \(text)")
            }
        }
    }

    /// Deletes confirmed rows, defers the others with their reason, and records incidents on first failure.
    private func settle(_ rows: [OutboxMessage], _ outcomes: [RowOutcome], in transaction: any ServiceTransaction)
        async throws
    {
        var done: [Int64] = []
        var deferred: [String: [Int64]] = [:]
        var incidents: [Incident] = []
        for (row, outcome) in zip(rows, outcomes) {
            switch outcome {
            case .confirmed:
                done.append(row.outboxID)
            case .nacked:
                deferred["nacked by the broker", default: []].append(row.outboxID)
            case .returned(let code, let text):
                guard row.type == "hms.task" else {
                    // A governance kind nobody subscribed to: nothing to deliver.
                    done.append(row.outboxID)
                    continue
                }
                deferred["unroutable", default: []].append(row.outboxID)
                if row.attempts == 0 {
                    incidents.append(Incident(kind: "unroutable_task", runID: row.correlationID, detail: [
                        "exchange": .string(row.exchange), "routing_key": .string(row.routingKey),
                        "message_id": .string(row.messageID), "reply": .string("\(code) \(text)"),
                        "fix": .string("bind a worker queue to \(row.routingKey) on \(row.exchange.isEmpty ? "the default exchange" : row.exchange); the task is retried until then"),
                    ], createdAt: row.createdAt))
                    logger.warning("task is unroutable: no queue is bound to its routing key",
                        metadata: ["amqp.routing_key": "\(row.routingKey)", "run.id": "\(row.correlationID ?? "")"])
                }
            case .refused(let reason):
                deferred[reason, default: []].append(row.outboxID)
                ServiceMetrics.published(outcome: "refused", count: 1)
                logger.error("the broker refuses an outbox message; it is retried alone with backoff",
                    metadata: ["outbox.id": "\(row.outboxID)", "message.type": "\(row.type)",
                        "message.bytes": "\(row.body.count)", "message.reason": "\(reason)",
                        "run.id": "\(row.correlationID ?? "")"])
                if row.attempts == 0 {
                    incidents.append(Incident(kind: "unpublishable_message", runID: row.correlationID, detail: [
                        "outbox_id": .string(String(row.outboxID)), "exchange": .string(row.exchange),
                        "routing_key": .string(row.routingKey), "message_id": .string(row.messageID),
                        "type": .string(row.type), "bytes": .string(String(row.body.count)), "reason": .string(reason),
                        "fix": .string("the row stays in the outbox and is retried with backoff (at most every 5 minutes): "
                            + "raise the broker's max_message_size and amqp.max_message_bytes, or delete the row "
                            + "after handling the step by hand"),
                    ], createdAt: row.createdAt))
                }
            }
        }
        Failpoint.afterPublishBeforeDelete.pass(when: !done.isEmpty)
        try await transaction.deleteOutbox(done)
        for (reason, ids) in deferred.sorted(by: { $0.key < $1.key }) {
            try await transaction.deferOutbox(ids, error: reason)
        }
        if !incidents.isEmpty {
            var batch = StoreBatch()
            batch.incidents = incidents
            try await transaction.write(batch)
            for incident in incidents { ServiceMetrics.incidents(kind: incident.kind) }
        }
        ServiceMetrics.published(outcome: "confirmed", count: done.count)
        let retried = deferred.values.reduce(0) { $0 + $1.count }
        if retried > 0 { ServiceMetrics.published(outcome: "retried", count: retried) }
    }
}
