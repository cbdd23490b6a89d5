internal import ActPostgres

/// What the benchmark (`hms-act-bench`) asks of the schema: it loads synthetic runs and timers to measure
/// the timer scanner under a million pending timers, and drops its throwaway schema at the end. Nothing in
/// the service calls these.
extension Store {
    /// One run of `playbookID` that has pending timers, and how many timers it has.
    ///
    /// - Returns: `nil` when no run of that playbook has a timer.
    public func runWithTimers(playbookID: String) async throws -> (runID: String, timers: Int)? {
        try await client.withConnection { connection in
            guard let row = try await connection.query(StoreSQL.runWithTimers, [PostgresBind(playbookID)]).first else {
                return nil
            }
            return (try row.decode(String.self, column: 0), Int(try row.decode(Int64.self, column: 1)))
        }
    }

    /// How many runs of `playbookID` have `status` (the benchmark waits for its queued runs with it).
    public func runCount(playbookID: String, status: String) async throws -> Int {
        try await client.withConnection { connection in
            Int(try await connection.query(StoreSQL.runsWithStatus, [PostgresBind(playbookID), PostgresBind(status)])
                .first?.decode(Int64.self, column: 0) ?? 0)
        }
    }

    /// Copies run `runID` and its timers `copies` times in one transaction, then refreshes the planner's
    /// statistics of both tables.
    ///
    /// The copies are ordinary rows, numbered from 1: run id and trigger event id `<idPrefix><n>`, timer
    /// ids `<timer id>/copy_<n>`, each timer due an hour after the original (plus n ms), so they stay pending
    /// and only add load. A statement over a million rows can outlast the default statement timeout: give
    /// this store a client whose connections have none.
    ///
    /// - Parameters:
    ///   - runID: The run to copy, e.g. from ``runWithTimers(playbookID:)``.
    ///   - copies: How many copies to make.
    ///   - idPrefix: The start of every copy's run id; must not start any other run's id.
    public func copyRunWithTimers(_ runID: String, copies: Int, idPrefix: String) async throws {
        let binds = [PostgresBind(runID), PostgresBind(copies), PostgresBind(idPrefix)]
        try await client.withTransaction { connection in
            try await connection.execute(StoreSQL.copyRun, binds)
            try await connection.execute(StoreSQL.copyRunTimers, binds)
        }
        try await client.withConnection { connection in
            try await connection.executeScript(StoreSQL.analyzeRunsAndTimers)
        }
    }

    /// Makes `copies` copies of completed run `runID` with their payloads, tasks, audit entries, checkpoint
    /// marks and inbox ids, `chunk` copies a transaction, then vacuums and analyzes what they went into, as
    /// autovacuum would have long since done for a real history. Copy ids are `<idPrefix><n>`; their times lie
    /// 10 ms apart, back from the original's.
    public func copyCompletedRun(_ runID: String, copies: Int, idPrefix: String, chunk: Int = 20_000,
        progress: (Int) -> Void = { _ in }) async throws
    {
        var first = 1
        while first <= copies {
            let last = min(copies, first + chunk - 1)
            let binds = [PostgresBind(runID), PostgresBind(first), PostgresBind(last), PostgresBind(idPrefix)]
            try await client.withTransaction { connection in
                for statement in [StoreSQL.copyCompletedRun, StoreSQL.copyCompletedRunPayload, StoreSQL.copyCompletedRunTasks,
                    StoreSQL.copyCompletedRunAudit, StoreSQL.copyCompletedRunCheckpointed, StoreSQL.copyCompletedRunInbox]
                {
                    try await connection.execute(statement, binds)
                }
            }
            progress(last)
            first = last + 1
        }
        try await client.withConnection { connection in
            // One statement each: VACUUM refuses to run inside the transaction a multi-statement script is.
            for table in ["runs", "run_payloads", "tasks", "audit_log", "audit_checkpointed", "inbox"] {
                try await connection.executeScript("VACUUM (ANALYZE) \(table)")
            }
        }
    }

    /// One table's counters and size, from `pg_stat_user_tables`.
    public struct TableStatistics: Codable, Sendable {
        public var table: String
        public var liveRows: Int64
        public var deadRows: Int64
        public var inserted: Int64
        public var updated: Int64
        public var hotUpdated: Int64
        public var deleted: Int64
        public var vacuums: Int64
        public var analyzes: Int64
        /// Table, TOAST and indexes; ``indexBytes`` is the indexes' part.
        public var bytes: Int64
        public var indexBytes: Int64
    }

    /// Every table of the schema, by name.
    public func tableStatistics() async throws -> [TableStatistics] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.tableStatistics).map { row in
                TableStatistics(table: try row.decode(String.self, column: 0), liveRows: try row.decode(Int64.self, column: 1),
                    deadRows: try row.decode(Int64.self, column: 2), inserted: try row.decode(Int64.self, column: 3),
                    updated: try row.decode(Int64.self, column: 4), hotUpdated: try row.decode(Int64.self, column: 5),
                    deleted: try row.decode(Int64.self, column: 6), vacuums: try row.decode(Int64.self, column: 7),
                    analyzes: try row.decode(Int64.self, column: 8), bytes: try row.decode(Int64.self, column: 9),
                    indexBytes: try row.decode(Int64.self, column: 10))
            }
        }
    }

    /// One statement's totals so far, from `pg_stat_statements`.
    public struct StatementStatistics: Codable, Sendable {
        public var query: String
        public var calls: Int64
        public var milliseconds: Double
        public var rows: Int64
        public var blocksHit: Int64
        public var blocksRead: Int64
    }

    /// Every statement run in this database so far, by query id; `nil` when the server does not load
    /// pg_stat_statements (scripts/stack loads it; a server started before that needs a restart).
    public func statementStatistics() async throws -> [Int64: StatementStatistics]? {
        try await client.withConnection { connection in
            let rows: PostgresRows
            do {
                rows = try await connection.query(StoreSQL.statementStatistics)
            } catch let error as PostgresError where ["3F000", "42P01", "55000"].contains(error.sqlState ?? "") {
                return nil  // no schema hms_stats, no view, or the library not preloaded
            }
            var statements: [Int64: StatementStatistics] = [:]
            for row in rows {
                statements[try row.decode(Int64.self, column: 0)] = StatementStatistics(
                    query: try row.decode(String.self, column: 1), calls: try row.decode(Int64.self, column: 2),
                    milliseconds: try row.decode(Double.self, column: 3), rows: try row.decode(Int64.self, column: 4),
                    blocksHit: try row.decode(Int64.self, column: 5), blocksRead: try row.decode(Int64.self, column: 6))
            }
            return statements
        }
    }

    /// One statement of the service's periodic work, run under `EXPLAIN (ANALYZE, BUFFERS)`.
    public struct ExplainedRead: Codable, Sendable {
        public var name: String
        /// Shared buffers the statement touched (hit + read): what its cost follows.
        public var buffers: Int
        public var milliseconds: Double
        /// The plan, as PostgreSQL printed it.
        public var plan: String
    }

    /// The reads the service makes on a timer whatever the load — the `hms_act_runs` and SLA gauges and the
    /// outbox lag every second, the checkpoint's heads every minute — plus one outbox claim, each under
    /// `EXPLAIN (ANALYZE, BUFFERS)` in a transaction that is rolled back. Their cost must follow the open and
    /// moved rows, not the history (issue 21): the benchmark prints these on a schema with a history, and
    /// `FlatHistoryIntegrationTests` bounds them.
    public func explainPeriodicReads() async throws -> [ExplainedRead] {
        let reads: [(String, String, [PostgresBind])] = [
            ("runs gauge (every second)", StoreSQL.countUnfinishedRunsByStatus, []),
            ("SLA gauge (every second)", StoreSQL.slaLights, []),
            ("outbox lag (every second)", StoreSQL.outboxLag, []),
            ("checkpoint heads (every minute)", StoreSQL.runHeadsUncheckpointed, []),
            ("outbox claim (each relay batch)", StoreSQL.claimOutbox,
                [PostgresBind(500), PostgresBind(2), PostgresBind(0), PostgresBind(Int64(1_048_576))]),
        ]
        var explained: [ExplainedRead] = []
        for (name, sql, binds) in reads {
            let lines = try await client.withConnection { connection in
                try await connection.executeScript("BEGIN")
                do {
                    // As the relay claims (StoreTransaction.claimOutbox).
                    if sql == StoreSQL.claimOutbox { try await connection.executeScript(StoreSQL.queueScanSettings) }
                    let rows = try await connection.query("EXPLAIN (ANALYZE, BUFFERS) " + sql, binds)
                    try await connection.executeScript("ROLLBACK")
                    return try rows.map { try $0.decode(String.self, column: 0) }
                } catch {
                    try? await connection.executeScript("ROLLBACK")
                    throw error
                }
            }
            explained.append(ExplainedRead(name: name, buffers: Self.topBuffers(lines),
                milliseconds: lines.compactMap(Self.executionTime).first ?? 0, plan: lines.joined(separator: "\n")))
        }
        return explained
    }

    /// The top plan node's `Buffers: shared hit=… read=…` (the first such line counts the whole statement).
    static func topBuffers(_ lines: [String]) -> Int {
        guard let line = lines.first(where: { $0.contains("Buffers: shared") }) else { return 0 }
        var total = 0
        for part in line.split(whereSeparator: { $0 == " " || $0 == "," }) {
            let pair = part.split(separator: "=")
            if pair.count == 2, ["hit", "read"].contains(String(pair[0])), let value = Int(pair[1]) {
                total += value
            }
        }
        return total
    }

    static func executionTime(_ line: String) -> Double? {
        guard line.hasPrefix("Execution Time:") else { return nil }
        return Double(line.dropFirst("Execution Time:".count).split(separator: " ").first ?? "")
    }

    /// Drops ``schema`` with every table and row in it: the end of a throwaway schema (the benchmark's).
    ///
    /// - Throws: When the schema name is not letters, digits and underscores, or PostgreSQL refuses.
    public func dropSchema() async throws {
        let schema = self.schema
        guard !schema.isEmpty, schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw Migrator.MigrationError(reason: "schema name \(schema) must be letters, digits and underscores")
        }
        try await client.withConnection { connection in
            try await connection.executeScript(StoreSQL.dropSchema(schema))
        }
    }
}

extension Store {
    /// Refreshes the planner's statistics of every table of the schema (after a bulk load).
    public func analyze() async throws {
        try await client.withConnection { connection in
            try await connection.executeScript("ANALYZE")
        }
    }
}
