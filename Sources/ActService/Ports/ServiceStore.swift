public import ActPlaybook
public import ActStore

/// What the services need from the database: batch transactions and the few reads and writes around
/// them. The services take this port, never a connection, so each can be tested without servers and made
/// to fail on purpose.
///
/// Two implementations: ``ActStore/Store`` (PostgreSQL, below) and `InMemoryStore` (`ActTesting`), which
/// can be told to fail on a chosen call. One behaviour suite (`PortConformanceTests`) runs against both.
public protocol ServiceStore: Sendable {
    /// Runs `body` in one transaction: it commits when `body` returns and rolls back when it throws.
    func transaction<Result: Sendable>(_ body: (any ServiceTransaction) async throws -> Result) async throws
        -> Result

    /// Playbook versions registered after `versionID` (by any replica), oldest first.
    func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion]

    /// Stores a version unless one with the same checksum exists.
    /// See ``ActStore/Store/registerPlaybook(id:checksum:source:model:triggers:)``.
    func registerPlaybook(id: String, checksum: String, source: String, model: [UInt8], triggers: [String])
        async throws -> (version: PlaybookVersion, created: Bool)

    /// The database's clock (the clock timers are claimed by), in milliseconds since the epoch.
    func databaseTimeMilliseconds() async throws -> Int64

    /// Whether the database answers.
    func ping() async -> Bool

    /// Writes a signed audit checkpoint over the heads that moved, and its governance message in the same
    /// transaction. See ``ActStore/Store/writeCheckpoint(signingKey:now:message:)``.
    func writeCheckpoint(signingKey: AuditSigningKey, now: Int64,
        message: @Sendable (Store.WrittenCheckpoint) -> OutboxMessage) async throws -> Store.WrittenCheckpoint?

    /// Deletes inbox keys older than `hours`; returns how many.
    func pruneInbox(olderThanHours hours: Int) async throws -> Int

    /// Every version's control (pins, deprecated and disabled versions) by version id; a version missing is
    /// active and not pinned (``ActStore/Store/versionControls()``).
    func versionControls() async throws -> [Int64: VersionControl]

    /// Makes an operator's change to a playbook's versions if the rules allow it
    /// (``ActStore/Store/controlPlaybook(_:change:actor:reason:)``).
    ///
    /// - Throws: ``ActStore/PlaybookControls/Problem`` when refused.
    @discardableResult
    func controlPlaybook(_ playbookID: String, change: PlaybookControlChange, actor: String, reason: String?)
        async throws -> [Int64: VersionControl]

    /// Creates the audit log's monthly partitions through `monthsAhead` months ahead that do not exist yet
    /// (``ActStore/Store/ensureAuditPartitions(monthsAhead:)``); returns how many. Stores without partitions
    /// have nothing to do (the default).
    func ensureAuditPartitions(monthsAhead: Int) async throws -> Int

    /// The database-backed gauges housekeeping exports.
    func gauges() async throws -> StoreGauges

    /// The running or paused runs a signal naming a business key reaches (see
    /// ``ActStore/Store/activeRunIDs(correlationKey:playbook:)``).
    func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [String]
}

extension ServiceStore {
    public func ensureAuditPartitions(monthsAhead: Int) async throws -> Int { 0 }
}

/// Playbook schedules (``Scheduler``). The PostgreSQL store keeps them (migration 0015); the test doubles of
/// the fault suites keep none: they say so instead of pretending.
public protocol ScheduleStore: Sendable {
    /// Brings the schedule rows in step with every playbook's current version (``Store/syncSchedules(_:now:)``).
    func syncSchedules(_ schedules: [(playbook: PlaybookID, schedule: Schedule)], now: Int64) async throws
        -> (inserted: Int, changed: Int, removed: Int)
}

extension Store: ScheduleStore {}

/// The statements of one batch transaction. Reads lock what they return (runs `FOR UPDATE`, timers and
/// outbox rows `SKIP LOCKED`), so replicas never apply two batches to one run at once, never fire one timer
/// twice and never publish one outbox row from two relays at once.
public protocol ServiceTransaction: Sendable {
    /// Inserts the keys into the inbox; returns those that were new (the others were applied before).
    func claimInbox(_ keys: [String]) async throws -> Set<String>

    /// Locks and reads the runs, in run-id order.
    func lockRuns(_ ids: [String]) async throws -> [String: RunRow]

    /// Locks the runs in run-id order, loading states only while their sizes add up to `maxBytes` (the first
    /// always); returns the runs read and the locked runs whose state was left out.
    func lockRuns(_ ids: [String], maxBytes: Int) async throws -> (runs: [String: RunRow], leftOut: Set<String>)

    /// Claims (deletes) up to `limit` timers due by the database's clock, earliest first.
    func claimDueTimers(limit: Int) async throws -> [TimerRow]

    /// Claims up to `limit` outbox rows available now, of one share of the runs, bounded in bytes past the first.
    func claimOutbox(limit: Int, partition: (index: Int, count: Int), maxBytes: Int) async throws -> [OutboxMessage]

    /// Moves a timer's due time `seconds` from now.
    func postponeTimer(_ timerID: String, seconds: Int) async throws

    /// Deletes outbox rows after their publish was confirmed.
    func deleteOutbox(_ ids: [Int64]) async throws

    /// Leaves outbox rows for a later attempt (exponential delay, at most 5 minutes), noting why.
    func deferOutbox(_ ids: [Int64], error: String) async throws

    /// Writes a batch of rows.
    func write(_ batch: StoreBatch) async throws

    /// Playbook versions registered after `versionID`, read on this transaction's own connection: a batch
    /// that meets a version it does not know never needs a second connection while it holds one.
    func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion]

    /// Claims up to `limit` unpaused schedules due by the database's clock (`SKIP LOCKED`), earliest first.
    func claimDueSchedules(limit: Int) async throws -> [ScheduleRow]

    /// Writes schedule rows.
    func writeSchedules(_ rows: [ScheduleRow]) async throws

    /// The status of each run that exists among `ids`.
    func runStatuses(_ ids: [String]) async throws -> [String: String]

    /// Applies a batch's concurrency-key slot changes under the keys' locks (``StoreTransaction/applyConcurrency(_:)``).
    func applyConcurrency(_ requests: [ConcurrencyRequest]) async throws -> ConcurrencyOutcome

    /// Takes tokens of an agent's rate limit (``StoreTransaction/takeRateTokens(key:wanted:interval:burst:)``).
    func takeRateTokens(key: String, wanted: Int, interval: Double, burst: Int) async throws
        -> (granted: Int, waits: [Double])

    /// Holds outbox rows back until their rate allows them (no attempt counted).
    func holdOutbox(_ rows: [(id: Int64, milliseconds: Double)]) async throws
}

extension ServiceTransaction {
    // The fault suites' in-memory stores keep no schedules: nothing is ever due, and writing one is refused.
    public func claimDueSchedules(limit: Int) async throws -> [ScheduleRow] { [] }

    public func writeSchedules(_ rows: [ScheduleRow]) async throws {
        guard rows.isEmpty else { throw SchedulesNotKept() }
    }

    public func runStatuses(_ ids: [String]) async throws -> [String: String] {
        guard ids.isEmpty else { throw SchedulesNotKept() }
        return [:]
    }

    // Nor concurrency-key slots: a playbook with `concurrency:` needs the PostgreSQL store.
    public func applyConcurrency(_ requests: [ConcurrencyRequest]) async throws -> ConcurrencyOutcome {
        guard requests.isEmpty else { throw SchedulesNotKept(what: "concurrency-key slots") }
        return ConcurrencyOutcome()
    }

    // Nor rate-limit buckets: an agent with `rate_limit` needs the PostgreSQL store.
    public func takeRateTokens(key: String, wanted: Int, interval: Double, burst: Int) async throws
        -> (granted: Int, waits: [Double])
    {
        guard wanted == 0 else { throw SchedulesNotKept(what: "rate-limit buckets") }
        return (0, [])
    }

    public func holdOutbox(_ rows: [(id: Int64, milliseconds: Double)]) async throws {
        guard rows.isEmpty else { throw SchedulesNotKept(what: "rate-limit buckets") }
    }
}

/// A store that keeps no schedules was asked to.
public struct SchedulesNotKept: Error, CustomStringConvertible {
    public var what = "playbook schedules"
    public var description: String { "this store keeps no \(what) (only the PostgreSQL store does)" }
}

/// The gauges housekeeping reads from the database every second.
public struct StoreGauges: Sendable, Hashable {
    public var outboxPending: Int
    public var outboxLagSeconds: Double
    public var pendingTimers: Int
    public var runsByStatus: [String: Int]
    public var slaLights: (red: Int, yellow: Int, green: Int) {
        get { (slaRed, slaYellow, slaGreen) }
        set { (slaRed, slaYellow, slaGreen) = newValue }
    }
    var slaRed: Int
    var slaYellow: Int
    var slaGreen: Int

    public init(outboxPending: Int, outboxLagSeconds: Double, pendingTimers: Int, runsByStatus: [String: Int],
        slaLights: (red: Int, yellow: Int, green: Int))
    {
        self.outboxPending = outboxPending
        self.outboxLagSeconds = outboxLagSeconds
        self.pendingTimers = pendingTimers
        self.runsByStatus = runsByStatus
        (slaRed, slaYellow, slaGreen) = slaLights
    }
}

// MARK: The PostgreSQL implementation

extension Store: ServiceStore {
    public func transaction<Result: Sendable>(_ body: (any ServiceTransaction) async throws -> Result)
        async throws -> Result
    {
        try await withTransaction { transaction in try await body(transaction) }
    }

    public func gauges() async throws -> StoreGauges {
        let lag = try await outboxLag()
        return StoreGauges(outboxPending: lag.count, outboxLagSeconds: lag.oldestSeconds,
            pendingTimers: try await pendingTimerCount(), runsByStatus: try await unfinishedRunCountsByStatus(),
            slaLights: try await slaLights())
    }
}

extension StoreTransaction: ServiceTransaction {}
