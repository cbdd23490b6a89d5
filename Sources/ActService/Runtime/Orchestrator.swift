public import ActAMQP
public import ActEngine
public import ActPlaybook
internal import ActPostgres
public import ActStore
internal import Crypto
internal import Foundation
public import Logging
internal import Synchronization

/// The core of `hms-act serve`: applies batches of inputs in one transaction each, registers playbooks,
/// and knows the catalog and the agents. Consumers, the timer scanner and the HTTP API all go through
/// ``apply(_:)``, so every path has the same guarantees: inbox dedup, per-run row locks, one commit for
/// state, tasks, timers, outbox and audit, and acks only after that commit.
public final class Orchestrator: Sendable {
    public let store: Store
    public let broker: AMQPClient
    public let configuration: ServiceConfiguration
    let logger: Logger
    let clock: @Sendable () -> Instant
    /// The clock `clock` reads when it follows the database (housekeeping keeps it in step).
    let databaseClock: DatabaseClock?
    private let state: Mutex<State>
    /// States this replica committed last (see ``RunStateCache``).
    private let stateCache = Mutex(RunStateCache())
    /// Wakes the outbox relay after a commit that wrote outbox rows.
    let outboxSignal = Signal()
    /// What the services report about their own progress, for readiness.
    public let health = ServiceHealth()

    struct State {
        var catalog = PlaybookCatalog()
        var agents: [Agent] = []
        var lastVersionID: Int64 = 0
    }

    public init(store: Store, broker: AMQPClient, configuration: ServiceConfiguration, agents: [Agent], logger: Logger,
        clock: @escaping @Sendable () -> Instant = Orchestrator.wallClock, databaseClock: DatabaseClock? = nil)
    {
        self.databaseClock = databaseClock
        self.store = store
        self.broker = broker
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.state = Mutex(State(agents: agents))
    }

    /// Milliseconds since the epoch from the system clock.
    public static let wallClock: @Sendable () -> Instant = {
        Instant(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }

    /// The time deadlines and SLA lights are computed on (PostgreSQL's clock, see ``DatabaseClock``).
    public func now() -> Instant { clock() }

    public var catalog: PlaybookCatalog { state.withLock { $0.catalog } }
    public var agents: [Agent] { state.withLock { $0.agents } }

    var planner: BatchPlanner {
        state.withLock { state in
            BatchPlanner(catalog: state.catalog,
                engine: EngineConfiguration(agents: state.agents, slaWarningFraction: configuration.engine.slaWarningFraction),
                messages: OutboundMessages(exchanges: configuration.amqp.exchanges,
                    taskContextBytes: configuration.engine.taskContextBytes))
        }
    }

    // MARK: Catalog

    /// Loads playbook versions registered since the last call (by any replica).
    @discardableResult
    public func refreshCatalog() async throws -> Int {
        let after = state.withLock { $0.lastVersionID }
        let versions = try await store.playbookVersions(after: after)
        for version in versions { try insert(version) }
        return versions.count
    }

    private func insert(_ version: PlaybookVersion) throws {
        let playbook = try JSONDecoder().decode(Playbook.self, from: Data(version.model))
        state.withLock { state in
            state.catalog.insert(version: version, playbook: playbook)
            state.lastVersionID = max(state.lastVersionID, version.versionID)
        }
    }

    /// Validates and registers a playbook; binds its triggers on the events exchange.
    ///
    /// - Parameter extraTriggers: Event types to bind in addition to the playbook's own (`--trigger`).
    /// - Throws: ``PlaybookLoadError`` listing every problem (nothing is stored then), or a store/broker error.
    public func register(source: String, file: String?, extraTriggers: [String] = []) async throws -> PlaybookRegistrar.Registration {
        let registration = try await PlaybookRegistrar.register(source: source, file: file, extraTriggers: extraTriggers,
            agents: agents, store: store, logger: logger)
        try insert(registration.version)
        try await bindTriggers(registration.version.triggers)
        return registration
    }

    /// Binds the trigger queue to each event type (bindings are durable; repeating one is harmless).
    func bindTriggers(_ types: [String]) async throws {
        guard !types.isEmpty else { return }
        let amqp = configuration.amqp
        try await broker.withConnection { connection in
            for type in types {
                try await connection.bind(AMQPTopology.Binding(queue: amqp.queues.triggers, exchange: amqp.exchanges.events,
                    routingKey: type))
            }
        }
    }

    // MARK: Applying

    /// The result of one batch.
    public struct Applied: Sendable {
        public var outcomes: [BatchOutcome]
        public var started: [RunID]
        public var finished: [RunID: RunStatus]
    }

    /// Applies inputs in one transaction: inbox claim, run locks, engine, writes, commit.
    ///
    /// - Returns: What became of each input, in order. Nothing is acknowledged before this returns.
    /// - Throws: Store errors; the transaction is then rolled back and nothing was applied.
    public func apply(_ inputs: [BatchInput]) async throws -> Applied {
        guard !inputs.isEmpty else { return Applied(outcomes: [], started: [], finished: [:]) }
        // A trigger nobody here knows may belong to a playbook another replica registered.
        let catalog = self.catalog
        if inputs.contains(where: {
            if case .trigger(let event) = $0 { return catalog.entries(forTrigger: event.type).isEmpty }
            if case .start(let id, _) = $0 { return catalog.latestEntry(playbookID: id) == nil }
            return false
        }) {
            try await refreshCatalog()
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let plan = try await store.withTransaction { transaction in
            try await self.apply(inputs.map { BatchPlanner.Item($0) }, claimTimers: 0, in: transaction)
        }
        ServiceMetrics.batch(source: "messages", size: inputs.count,
            nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        record(plan)
        return Applied(outcomes: plan.outcomes, started: plan.started, finished: plan.finished)
    }

    /// Claims and applies up to `limit` due timers in one transaction.
    ///
    /// When PostgreSQL refuses what a timer produces (``ApplyFailure/permanent(reason:)``), the timers are
    /// applied one by one instead: each that fails is postponed by an hour with a `poison_timer` incident,
    /// so one run's bad data never stops every other run's SLAs and waits.
    ///
    /// - Returns: How many timers were claimed (a full batch means more may be due).
    public func fireDueTimers(limit: Int) async throws -> Int {
        do {
            return try await fireDueTimersOnce(limit: limit, claimed: nil)
        } catch {
            guard case .permanent = ApplyFailure(error) else { throw error }
        }
        var fired = 0
        while fired < limit {
            let claimed = TimerClaim()
            do {
                guard try await fireDueTimersOnce(limit: 1, claimed: claimed) == 1 else { break }
            } catch {
                guard case .permanent(let reason) = ApplyFailure(error), let timer = claimed.timer else {
                    throw error
                }
                try await postpone(timer, reason: reason)
            }
            fired += 1
        }
        return fired
    }

    /// The timer a one-timer transaction claimed, kept after it rolled back.
    private final class TimerClaim: Sendable {
        private let row = Mutex<TimerRow?>(nil)
        var timer: TimerRow? {
            get { row.withLock { $0 } }
            set { row.withLock { $0 = newValue } }
        }
    }

    private func fireDueTimersOnce(limit: Int, claimed: TimerClaim?) async throws -> Int {
        let plan = try await store.withTransaction { transaction in
            try await self.apply([], claimTimers: limit, in: transaction) { timers in
                claimed?.timer = timers.first
            }
        }
        if !plan.outcomes.isEmpty {
            ServiceMetrics.timersFired(count: plan.outcomes.count)
            record(plan)
        }
        return plan.outcomes.count
    }

    /// Postpones a timer that cannot be applied, with an incident saying why.
    private func postpone(_ timer: TimerRow, reason: String) async throws {
        logger.error("a timer cannot be applied; postponed by an hour", metadata: [
            "run.id": "\(timer.runID)", "timer.id": "\(timer.timerID)", "timer.kind": "\(timer.kind)", "error": "\(reason)",
        ])
        try await store.withTransaction { transaction in
            try await transaction.postponeTimer(timer.timerID, seconds: 3_600)
            var batch = StoreBatch()
            batch.incidents = [Incident(kind: "poison_timer", runID: timer.runID, detail: [
                "timer_id": .string(timer.timerID), "kind": .string(timer.kind), "reason": .string(reason),
                "fix": .string("the timer fires again in an hour; fix the run's data (or cancel the run) before then"),
            ], createdAt: clock().millisecondsSinceEpoch)]
            try await transaction.write(batch)
        }
        ServiceMetrics.incidents(kind: "poison_timer")
    }

    private func apply(_ items: [BatchPlanner.Item], claimTimers: Int, in transaction: StoreTransaction,
        onClaim: ([TimerRow]) -> Void = { _ in }) async throws -> BatchPlanner.Plan
    {
        var items = items
        if claimTimers > 0 {
            let timers = try await transaction.claimDueTimers(limit: claimTimers)
            onClaim(timers)
            items += timers.map { BatchPlanner.Item(.timer($0)) }
        }
        guard !items.isEmpty else { return BatchPlanner.Plan() }
        let keys = items.compactMap(\.input.inboxKey)
        let fresh = try await transaction.claimInbox(keys)
        // The same key twice in one batch: only its first occurrence is fresh.
        var seen = Set<String>()
        for index in items.indices {
            guard let key = items[index].input.inboxKey else { continue }
            items[index].fresh = fresh.contains(key) && seen.insert(key).inserted
        }
        var planner = self.planner
        let runIDs = items.filter(\.fresh).flatMap { $0.input.runIDs(catalog: planner.catalog) }.map(\.rawValue)
        let runs = try await transaction.lockRuns(runIDs)
        // Runs of versions registered by another replica since this one loaded its catalog.
        if runs.values.contains(where: { planner.catalog.byVersion[$0.versionID] == nil }) {
            try await refreshCatalog()
            planner = self.planner
        }
        let known = stateCache.withLock { $0.states(matching: runs) }
        let plan = planner.plan(items, runs: runs, knownStates: known, now: clock())
        try await transaction.write(plan.batch)
        return plan
    }

    /// After commit: wakes the relay, remembers the new states, counts runs.
    private func record(_ plan: BatchPlanner.Plan) {
        stateCache.withLock { $0.record(plan.batch.runs, states: plan.states) }
        if !plan.batch.outbox.isEmpty { outboxSignal.signal() }
        for run in plan.batch.runs where plan.started.contains(RunID(run.runID)) {
            ServiceMetrics.runStarted(playbook: run.playbookID)
        }
        for run in plan.batch.runs {
            if let status = plan.finished[RunID(run.runID)] {
                ServiceMetrics.runFinished(playbook: run.playbookID, status: status.rawValue)
            }
        }
        for event in plan.emitted {
            ServiceMetrics.governance(event)
        }
    }

    // MARK: Health

    /// Whether PostgreSQL answers and the broker has a live connection. (A consumer stuck retrying shows
    /// in ``health`` too.)
    public func readiness() async -> (postgres: Bool, amqp: Bool) {
        async let postgres = store.ping()
        let amqp: Bool
        do {
            amqp = try await broker.withConnection { connection in await connection.isOpen }
        } catch {
            amqp = false
        }
        return (await postgres, amqp)
    }
}

/// A level-triggered wake-up between tasks: ``signal()`` sets it, ``wait(timeout:)`` returns at once when
/// set (and clears it) or when signalled, or after the timeout.
final class Signal: Sendable {
    private struct State {
        var isSet = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isSet = true
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits for a signal, at most `timeout`. Cancellation ends the wait too.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let ready = self.state.withLock { state -> Bool in
                            if state.isSet {
                                state.isSet = false
                                return true
                            }
                            state.waiters.append(continuation)
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    self.signal()
                }
            }
            await group.next()
            group.cancelAll()
            self.state.withLock { $0.isSet = false }
        }
    }
}

/// Progress the services report: which consumers are retrying a batch that cannot commit yet. Readiness is
/// false while any is, so a replica that cannot make progress is taken out of the Service and shows on
/// `/readyz`, besides `hms_act_consumer_retrying` and its alert.
public final class ServiceHealth: Sendable {
    private let retrying = Mutex<Set<String>>([])

    public init() {}

    /// Queues whose consumer is retrying now.
    public var retryingQueues: [String] { retrying.withLock { $0.sorted() } }

    func consumer(_ queue: String, retrying isRetrying: Bool) {
        retrying.withLock { queues in
            if isRetrying { queues.insert(queue) } else { queues.remove(queue) }
        }
        ServiceMetrics.consumerRetrying(queue: queue, isRetrying)
    }
}
