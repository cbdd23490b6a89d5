import ActPlaybook
internal import ActPostgres
internal import Foundation

/// The outcome of `hms-act audit verify`.
public struct AuditReport: Hashable, Sendable {
    public var runsChecked: Int
    public var entriesChecked: Int
    public var checkpointsChecked: Int
    /// Runs whose chains retention archived and removed, whose signed heads were checked against the head
    /// recorded when they were archived (the chains themselves are checked with `audit verify --archive`).
    public var archivedRuns = 0
    public var findings: [AuditChain.Finding]

    public init(runsChecked: Int, entriesChecked: Int, checkpointsChecked: Int, findings: [AuditChain.Finding]) {
        self.runsChecked = runsChecked
        self.entriesChecked = entriesChecked
        self.checkpointsChecked = checkpointsChecked
        self.findings = findings
    }

    public var isIntact: Bool { findings.isEmpty }
}

extension Store {
    /// A checkpoint as written: its id, how many heads it signs, their digest and the signature.
    public struct WrittenCheckpoint: Sendable, Hashable {
        public var id: Int64
        public var headCount: Int
        public var digest: [UInt8]
        public var signature: [UInt8]

        public init(id: Int64, headCount: Int, digest: [UInt8], signature: [UInt8]) {
            self.id = id
            self.headCount = headCount
            self.digest = digest
            self.signature = signature
        }
    }

    /// Writes a checkpoint signed with `signingKey` over the head of every run whose chain moved since it was
    /// last checkpointed, and, in the same transaction, the outbox row that publishes it to the governance
    /// exchange (the outside witness): a checkpoint is witnessed exactly like every other message, even if the
    /// broker is down when it is written.
    ///
    /// Heads are chosen by sequence, not by time: a run is due when its `audit_seq` is past the sequence its
    /// last checkpoint signed (`audit_checkpointed`). A commit that raced the previous checkpoint is therefore
    /// taken by the next one, whatever the clocks said when it was stamped.
    ///
    /// - Parameter message: Builds the governance message for the written checkpoint.
    /// - Returns: The checkpoint, or `nil` when nothing moved.
    public func writeCheckpoint(signingKey: AuditSigningKey, now: Int64,
        message: @Sendable (WrittenCheckpoint) -> OutboxMessage) async throws -> WrittenCheckpoint?
    {
        let keyID = signingKey.publicKey.keyID
        return try await client.withTransaction { connection -> WrittenCheckpoint? in
            var heads: [AuditCheckpoint.Head] = []
            for row in try await connection.query(StoreSQL.runHeadsUncheckpointed) {
                heads.append(AuditCheckpoint.Head(run: try row.decode(column: 0), seq: try row.decode(column: 1),
                    hash: (try row.decode([UInt8].self, column: 2)).hexString))
            }
            guard !heads.isEmpty else { return nil }
            let checkpoint = AuditCheckpoint(keyID: keyID, heads: heads)
            let signature = checkpoint.signature(signingKey: signingKey)
            let headsJSON = JSONValue.array(checkpoint.heads.map {
                ["run": .string($0.run), "seq": .int($0.seq), "hash": .string($0.hash)]
            }).canonicalEncoding
            let inserted = try await connection.query(StoreSQL.insertCheckpoint, [
                PostgresBind(now), PostgresBind(keyID), PostgresBind(PostgresJSON(bytes: headsJSON)),
                PostgresBind(checkpoint.headsDigest.hexString), PostgresBind(signature.hexString),
            ])
            guard let row = inserted.first else { return nil }
            let checkpointID: Int64 = try row.decode(column: 0)
            _ = try await connection.query(StoreSQL.markCheckpointed, [PostgresBind(PostgresJSON(bytes: headsJSON)),
                PostgresBind(checkpointID)])
            _ = try await connection.query(StoreSQL.clearCheckpointedMarks)
            let written = WrittenCheckpoint(id: checkpointID, headCount: checkpoint.heads.count,
                digest: checkpoint.headsDigest, signature: signature)
            var batch = StoreBatch()
            batch.outbox = [message(written)]
            try await StoreTransaction(connection: connection).write(batch)
            return written
        }
    }

    /// Verifies every run's chain and every checkpoint, and, when given, the database against the published
    /// checkpoints.
    ///
    /// Finds edited entries (content no longer matches the hash), deleted or reordered entries (gaps and
    /// broken links), truncated chains (a signed checkpoint names an entry that is gone or differs), forged
    /// checkpoints (the signature does not verify with a trusted public key) and, with `published`, a
    /// database whose checkpoints differ from what was published (rewritten by someone who holds it).
    ///
    /// - Parameters:
    ///   - trusted: The public keys Ed25519 checkpoints must be signed by. A key id in the database is never
    ///     trusted by itself: whoever writes the database can write one.
    ///   - legacyKeys: HMAC keys by id, for checkpoints written before Ed25519. Anyone who holds one can
    ///     forge with it, so give them only to check old history.
    ///   - published: The exported stream of `audit.checkpoint` messages, or `nil` to check the database alone.
    public func verifyAudit(trusted: [AuditPublicKey], legacyKeys: [String: [UInt8]] = [:],
        published: [PublishedCheckpoint]? = nil) async throws -> AuditReport
    {
        var report = AuditReport(runsChecked: 0, entriesChecked: 0, checkpointsChecked: 0, findings: [])
        // Chains, page by page, remembering each run's (seq → hash) only for checkpoint comparison.
        var hashes: [String: [Int64: [UInt8]]] = [:]
        var cursor: (String, Int64) = ("", 0)
        var current: (run: String, entries: [AuditChain.StoredEntry])?
        func finish(_ run: String, _ entries: [AuditChain.StoredEntry]) {
            let result = AuditChain.verify(run: run, entries: entries)
            report.findings.append(contentsOf: result.findings)
            report.runsChecked += 1
            report.entriesChecked += entries.count
            var map: [Int64: [UInt8]] = [:]
            for entry in entries { map[entry.entry.sequence] = entry.hash }
            hashes[run] = map
        }
        while true {
            let page = try await client.withConnection { connection in
                try await connection.query(StoreSQL.auditPage, [PostgresBind(cursor.0), PostgresBind(cursor.1), PostgresBind(5_000)])
                    .map(Self.auditEntry)
            }
            for entry in page {
                if let open = current, open.run != entry.entry.runID {
                    finish(open.run, open.entries)
                    current = nil
                }
                if current == nil { current = (entry.entry.runID, []) }
                current?.entries.append(entry)
                cursor = (entry.entry.runID, entry.entry.sequence)
            }
            if page.count < 5_000 { break }
        }
        if let open = current { finish(open.run, open.entries) }

        let checkpoints = try await client.withConnection { connection in
            try await connection.query(StoreSQL.checkpoints).map { row in
                (id: try row.decode(Int64.self, column: 0), keyID: try row.decode(String.self, column: 2),
                    heads: try row.decode(String.self, column: 3), signature: try row.decode([UInt8].self, column: 4))
            }
        }
        // The published stream first: the outside witness decides which database checkpoints are authentic.
        var publishedDigests: [Int64: [UInt8]] = [:]
        if let published {
            report.findings.append(contentsOf: AuditCheckpoint.verifyPublished(published, trusted: trusted, legacyKeys: legacyKeys))
            for checkpoint in published { publishedDigests[checkpoint.checkpointID] = checkpoint.headsDigest }
            let stored = Dictionary(checkpoints.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            for checkpoint in published.sorted(by: { $0.checkpointID < $1.checkpointID }) where stored[checkpoint.checkpointID] == nil {
                report.findings.append(.init(kind: .diverged, runID: nil, sequence: nil,
                    message: "published checkpoint \(checkpoint.checkpointID) is missing from the database: its checkpoints were deleted"))
            }
        }
        let lastPublished = publishedDigests.keys.max() ?? 0
        // Runs retention archived and removed (migration 0011): their chains left with their partition, and
        // the heads checkpoints signed for them are checked against the head recorded when they were archived.
        var archivedHeads: [String: (seq: Int64, hash: [UInt8])] = [:]
        var checkpointRows: [(checkpoint: (id: Int64, keyID: String, heads: String, signature: [UInt8]),
            heads: [AuditCheckpoint.Head]?)] = []
        var missingRuns: Set<String> = []
        for checkpoint in checkpoints {
            let heads = try? JSONDecoder().decode([AuditCheckpoint.Head].self, from: Data(checkpoint.heads.utf8))
            checkpointRows.append((checkpoint, heads))
            for head in heads ?? [] where hashes[head.run] == nil { missingRuns.insert(head.run) }
        }
        let missing = missingRuns.sorted()
        for start in stride(from: 0, to: missing.count, by: 5_000) {
            let chunk = Array(missing[start..<min(start + 5_000, missing.count)])
            let rows = try await client.withConnection { connection in
                try await connection.query(StoreSQL.archivedHeads, [StoreTransaction.jsonArray(chunk)])
            }
            for row in rows {
                archivedHeads[try row.decode(String.self, column: 0)] = (try row.decode(column: 1), try row.decode(column: 2))
            }
        }
        report.archivedRuns = archivedHeads.count
        for (checkpoint, decodedHeads) in checkpointRows {
            report.checkpointsChecked += 1
            guard let heads = decodedHeads else {
                // A verifier reports damage rather than stopping at it; the error itself says no more than this.
                report.findings.append(.init(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "checkpoint \(checkpoint.id) has heads that cannot be read: it was edited"))
                continue
            }
            let candidate = AuditCheckpoint(keyID: checkpoint.keyID, heads: heads)
            if published != nil {
                if let digest = publishedDigests[checkpoint.id] {
                    if digest != candidate.headsDigest {
                        report.findings.append(.init(kind: .diverged, runID: nil, sequence: nil,
                            message: "checkpoint \(checkpoint.id) in the database differs from the published one (heads digest \(candidate.headsDigest.hexString.prefix(16))… here, \(digest.hexString.prefix(16))… published): the database's copy was rewritten"))
                        continue
                    }
                } else if checkpoint.id < lastPublished {
                    report.findings.append(.init(kind: .diverged, runID: nil, sequence: nil,
                        message: "checkpoint \(checkpoint.id) is in the database but was never published: it was inserted afterwards"))
                    continue
                }
            }
            if let problem = candidate.verify(signature: checkpoint.signature, trusted: trusted, legacyKeys: legacyKeys) {
                report.findings.append(.init(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "checkpoint \(checkpoint.id) \(problem)"))
                continue
            }
            for head in heads {
                let stored = hashes[head.run]?[head.seq]
                if hashes[head.run] == nil, let archived = archivedHeads[head.run] {
                    if archived.seq < head.seq || (archived.seq == head.seq && archived.hash.hexString != head.hash) {
                        report.findings.append(.init(kind: .edited, runID: head.run, sequence: head.seq,
                            message: "checkpoint \(checkpoint.id) signed this entry of a run archived at entry \(archived.seq) with a different head: the archive record was altered"))
                    }
                } else if stored == nil {
                    report.findings.append(.init(kind: .truncated, runID: head.run, sequence: head.seq,
                        message: "checkpoint \(checkpoint.id) signed this entry, which is missing: the trail was truncated or deleted"))
                } else if stored?.hexString != head.hash {
                    report.findings.append(.init(kind: .edited, runID: head.run, sequence: head.seq,
                        message: "checkpoint \(checkpoint.id) signed a different hash for this entry"))
                }
            }
        }
        return report
    }
}
