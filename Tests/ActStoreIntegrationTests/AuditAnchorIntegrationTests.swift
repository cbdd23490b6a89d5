import ActPlaybook
import ActPostgres
import ActStore
import ActTesting
import Testing

/// Attacks on the audit anchor by an insider who controls the database: its rows, its stored checkpoints
/// and every key the database holds. Only the service's Secret (the Ed25519 private key) and the published
/// checkpoint stream are out of their reach.
@Suite struct AuditAnchorIntegrationTests {
    /// The insider's rewrite: entry 3 of `wf_audit` gets new content, every later hash is recomputed, the run's
    /// head follows, and the stored checkpoint is replaced by one over the new head, signed by `sign`.
    static func rewriteHistory(_ store: Store, sign: (AuditCheckpoint) -> (keyID: String, signature: [UInt8])) async throws {
        let entries = try await store.client.withConnection { connection in
            try await connection.query("SELECT seq, (extract(epoch FROM at) * 1000)::bigint, kind, actor FROM audit_log WHERE run_id = 'wf_audit' ORDER BY seq")
                .map { row in
                    (seq: try row.decode(Int64.self, column: 0), at: try row.decode(Int64.self, column: 1),
                        kind: try row.decode(String.self, column: 2), actor: try row.decode(String.self, column: 3))
                }
        }
        var previous: [UInt8] = []
        var sql = "ALTER TABLE audit_log DISABLE TRIGGER USER;\n"
        for stored in entries {
            let data: JSONValue = ["step": .string(stored.seq == 3 ? "forged" : "s\(stored.seq)")]
            let entry = AuditEntry(runID: "wf_audit", sequence: stored.seq, at: stored.at, kind: stored.kind,
                actor: stored.actor, data: data)
            let hash = AuditChain.hash(previous: previous, entry: entry)
            sql += "UPDATE audit_log SET data = '\(String(decoding: data.canonicalEncoding, as: UTF8.self))', prev_hash = '\\x\(previous.hexString)', hash = '\\x\(hash.hexString)' WHERE run_id = 'wf_audit' AND seq = \(stored.seq);\n"
            previous = hash
        }
        sql += "ALTER TABLE audit_log ENABLE TRIGGER USER;\n"
        sql += "UPDATE runs SET audit_head = '\\x\(previous.hexString)' WHERE run_id = 'wf_audit';\n"
        let checkpoint = AuditCheckpoint(keyID: "", heads: [.init(run: "wf_audit", seq: 5, hash: previous.hexString)])
        let (keyID, signature) = sign(checkpoint)
        sql += """
            UPDATE audit_checkpoints SET key_id = '\(keyID)', \
            heads = '[{"run": "wf_audit", "seq": 5, "hash": "\(previous.hexString)"}]', \
            heads_digest = '\\x\(checkpoint.headsDigest.hexString)', signature = '\\x\(signature.hexString)'
            """
        try await store.client.withConnection { try await $0.executeScript(sql) }
    }

    /// The stream a queue bound to `audit.checkpoint` would have drained: the checkpoint as published.
    static func published(_ written: Store.WrittenCheckpoint) -> PublishedCheckpoint {
        PublishedCheckpoint(checkpointID: written.id, keyID: AuditTrailIntegrationTests.signingKey.publicKey.keyID,
            headsDigest: written.digest, signature: written.signature)
    }

    /// The insider re-signs the rewritten checkpoint with a key of their own (all they can sign with): the
    /// database alone already refuses it, because verifiers trust a public key they were given, not the one
    /// the database names.
    @Test func aCheckpointReSignedWithTheInsidersOwnKeyIsRefused() async throws {
        try await TestDatabase.withStore { store in
            try await AuditTrailIntegrationTests.seedChain(store)
            #expect(try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted).isIntact)
            let insider = AuditSigningKey.generate()
            try await Self.rewriteHistory(store) { checkpoint in
                (insider.publicKey.keyID, checkpoint.signature(signingKey: insider))
            }
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted)
            #expect(!report.isIntact, "a rewritten history with a re-signed checkpoint went unnoticed")
            #expect(report.findings.first?.kind == .badCheckpoint, "\(report.findings)")
            #expect(report.findings.first?.message.contains("not trusted") == true, "\(report.findings)")
        }
    }

    /// The insider keeps the service's key id but cannot make its signature.
    @Test func aCheckpointClaimingTheServicesKeyWithoutItsSignatureIsRefused() async throws {
        try await TestDatabase.withStore { store in
            try await AuditTrailIntegrationTests.seedChain(store)
            try await Self.rewriteHistory(store) { checkpoint in
                (AuditTrailIntegrationTests.signingKey.publicKey.keyID, checkpoint.signature(signingKey: .generate()))
            }
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted)
            #expect(report.findings.first?.kind == .badCheckpoint, "\(report.findings)")
            #expect(report.findings.first?.message.contains("does not verify") == true, "\(report.findings)")
        }
    }

    /// Against the published stream, the rewrite is named precisely: the first checkpoint whose database copy
    /// differs from what was published.
    @Test func aRewrittenDatabaseIsCaughtAgainstThePublishedCheckpoints() async throws {
        try await TestDatabase.withStore { store in
            let written = try await AuditTrailIntegrationTests.seedChain(store)
            let stream = [Self.published(written)]
            #expect(try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted, published: stream).isIntact)
            let insider = AuditSigningKey.generate()
            try await Self.rewriteHistory(store) { checkpoint in
                (insider.publicKey.keyID, checkpoint.signature(signingKey: insider))
            }
            // Even a verifier misled into trusting the insider's key is not fooled by the stream.
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted + [insider.publicKey],
                published: stream)
            let first = try #require(report.findings.first)
            #expect(first.kind == .diverged)
            #expect(first.message.contains("checkpoint \(written.id) in the database differs from the published one"), "\(first)")
        }
    }

    /// Deleting the stored checkpoints (as the table's owner) is caught by the stream.
    @Test func deletedCheckpointsAreCaughtAgainstThePublishedCheckpoints() async throws {
        try await TestDatabase.withStore { store in
            let written = try await AuditTrailIntegrationTests.seedChain(store)
            try await store.client.withConnection { connection in
                try await connection.executeScript("""
                    ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; DELETE FROM audit_checkpoints;
                    ALTER TABLE audit_checkpoints ENABLE TRIGGER USER
                    """)
            }
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted,
                published: [Self.published(written)])
            #expect(report.findings.first?.kind == .diverged)
            #expect(report.findings.first?.message.contains("missing from the database") == true, "\(report.findings)")
        }
    }

    /// A stream whose lines were edited does not verify either: it is signed, line by line.
    @Test func anEditedPublishedStreamIsRefused() async throws {
        try await TestDatabase.withStore { store in
            let written = try await AuditTrailIntegrationTests.seedChain(store)
            var forged = Self.published(written)
            forged.headsDigest[0] ^= 1
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted, published: [forged])
            #expect(report.findings.first?.kind == .badCheckpoint)
            #expect(report.findings.first?.message.hasPrefix("published checkpoint \(written.id)") == true, "\(report.findings)")
        }
    }

    /// Checkpoints written before Ed25519 (HMAC under a shared key) still verify when that key is given.
    @Test func legacyHMACCheckpointsStillVerifyWithTheirKey() async throws {
        try await TestDatabase.withStore { store in
            try await AuditTrailIntegrationTests.seedChain(store)
            let key = Array("the old shared key".utf8)
            try await Self.rewriteHistory(store) { checkpoint in ("2026-q3", checkpoint.signature(key: key)) }
            #expect(try await store.verifyAudit(trusted: [], legacyKeys: ["2026-q3": key]).isIntact)
            let report = try await store.verifyAudit(trusted: AuditTrailIntegrationTests.trusted)
            #expect(report.findings.first?.message.contains("--key 2026-q3=KEY") == true, "\(report.findings)")
        }
    }

    /// A commit that raced a checkpoint: its run was stamped (by its replica's clock) before the checkpoint's
    /// time, but committed after the checkpoint read the heads. The next checkpoint must still sign it.
    @Test func aCommitRacingACheckpointIsTakenByTheNextOne() async throws {
        try await TestDatabase.withStore { store in
            try await AuditTrailIntegrationTests.seedChain(store)  // its checkpoint is at 1_800_000_001_000
            let entry = AuditEntry(runID: "wf_late", sequence: 1, at: 1_800_000_000_500, kind: "run.started",
                actor: "hms-act", data: [:])
            let hash = AuditChain.hash(previous: [], entry: entry)
            var batch = StoreBatch()
            batch.audit = [.init(entry: entry, previousHash: [], hash: hash)]
            let version = try #require(try await store.playbookVersions().first)
            batch.runs = [RunRow(runID: "wf_late", playbookID: "A", versionID: version.versionID, status: "running",
                state: Array("{}".utf8), traceID: "t", triggerEventID: nil, triggerType: nil, auditSequence: 1,
                auditHead: hash, createdAt: 1_800_000_000_500, updatedAt: 1_800_000_000_500, finishedAt: nil)]
            try await store.withTransaction { try await $0.write(batch) }
            let written = try await store.writeCheckpoint(signingKey: AuditTrailIntegrationTests.signingKey,
                now: 1_800_000_060_000)
            { written in
                OutboxMessage(exchange: "hms.governance", routingKey: "audit.checkpoint",
                    messageID: "audit.checkpoint:\(written.id)", correlationID: nil, type: "audit.checkpoint",
                    headers: [:], body: Array("{}".utf8), createdAt: 1_800_000_060_000)
            }
            #expect(written?.headCount == 1, "the run committed after the last checkpoint was never checkpointed")
        }
    }

    /// A batch that appends to a run while a checkpoint signs it (migration 0019's marks): the checkpoint signs
    /// the head it read and clears the run's mark only up to that sequence, so the next checkpoint signs the
    /// batch's entry. Clearing by run id alone would leave that entry unsigned for good.
    @Test func anEntryAppendedDuringACheckpointIsSignedByTheNextOne() async throws {
        try await TestDatabase.withStore { store in
            _ = try await AuditTrailIntegrationTests.seedChain(store)
            let version = try #require(try await store.playbookVersions().first)
            func append(_ sequence: Int64, after previous: [UInt8]) -> (batch: StoreBatch, head: [UInt8]) {
                let entry = AuditEntry(runID: "wf_race", sequence: sequence, at: 1_800_000_002_000 + sequence,
                    kind: "task.completed", actor: "hms-act", data: [:])
                let hash = AuditChain.hash(previous: previous, entry: entry)
                var batch = StoreBatch()
                batch.audit = [.init(entry: entry, previousHash: previous, hash: hash)]
                batch.runs = [RunRow(runID: "wf_race", playbookID: "A", versionID: version.versionID, status: "running",
                    state: Array("{}".utf8), traceID: "t", triggerEventID: nil, triggerType: nil, auditSequence: sequence,
                    auditHead: hash, createdAt: 1_800_000_002_000, updatedAt: 1_800_000_002_000 + sequence, finishedAt: nil)]
                return (batch, hash)
            }
            func checkpoint(at now: Int64) async throws -> Store.WrittenCheckpoint? {
                try await store.writeCheckpoint(signingKey: AuditTrailIntegrationTests.signingKey, now: now) { written in
                    OutboxMessage(exchange: "hms.governance", routingKey: "audit.checkpoint",
                        messageID: "audit.checkpoint:\(written.id)", correlationID: nil, type: "audit.checkpoint",
                        headers: [:], body: Array("{}".utf8), createdAt: now)
                }
            }
            let first = append(1, after: [])
            try await store.withTransaction { try await $0.write(first.batch) }
            let second = append(2, after: first.head)
            let (written, writtenSignal) = AsyncStream<Void>.makeStream()
            // The second entry is written and its mark locked, but not committed, while the checkpoint runs.
            let held = Task {
                try await store.withTransaction { transaction in
                    try await transaction.write(second.batch)
                    writtenSignal.yield()
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            for await _ in written { break }
            let during = try await checkpoint(at: 1_800_000_003_000)
            try await held.value
            #expect(during?.headCount == 1, "the checkpoint should sign wf_race at the sequence it could see")
            let next = try await checkpoint(at: 1_800_000_004_000)
            #expect(next?.headCount == 1, "the entry appended during the checkpoint was never signed")
            #expect(try await checkpoint(at: 1_800_000_005_000) == nil, "nothing moved since: no mark may be left")
        }
    }
}
