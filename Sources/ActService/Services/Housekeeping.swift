import ActEngine
import ActAMQP
import ActPlaybook
import ActStore
import ActThreads
internal import Foundation
public import Logging
public import ServiceLifecycle

/// Periodic work that is not on the hot path: signed audit checkpoints published to the governance exchange
/// (the outside witness), inbox pruning, catalog refresh (versions registered by other replicas) and the
/// database-backed gauges (outbox lag, pending timers, runs by status, SLA lights).
public struct Housekeeping: Service {
    let orchestrator: Orchestrator
    let logger: Logger

    public init(orchestrator: Orchestrator, logger: Logger) {
        self.orchestrator = orchestrator
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var tick = 0
            while !Task.isCancelled {
                do {
                    try await self.tick(tick)
                } catch {
                    ServiceMetrics.loopFailed(service: "housekeeping")
                    logger.info("housekeeping failed; next tick retries", metadata: ["error": "\(error)"])
                }
                tick += 1
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The work of second `tick`: the clock offset every 10 s, the catalog and the gauges every second,
    /// a checkpoint every `audit.checkpoint_interval_seconds`; every hour, inbox pruning and the audit log's
    /// monthly partitions for the next two months (an insert never waits for one: a default partition
    /// catches a month that has none).
    public func tick(_ tick: Int) async throws {
        let configuration = orchestrator.configuration
        if tick % 10 == 0, let clock = orchestrator.databaseClock {
            try await clock.synchronize(with: orchestrator.store,
                warnAbove: Int64(configuration.engine.clockSkewWarningMilliseconds), logger: logger, first: false)
        }
        try await orchestrator.refreshCatalog()
        try await snapshot()
        if tick % max(1, configuration.audit.checkpointIntervalSeconds) == 0 { try await checkpoint() }
        if tick % 3_600 == 0 {
            _ = try await orchestrator.store.pruneInbox(olderThanHours: configuration.engine.inboxRetentionHours)
            let created = try await orchestrator.store.ensureAuditPartitions(monthsAhead: 2)
            if created > 0 { logger.info("created audit log partitions", metadata: ["count": "\(created)"]) }
        }
    }

    /// Writes a checkpoint, signed with the Ed25519 key `audit.signing_key`, over the run heads that moved, with its `audit.checkpoint` message in the
    /// outbox of the same transaction: the relay publishes it with confirms and retries like any other
    /// message, so no checkpoint goes unwitnessed because one publish failed.
    ///
    /// The message carries the heads' digest, not the heads: the digest pins them (the signature is over
    /// it), and a minute of 1,000 transitions/s moves ~60,000 heads, a message of several megabytes built in
    /// memory every minute. The heads stay in `audit_checkpoints`, where `hms-act audit verify` reads them.
    public func checkpoint() async throws {
        let audit = orchestrator.configuration.audit
        let now = orchestrator.clock()
        let governance = orchestrator.configuration.amqp.exchanges.governance
        let signingKey = try audit.signingKey()
        let written = try await orchestrator.store.writeCheckpoint(signingKey: signingKey, now: now.millisecondsSinceEpoch)
        { written in
            Self.checkpointMessage(written, publicKey: signingKey.publicKey, at: now, exchange: governance)
        }
        if written != nil { orchestrator.outboxSignal.signal() }
    }

    /// The `audit.checkpoint` governance message (docs/amqp-contract.md): everything a verifier needs to
    /// check the signature without the database, the public key included (`key_id` is `ed25519:<base64>`).
    static func checkpointMessage(_ written: Store.WrittenCheckpoint, publicKey: AuditPublicKey, at: Instant,
        exchange: String) -> OutboxMessage
    {
        let body: JSONValue = [
            "type": "audit.checkpoint", "checkpoint_id": .int(written.id), "key_id": .string(publicKey.keyID),
            "algorithm": "ed25519", "public_key": .string(publicKey.base64),
            "at": .string(OutboundMessages.timestamp(at)),
            "signature": .string(written.signature.hexString),
            "heads_count": .int(written.headCount), "heads_digest": .string(written.digest.hexString),
        ]
        return OutboxMessage(exchange: exchange, routingKey: "audit.checkpoint",
            messageID: "audit.checkpoint:\(written.id)", correlationID: nil, type: "audit.checkpoint",
            headers: [:], body: body.canonicalEncoding, createdAt: at.millisecondsSinceEpoch)
    }

    private func snapshot() async throws {
        let gauges = try await orchestrator.store.gauges()
        ServiceMetrics.snapshot(outboxPending: gauges.outboxPending, outboxLagSeconds: gauges.outboxLagSeconds,
            pendingTimers: gauges.pendingTimers, runsByStatus: gauges.runsByStatus, slaRed: gauges.slaLights.red,
            slaYellow: gauges.slaLights.yellow, slaGreen: gauges.slaLights.green)
    }
}
