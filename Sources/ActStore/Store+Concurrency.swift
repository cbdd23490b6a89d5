public import ActPlaybook
import ActPostgres

/// Who holds or waits for a slot: a run (`concurrency:` on its playbook), or one visit of a step of a run
/// (`concurrency:` on the step).
public struct ConcurrencyHolder: Hashable, Sendable {
    public var run: String
    /// The step and its visit; `nil` for a run's own slot.
    public var step: String?
    public var visit: Int?

    public init(run: String, step: String? = nil, visit: Int? = nil) {
        self.run = run
        self.step = step
        self.visit = visit
    }
}

/// A change to a concurrency key's slots, from one batch (``StoreTransaction/applyConcurrency(_:)``).
public enum ConcurrencyRequest: Hashable, Sendable {
    /// A new run of a playbook with `concurrency:` (queued until released), or a step visit entering a step
    /// with `concurrency:`.
    case arrive(scope: String, key: String, holder: ConcurrencyHolder, limit: Int, onLimit: Concurrency.OnLimit,
        priority: Int)
    /// A run (step visit) with a key ended: its slot (or its place in the queue) frees. A run holds at most
    /// one row per scope, so the run names it.
    case leave(scope: String, key: String, run: String, limit: Int)

    var lockName: String {
        switch self {
        // The scope's length first keeps every (scope, key) pair apart without a separator (PostgreSQL text
        // holds no NUL).
        case .arrive(let scope, let key, _, _, _, _), .leave(let scope, let key, _, _): "\(scope.utf8.count):\(scope)\(key)"
        }
    }
}

/// What the slots' change asks of runs: queued runs (step visits) to start, and runs (step visits) to cancel.
public struct ConcurrencyOutcome: Hashable, Sendable {
    /// Holders that got a slot: each is released (``ActEngine/RunEvent/released``,
    /// ``ActEngine/RunEvent/slotGranted(step:visit:)``).
    public var released: [ConcurrencyHolder] = []
    /// Holders to cancel (`cancel_newest`: the newcomer; `cancel_in_progress`: those before it).
    public var cancelled: [ConcurrencyHolder] = []

    public init() {}
}

extension StoreSQL {
    static let lockConcurrencyKey = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7283))"
    static let concurrencyHolders = """
        SELECT run_id, step, visit FROM concurrency_slots WHERE scope = $1 AND key = $2 AND holding ORDER BY seq
        """
    static let concurrencyWaiting = """
        SELECT run_id, step, visit FROM concurrency_slots WHERE scope = $1 AND key = $2 AND NOT holding
        ORDER BY priority DESC, seq LIMIT $3
        """
    static let dropConcurrencyWaiting = "DELETE FROM concurrency_slots WHERE scope = $1 AND key = $2 AND NOT holding"
    static let concurrencyWaitingCount = """
        SELECT count(*) FROM concurrency_slots WHERE scope = $1 AND key = $2 AND NOT holding
        """
    static let insertConcurrencySlot = """
        INSERT INTO concurrency_slots (scope, key, run_id, holding, priority, step, visit)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
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
    ///   key and makes it wait for their slots (the waiting ones lose their places at once, so the first slot
    ///   freed goes to the newcomer).
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
            case .arrive(let scope, let key, let holder, let limit, let onLimit, let priority):
                let holders = try await self.holders(StoreSQL.concurrencyHolders, [PostgresBind(scope), PostgresBind(key)])
                let waiting: Int64 = try await connection.query(StoreSQL.concurrencyWaitingCount,
                    [PostgresBind(scope), PostgresBind(key)]).first?.decode(column: 0) ?? 0
                func insert(holding: Bool) async throws {
                    try await connection.execute(StoreSQL.insertConcurrencySlot, [
                        PostgresBind(scope), PostgresBind(key), PostgresBind(holder.run), PostgresBind(holding),
                        PostgresBind(priority), PostgresBind(holder.step), PostgresBind(holder.visit.map(Int64.init)),
                    ])
                }
                if holders.count < limit, waiting == 0 {
                    try await insert(holding: true)
                    outcome.released.append(holder)
                    continue
                }
                switch onLimit {
                case .queue:
                    try await insert(holding: false)
                case .cancelNewest:
                    outcome.cancelled.append(holder)
                case .cancelInProgress:
                    let queued = try await self.holders(StoreSQL.concurrencyWaiting,
                        [PostgresBind(scope), PostgresBind(key), PostgresBind(Int64.max)])
                    outcome.cancelled += holders + queued
                    try await connection.execute(StoreSQL.dropConcurrencyWaiting, [PostgresBind(scope), PostgresBind(key)])
                    try await insert(holding: false)
                }
            case .leave(let scope, let key, let run, let limit):
                try await connection.execute(StoreSQL.deleteConcurrencySlot,
                    [PostgresBind(scope), PostgresBind(key), PostgresBind(run)])
                let holders = try await self.holders(StoreSQL.concurrencyHolders, [PostgresBind(scope), PostgresBind(key)])
                guard holders.count < limit else { continue }
                let next = try await self.holders(StoreSQL.concurrencyWaiting,
                    [PostgresBind(scope), PostgresBind(key), PostgresBind(Int64(limit - holders.count))])
                guard !next.isEmpty else { continue }
                try await connection.execute(StoreSQL.grantConcurrencySlots,
                    [PostgresBind(scope), PostgresBind(key), Self.jsonArray(next.map(\.run))])
                outcome.released += next
            }
        }
        // Two newcomers of one batch may both cancel the same holder: each holder gets one decision (its
        // timer row once). One cancelled and released in the batch is only cancelled (it ends without starting).
        var seen: Set<ConcurrencyHolder> = []
        outcome.cancelled = outcome.cancelled.filter { seen.insert($0).inserted }
        outcome.released.removeAll { seen.contains($0) }
        return outcome
    }

    private func holders(_ sql: String, _ binds: [PostgresBind]) async throws -> [ConcurrencyHolder] {
        try await connection.query(sql, binds).map { row throws(PostgresError) in
            let visit: Int64? = try row.decode(column: 2)
            return ConcurrencyHolder(run: try row.decode(String.self, column: 0), step: try row.decode(column: 1),
                visit: visit.map(Int.init))
        }
    }
}
