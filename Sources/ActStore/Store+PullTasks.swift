import ActPostgres

/// Tasks of pull agents (`delivery: pull`): claimed with a lease over HTTP instead of published.
///
/// A claim leases the oldest open tasks of one assignee whose lease is free or expired; the lease is
/// extended by a heartbeat; an expired lease makes the task claimable again (a redelivery, counted in
/// `claims`). The lease is checked when the answer arrives (``pullLease(taskID:attempt:)``); the answer
/// itself is applied like any other, once per attempt.
extension Store {
    /// Removes the rows of `assignee` whose task is no longer open (answered, timed out, cancelled): once
    /// per claim request, not per poll of its long wait.
    public func prunePullTasks(assignee: String) async throws {
        try await client.withConnection { connection in
            _ = try await connection.execute(StoreSQL.prunePullTasks, [PostgresBind(assignee)])
        }
    }

    /// Leases up to `limit` open tasks of `assignee` to `leaseID` for `leaseMilliseconds`, oldest first.
    public func claimPullTasks(assignee: String, limit: Int, leaseID: String, leaseMilliseconds: Int64) async throws
        -> [ClaimedTask]
    {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.claimPullTasks, [
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

    /// The lease id on a pull-task attempt (nil: not a pull task; `.some(nil)`: never claimed).
    public func pullLease(taskID: String, attempt: Int) async throws -> String?? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.pullLease, [PostgresBind(taskID), PostgresBind(attempt)]).first.map {
                try $0.decode(String?.self, column: 0)
            }
        }
    }
}
