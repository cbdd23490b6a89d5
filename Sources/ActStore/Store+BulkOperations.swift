import ActPlaybook
internal import ActPostgres

/// Bulk operations (`bulk_operations`, migration 0009): requested, claimed under a lease, walked page by page.
extension Store {
    /// Records a new running operation.
    /// - Returns: It, with its id and creation time.
    public func createBulkOperation(_ operation: BulkOperation) async throws -> BulkOperation {
        let id = try await client.withConnection { connection in
            try await connection.query(StoreSQL.insertBulkOperation, [
                PostgresBind(operation.action.rawValue),
                PostgresBind(PostgresJSON(bytes: operation.filter.json.canonicalEncoding)),
                PostgresBind(operation.reason), PostgresBind(operation.requestedBy), PostgresBind(operation.ratePerSecond),
                PostgresBind(PostgresJSON(bytes: operation.parameters.canonicalEncoding)),
            ]).first?.decode(Int64.self, column: 0)
        }
        guard let id, let created = try await bulkOperation(id: id) else {
            throw StoreDataError(column: "bulk_operations.operation_id", row: "a new bulk operation",
                problem: "was not returned by the insert")
        }
        return created
    }

    public func bulkOperation(id: Int64) async throws -> BulkOperation? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.bulkOperation, [PostgresBind(id)]).first.map(Self.bulkOperation)
        }
    }

    /// Operations newest first, of one state when given.
    public func listBulkOperations(state: BulkOperation.State?, limit: Int) async throws -> [BulkOperation] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.listBulkOperations, [PostgresBind(state?.rawValue),
                PostgresBind(max(1, min(limit, 1_000)))]).map(Self.bulkOperation)
        }
    }

    /// Takes the lease of the oldest running operation nobody holds (or `owner` holds) for `lease`.
    /// - Returns: The operation and its cursor; `nil` when there is none to work on.
    public func claimBulkOperation(owner: String, lease: Duration) async throws
        -> (BulkOperation, cursor: (createdAt: String, runID: String)?)?
    {
        try await client.withConnection { connection in
            guard let row = try await connection.query(StoreSQL.claimBulkOperation,
                [PostgresBind(owner), PostgresBind(Self.seconds(lease))]).first
            else { return nil }
            let createdAt: String? = try row.decode(column: 16)
            let runID: String? = try row.decode(column: 17)
            return (try Self.bulkOperation(row), cursor: createdAt.flatMap { at in runID.map { (at, $0) } })
        }
    }

    /// The next page of the operation's runs after `cursor`, at most `limit`.
    public func bulkPage(_ operation: BulkOperation, after cursor: (createdAt: String, runID: String)?, limit: Int)
        async throws -> BulkPage
    {
        let filter = operation.filter
        let rows = try await client.withConnection { connection in
            try await connection.query(StoreSQL.bulkPage, [
                PostgresBind(operation.id), PostgresBind(filter.status), PostgresBind(filter.playbook),
                PostgresBind(filter.key), PostgresBind(filter.createdAfter), PostgresBind(filter.createdBefore),
                PostgresBind(cursor?.createdAt), PostgresBind(cursor?.runID), PostgresBind(max(1, limit)),
                PostgresBind(filter.version),
            ])
        }
        var ids: [String] = []
        var last: (String, String)?
        for row in rows {
            let runID: String = try row.decode(column: 0)
            ids.append(runID)
            last = (try row.decode(column: 1), runID)
        }
        return BulkPage(runIDs: ids, cursor: last)
    }

    /// Records a page done while `owner` holds the lease, and extends the lease.
    /// - Returns: false when the lease was lost (another replica took the operation over) or it was stopped.
    public func recordBulkProgress(
        _ id: Int64, owner: String, cursor: (createdAt: String, runID: String)?, matched: Int, applied: Int,
        ignored: Int, refused: Int, done: Bool, lease: Duration
    ) async throws -> Bool {
        try await client.withConnection { connection in
            !(try await connection.query(StoreSQL.recordBulkProgress, [
                PostgresBind(id), PostgresBind(cursor?.createdAt), PostgresBind(cursor?.runID), PostgresBind(matched),
                PostgresBind(applied), PostgresBind(ignored), PostgresBind(refused), PostgresBind(done),
                PostgresBind(Self.seconds(lease)), PostgresBind(owner),
            ]).isEmpty)
        }
    }

    /// Notes why the last page could not be done (it is tried again).
    public func recordBulkError(_ id: Int64, _ error: String) async throws {
        try await client.withConnection { connection in
            _ = try await connection.query(StoreSQL.failBulkPage, [PostgresBind(id), PostgresBind(String(error.prefix(2_000)))])
        }
    }

    /// Stops a running operation; the pages already done stay done.
    /// - Returns: Whether it was running.
    public func stopBulkOperation(_ id: Int64, by actor: String) async throws -> Bool {
        try await client.withConnection { connection in
            !(try await connection.query(StoreSQL.stopBulkOperation, [PostgresBind(id), PostgresBind(actor)]).isEmpty)
        }
    }

    /// Active runs of a playbook version with their states, a page at a time in run-id order (a migration's
    /// dry run); `after` is the last run id of the previous page.
    public func activeRuns(versionID: Int64, after: String?, limit: Int) async throws -> [(runID: String, state: [UInt8])] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.activeRunsOfVersion, [PostgresBind(versionID), PostgresBind(after),
                PostgresBind(max(1, min(limit, 5_000)))]).map { row in
                (try row.decode(String.self, column: 0), Array((try row.decode(String.self, column: 1)).utf8))
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private static func bulkOperation(_ row: PostgresRow) throws -> BulkOperation {
        let id: Int64 = try row.decode(column: 0)
        let actionText: String = try row.decode(column: 1)
        let filter = try Self.json(try row.decode(String.self, column: 2), column: "bulk_operations.filter",
            row: "bulk operation \(id)")
        let stateText: String = try row.decode(column: 6)
        let parameters = try Self.json(try row.decode(String.self, column: 15), column: "bulk_operations.parameters",
            row: "bulk operation \(id)")
        return BulkOperation(
            id: id, action: BulkOperation.Action(rawValue: actionText) ?? .cancel, filter: BulkOperation.Filter(json: filter),
            parameters: parameters,
            reason: try row.decode(column: 3), requestedBy: try row.decode(column: 4),
            ratePerSecond: try row.decode(column: 5), state: BulkOperation.State(rawValue: stateText) ?? .running,
            matched: try row.decode(column: 7), applied: try row.decode(column: 8), ignored: try row.decode(column: 9),
            refused: try row.decode(column: 10), lastError: try row.decode(column: 11), createdAt: try row.decode(column: 12),
            updatedAt: try row.decode(column: 13), finishedAt: try row.decode(column: 14))
    }
}
