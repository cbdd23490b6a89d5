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
