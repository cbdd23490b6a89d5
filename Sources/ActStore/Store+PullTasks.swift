import ActPostgres

/// Tasks of pull agents (`delivery: pull`): claimed with a lease over HTTP instead of published.
///
/// A claim leases the oldest open tasks of one assignee whose lease is free or expired; the lease is
/// extended by a heartbeat; an expired lease makes the task claimable again (a redelivery, counted in
/// `claims`). The lease is checked when the answer arrives (``pullLease(taskID:attempt:)``); the answer
/// itself is applied like any other, once per attempt.
extension Store {
    /// Leases up to `limit` open tasks of `assignee` to `leaseID` for `leaseMilliseconds`, oldest first.
    /// Rows of tasks that are no longer open are removed first.
    public func claimPullTasks(assignee: String, limit: Int, leaseID: String, leaseMilliseconds: Int64) async throws
        -> [ClaimedTask]
    {
        try await withTransaction { transaction in
            try await transaction.connection.execute(StoreSQL.prunePullTasks, [PostgresBind(assignee)])
            return try await transaction.connection.query(StoreSQL.claimPullTasks, [
                PostgresBind(assignee), PostgresBind(max(1, min(limit, 100))), PostgresBind(leaseID),
                PostgresBind(leaseMilliseconds),
            ]).map { row in
                ClaimedTask(
                    task: PullTask(taskID: try row.decode(column: 0), attempt: try row.decode(column: 1),
                        runID: try row.decode(column: 2), assignee: try row.decode(column: 3),
                        body: try row.decode(column: 4), createdAt: try row.decode(column: 5)),
                    leaseID: try row.decode(column: 6), leaseExpiresAt: try row.decode(column: 7),
                    claims: try row.decode(column: 8))
            }
        }
    }

    /// Extends `leaseID` on one task attempt by `leaseMilliseconds` from now; nil when the lease is no longer
    /// held (expired and claimed by another, or the task is no longer open).
    public func extendPullLease(taskID: String, attempt: Int, leaseID: String, leaseMilliseconds: Int64) async throws
        -> Int64?
    {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.extendPullLease, [
                PostgresBind(taskID), PostgresBind(attempt), PostgresBind(leaseID), PostgresBind(leaseMilliseconds),
            ]).first.map { try $0.decode(Int64.self, column: 0) }
        }
    }

    /// The lease on a pull-task attempt (nil: not a pull task): who holds it, and whether it is still running.
    public func pullLease(taskID: String, attempt: Int) async throws -> (leaseID: String?, live: Bool)? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.pullLease, [PostgresBind(taskID), PostgresBind(attempt)]).first.map {
                (try $0.decode(String?.self, column: 0), try $0.decode(Bool.self, column: 1))
            }
        }
    }
}
