import ActEngine
import ActHTTP
import ActPlaybook
import ActService
import ActStore
import Foundation
import Synchronization

/// An honest in-memory ``ControlPlane``: inputs go through the real ``BatchPlanner`` and
/// ``PlaybookCatalog`` (so runs really move through the engine), and the planner's writes land in
/// in-memory tables shaped like the store's (runs, tasks, audit, inbox, timers, schedules). The answers are built
/// with the same ``API`` conversions as the real conformance on ``Orchestrator``.
///
/// What it cannot model: transactions across replicas and `SKIP LOCKED` (integration tests cover those).
final class InMemoryControlPlane: ControlPlane {
    struct Tables {
        var catalog = PlaybookCatalog()
        var versions: [PlaybookVersion] = []
        var runs: [String: RunRow] = [:]
        /// Every task attempt, in dispatch order.
        var tasks: [TaskRow] = []
        var audit: [String: [AuditChain.StoredEntry]] = [:]
        var inbox: Set<String> = []
        var timers: [String: TimerRow] = [:]
        var incidents: [Incident] = []
        var deadLetters: [DeadLetter] = []
        var bulkOperations: [BulkOperation] = []
        /// Version controls with who set them (`playbook_version_controls`), and every change.
        var controlRows: [Int64: Store.VersionControlRow] = [:]
        var controlLog: [Store.PlaybookControlLogEntry] = []
        /// Pull tasks with their leases, in dispatch order (what `pull_tasks` holds).
        var pullTasks: [(task: PullTask, leaseID: String?, expiresAt: Int64, claims: Int)] = []
        var consoleSessions: [[UInt8]: Store.ConsoleSession] = [:]
        /// The schedules of every playbook's current version (`schedules`), by ``scheduleKey(_:_:)``, kept in
        /// step with the catalog as the replicas' schedulers keep them (``syncSchedules(_:)``).
        var schedules: [String: ScheduleRow] = [:]
        var deskClaims: [Store.DeskClaim] = []
        var now: Instant
        var readiness = API.Readiness(postgres: true, amqp: true)
        /// Thrown by the next submissions, as the real store would (an outage, a value it refuses).
        var submitFailure: (any Error & Sendable)?
    }

    let agents: [Agent]
    let slaWarningFraction = 0.8
    private let tables: Mutex<Tables>

    init(agents: [Agent] = [], now: Instant = Instant(millisecondsSinceEpoch: 1_795_000_000_000)) {
        self.agents = agents
        self.tables = Mutex(Tables(now: now))
    }

    /// Moves the clock.
    func advance(milliseconds: Int64) {
        tables.withLock { $0.now = Instant(millisecondsSinceEpoch: $0.now.millisecondsSinceEpoch + milliseconds) }
    }

    func setReadiness(_ readiness: API.Readiness) { tables.withLock { $0.readiness = readiness } }

    func addIncident(_ incident: Incident) {
        tables.withLock { tables in
            var incident = incident
            if incident.incidentID == 0 { incident.incidentID = Int64(tables.incidents.count + 1) }
            tables.incidents.append(incident)
        }
    }

    /// Makes every submission throw `error` (nil: work again).
    func failSubmissions(with error: (any Error & Sendable)?) { tables.withLock { $0.submitFailure = error } }

    var now: Instant { tables.withLock { $0.now } }

    // MARK: ControlPlane

    func submit(_ inputs: [BatchInput]) async throws -> [SubmissionResult] {
        if let failure = tables.withLock({ $0.submitFailure }) { throw failure }
        return try tables.withLock { tables in
            var items = inputs.map { BatchPlanner.Item($0) }
            for index in items.indices {
                guard let key = items[index].input.inboxKey else { continue }
                items[index].fresh = tables.inbox.insert(key).inserted
            }
            let planner = BatchPlanner(catalog: tables.catalog,
                engine: EngineConfiguration(agents: agents, slaWarningFraction: slaWarningFraction),
                messages: OutboundMessages(exchanges: ServiceConfiguration.AMQP.Exchanges()))
            var locked: [String: RunRow] = [:]
            for item in items where item.fresh {
                for runID in item.input.runIDs(catalog: tables.catalog) { locked[runID.rawValue] = tables.runs[runID.rawValue] }
            }
            let plan = try planner.plan(items, runs: locked, now: tables.now)
            Self.write(plan.batch, into: &tables)
            return zip(inputs, plan.outcomes).map { input, outcome in
                switch outcome {
                case .applied, .ignored: SubmissionResult(outcome: outcome, runs: input.runIDs(catalog: tables.catalog))
                case .rejected, .forbidden: SubmissionResult(outcome: outcome, runs: [])
                }
            }
        }
    }

    /// What `StoreTransaction.write` does, on the tables.
    private static func write(_ batch: StoreBatch, into tables: inout Tables) {
        for run in batch.runs { tables.runs[run.runID] = run }
        for task in batch.dispatchedTasks {
            if let index = tables.tasks.firstIndex(where: { $0.taskID == task.taskID && $0.attempt == task.attempt }) {
                tables.tasks[index] = task
            } else {
                tables.tasks.append(task)
            }
        }
        for change in batch.taskChanges {
            guard let index = tables.tasks.firstIndex(where: { $0.taskID == change.taskID && $0.attempt == change.attempt })
            else { continue }
            tables.tasks[index].status = change.status
            tables.tasks[index].output = change.output ?? tables.tasks[index].output
            tables.tasks[index].error = change.error ?? tables.tasks[index].error
            tables.tasks[index].updatedAt = change.at
        }
        for timer in batch.scheduledTimers { tables.timers[timer.timerID] = timer }
        for id in batch.cancelledTimers { tables.timers[id] = nil }
        for entry in batch.audit { tables.audit[entry.entry.runID, default: []].append(entry) }
        for key in batch.releasedInboxKeys { tables.inbox.remove(key) }
        for (runID, resolution) in batch.resolvedRunIncidents {
            for i in tables.incidents.indices where tables.incidents[i].runID == runID && tables.incidents[i].holdsRun
                && tables.incidents[i].resolution == nil
            {
                tables.incidents[i].resolution = resolution
            }
        }
        for var incident in batch.incidents {
            incident.incidentID = Int64(tables.incidents.count + 1)
            tables.incidents.append(incident)
        }
        for task in batch.pullTasks { tables.pullTasks.append((task, nil, 0, 0)) }
    }

    /// What `Store.claimPullTasks` does, on the tables (no waiting: the clock only moves when told).
    func claimTasks(agent: String, limit: Int, lease: Duration, wait: Duration) async throws -> [API.ClaimedTask] {
        try tables.withLock { tables in
            let now = tables.now.millisecondsSinceEpoch
            let leaseID = "lease_\(tables.pullTasks.map(\.claims).reduce(0, +) + 1)"
            var claimed: [API.ClaimedTask] = []
            for index in tables.pullTasks.indices where claimed.count < limit {
                let entry = tables.pullTasks[index]
                let open = tables.tasks.contains {
                    $0.taskID == entry.task.taskID && $0.attempt == entry.task.attempt && $0.status == .dispatched
                }
                guard entry.task.assignee == agent, open, entry.leaseID == nil || entry.expiresAt <= now else { continue }
                let expiresAt = now + Self.milliseconds(lease)
                tables.pullTasks[index] = (entry.task, leaseID, expiresAt, entry.claims + 1)
                claimed.append(API.ClaimedTask(message: try JSONValue(parsing: entry.task.body), leaseID: leaseID,
                    leaseExpiresAt: API.timestamp(expiresAt), claims: entry.claims + 1))
            }
            return claimed
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    func extendLease(taskID: TaskID, attempt: Int, leaseID: String, lease: Duration) async throws -> API.Lease? {
        tables.withLock { tables -> API.Lease? in
            let open = tables.tasks.contains { $0.taskID == taskID.rawValue && $0.attempt == attempt && $0.status == .dispatched }
            guard open, let index = tables.pullTasks.firstIndex(where: {
                $0.task.taskID == taskID.rawValue && $0.task.attempt == attempt && $0.leaseID == leaseID
            }) else { return nil }
            tables.pullTasks[index].expiresAt = tables.now.millisecondsSinceEpoch + Self.milliseconds(lease)
            return API.Lease(taskID: taskID.rawValue, attempt: attempt, leaseID: leaseID,
                leaseExpiresAt: API.timestamp(tables.pullTasks[index].expiresAt))
        }
    }

    func lease(taskID: TaskID, attempt: Int) async throws -> API.LeaseState? {
        tables.withLock { tables in
            tables.pullTasks.first { $0.task.taskID == taskID.rawValue && $0.task.attempt == attempt }.map {
                API.LeaseState(leaseID: $0.leaseID)
            }
        }
    }

    func listRuns(_ filter: RunFilter, after: String?, limit: Int) async throws -> API.RunPage {
        let (status, playbook, key) = (filter.status, filter.playbookID, filter.key)
        return tables.withLock { tables in
            var cursor: (Int64, String)?
            if let after, let separator = after.firstIndex(of: ":"), let time = Int64(after[..<separator]) {
                cursor = (time, String(after[after.index(after: separator)...]))
            }
            let rows = tables.runs.values
                .filter { status == nil || $0.status == status }
                .filter { playbook == nil || $0.playbookID == playbook }
                .filter { key == nil || ($0.businessKey ?? $0.triggerEventID) == key }
                .filter { row in filter.createdAfter.map { row.createdAt >= $0 } ?? true }
                .filter { row in filter.createdBefore.map { row.createdAt < $0 } ?? true }
                .filter { row in
                    guard let payload = filter.payload else { return true }
                    let state = try? JSONValue(parsing: row.state)
                    return Self.contains(state?["payload"] ?? .null, payload)
                }
                .filter { row in cursor.map { (row.createdAt, row.runID) < $0 } ?? true }
                .sorted { ($0.createdAt, $0.runID) > ($1.createdAt, $1.runID) }
            let limit = max(1, min(limit, 500))
            let page = Array(rows.prefix(limit))
            let next = rows.count > limit ? page.last.map { "\($0.createdAt):\($0.runID)" } : nil
            return API.RunPage(runs: page.map(API.RunSummary.init), next: next)
        }
    }

    func runSummary(id: RunID) async throws -> API.RunSummary? {
        tables.withLock { $0.runs[id.rawValue].map(API.RunSummary.init) }
    }

    func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [RunID] {
        tables.withLock { tables in
            tables.runs.values
                .filter { ($0.businessKey ?? $0.triggerEventID) == key && (playbook == nil || $0.playbookID == playbook) }
                .filter { ["running", "paused"].contains($0.status) }
                .sorted { ($0.createdAt, $0.runID) < ($1.createdAt, $1.runID) }
                .prefix(100).map { RunID($0.runID) }
        }
    }

    func runID(traceID: String) async throws -> RunID? {
        tables.withLock { tables in tables.runs.values.first { $0.traceID == traceID }.map { RunID($0.runID) } }
    }

    func runDetail(id: RunID) async throws -> API.RunDetail? {
        try tables.withLock { tables in
            guard let row = tables.runs[id.rawValue] else { return nil }
            return try API.RunDetail(row: row, playbook: tables.catalog.byVersion[row.versionID]?.playbook,
                tasks: tables.tasks.filter { $0.runID == row.runID }, audit: tables.audit[row.runID] ?? [],
                slaWarningFraction: slaWarningFraction, now: tables.now)
        }
    }

    /// jsonb's `@>`: every member of `pattern` is in `value` (recursively; an array element of the pattern in
    /// some element of the value).
    static func contains(_ value: JSONValue, _ pattern: JSONValue) -> Bool {
        switch (value, pattern) {
        case (.object(let members), .object(let wanted)):
            return wanted.allSatisfy { key, part in members[key].map { contains($0, part) } ?? false }
        case (.array(let items), .array(let wanted)):
            return wanted.allSatisfy { part in items.contains { contains($0, part) } }
        default:
            return value == pattern
        }
    }

    /// The open tasks as `Store.openTaskPage` orders them (the cursor is the index of the last one shown).
    func listOpenTasks(assignee: String?, order: Store.InboxOrder, after: String?, limit: Int) async throws
        -> API.TaskPage
    {
        tables.withLock { tables in
            var open = tables.tasks.filter { $0.status == .dispatched && (assignee == nil || $0.assignee == assignee) }
            if order == .deadline {
                open.sort { ($0.deadline ?? .max, $0.taskID, $0.attempt) < ($1.deadline ?? .max, $1.taskID, $1.attempt) }
            }
            let start = after.flatMap(Int.init) ?? 0
            let page = Array(open.dropFirst(start).prefix(limit))
            return API.TaskPage(tasks: page.map(API.Task.init),
                next: start + page.count < open.count ? String(start + page.count) : nil)
        }
    }

    func latestTaskAttempt(id: TaskID) async throws -> API.Task? {
        tables.withLock { tables in
            tables.tasks.filter { $0.taskID == id.rawValue }.max { $0.attempt < $1.attempt }.map(API.Task.init)
        }
    }

    func registerPlaybook(source: String, file: String?, triggers: [String]) async throws -> API.PlaybookRegistration {
        let loaded = try PlaybookLoader.load(yaml: source, file: file)
        var playbook = loaded.playbook
        for trigger in triggers where !playbook.triggers.contains(trigger) { playbook.triggers.append(trigger) }
        let errors = playbook.validate(agents: agents).filter(\.isError)
        if !errors.isEmpty { throw PlaybookLoadError(diagnostics: errors) }
        let checksum = Self.checksum(source + "\u{0}" + triggers.sorted().joined(separator: ","))
        let model = Array(try JSONEncoder().encode(playbook))
        return tables.withLock { tables in
            if let existing = tables.versions.first(where: {
                $0.playbookID == playbook.id.rawValue && $0.checksum == checksum
            }) {
                return API.PlaybookRegistration(version: existing, created: false, warnings: loaded.warnings)
            }
            let version = PlaybookVersion(versionID: Int64(tables.versions.count + 1), playbookID: playbook.id.rawValue,
                checksum: checksum, source: source, model: model, triggers: playbook.triggers,
                registeredAt: tables.now.millisecondsSinceEpoch)
            tables.versions.append(version)
            tables.catalog.insert(version: version, playbook: playbook)
            Self.syncSchedules(&tables)
            return API.PlaybookRegistration(version: version, created: true, warnings: loaded.warnings)
        }
    }

    func listPlaybooks() async throws -> [API.PlaybookSummary] {
        tables.withLock { tables in
            tables.catalog.latest.keys.sorted().compactMap { id in
                (tables.catalog.currentEntry(playbookID: id) ?? tables.catalog.latestEntry(playbookID: id)).map {
                    API.PlaybookSummary(version: $0.version, playbook: $0.playbook)
                }
            }
        }
    }

    func playbookVersions(id: String) async throws -> API.PlaybookVersions? {
        tables.withLock { tables in
            let versions = tables.versions.filter { $0.playbookID == id }
            guard !versions.isEmpty else { return nil }
            return API.PlaybookVersions(playbookID: id, versions: versions, current: tables.catalog.current[id],
                rows: tables.controlRows.values.filter { $0.playbookID == id }.sorted { $0.versionID < $1.versionID },
                log: Array(tables.controlLog.filter { $0.playbookID == id }.reversed().prefix(20)))
        }
    }

    func controlPlaybook(id: String, change: PlaybookControlChange, actor: String, reason: String?) async throws {
        try tables.withLock { tables in
            let versions = tables.versions.filter { $0.playbookID == id }.map(\.versionID)
            var controls: [Int64: VersionControl] = [:]
            for row in tables.controlRows.values where row.playbookID == id { controls[row.versionID] = row.control }
            if let problem = PlaybookControls.problem(change, playbookID: id, versions: versions, controls: controls) {
                throw problem
            }
            let now = tables.now.millisecondsSinceEpoch
            for (version, control) in PlaybookControls.applying(change, to: controls)
            where control != controls[version] || version == change.version {
                tables.controlRows[version] = Store.VersionControlRow(versionID: version, playbookID: id, control: control,
                    changedBy: actor, changedAt: now, reason: reason)
            }
            tables.controlLog.append(Store.PlaybookControlLogEntry(playbookID: id, versionID: change.version,
                action: change.action, actor: actor, reason: reason, at: now))
            tables.catalog.setControls(tables.controlRows.mapValues(\.control))
            Self.syncSchedules(&tables)
        }
    }

    func playbookDetail(id: String) async throws -> API.PlaybookDetail? {
        tables.withLock { tables in
            (tables.catalog.currentEntry(playbookID: id) ?? tables.catalog.latestEntry(playbookID: id)).map {
                API.PlaybookDetail(summary: API.PlaybookSummary(version: $0.version, playbook: $0.playbook),
                    source: $0.version.source)
            }
        }
    }

    func listAgents() async throws -> [API.Agent] {
        let now = self.now
        return agents.sorted { $0.id < $1.id }.map { API.Agent($0, now: now) }
    }

    func listIncidents(status: String, runID: String?, kind: String?, before: Int64?, limit: Int) async throws
        -> API.IncidentPage
    {
        tables.withLock { tables in
            let rows = tables.incidents.sorted { $0.incidentID > $1.incidentID }.filter { incident in
                (status == "all" || (status == "open") == (incident.resolution == nil))
                    && (runID == nil || incident.runID == runID) && (kind == nil || incident.kind == kind)
                    && (before == nil || incident.incidentID < before!)
            }
            let page = rows.prefix(limit).map(API.Incident.init)
            return API.IncidentPage(incidents: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
        }
    }

    func incident(id: Int64) async throws -> API.Incident? {
        tables.withLock { $0.incidents.first { $0.incidentID == id }.map(API.Incident.init) }
    }

    func resolveIncident(id: Int64, actor: String, reason: String?) async throws -> Bool {
        tables.withLock { tables in
            guard let i = tables.incidents.firstIndex(where: { $0.incidentID == id }),
                tables.incidents[i].resolution == nil, !tables.incidents[i].holdsRun
            else { return false }
            tables.incidents[i].resolution = IncidentResolution(action: "resolve", actor: actor, note: reason,
                at: tables.now.millisecondsSinceEpoch)
            return true
        }
    }

    func listDeadLetters(status: String?, before: Int64?, limit: Int) async throws -> API.DeadLetterPage {
        tables.withLock { tables in
            let rows = tables.deadLetters.sorted { $0.id > $1.id }.filter {
                (status == nil || $0.status.rawValue == status) && (before == nil || $0.id < before!)
            }
            let page = rows.prefix(limit).map(API.DeadLetter.init)
            return API.DeadLetterPage(deadLetters: page, next: rows.count > limit ? page.last.map { String($0.id) } : nil)
        }
    }

    func deadLetter(id: Int64) async throws -> API.DeadLetter? {
        tables.withLock { $0.deadLetters.first { $0.id == id }.map(API.DeadLetter.init) }
    }

    func createBulkOperation(_ operation: BulkOperation) async throws -> API.BulkOperation {
        tables.withLock { tables in
            var operation = operation
            operation.id = Int64(tables.bulkOperations.count + 1)
            operation.createdAt = tables.now.millisecondsSinceEpoch
            operation.updatedAt = operation.createdAt
            tables.bulkOperations.append(operation)
            return API.BulkOperation(operation)
        }
    }

    func listBulkOperations(state: BulkOperation.State?, limit: Int) async throws -> [API.BulkOperation] {
        tables.withLock { tables in
            tables.bulkOperations.reversed().filter { state == nil || $0.state == state }.prefix(limit)
                .map(API.BulkOperation.init)
        }
    }

    func bulkOperation(id: Int64) async throws -> API.BulkOperation? {
        tables.withLock { $0.bulkOperations.first { $0.id == id }.map(API.BulkOperation.init) }
    }

    func planMigration(from: Int64, to: Int64, mapping: [StepID: StepID]) async throws -> API.MigrationPlan? {
        tables.withLock { tables in
            guard let old = tables.catalog.byVersion[from], let new = tables.catalog.byVersion[to] else { return nil }
            let runs = tables.runs.values.filter {
                $0.versionID == from && ["running", "paused", "incident", "compensating"].contains($0.status)
            }.sorted { $0.runID < $1.runID }.map { (runID: $0.runID, state: $0.state) }
            return API.MigrationPlan(fromVersion: from, toVersion: to, from: old.playbook, to: new.playbook,
                mapping: mapping, runs: runs, dryRun: true)
        }
    }

    func stopBulkOperation(id: Int64, actor: String) async throws -> Bool {
        tables.withLock { tables in
            guard let i = tables.bulkOperations.firstIndex(where: { $0.id == id && $0.state == .running }) else {
                return false
            }
            tables.bulkOperations[i].state = .stopped
            tables.bulkOperations[i].lastError = "stopped by " + actor
            return true
        }
    }

    // MARK: Schedules

    func listSchedules(playbook: String?) async throws -> [API.Schedule] {
        tables.withLock { tables in
            tables.schedules.values.filter { playbook == nil || $0.playbookID == playbook }
                .sorted { ($0.playbookID, $0.scheduleID) < ($1.playbookID, $1.scheduleID) }
                .map(API.Schedule.init)
        }
    }

    func setSchedulePaused(playbook: String, schedule: String, paused: Bool, actor: String, reason: String)
        async throws -> API.Schedule?
    {
        tables.withLock { tables in
            let key = Self.scheduleKey(playbook, schedule)
            guard var row = tables.schedules[key] else { return nil }
            let now = tables.now.millisecondsSinceEpoch
            if row.setPaused(paused, by: actor, reason: reason, now: now) {
                row.updatedAt = now
                tables.schedules[key] = row
            }
            return API.Schedule(row)
        }
    }

    func triggerSchedule(playbook: String, schedule: String, key: String?) async throws -> TriggeredSchedule? {
        let trigger = tables.withLock { tables in
            tables.schedules[Self.scheduleKey(playbook, schedule)].map {
                ScheduleTrigger($0, key: key, now: tables.now)
            }
        }
        guard let trigger else { return nil }
        // `submit` answers one result per input, as the planner does.
        let submission = try await submit([trigger.input])[0]
        return TriggeredSchedule(eventID: trigger.eventID, submission: submission)
    }

    /// The key of a schedule row in ``Tables/schedules``.
    static func scheduleKey(_ playbook: String, _ schedule: String) -> String { playbook + "\u{0}" + schedule }

    /// What `Store.syncSchedules` does after a catalog change, on the tables: new schedules start from now,
    /// changed ones start over from now (keeping their counts and pause), and rows of schedules no longer
    /// written (or of a playbook whose every version is disabled) go.
    private static func syncSchedules(_ tables: inout Tables) {
        let now = tables.now.millisecondsSinceEpoch
        var synced: [String: ScheduleRow] = [:]
        for playbookID in tables.catalog.current.keys {
            guard let entry = tables.catalog.currentEntry(playbookID: playbookID) else { continue }
            for schedule in entry.playbook.schedules ?? [] {
                let key = scheduleKey(playbookID, schedule.id)
                if let row = tables.schedules[key], row.definition == schedule {
                    synced[key] = row
                    continue
                }
                // New (its counts are zero), or changed: starts from now.
                var row = tables.schedules[key] ?? ScheduleRow(playbookID: playbookID, scheduleID: schedule.id,
                    definition: schedule, state: ScheduleState(nextFire: nil), dueAt: nil)
                row.redefine(schedule, now: now)
                row.updatedAt = now
                synced[key] = row
            }
        }
        tables.schedules = synced
    }

    func addDeadLetter(_ letter: DeadLetter) { tables.withLock { $0.deadLetters.append(letter) } }

    func checkReadiness() async -> API.Readiness { tables.withLock { $0.readiness } }

    /// FNV-1a, 64 bits, hex: stands in for the store's SHA-256 (only equality matters here).
    private static func checksum(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    // MARK: The console

    func playbook(versionID: Int64) async throws -> Playbook? {
        tables.withLock { $0.catalog.byVersion[versionID]?.playbook }
    }

    func checkPlaybook(source: String, file: String?) async throws -> [API.Diagnostic] {
        API.Diagnostic.check(source: source, file: file, agents: agents)
    }

    func runLights(runIDs: [String]) async throws -> [String: String] {
        tables.withLock { tables in
            let now = tables.now.millisecondsSinceEpoch
            var lights: [String: String] = [:]
            for task in tables.tasks where runIDs.contains(task.runID) && task.status == .dispatched {
                guard let deadline = task.deadline else { continue }
                let light = deadline <= now ? "red" : (task.warnAt ?? deadline) <= now ? "yellow" : "green"
                let rank = ["green": 0, "yellow": 1, "red": 2]
                if rank[light]! > rank[lights[task.runID] ?? "green"]! || lights[task.runID] == nil { lights[task.runID] = light }
            }
            return lights
        }
    }

    func verifyRunChain(id: RunID) async throws -> [String] {
        tables.withLock { tables in
            AuditChain.verify(run: id.rawValue, entries: tables.audit[id.rawValue] ?? []).findings.map(\.description)
        }
    }

    func createConsoleSession(digest: [UInt8], tokenName: String, tokenDigest: [UInt8], csrfToken: String,
        lifetime: Duration) async throws
    {
        tables.withLock { tables in
            tables.consoleSessions[digest] = Store.ConsoleSession(tokenName: tokenName, tokenDigest: tokenDigest,
                csrfToken: csrfToken, expiresAt: tables.now.millisecondsSinceEpoch + Self.milliseconds(lifetime))
        }
    }

    func consoleSession(digest: [UInt8]) async throws -> Store.ConsoleSession? {
        tables.withLock { tables in
            tables.consoleSessions[digest].flatMap { $0.expiresAt > tables.now.millisecondsSinceEpoch ? $0 : nil }
        }
    }

    func deleteConsoleSession(digest: [UInt8]) async throws {
        _ = tables.withLock { $0.consoleSessions.removeValue(forKey: digest) }
    }

    func claimDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Store.DeskClaim? {
        tables.withLock { tables in
            guard tables.tasks.contains(where: { $0.taskID == id.rawValue && $0.attempt == attempt && $0.status == .dispatched })
            else { return nil }
            if let held = tables.deskClaims.first(where: { $0.taskID == id.rawValue && $0.attempt == attempt }) { return held }
            let claim = Store.DeskClaim(taskID: id.rawValue, attempt: attempt, claimedBy: actor,
                claimedAt: tables.now.millisecondsSinceEpoch)
            tables.deskClaims.append(claim)
            return claim
        }
    }

    func releaseDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Bool {
        tables.withLock { tables in
            let before = tables.deskClaims.count
            tables.deskClaims.removeAll { $0.taskID == id.rawValue && $0.attempt == attempt && $0.claimedBy == actor }
            return tables.deskClaims.count < before
        }
    }

    func deskClaims(taskIDs: [String]) async throws -> [Store.DeskClaim] {
        tables.withLock { tables in tables.deskClaims.filter { taskIDs.contains($0.taskID) } }
    }
}
