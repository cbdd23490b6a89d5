internal import ActAMQP
public import ActEngine
public import ActPlaybook
internal import ActPostgres
public import ActStore
internal import Crypto
internal import Foundation
public import Logging
internal import Synchronization
internal import ActThreads

/// The core of `hms-act serve`: applies batches of inputs in one transaction each, registers playbooks,
/// and knows the catalog and the agents. Consumers, the timer scanner and the HTTP API all go through
/// ``apply(_:)``, so every path has the same guarantees: inbox dedup, per-run row locks, one commit for
/// state, tasks, timers, outbox and audit, and acks only after that commit.
public final class Orchestrator: Sendable {
    /// The database (``ServiceStore``: PostgreSQL in production, in memory in unit tests).
    public let store: any ServiceStore
    /// The broker (``MessageBroker``: RabbitMQ in production, in memory in unit tests).
    public let broker: any MessageBroker
    public let configuration: ServiceConfiguration
    let logger: Logger
    let clock: @Sendable () -> Instant
    /// How the services wait between retries and polls (unit tests pass one that does not wait).
    let sleep: @Sendable (Duration) async throws -> Void
    /// The clock `clock` reads when it follows the database (housekeeping keeps it in step).
    let databaseClock: DatabaseClock?
    private let state: Mutex<State>
    /// States this replica committed last (see ``RunStateCache``).
    private let stateCache = Mutex(RunStateCache())
    /// Wakes the outbox relay after a commit that wrote outbox rows.
    let outboxSignal = Signal()
    /// What the services report about their own progress, for readiness.
    public let health = ServiceHealth()
    /// Which `call:` steps this replica's ``HTTPCaller`` performs (from ``ServiceConfiguration/calls``).
    let callScope: CallScope
    /// Wakes the HTTP caller after a commit that dispatched a `call:` it performs.
    let callSignal = Signal()
    /// The agents with a `rate_limit`, by id (what the outbox relays hold tasks back for); the agents are fixed
    /// at start, so this is read once, not on every relay claim.
    let rateLimits: [String: RateLimit]
    /// Where the spans of committed batches go (``RunSpans``); `nil`: tracing is off and no span is made.
    public let spanExporter: SpanExporter?

    struct State {
        var catalog = PlaybookCatalog()
        var agents: [Agent] = []
        var lastVersionID: Int64 = 0
    }

    public init(store: any ServiceStore, broker: any MessageBroker, configuration: ServiceConfiguration, agents: [Agent],
        logger: Logger, clock: @escaping @Sendable () -> Instant = Orchestrator.wallClock,
        databaseClock: DatabaseClock? = nil, spanExporter: SpanExporter? = nil,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) })
    {
        self.spanExporter = spanExporter
        self.databaseClock = databaseClock
        self.sleep = sleep
        self.store = store
        self.broker = broker
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.state = Mutex(State(agents: agents))
        var limits: [String: RateLimit] = [:]
        for agent in agents { if let limit = agent.rateLimit { limits[agent.id.rawValue] = limit } }
        self.rateLimits = limits
        // `validate()` has checked the settings; a configuration that skipped it performs no calls.
        self.callScope = (try? configuration.calls.scope()) ?? .none
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
                engine: EngineConfiguration(agents: state.agents, slaWarningFraction: configuration.engine.slaWarningFraction,
                    calls: callScope, signalRetention: .hours(Int64(configuration.engine.signalRetentionHours)),
                    onFailure: FailurePolicy(rawValue: configuration.engine.onFailure) ?? .fail,
                    maxPlaybookDepth: configuration.engine.maxPlaybookDepth,
                    maxForEachItems: configuration.engine.maxForEachItems),
                messages: OutboundMessages(exchanges: configuration.amqp.exchanges,
                    taskContextBytes: configuration.engine.taskContextBytes))
        }
    }

    // MARK: Catalog

    /// Loads playbook versions registered since the last refresh, and the operators' controls (pins,
    /// deprecated and disabled versions), which housekeeping thereby reloads every second.
    @discardableResult
    public func refreshCatalog() async throws -> Int {
        let versions = try await store.playbookVersions(after: state.withLock { $0.lastVersionID })
        for version in versions { try insert(version) }
        let controls = try await store.versionControls()
        state.withLock { $0.catalog.setControls(controls) }
        return versions.count
    }

    /// Makes an operator's change to a playbook's versions (``Store/controlPlaybook(_:change:actor:reason:)``)
    /// and applies it to this replica's catalog at once; the others take it within a second.
    ///
    /// - Throws: ``PlaybookControls/Problem`` when the rules refuse it.
    public func controlPlaybook(_ playbookID: String, change: PlaybookControlChange, actor: String, reason: String?)
        async throws
    {
        try await store.controlPlaybook(playbookID, change: change, actor: actor, reason: reason)
        logger.notice("playbook version control changed", metadata: [
            "playbook": "\(playbookID)", "action": "\(change.action)", "version": "\(change.version.map(String.init) ?? "-")",
            "actor": "\(actor)",
        ])
        try await refreshCatalog()
    }

    /// Loads playbook versions registered since the last refresh on the transaction's own connection: a
    /// batch holding a connection never waits for a second one (enough concurrent batches would take
    /// every connection of the pool and wait for each other).
    private func refreshCatalog(in transaction: any ServiceTransaction) async throws {
        let versions = try await transaction.playbookVersions(after: state.withLock { $0.lastVersionID })
        for version in versions { try insert(version) }
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
            bindings: (try? configuration.triggerBindings()) ?? [:], agents: agents, store: store, logger: logger)
        try insert(registration.version)
        try await bindTriggers(registration.version.triggers)
        return registration
    }

    /// Binds the trigger queue to each event type (bindings are durable; repeating one is harmless).
    func bindTriggers(_ types: [String]) async throws {
        let amqp = configuration.amqp
        try await broker.bind(types.map {
            AMQPTopology.Binding(queue: amqp.queues.triggers, exchange: amqp.exchanges.events, routingKey: $0)
        })
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
            if case .start(let id, _) = $0 { return catalog.currentEntry(playbookID: id) == nil }
            return false
        }) {
            try await refreshCatalog()
        }
        let started = DispatchTime.now().uptimeNanoseconds
        var spanStart = spanExporter == nil ? 0 : SpanData.now()
        // Usually one transaction; more when the runs' states add up to more than engine.batch_state_bytes.
        var outcomes = [BatchOutcome?](repeating: nil, count: inputs.count)
        var runsStarted: [RunID] = []
        var runsFinished: [RunID: RunStatus] = [:]
        var pending = Array(inputs.indices)
        while !pending.isEmpty {
            let batch = pending.map { inputs[$0] }
            let (plan, applied) = try await store.transaction { transaction in
                try await self.apply(batch, claimTimers: 0, in: transaction)
            }
            for (position, outcome) in zip(applied, plan.outcomes) { outcomes[pending[position]] = outcome }
            runsStarted += plan.started
            runsFinished.merge(plan.finished) { _, last in last }
            record(plan)
            if spanExporter != nil {
                export(plan, inputs: applied.map { batch[$0] }, start: spanStart, source: "messages")
                spanStart = SpanData.now()
            }
            let done = Set(applied)
            pending = pending.enumerated().filter { !done.contains($0.offset) }.map(\.element)
        }
        ServiceMetrics.batch(source: "messages", size: inputs.count,
            nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        return Applied(outcomes: outcomes.map { $0! }, started: runsStarted, finished: runsFinished)
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

        /// How many timers a transaction claimed.
        final class Count: Sendable {
            private let count = Mutex(0)
            var value: Int {
                get { count.withLock { $0 } }
                set { count.withLock { $0 = newValue } }
            }
        }
    }

    /// - Returns: How many timers were claimed (some may have been put back to bound the batch's bytes).
    private func fireDueTimersOnce(limit: Int, claimed: TimerClaim?) async throws -> Int {
        let count = TimerClaim.Count()
        let spanStart = spanExporter == nil ? 0 : SpanData.now()
        let (plan, _) = try await store.transaction { transaction in
            try await self.apply([], claimTimers: limit, in: transaction) { timers in
                claimed?.timer = timers.first
                count.value = timers.count
            }
        }
        if !plan.outcomes.isEmpty {
            ServiceMetrics.timersFired(count: plan.outcomes.count)
            record(plan)
            if spanExporter != nil { export(plan, inputs: [], start: spanStart, source: "timers") }
        }
        return count.value
    }

    /// Postpones a timer that cannot be applied, with an incident saying why.
    private func postpone(_ timer: TimerRow, reason: String) async throws {
        logger.error("a timer cannot be applied; postponed by an hour", metadata: [
            "run.id": "\(timer.runID)", "timer.id": "\(timer.timerID)", "timer.kind": "\(timer.kind)", "error": "\(reason)",
        ])
        try await store.transaction { transaction in
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

    /// Applies what fits of `inputs` (plus up to `claimTimers` due timers) in `transaction`.
    ///
    /// The runs the inputs touch are locked in run-id order, but their states are loaded only while their
    /// sizes add up to `engine.batch_state_bytes` (the first always), so a batch of results for runs that
    /// carry megabytes of payload and outputs cannot exhaust memory. An input touching a run left out waits
    /// for the caller's next transaction, and so does every later input touching one of its runs, which
    /// keeps each run's inputs in order; a claimed timer left out is put back as it was.
    ///
    /// - Returns: The plan, and the positions in `inputs` it applied (claimed timers follow the inputs).
    func apply(_ inputs: [BatchInput], claimTimers: Int, in transaction: any ServiceTransaction,
        onClaim: ([TimerRow]) -> Void = { _ in }) async throws -> (plan: BatchPlanner.Plan, applied: [Int])
    {
        var inputs = inputs
        var claimedTimers: [TimerRow] = []
        if claimTimers > 0 {
            claimedTimers = try await transaction.claimDueTimers(limit: claimTimers)
            onClaim(claimedTimers)
            inputs += claimedTimers.map { .timer($0) }
        }
        guard !inputs.isEmpty else { return (BatchPlanner.Plan(), []) }
        var planner = self.planner
        let touched = inputs.map { $0.runIDs(catalog: planner.catalog).map(\.rawValue) }
        var (runs, leftOut) = try await transaction.lockRuns(touched.flatMap { $0 },
            maxBytes: configuration.engine.batchStateBytes)
        var blocked = leftOut
        var chosen: [Int] = []
        for (position, ids) in touched.enumerated() {
            if ids.contains(where: blocked.contains) {
                blocked.formUnion(ids)
            } else {
                chosen.append(position)
            }
        }
        if chosen.isEmpty {
            // The first input's runs alone are over the bound: load them anyway (they are locked already).
            runs.merge(try await transaction.lockRuns(touched[0])) { _, loaded in loaded }
            chosen = [0]
        }
        let putBack = inputs.indices.filter { !chosen.contains($0) }.compactMap { position -> TimerRow? in
            if case .timer(let timer) = inputs[position] { return timer }
            return nil
        }
        if !putBack.isEmpty {
            var batch = StoreBatch()
            batch.scheduledTimers = putBack
            try await transaction.write(batch)
        }

        var items = chosen.map { BatchPlanner.Item(inputs[$0]) }
        let fresh = try await transaction.claimInbox(items.compactMap(\.input.inboxKey))
        // The same key twice in one batch: only its first occurrence is fresh.
        var seen = Set<String>()
        for index in items.indices {
            guard let key = items[index].input.inboxKey else { continue }
            items[index].fresh = fresh.contains(key) && seen.insert(key).inserted
        }
        // Runs of versions registered by another replica since this one loaded its catalog.
        if runs.values.contains(where: { planner.catalog.byVersion[$0.versionID] == nil }) {
            try await refreshCatalog(in: transaction)
            planner = self.planner
        }
        let known = stateCache.withLock { $0.states(matching: runs) }
        let now = clock()
        let plan = try planner.plan(items, runs: runs, knownStates: known, now: now)
        try await transaction.write(plan.batch)
        Failpoint.midBatch.pass()
        Failpoint.duringBreach.pass(when: plan.emitted.contains { $0.kind == .slaViolation })
        Failpoint.duringCompensation.pass(when: plan.emitted.contains { $0.kind == .stepStarted && $0.isCompensation })
        if !plan.concurrency.isEmpty {
            // After the batch's rows: a new run's slot row refers to it.
            let outcome = try await transaction.applyConcurrency(plan.concurrency)
            var timers = StoreBatch()
            timers.scheduledTimers = BatchPlanner.Planning.concurrencyTimers(outcome, now: now)
            if !timers.scheduledTimers.isEmpty { try await transaction.write(timers) }
        }
        return (plan, chosen)
    }

    /// After commit: wakes the relay, remembers the new states, counts runs.
    func record(_ plan: BatchPlanner.Plan) {
        stateCache.withLock { $0.record(plan.batch.runs, states: plan.states) }
        if !plan.batch.outbox.isEmpty { outboxSignal.signal() }
        if plan.batch.pullTasks.contains(where: { $0.assignee == PullTask.httpCaller }) { callSignal.signal() }
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
            if event.kind == .runFailed || event.kind == .incidentOpened { logFailure(event, in: plan) }
        }
        for incident in plan.batch.incidents {
            ServiceMetrics.incidents(kind: incident.kind)
        }
    }

    /// A run that failed or waits for an operator, logged with its trace id, so the line is found from the
    /// trace and the trace from the line.
    private func logFailure(_ event: GovernanceEvent, in plan: BatchPlanner.Plan) {
        var metadata: Logger.Metadata = ["run.id": "\(event.run.rawValue)", "playbook": "\(event.playbook.rawValue)"]
        if let step = event.step { metadata["step.id"] = "\(step.rawValue)" }
        if let detail = event.detail { metadata["detail"] = "\(detail)" }
        if let run = plan.batch.runs.first(where: { $0.runID == event.run.rawValue }) {
            metadata["trace_id"] = "\(run.traceID)"
        }
        logger.warning(event.kind == .runFailed ? "run failed" : "incident opened: the run waits for an operator",
            metadata: metadata)
    }

    /// After commit, with tracing on: the batch's spans to the exporter.
    private func export(_ plan: BatchPlanner.Plan, inputs: [BatchInput], start: UInt64, source: String) {
        guard let spanExporter else { return }
        let builder = RunSpans(exchanges: configuration.amqp.exchanges, schema: configuration.postgres.schema)
        spanExporter.submit(builder.spans(inputs: inputs, plan: plan, start: start, end: SpanData.now(),
            source: source, batchIDs: (SpanData.randomTraceID(), SpanData.randomSpanID())))
    }

    // MARK: Health

    /// Whether PostgreSQL answers and the broker has a live connection. (A consumer stuck retrying shows
    /// in ``health`` too.)
    public func readiness() async -> (postgres: Bool, amqp: Bool) {
        async let postgres = store.ping()
        let amqp = await broker.isConnected()
        return (await postgres, amqp)
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
