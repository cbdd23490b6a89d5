import ActPlaybook
internal import ActPostgres
internal import Foundation

/// Retention (migration 0011): finished runs past the retention are archived (``AuditArchive``) and removed;
/// the audit log, partitioned by the month its runs started, loses a month by dropping its partition once no
/// run started in that month is left. Driven by `hms-act retention run` (ActCLI), never by `serve`.
extension Store {
    /// A finished run retention may archive: past the retention, and its final audit head signed by a checkpoint.
    public struct RetentionCandidate: Sendable, Hashable {
        public var runID: String
        public var createdAt: Int64
        public var finishedAt: Int64
        public var auditSequence: Int64
        public var auditHead: [UInt8]
        /// The checkpoint that signed the final head.
        public var checkpointID: Int64
    }

    /// How much retention has to do: finished runs past `finishedBefore`, and how many of them still wait
    /// for a checkpoint to sign their final head (they are archived on a later run).
    public func retentionBacklog(finishedBefore: Int64) async throws -> (due: Int, awaitingCheckpoint: Int) {
        try await client.withConnection { connection in
            let row = try await connection.query(StoreSQL.retentionBacklog, [PostgresBind(finishedBefore)]).first
            return (try row?.decode(Int.self, column: 0) ?? 0, try row?.decode(Int.self, column: 1) ?? 0)
        }
    }

    /// Where ``retentionCandidates(finishedBefore:after:limit:)`` goes on: the last run's finish, exact to the
    /// microsecond as PostgreSQL prints it, and its id.
    public struct RetentionCursor: Sendable, Hashable {
        var finishedAt: String
        var runID: String

        public static let start = RetentionCursor(finishedAt: "-infinity", runID: "")
    }

    /// Finished runs (completed, failed, cancelled) that finished before `finishedBefore` (ms), whose final
    /// head a checkpoint has signed, oldest first, after `cursor`.
    public func retentionCandidates(finishedBefore: Int64, after cursor: RetentionCursor, limit: Int) async throws
        -> (candidates: [RetentionCandidate], next: RetentionCursor)
    {
        try await client.withConnection { connection in
            var next = cursor
            let candidates = try await connection.query(StoreSQL.retentionCandidates, [
                PostgresBind(finishedBefore), PostgresBind(cursor.finishedAt), PostgresBind(cursor.runID),
                PostgresBind(max(1, min(limit, 10_000))),
            ]).map { row in
                let candidate = RetentionCandidate(runID: try row.decode(column: 0), createdAt: try row.decode(column: 1),
                    finishedAt: try row.decode(column: 2), auditSequence: try row.decode(column: 3),
                    auditHead: try row.decode(column: 4), checkpointID: try row.decode(column: 5))
                next = RetentionCursor(finishedAt: try row.decode(column: 6), runID: candidate.runID)
                return candidate
            }
            return (candidates, next)
        }
    }

    /// Everything the archive holds for `candidates`: their rows, tasks, incidents and audit chains, and the
    /// checkpoints that signed their final heads.
    public func archiveRecords(for candidates: [RetentionCandidate]) async throws
        -> (runs: [AuditArchive.RunRecord], checkpoints: [AuditArchive.Checkpoint])
    {
        let ids = StoreTransaction.jsonArray(candidates.map(\.runID))
        return try await client.withConnection { connection in
            var rows: [String: JSONValue] = [:]
            for row in try await connection.query(StoreSQL.archiveRuns, [ids]) {
                let runID: String = try row.decode(column: 0)
                rows[runID] = try Self.json(try row.decode(String.self, column: 1), column: "runs", row: "run \(runID)")
            }
            var tasks: [String: [JSONValue]] = [:]
            for row in try await connection.query(StoreSQL.archiveTasks, [ids]) {
                let runID: String = try row.decode(column: 0)
                tasks[runID, default: []].append(
                    try Self.json(try row.decode(String.self, column: 1), column: "tasks", row: "a task of run \(runID)"))
            }
            var incidents: [String: [JSONValue]] = [:]
            for row in try await connection.query(StoreSQL.archiveIncidents, [ids]) {
                let runID: String = try row.decode(column: 0)
                incidents[runID, default: []].append(
                    try Self.json(try row.decode(String.self, column: 1), column: "incidents", row: "an incident of run \(runID)"))
            }
            var audit: [String: [AuditChain.StoredEntry]] = [:]
            for row in try await connection.query(StoreSQL.archiveAudit, [ids]) {
                let entry = try Self.auditEntry(row)
                audit[entry.entry.runID, default: []].append(entry)
            }
            var records: [AuditArchive.RunRecord] = []
            for candidate in candidates {
                // A run removed meanwhile (another retention run) has no row: it is in that run's archive.
                guard let row = rows[candidate.runID] else { continue }
                records.append(AuditArchive.RunRecord(runID: candidate.runID, auditSequence: candidate.auditSequence,
                    auditHead: candidate.auditHead, row: row, tasks: tasks[candidate.runID] ?? [],
                    incidents: incidents[candidate.runID] ?? [], audit: audit[candidate.runID] ?? []))
            }
            let checkpointIDs = Set(candidates.map(\.checkpointID)).sorted().map(String.init)
            var checkpoints: [AuditArchive.Checkpoint] = []
            for row in try await connection.query(StoreSQL.archiveCheckpoints, [StoreTransaction.jsonArray(checkpointIDs)]) {
                let id: Int64 = try row.decode(column: 0)
                let headsText: String = try row.decode(column: 3)
                guard let heads = try? JSONDecoder().decode([AuditCheckpoint.Head].self, from: Data(headsText.utf8)) else {
                    throw StoreDataError(column: "audit_checkpoints.heads", row: "checkpoint \(id)",
                        problem: "cannot be read; run `hms-act audit verify`, the checkpoint was edited")
                }
                checkpoints.append(AuditArchive.Checkpoint(id: id, at: try row.decode(column: 1),
                    keyID: try row.decode(column: 2), heads: heads, signature: try row.decode(column: 4)))
            }
            return (records, checkpoints)
        }
    }

    /// Records an archive file and removes the runs it holds, in one transaction: a run whose chain moved
    /// since it was read (rewound, say) is kept, and is in the file only as history.
    ///
    /// - Returns: The runs removed, and those kept because they changed.
    public func removeArchivedRuns(fileName: String, sha256: String, finishedBefore: Int64,
        auditEntries: Int, runs: [AuditArchive.RunRecord]) async throws -> (removed: [String], changed: [String])
    {
        var expected = JSONRows()
        for run in runs {
            expected.append(["run_id": .string(run.runID), "audit_seq": .int(run.auditSequence)])
        }
        let expectedRows = StoreTransaction.json(expected)
        return try await client.withTransaction { connection in
            let archiveID: Int64 = try await connection.query(StoreSQL.insertRetentionArchive, [
                PostgresBind(fileName), PostgresBind(sha256), PostgresBind(runs.count), PostgresBind(Int64(auditEntries)),
                PostgresBind(finishedBefore),
            ]).first?.decode(column: 0) ?? 0
            let removed = try await connection.query(StoreSQL.removeArchivedRuns, [expectedRows, PostgresBind(archiveID)])
                .map { try $0.decode(String.self, column: 0) }
            let removedIDs = StoreTransaction.jsonArray(removed)
            try await connection.execute(StoreSQL.removeArchivedLeftovers, [removedIDs])
            let gone = Set(removed)
            return (removed.sorted(), runs.map(\.runID).filter { !gone.contains($0) }.sorted())
        }
    }

    /// A monthly partition of the audit log.
    public struct AuditPartition: Sendable, Hashable {
        public var name: String
        /// Its months' bounds (ms, UTC): runs started in [from, to).
        public var from: Int64
        public var to: Int64
        /// Runs started in that month that are still in `runs` (not yet archived).
        public var liveRuns: Int
        public var bytes: Int64
    }

    /// The audit log's monthly partitions, oldest first (the default partition is not among them).
    public func auditPartitions() async throws -> [AuditPartition] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.auditPartitions).map { row in
                AuditPartition(name: try row.decode(column: 0), from: try row.decode(column: 1), to: try row.decode(column: 2),
                    liveRuns: try row.decode(column: 3), bytes: try row.decode(column: 4))
            }
        }
    }

    /// Drops a month's audit partition if its month ended more than a day before `now` (ms) and no run started
    /// in it is left; checked again under the lock, so a run started meanwhile keeps it.
    ///
    /// - Returns: Whether it was dropped.
    public func dropAuditPartition(_ partition: AuditPartition, now: Int64) async throws -> Bool {
        guard partition.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), partition.name.hasPrefix("audit_log_"),
            partition.name != "audit_log_default", partition.to < now - 86_400_000
        else { return false }
        return try await client.withTransaction { connection in
            try await connection.executeScript("SET LOCAL lock_timeout = '5s'")
            try await connection.executeScript("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            let live: Int = try await connection.query(StoreSQL.liveRunsStartedBetween, [
                PostgresBind(partition.from), PostgresBind(partition.to),
            ]).first?.decode(column: 0) ?? 1
            guard live == 0 else { return false }
            try await connection.executeScript("DROP TABLE \"\(partition.name)\"")
            return true
        }
    }

    /// Creates the audit log's monthly partitions from this month through `monthsAhead` months ahead that do
    /// not exist yet. - Returns: How many it created.
    @discardableResult
    public func ensureAuditPartitions(monthsAhead: Int = 2) async throws -> Int {
        try await client.withTransaction { connection in
            try await connection.query(StoreSQL.ensureAuditPartitions, [PostgresBind(max(0, monthsAhead))])
                .first?.decode(column: 0) ?? 0
        }
    }
}
