internal import ActEngine
internal import ActPlaybook
internal import ActPostgres
public import ActService
public import ActStore
internal import Synchronization

/// The ``ServiceStore`` port in memory: the same tables and the same rules as the PostgreSQL store
/// (inbox keys claimed once, runs upserted, timers claimed by due time, outbox rows deferred with backoff,
/// audit sequence numbers unique per run, U+0000 refused in JSON as PostgreSQL refuses it), checked by
/// the same conformance suite.
///
/// Transactions run one at a time on a copy of the tables that replaces them at commit, so a rollback
/// leaves nothing behind. Every call takes a "connection" from a pool of `connections` with a lease
/// timeout, as ``ActPostgres/PostgresClient`` does: a transaction that asks for a second connection while it
/// holds the only one fails with ``ActPostgres/PostgresError/Code-swift.struct/poolTimeout`` instead of
/// waiting for ever. ``faults`` makes a chosen call fail.
public final class InMemoryStore: ServiceStore, TimerNotifications, Sendable {
    /// The calls ``faults`` can make fail.
    public enum Call: Hashable, Sendable {
        case begin, commit, claimInbox, lockRuns, claimDueTimers, claimOutbox, postponeTimer, deleteOutbox,
            deferOutbox, write, playbookVersions, registerPlaybook, databaseTime, writeCheckpoint, pruneInbox, gauges,
            activeRunIDs
    }

    /// One outbox row with the columns the relay's claim looks at.
    public struct OutboxRow: Sendable, Hashable {
        public var message: OutboxMessage
        public var availableAt: Int64
        public var lastError: String?
    }

    /// The tables.
    public struct Tables: Sendable {
        public var runs: [String: RunRow] = [:]
        /// Task attempts by `task_id#attempt`.
        public var tasks: [String: TaskRow] = [:]
        public var timers: [String: TimerRow] = [:]
        public var outbox: [Int64: OutboxRow] = [:]
        public var nextOutboxID: Int64 = 1
        /// Task messages of pull agents, by `task_id#attempt`.
        public var pullTasks: [String: PullTask] = [:]
        /// Inbox keys and when they were claimed.
        public var inbox: [String: Int64] = [:]
        /// Each run's audit chain, in sequence order.
        public var audit: [String: [AuditChain.StoredEntry]] = [:]
        public var incidents: [Incident] = []
        public var playbooks: [PlaybookVersion] = []
        /// Pins, deprecated and disabled versions (`playbook_version_controls`).
        public var versionControls: [Int64: VersionControl] = [:]
        /// When each run's chain last moved (for checkpoints).
        var headMoved: [String: Int64] = [:]
        public var checkpoints: [Store.WrittenCheckpoint] = []
        var lastCheckpointAt: Int64?
    }

    /// Planned failures.
    public let faults = FaultPlan<Call>()
    private let tables = Mutex(Tables())
    private let connections: AsyncSemaphore
    private let transactionLock = AsyncSemaphore(permits: 1)
    private let leaseTimeout: Duration
    /// The store's clock ("the database's `now()`").
    public let now: @Sendable () -> Int64
    private let timerWakeUps = Mutex<[@Sendable () -> Void]>([])
    private let constraints = Mutex<[(name: String, check: @Sendable (RunRow) -> Bool)]>([])

    /// From now on a run row that fails `check` is refused as PostgreSQL refuses a `CHECK` constraint
    /// (SQLSTATE 23514, a data error): how a test makes one run's data poison.
    public func addConstraint(_ name: String, check: @escaping @Sendable (RunRow) -> Bool) {
        constraints.withLock { $0.append((name, check)) }
    }

    /// - Parameters:
    ///   - connections: The pool size.
    ///   - leaseTimeout: How long a call waits for a connection before failing with `poolTimeout`.
    ///   - now: The database's clock, in milliseconds since the epoch.
    public init(connections: Int = 4, leaseTimeout: Duration = .seconds(2), now: @escaping @Sendable () -> Int64) {
        self.connections = AsyncSemaphore(permits: connections)
        self.leaseTimeout = leaseTimeout
        self.now = now
    }

    /// The committed tables, for a test to look at (or change, as a migration or an operator would).
    public var committed: Tables {
        get { tables.withLock { $0 } }
        set { tables.withLock { $0 = newValue } }
    }

    // MARK: Connections

    private func withConnection<Result>(_ body: () async throws -> Result) async throws -> Result {
        guard await connections.acquire(timeout: leaseTimeout) else {
            try Task.checkCancellation()
            throw PostgresError(code: .poolTimeout,
                reason: "no connection became free within \(leaseTimeout) (in-memory pool); a caller holding one "
                    + "may be waiting for a second")
        }
        defer { connections.release() }
        return try await body()
    }

    // MARK: ServiceStore

    public func transaction<Result: Sendable>(_ body: (any ServiceTransaction) async throws -> Result)
        async throws -> Result
    {
        try await withConnection {
            guard await transactionLock.acquire(timeout: nil) else { throw CancellationError() }
            defer { transactionLock.release() }
            try faults.before(.begin)
            let transaction = Transaction(store: self, tables: tables.withLock { $0 })
            let result = try await body(transaction)
            try faults.before(.commit)
            let written = transaction.tables.withLock { $0 }
            tables.withLock { $0 = written }
            if transaction.scheduledTimers.withLock({ $0 }) {
                for wake in timerWakeUps.withLock({ $0 }) { wake() }
            }
            try faults.after(.commit)
            return result
        }
    }

    public func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion] {
        try await withConnection {
            try faults.before(.playbookVersions)
            return tables.withLock { $0.playbooks.filter { $0.versionID > versionID } }
        }
    }

    public func registerPlaybook(id: String, checksum: String, source: String, model: [UInt8], triggers: [String])
        async throws -> (version: PlaybookVersion, created: Bool)
    {
        try await withConnection {
            try faults.before(.registerPlaybook)
            let now = now()
            return tables.withLock { tables in
                if let existing = tables.playbooks.first(where: { $0.playbookID == id && $0.checksum == checksum }) {
                    return (existing, false)
                }
                let version = PlaybookVersion(versionID: Int64(tables.playbooks.count + 1), playbookID: id,
                    checksum: checksum, source: source, model: model, triggers: triggers, registeredAt: now)
                tables.playbooks.append(version)
                return (version, true)
            }
        }
    }

    public func versionControls() async throws -> [Int64: VersionControl] {
        try await withConnection {
            try faults.before(.playbookVersions)
            return tables.withLock { $0.versionControls }
        }
    }

    public func controlPlaybook(_ playbookID: String, change: PlaybookControlChange, actor: String, reason: String?)
        async throws -> [Int64: VersionControl]
    {
        try await withConnection {
            try tables.withLock { tables in
                let versions = tables.playbooks.filter { $0.playbookID == playbookID }.map(\.versionID)
                let mine = tables.versionControls.filter { versions.contains($0.key) }
                if let problem = PlaybookControls.problem(change, playbookID: playbookID, versions: versions, controls: mine) {
                    throw problem
                }
                let changed = PlaybookControls.applying(change, to: mine)
                tables.versionControls.merge(changed) { _, new in new }
                return changed
            }
        }
    }

    public func databaseTimeMilliseconds() async throws -> Int64 {
        try await withConnection {
            try faults.before(.databaseTime)
            return now()
        }
    }

    public func ping() async -> Bool {
        (try? await databaseTimeMilliseconds()) != nil
    }

    public func writeCheckpoint(signingKey: AuditSigningKey, now: Int64,
        message: @Sendable (Store.WrittenCheckpoint) -> OutboxMessage) async throws -> Store.WrittenCheckpoint?
    {
        try await transaction { transaction in
            try faults.before(.writeCheckpoint)
            let transaction = transaction as! Transaction
            let heads = transaction.tables.withLock { tables -> [AuditCheckpoint.Head] in
                tables.headMoved.filter { $0.value > (tables.lastCheckpointAt ?? -1) }.keys.sorted().compactMap { run in
                    guard let head = tables.audit[run]?.last else { return nil }
                    return AuditCheckpoint.Head(run: run, seq: head.entry.sequence, hash: head.hash.hexString)
                }
            }
            guard !heads.isEmpty else { return nil }
            let checkpoint = AuditCheckpoint(keyID: signingKey.publicKey.keyID, heads: heads)
            let written = transaction.tables.withLock { tables in
                let written = Store.WrittenCheckpoint(id: Int64(tables.checkpoints.count + 1),
                    headCount: checkpoint.heads.count, digest: checkpoint.headsDigest,
                    signature: checkpoint.signature(signingKey: signingKey))
                tables.checkpoints.append(written)
                tables.lastCheckpointAt = self.now()
                return written
            }
            var batch = StoreBatch()
            batch.outbox = [message(written)]
            try await transaction.write(batch)
            return written
        }
    }

    public func pruneInbox(olderThanHours hours: Int) async throws -> Int {
        try await withConnection {
            try faults.before(.pruneInbox)
            let cutoff = now() - Int64(hours) * 3_600_000
            return tables.withLock { tables in
                let old = tables.inbox.filter { $0.value < cutoff }.keys
                for key in old { tables.inbox[key] = nil }
                return old.count
            }
        }
    }

    public func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [String] {
        try await withConnection {
            try faults.before(.activeRunIDs)
            return tables.withLock { tables in
                tables.runs.values
                    .filter { ($0.businessKey ?? $0.triggerEventID) == key && (playbook == nil || $0.playbookID == playbook) }
                    .filter { ["running", "paused"].contains($0.status) }
                    .sorted { ($0.createdAt, $0.runID) < ($1.createdAt, $1.runID) }
                    .prefix(100).map(\.runID)
            }
        }
    }

    public func gauges() async throws -> StoreGauges {
        try await withConnection {
            try faults.before(.gauges)
            let now = now()
            return tables.withLock { tables in
                let oldest = tables.outbox.values.map(\.message.createdAt).min()
                var byStatus: [String: Int] = [:]
                for run in tables.runs.values where RunStatus(rawValue: run.status)?.isFinished != true {
                    byStatus[run.status, default: 0] += 1
                }
                let open = tables.tasks.values.filter { $0.status == .dispatched }
                let red = open.count { $0.deadline.map { $0 <= now } ?? false }
                let yellow = open.count { task in
                    guard let warn = task.warnAt, let deadline = task.deadline else { return false }
                    return warn <= now && deadline > now
                }
                let green = open.count { task in
                    guard let warn = task.warnAt, task.deadline != nil else { return true }
                    return warn > now
                }
                return StoreGauges(outboxPending: tables.outbox.count,
                    outboxLagSeconds: oldest.map { Double(now - $0) / 1_000 } ?? 0, pendingTimers: tables.timers.count,
                    runsByStatus: byStatus, slaLights: (red, yellow, green))
            }
        }
    }

    // MARK: TimerNotifications

    /// Wakes `wake` after every commit that scheduled a timer, until the calling task is cancelled.
    public func listen(_ wake: @escaping @Sendable () -> Void) async {
        timerWakeUps.withLock { $0.append(wake) }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3_600))
        }
    }

    // MARK: Transactions

    /// One transaction: a copy of the tables, written back at commit.
    final class Transaction: ServiceTransaction, Sendable {
        let store: InMemoryStore
        let tables: Mutex<Tables>
        let scheduledTimers = Mutex(false)

        init(store: InMemoryStore, tables: Tables) {
            self.store = store
            self.tables = Mutex(tables)
        }

        func claimInbox(_ keys: [String]) async throws -> Set<String> {
            try store.faults.before(.claimInbox)
            let now = store.now()
            return tables.withLock { tables in
                var fresh = Set<String>()
                for key in keys where tables.inbox[key] == nil {
                    tables.inbox[key] = now
                    fresh.insert(key)
                }
                return fresh
            }
        }

        func lockRuns(_ ids: [String]) async throws -> [String: RunRow] {
            try store.faults.before(.lockRuns)
            return tables.withLock { tables in
                var runs: [String: RunRow] = [:]
                for id in ids { runs[id] = tables.runs[id] }
                return runs
            }
        }

        func lockRuns(_ ids: [String], maxBytes: Int) async throws -> (runs: [String: RunRow], leftOut: Set<String>) {
            try store.faults.before(.lockRuns)
            return tables.withLock { tables in
                var runs: [String: RunRow] = [:]
                var leftOut = Set<String>()
                var before = 0
                for id in Set(ids).sorted() {
                    guard let run = tables.runs[id] else { continue }
                    if before == 0 || before + run.state.count <= maxBytes {
                        runs[id] = run
                    } else {
                        leftOut.insert(id)
                    }
                    before += run.state.count
                }
                return (runs, leftOut)
            }
        }

        func claimDueTimers(limit: Int) async throws -> [TimerRow] {
            try store.faults.before(.claimDueTimers)
            let now = store.now()
            return tables.withLock { tables in
                let due = tables.timers.values.filter { $0.dueAt <= now }
                    .sorted { ($0.dueAt, $0.timerID) < ($1.dueAt, $1.timerID) }.prefix(limit)
                for timer in due { tables.timers[timer.timerID] = nil }
                return Array(due)
            }
        }

        func claimOutbox(limit: Int, partition: (index: Int, count: Int), maxBytes: Int) async throws
            -> [OutboxMessage]
        {
            try store.faults.before(.claimOutbox)
            let now = store.now()
            return tables.withLock { tables in
                let available = tables.outbox.values.filter { row in
                    row.availableAt <= now
                        && (partition.count == 1
                            || Self.share(row.message.correlationID ?? "", of: partition.count) == partition.index)
                }.sorted { $0.message.outboxID < $1.message.outboxID }.prefix(limit)
                var claimed: [OutboxMessage] = []
                var bytes = 0
                for row in available {
                    if !claimed.isEmpty, bytes + row.message.body.count > maxBytes { break }
                    bytes += row.message.body.count
                    claimed.append(row.message)
                }
                return claimed
            }
        }

        /// A stable share of the runs (PostgreSQL uses `hashtext`; any stable hash splits the runs the same way).
        static func share(_ key: String, of count: Int) -> Int {
            var hash: UInt64 = 14_695_981_039_346_656_037
            for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
            return Int(hash % UInt64(count))
        }

        func postponeTimer(_ timerID: String, seconds: Int) async throws {
            try store.faults.before(.postponeTimer)
            let now = store.now()
            tables.withLock { $0.timers[timerID]?.dueAt = now + Int64(seconds) * 1_000 }
        }

        func deleteOutbox(_ ids: [Int64]) async throws {
            try store.faults.before(.deleteOutbox)
            tables.withLock { tables in
                for id in ids { tables.outbox[id] = nil }
            }
        }

        func deferOutbox(_ ids: [Int64], error: String) async throws {
            try store.faults.before(.deferOutbox)
            let now = store.now()
            tables.withLock { tables in
                for id in ids {
                    guard var row = tables.outbox[id] else { continue }
                    let delay = min(300, 1 << min(row.message.attempts, 8))
                    row.message.attempts += 1
                    row.lastError = error
                    row.availableAt = now + Int64(delay) * 1_000
                    tables.outbox[id] = row
                }
            }
        }

        func write(_ batch: StoreBatch) async throws {
            try store.faults.before(.write)
            try Self.refuseNulCharacters(batch)
            for (name, check) in store.constraints.withLock({ $0 }) {
                if let run = batch.runs.first(where: { !check($0) }) {
                    throw PostgresError(code: .server, reason: "check constraint", sqlState: "23514",
                        serverMessage:
                            "new row for relation \"runs\" violates check constraint \"\(name)\" (\(run.runID))")
                }
            }
            try tables.withLock { tables in
                // Checked first, so a refused write leaves nothing half-written (a failed statement aborts
                // the whole PostgreSQL transaction, which the caller then rolls back).
                for stored in batch.audit {
                    let entry = stored.entry
                    if tables.audit[entry.runID]?.contains(where: { $0.entry.sequence == entry.sequence }) == true {
                        throw PostgresError(code: .server, reason: "duplicate audit entry", sqlState: "23505",
                            serverMessage: "duplicate key value violates unique constraint \"audit_log_pkey\"")
                    }
                }
                for run in batch.runs {
                    if var existing = tables.runs[run.runID] {
                        existing.status = run.status
                        existing.state = run.state.isEmpty ? Array("{}".utf8) : run.state
                        existing.auditSequence = run.auditSequence
                        existing.auditHead = run.auditHead
                        existing.updatedAt = run.updatedAt
                        existing.finishedAt = run.finishedAt
                        tables.runs[run.runID] = existing
                    } else {
                        var inserted = run
                        if inserted.state.isEmpty { inserted.state = Array("{}".utf8) }
                        tables.runs[run.runID] = inserted
                    }
                }
                for task in batch.dispatchedTasks where tables.tasks["\(task.taskID)#\(task.attempt)"] == nil {
                    var inserted = task
                    inserted.updatedAt = task.createdAt
                    tables.tasks["\(task.taskID)#\(task.attempt)"] = inserted
                }
                for change in batch.taskChanges {
                    guard var task = tables.tasks["\(change.taskID)#\(change.attempt)"] else { continue }
                    task.status = change.status
                    task.output = change.output
                    task.error = change.error
                    task.updatedAt = change.at
                    tables.tasks["\(change.taskID)#\(change.attempt)"] = task
                }
                for id in batch.cancelledTimers { tables.timers[id] = nil }
                for timer in batch.scheduledTimers {
                    if var existing = tables.timers[timer.timerID] {
                        existing.dueAt = timer.dueAt
                        existing.kind = timer.kind
                        tables.timers[timer.timerID] = existing
                    } else {
                        tables.timers[timer.timerID] = timer
                    }
                }
                for message in batch.outbox {
                    var row = message
                    row.outboxID = tables.nextOutboxID
                    row.attempts = 0
                    tables.nextOutboxID += 1
                    tables.outbox[row.outboxID] = OutboxRow(message: row, availableAt: message.createdAt)
                }
                for task in batch.pullTasks where tables.pullTasks["\(task.taskID)#\(task.attempt)"] == nil {
                    tables.pullTasks["\(task.taskID)#\(task.attempt)"] = task
                }
                for stored in batch.audit {
                    tables.audit[stored.entry.runID, default: []].append(stored)
                    tables.headMoved[stored.entry.runID] = stored.entry.at
                }
                for key in batch.releasedInboxKeys { tables.inbox[key] = nil }
                for (runID, resolution) in batch.resolvedRunIncidents {
                    for i in tables.incidents.indices where tables.incidents[i].runID == runID
                        && tables.incidents[i].holdsRun && tables.incidents[i].resolution == nil
                    {
                        tables.incidents[i].resolution = resolution
                    }
                }
                for incident in batch.incidents {
                    var row = incident
                    row.incidentID = Int64(tables.incidents.count + 1)
                    tables.incidents.append(row)
                }
            }
            if !batch.scheduledTimers.isEmpty { scheduledTimers.withLock { $0 = true } }
        }

        func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion] {
            try store.faults.before(.playbookVersions)
            return tables.withLock { $0.playbooks.filter { $0.versionID > versionID } }
        }

        /// PostgreSQL's jsonb cannot hold U+0000: the write fails with SQLSTATE 22P05, a data error.
        static func refuseNulCharacters(_ batch: StoreBatch) throws {
            let escaped = Array("\\u0000".utf8)
            func contains(_ bytes: [UInt8]) -> Bool {
                guard bytes.count >= escaped.count else { return false }
                return (0...(bytes.count - escaped.count)).contains {
                    bytes[$0..<($0 + escaped.count)].elementsEqual(escaped)
                }
            }
            let texts = batch.runs.map(\.state) + batch.audit.map { $0.entry.data.canonicalEncoding }
                + batch.taskChanges.compactMap { $0.output?.canonicalEncoding }
            if texts.contains(where: contains) {
                throw PostgresError(code: .server, reason: "unsupported Unicode escape sequence", sqlState: "22P05",
                    serverMessage: "unsupported Unicode escape sequence: \\u0000 cannot be converted to text.")
            }
        }
    }
}
