public import ActPlaybook
import ActPostgres

/// A change to a concurrency key's slots, from one batch (``StoreTransaction/applyConcurrency(_:)``).
public enum ConcurrencyRequest: Hashable, Sendable {
    /// A new run of a playbook with `concurrency:` (queued until released).
    case arrive(scope: String, key: String, run: String, limit: Int, onLimit: Concurrency.OnLimit, priority: Int)
    /// A run with a key ended: its slot (or its place in the queue) frees.
    case leave(scope: String, key: String, run: String, limit: Int)

    var lockName: String {
        switch self {
        // The scope's length first keeps every (scope, key) pair apart without a separator (PostgreSQL text
        // holds no NUL).
        case .arrive(let scope, let key, _, _, _, _), .leave(let scope, let key, _, _): "\(scope.utf8.count):\(scope)\(key)"
        }
    }
}

/// What the slots' change asks of runs: queued runs to start, and runs to cancel.
public struct ConcurrencyOutcome: Hashable, Sendable {
    /// Runs that got a slot: each is released (``ActEngine/RunEvent/released``).
    public var released: [String] = []
    /// Runs to cancel (`cancel_newest`: the newcomer; `cancel_in_progress`: those before it).
    public var cancelled: [String] = []

    public init() {}
}

extension StoreSQL {
    static let lockConcurrencyKey = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7283))"
    static let concurrencyHolders = """
        SELECT run_id FROM concurrency_slots WHERE scope = $1 AND key = $2 AND holding ORDER BY seq
        """
    static let concurrencyWaiting = """
        SELECT run_id FROM concurrency_slots WHERE scope = $1 AND key = $2 AND NOT holding
        ORDER BY priority DESC, seq LIMIT $3
        """
    static let concurrencyWaitingCount = """
        SELECT count(*) FROM concurrency_slots WHERE scope = $1 AND key = $2 AND NOT holding
        """
    static let insertConcurrencySlot = """
        INSERT INTO concurrency_slots (scope, key, run_id, holding, priority) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (scope, key, run_id) DO NOTHING
        """
    static let deleteConcurrencySlot = "DELETE FROM concurrency_slots WHERE scope = $1 AND key = $2 AND run_id = $3"
    static let grantConcurrencySlots = """
        UPDATE concurrency_slots SET holding = true
        WHERE scope = $1 AND key = $2 AND run_id IN (SELECT jsonb_array_elements_text($3::jsonb))
        """
}

extension StoreTransaction {
    /// Applies a batch's slot changes, in order, each key under an advisory lock taken in key order (so two
    /// batches never wait on each other's keys in a circle).
    ///
    /// - An arriving run takes a free slot when nobody waits (it is released); otherwise `queue` makes it
    ///   wait, `cancel_newest` cancels it, `cancel_in_progress` cancels every run holding or waiting for the
    ///   key and makes it wait for their slots.
    /// - A leaving run frees its slot or its place; waiting runs take the free slots by priority (higher first),
    ///   then in arrival order.
    public func applyConcurrency(_ requests: [ConcurrencyRequest]) async throws -> ConcurrencyOutcome {
        var outcome = ConcurrencyOutcome()
        guard !requests.isEmpty else { return outcome }
        for name in Set(requests.map(\.lockName)).sorted() {
            _ = try await connection.query(StoreSQL.lockConcurrencyKey, [PostgresBind(name)])
        }
        for request in requests {
            switch request {
            case .arrive(let scope, let key, let run, let limit, let onLimit, let priority):
                let holders = try await strings(StoreSQL.concurrencyHolders, [PostgresBind(scope), PostgresBind(key)])
                let waiting: Int64 = try await connection.query(StoreSQL.concurrencyWaitingCount,
                    [PostgresBind(scope), PostgresBind(key)]).first?.decode(column: 0) ?? 0
                if holders.count < limit, waiting == 0 {
                    try await connection.execute(StoreSQL.insertConcurrencySlot,
                        [PostgresBind(scope), PostgresBind(key), PostgresBind(run), PostgresBind(true), PostgresBind(priority)])
                    outcome.released.append(run)
                    continue
                }
                switch onLimit {
                case .queue:
                    try await connection.execute(StoreSQL.insertConcurrencySlot,
                        [PostgresBind(scope), PostgresBind(key), PostgresBind(run), PostgresBind(false), PostgresBind(priority)])
                case .cancelNewest:
                    outcome.cancelled.append(run)
                case .cancelInProgress:
                    let queued = try await strings(StoreSQL.concurrencyWaiting,
                        [PostgresBind(scope), PostgresBind(key), PostgresBind(Int64.max)])
                    outcome.cancelled += holders + queued
                    try await connection.execute(StoreSQL.insertConcurrencySlot,
                        [PostgresBind(scope), PostgresBind(key), PostgresBind(run), PostgresBind(false), PostgresBind(priority)])
                }
            case .leave(let scope, let key, let run, let limit):
                try await connection.execute(StoreSQL.deleteConcurrencySlot,
                    [PostgresBind(scope), PostgresBind(key), PostgresBind(run)])
                let holders = try await strings(StoreSQL.concurrencyHolders, [PostgresBind(scope), PostgresBind(key)])
                guard holders.count < limit else { continue }
                let next = try await strings(StoreSQL.concurrencyWaiting,
                    [PostgresBind(scope), PostgresBind(key), PostgresBind(Int64(limit - holders.count))])
                guard !next.isEmpty else { continue }
                try await connection.execute(StoreSQL.grantConcurrencySlots,
                    [PostgresBind(scope), PostgresBind(key), Self.jsonArray(next)])
                outcome.released += next
            }
        }
        // A run cancelled and released in one batch is only cancelled (it ends without starting).
        let cancelled = Set(outcome.cancelled)
        outcome.released.removeAll { cancelled.contains($0) }
        return outcome
    }

    private func strings(_ sql: String, _ binds: [PostgresBind]) async throws -> [String] {
        try await connection.query(sql, binds).map { row throws(PostgresError) in try row.decode(String.self, column: 0) }
    }
}
