public import ActEngine
public import ActService
public import ActPlaybook
public import ActStore

/// The real control plane: the orchestrator applies inputs, the PostgreSQL store answers the queries.
public struct LiveControlPlane: ControlPlane {
    let orchestrator: Orchestrator
    let store: Store

    public init(orchestrator: Orchestrator, store: Store) {
        self.orchestrator = orchestrator
        self.store = store
    }

    private var catalog: PlaybookCatalog { orchestrator.catalog }

    public func submit(_ inputs: [BatchInput]) async throws -> [SubmissionResult] {
        let applied = try await orchestrator.apply(inputs)
        let catalog = self.catalog  // refreshed by `apply` when an input named a playbook it did not know
        return zip(inputs, applied.outcomes).map { input, outcome in
            switch outcome {
            case .applied, .ignored: SubmissionResult(outcome: outcome, runs: input.runIDs(catalog: catalog))
            case .rejected, .forbidden: SubmissionResult(outcome: outcome, runs: [])
            }
        }
    }

    public func listRuns(_ filter: RunFilter, after: String?, limit: Int) async throws -> API.RunPage {
        let page = try await store.listRuns(filter, after: after, limit: limit)
        return API.RunPage(runs: page.runs.map(API.RunSummary.init), next: page.nextCursor)
    }

    public func runSummary(id: RunID) async throws -> API.RunSummary? {
        try await store.run(id: id.rawValue).map(API.RunSummary.init)
    }

    public func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [RunID] {
        try await store.activeRunIDs(correlationKey: key, playbook: playbook).map(RunID.init)
    }

    public func runID(traceID: String) async throws -> RunID? {
        try await store.runID(traceID: traceID).map(RunID.init)
    }

    public func runDetail(id: RunID) async throws -> API.RunDetail? {
        guard let row = try await store.run(id: id.rawValue) else { return nil }
        if catalog.byVersion[row.versionID] == nil { try await orchestrator.refreshCatalog() }
        async let tasks = store.tasks(ofRun: row.runID)
        async let audit = store.auditTrail(runID: row.runID)
        return try API.RunDetail(row: row, playbook: catalog.byVersion[row.versionID]?.playbook, tasks: try await tasks,
            audit: try await audit, slaWarningFraction: orchestrator.configuration.engine.slaWarningFraction,
            now: orchestrator.now())
    }

    public func listOpenTasks(assignee: String?, order: Store.InboxOrder, after: String?, limit: Int) async throws
        -> API.TaskPage
    {
        let page = try await store.openTaskPage(assignee: assignee, order: order, after: after, limit: limit)
        return API.TaskPage(tasks: page.tasks.map(API.Task.init), next: page.next)
    }

    public func latestTaskAttempt(id: TaskID) async throws -> API.Task? {
        try await store.latestAttempt(taskID: id.rawValue).map(API.Task.init)
    }

    public func claimTasks(agent: String, limit: Int, lease: Duration, wait: Duration) async throws -> [API.ClaimedTask] {
        let leaseID = LeaseID.make()
        try await store.prunePullTasks(assignee: agent)
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        while true {
            let claimed = try await store.claimPullTasks(assignee: agent, limit: limit, leaseID: leaseID,
                leaseMilliseconds: lease.wholeMilliseconds)
            if !claimed.isEmpty || clock.now >= deadline {
                return try claimed.map { claim in
                    API.ClaimedTask(message: try JSONValue(parsing: claim.task.body), leaseID: claim.leaseID,
                        leaseExpiresAt: API.timestamp(claim.leaseExpiresAt), claims: claim.claims)
                }
            }
            // A long poll: pull tasks are few and their pollers fewer, so a claim every 250 ms is cheap.
            try await Task.sleep(for: min(.milliseconds(250), deadline - clock.now))
        }
    }

    public func extendLease(taskID: TaskID, attempt: Int, leaseID: String, lease: Duration) async throws -> API.Lease? {
        try await store.extendPullLease(taskID: taskID.rawValue, attempt: attempt, leaseID: leaseID,
            leaseMilliseconds: lease.wholeMilliseconds).map {
            API.Lease(taskID: taskID.rawValue, attempt: attempt, leaseID: leaseID, leaseExpiresAt: API.timestamp($0))
        }
    }

    public func lease(taskID: TaskID, attempt: Int) async throws -> API.LeaseState? {
        try await store.pullLease(taskID: taskID.rawValue, attempt: attempt).map(API.LeaseState.init)
    }

    public func registerPlaybook(source: String, file: String?, triggers: [String]) async throws
        -> API.PlaybookRegistration
    {
        let registration = try await orchestrator.register(source: source, file: file, extraTriggers: triggers)
        return API.PlaybookRegistration(version: registration.version, created: registration.created,
            warnings: registration.warnings)
    }

    public func listPlaybooks() async throws -> [API.PlaybookSummary] {
        try await orchestrator.refreshCatalog()
        let catalog = self.catalog
        return catalog.latest.keys.sorted().compactMap { id in
            (catalog.currentEntry(playbookID: id) ?? catalog.latestEntry(playbookID: id))
                .map { API.PlaybookSummary(version: $0.version, playbook: $0.playbook) }
        }
    }

    public func playbookVersions(id: String) async throws -> API.PlaybookVersions? {
        try await orchestrator.refreshCatalog()
        let catalog = self.catalog
        let versions = (catalog.versions[id] ?? []).compactMap { catalog.byVersion[$0]?.version }
        guard !versions.isEmpty else { return nil }
        return API.PlaybookVersions(playbookID: id, versions: versions, current: catalog.current[id],
            rows: try await store.playbookControls(playbookID: id), log: try await store.playbookControlLog(playbookID: id, limit: 20))
    }

    public func controlPlaybook(id: String, change: PlaybookControlChange, actor: String, reason: String?) async throws {
        try await orchestrator.controlPlaybook(id, change: change, actor: actor, reason: reason)
    }

    public func playbookDetail(id: String) async throws -> API.PlaybookDetail? {
        try await orchestrator.refreshCatalog()
        guard let entry = catalog.currentEntry(playbookID: id) ?? catalog.latestEntry(playbookID: id) else { return nil }
        return API.PlaybookDetail(summary: API.PlaybookSummary(version: entry.version, playbook: entry.playbook),
            source: entry.version.source)
    }

    public func listAgents() async throws -> [API.Agent] {
        let instant = orchestrator.now()
        return orchestrator.agents.sorted { $0.id < $1.id }.map { API.Agent($0, now: instant) }
    }

    public func listIncidents(status: String, runID: String?, kind: String?, before: Int64?, limit: Int)
        async throws -> API.IncidentPage
    {
        let rows = try await store.listIncidents(status: Store.IncidentStatus(rawValue: status) ?? .open, runID: runID,
            kind: kind, before: before, limit: limit + 1)
        let page = rows.prefix(limit).map(API.Incident.init)
        return API.IncidentPage(incidents: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }

    public func incident(id: Int64) async throws -> API.Incident? {
        try await store.incident(id: id).map(API.Incident.init)
    }

    public func resolveIncident(id: Int64, actor: String, reason: String?) async throws -> Bool {
        try await store.resolveIncident(id: id, actor: actor, note: reason)
    }

    public func listDeadLetters(status: String?, before: Int64?, limit: Int) async throws -> API.DeadLetterPage {
        let rows = try await store.listDeadLetters(status: status.flatMap(DeadLetter.Status.init(rawValue:)),
            before: before, limit: limit + 1)
        let page = rows.prefix(limit).map(API.DeadLetter.init)
        return API.DeadLetterPage(deadLetters: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }

    public func createBulkOperation(_ operation: BulkOperation) async throws -> API.BulkOperation {
        API.BulkOperation(try await store.createBulkOperation(operation))
    }

    public func listBulkOperations(state: BulkOperation.State?, limit: Int) async throws -> [API.BulkOperation] {
        try await store.listBulkOperations(state: state, limit: limit).map(API.BulkOperation.init)
    }

    public func bulkOperation(id: Int64) async throws -> API.BulkOperation? {
        try await store.bulkOperation(id: id).map(API.BulkOperation.init)
    }

    public func planMigration(from: Int64, to: Int64, mapping: [StepID: StepID]) async throws -> API.MigrationPlan? {
        if catalog.byVersion[from] == nil || catalog.byVersion[to] == nil { try await orchestrator.refreshCatalog() }
        guard let old = catalog.byVersion[from], let new = catalog.byVersion[to] else { return nil }
        var runs: [(runID: String, state: [UInt8])] = []
        var after: String?
        while true {
            let page = try await store.activeRuns(versionID: from, after: after, limit: 1_000)
            runs += page
            guard page.count == 1_000, let last = page.last else { break }
            after = last.runID
        }
        return API.MigrationPlan(fromVersion: from, toVersion: to, from: old.playbook, to: new.playbook, mapping: mapping,
            runs: runs, dryRun: true)
    }

    public func stopBulkOperation(id: Int64, actor: String) async throws -> Bool {
        try await store.stopBulkOperation(id, by: actor)
    }

    public func deadLetter(id: Int64) async throws -> API.DeadLetter? {
        try await store.deadLetter(id: id).map(API.DeadLetter.init)
    }

    public func checkReadiness() async -> API.Readiness {
        let (postgres, amqp) = await orchestrator.readiness()
        return API.Readiness(postgres: postgres, amqp: amqp, retrying: orchestrator.health.retryingQueues)
    }
}

// MARK: Schedules

extension LiveControlPlane {
    public func listSchedules(playbook: String?) async throws -> [API.Schedule] {
        // One row per schedule written in a playbook: few enough to filter here.
        try await store.schedules().filter { playbook == nil || $0.playbookID == playbook }.map(API.Schedule.init)
    }

    public func setSchedulePaused(playbook: String, schedule: String, paused: Bool, actor: String, reason: String)
        async throws -> API.Schedule?
    {
        try await store.setSchedulePaused(playbook: playbook, schedule: schedule, paused: paused, by: actor,
            reason: reason, now: orchestrator.now().millisecondsSinceEpoch).map(API.Schedule.init)
    }

    public func triggerSchedule(playbook: String, schedule: String, key: String?) async throws -> TriggeredSchedule? {
        guard let row = try await store.schedule(playbook: playbook, schedule: schedule) else { return nil }
        let trigger = ScheduleTrigger(row, key: key, now: orchestrator.now())
        guard let submission = try await submit([trigger.input]).first else { throw APIProblem.notApplied }
        return TriggeredSchedule(eventID: trigger.eventID, submission: submission)
    }
}

/// Lease ids: 128 random bits, hex.
enum LeaseID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return "lease_" + [generator.next(), generator.next()].map { (value: UInt64) in
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

// MARK: The console

extension LiveControlPlane {
    public func playbook(versionID: Int64) async throws -> Playbook? {
        if catalog.byVersion[versionID] == nil { try await orchestrator.refreshCatalog() }
        return catalog.byVersion[versionID]?.playbook
    }

    public func checkPlaybook(source: String, file: String?) async throws -> [API.Diagnostic] {
        API.Diagnostic.check(source: source, file: file, agents: orchestrator.agents)
    }

    public func runLights(runIDs: [String]) async throws -> [String: String] {
        try await store.runLights(runIDs: runIDs)
    }

    public func verifyRunChain(id: RunID) async throws -> [String] {
        try await store.verifyRunChain(runID: id.rawValue).map(\.description)
    }

    public func createConsoleSession(digest: [UInt8], tokenName: String, tokenDigest: [UInt8], csrfToken: String,
        lifetime: Duration) async throws
    {
        try await store.createConsoleSession(digest: digest, tokenName: tokenName, tokenDigest: tokenDigest,
            csrfToken: csrfToken, lifetimeMilliseconds: lifetime.components.seconds * 1_000)
    }

    public func consoleSession(digest: [UInt8]) async throws -> Store.ConsoleSession? {
        try await store.consoleSession(digest: digest)
    }

    public func deleteConsoleSession(digest: [UInt8]) async throws {
        try await store.deleteConsoleSession(digest: digest)
    }

    public func claimDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Store.DeskClaim? {
        try await store.claimDeskTask(taskID: id.rawValue, attempt: attempt, actor: actor)
    }

    public func releaseDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Bool {
        try await store.releaseDeskTask(taskID: id.rawValue, attempt: attempt, actor: actor)
    }

    public func deskClaims(taskIDs: [String]) async throws -> [Store.DeskClaim] {
        try await store.deskClaims(taskIDs: taskIDs)
    }
}
