import ActPlaybook
internal import ActPostgres
internal import Foundation

/// The outcome of `hms-act audit verify`.
public struct AuditReport: Hashable, Sendable {
    public var runsChecked: Int
    public var entriesChecked: Int
    public var checkpointsChecked: Int
    public var findings: [AuditChain.Finding]

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

    /// Writes a keyed checkpoint over the heads of every run whose chain moved since the last checkpoint,
    /// and, in the same transaction, the outbox row that publishes it to the governance exchange (the
    /// outside witness): a checkpoint is witnessed exactly like every other message, even if the broker is
    /// down when it is written.
    ///
    /// - Parameter message: Builds the governance message for the written checkpoint.
    /// - Returns: The checkpoint, or `nil` when nothing moved.
    public func writeCheckpoint(keyID: String, key: [UInt8], now: Int64,
        message: @Sendable (WrittenCheckpoint) -> OutboxMessage) async throws -> WrittenCheckpoint?
    {
        try await client.withTransaction { connection -> WrittenCheckpoint? in
            let last = try await connection.query(StoreSQL.lastCheckpointTime).first
            let since: Int64? = try last?.decode(Int64?.self, column: 0) ?? nil
            var heads: [AuditCheckpoint.Head] = []
            for row in try await connection.query(StoreSQL.runHeadsSince, [PostgresBind(since ?? 0)]) {
                heads.append(AuditCheckpoint.Head(run: try row.decode(column: 0), seq: try row.decode(column: 1),
                    hash: (try row.decode([UInt8].self, column: 2)).hexString))
            }
            guard !heads.isEmpty else { return nil }
            let checkpoint = AuditCheckpoint(keyID: keyID, heads: heads)
            let signature = checkpoint.signature(key: key)
            let headsJSON = JSONValue.array(checkpoint.heads.map {
                ["run": .string($0.run), "seq": .int($0.seq), "hash": .string($0.hash)]
            }).canonicalEncoding
            let inserted = try await connection.query(StoreSQL.insertCheckpoint, [
                PostgresBind(now), PostgresBind(keyID), PostgresBind(PostgresJSON(bytes: headsJSON)),
                PostgresBind(checkpoint.headsDigest.hexString), PostgresBind(signature.hexString),
            ])
            guard let row = inserted.first else { return nil }
            let written = WrittenCheckpoint(id: try row.decode(column: 0), headCount: checkpoint.heads.count,
                digest: checkpoint.headsDigest, signature: signature)
            var batch = StoreBatch()
            batch.outbox = [message(written)]
            try await StoreTransaction(connection: connection).write(batch)
            return written
        }
    }

    /// Verifies every run's chain and every checkpoint.
    ///
    /// Finds edited entries (content no longer matches the hash), deleted or reordered entries (gaps and
    /// broken links), truncated chains (a signed checkpoint names an entry that is gone or differs) and
    /// forged checkpoints (signature does not verify with `key`).
    public func verifyAudit(keys: [String: [UInt8]]) async throws -> AuditReport {
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
        for checkpoint in checkpoints {
            report.checkpointsChecked += 1
            guard let heads = try? JSONDecoder().decode([AuditCheckpoint.Head].self, from: Data(checkpoint.heads.utf8))
            else {
                // A verifier reports damage rather than stopping at it; the error itself says no more than this.
                report.findings.append(.init(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "checkpoint \(checkpoint.id) has heads that cannot be read: it was edited"))
                continue
            }
            guard let key = keys[checkpoint.keyID] else {
                report.findings.append(.init(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "checkpoint \(checkpoint.id) is signed with key \(checkpoint.keyID), which was not given"))
                continue
            }
            guard AuditCheckpoint(keyID: checkpoint.keyID, heads: heads).verify(signature: checkpoint.signature, key: key) else {
                report.findings.append(.init(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "checkpoint \(checkpoint.id) does not verify with key \(checkpoint.keyID): it was edited or forged"))
                continue
            }
            for head in heads {
                let stored = hashes[head.run]?[head.seq]
                if stored == nil {
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
