public import ActEngine
public import ActPlaybook
public import ActService
public import ActStore

/// What the HTTP API needs from the service, and nothing more: the seam between the routes and the
/// ``Orchestrator`` (STYLE.md §3.6).
///
/// The routes only parse requests, call one of these operations and shape the answer; every rule of the
/// service (inbox dedup, run locks, the engine) stays behind it. The real conformance is
/// ``LiveControlPlane``; the tests drive an in-memory one that runs the same
/// ``BatchPlanner`` over in-memory tables.
public protocol ControlPlane: Sendable {
    /// Applies inputs in one batch, as a delivery would be.
    ///
    /// - Returns: One result per input, in order: its outcome and the runs it concerns (for a trigger, the
    ///   runs of every playbook it starts, also when they had been started before).
    /// - Throws: A store error; nothing was applied then.
    func submit(_ inputs: [BatchInput]) async throws -> [SubmissionResult]

    /// Runs, newest first, that `filter` matches (status, playbook, business key, payload, created range).
    ///
    /// - Parameters:
    ///   - after: The cursor of a previous page (``API/RunPage/next``).
    ///   - limit: Runs per page, 1…500.
    func listRuns(_ filter: RunFilter, after: String?, limit: Int) async throws -> API.RunPage

    /// One run's summary; `nil` when there is no such run. Cheap: no steps, tasks or audit trail.
    func runSummary(id: RunID) async throws -> API.RunSummary?

    /// Everything about one run; `nil` when there is no such run.
    func runDetail(id: RunID) async throws -> API.RunDetail?

    /// The running or paused runs whose business key (their playbook's `key:`, else their trigger event's
    /// id) is `key`, of `playbook` when given; oldest first, at most 100.
    func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [RunID]

    /// The run whose trace id (the W3C trace id of its messages, `trace_id` in its summary) is `traceID`.
    func runID(traceID: String) async throws -> RunID?

    /// Open (dispatched, unanswered) tasks, a page at a time, oldest first or by deadline.
    ///
    /// - Parameters:
    ///   - assignee: An assignee label (`ai.fraud-labeler`); `nil` for all open tasks.
    ///   - after: The `next` of the previous page.
    func listOpenTasks(assignee: String?, order: Store.InboxOrder, after: String?, limit: Int) async throws
        -> API.TaskPage

    /// The latest attempt of a task; `nil` when there is no such task.
    func latestTaskAttempt(id: TaskID) async throws -> API.Task?

    /// Leases up to `limit` open tasks of pull agent `agent` for `lease`, oldest first, waiting up to `wait`
    /// for one to arrive when none is open; empty when none came.
    func claimTasks(agent: String, limit: Int, lease: Duration, wait: Duration) async throws -> [API.ClaimedTask]

    /// Extends lease `leaseID` on a task attempt by `lease` from now; nil when the lease is no longer held.
    func extendLease(taskID: TaskID, attempt: Int, leaseID: String, lease: Duration) async throws -> API.Lease?

    /// The lease on a task attempt; nil when it is not a pull task.
    func lease(taskID: TaskID, attempt: Int) async throws -> API.LeaseState?

    /// Validates and registers a playbook.
    ///
    /// - Parameters:
    ///   - file: A file name for diagnostics.
    ///   - triggers: Event types to bind in addition to the playbook's own.
    /// - Throws: `PlaybookLoadError` listing every problem (nothing is stored then), or a store error.
    func registerPlaybook(source: String, file: String?, triggers: [String]) async throws -> API.PlaybookRegistration

    /// The newest version of every registered playbook, by id.
    func listPlaybooks() async throws -> [API.PlaybookSummary]

    /// The newest version of one playbook with its source; `nil` when there is no such playbook.
    func playbookDetail(id: String) async throws -> API.PlaybookDetail?

    /// A playbook's versions with their states and pin, and which one new runs start on; `nil` when there is no
    /// such playbook.
    func playbookVersions(id: String) async throws -> API.PlaybookVersions?

    /// Pins, unpins, deprecates, disables or re-enables a version of a playbook, recording `actor` and `reason`.
    ///
    /// - Throws: ``ActStore/PlaybookControls/Problem`` when the rules refuse it (nothing changed).
    func controlPlaybook(id: String, change: PlaybookControlChange, actor: String, reason: String?) async throws

    /// The agent registry, by id.
    func listAgents() async throws -> [API.Agent]

    /// Incidents newest first: `status` `open`, `resolved` or `all`; of one run and one kind when given;
    /// `before` an incident id pages on.
    func listIncidents(status: String, runID: String?, kind: String?, before: Int64?, limit: Int) async throws
        -> API.IncidentPage

    /// One incident; `nil` when there is none with that id.
    func incident(id: Int64) async throws -> API.Incident?

    /// Marks an incident that holds no run resolved by `actor`; false when it was not open (or holds a run).
    func resolveIncident(id: Int64, actor: String, reason: String?) async throws -> Bool

    /// Collected dead letters newest first (`status` `dead`, `replayed`, `discarded`, or `nil` for all);
    /// `before` an id pages on.
    func listDeadLetters(status: String?, before: Int64?, limit: Int) async throws -> API.DeadLetterPage

    /// One collected dead letter; `nil` when there is none with that id.
    func deadLetter(id: Int64) async throws -> API.DeadLetter?

    /// Records a bulk operation; the replicas' ``BulkOperator``s work on it.
    func createBulkOperation(_ operation: BulkOperation) async throws -> API.BulkOperation

    /// Bulk operations newest first, of one state when given.
    func listBulkOperations(state: BulkOperation.State?, limit: Int) async throws -> [API.BulkOperation]

    /// One bulk operation; `nil` when there is none with that id.
    func bulkOperation(id: Int64) async throws -> API.BulkOperation?

    /// What moving the active runs of version `from` to version `to` would do; `nil` when either version is
    /// not registered.
    func planMigration(from: Int64, to: Int64, mapping: [StepID: StepID]) async throws -> API.MigrationPlan?

    /// Stops a running bulk operation; false when it was not running.
    func stopBulkOperation(id: Int64, actor: String) async throws -> Bool

    /// Whether PostgreSQL and the broker answer.
    func checkReadiness() async -> API.Readiness

    // MARK: Schedules (`schedules:` in a playbook, docs/operations.md "Schedules")

    /// The schedules of every playbook's current version, by playbook and schedule id; of `playbook` only when
    /// given.
    func listSchedules(playbook: String?) async throws -> [API.Schedule]

    /// Pauses or resumes a schedule for `actor`, who says why. A paused schedule skips its fires; a resumed one
    /// goes on from now (``ActEngine/ScheduleClock/resumed(_:state:now:)``), so fires missed while it was
    /// paused are not made up. Pausing a paused schedule, or resuming a running one, changes nothing.
    ///
    /// - Returns: The schedule afterwards; `nil` when `playbook` has no schedule `schedule`.
    func setSchedulePaused(playbook: String, schedule: String, paused: Bool, actor: String, reason: String)
        async throws -> API.Schedule?

    /// Starts one run of a schedule now (``ScheduleTrigger``), whatever its `overlap` and pause.
    ///
    /// - Parameter key: The caller's `Idempotency-Key`, so that a repeat starts nothing new; `nil`: the current
    ///   time in milliseconds.
    /// - Returns: The trigger's event id and what became of it; `nil` when `playbook` has no schedule
    ///   `schedule`.
    func triggerSchedule(playbook: String, schedule: String, key: String?) async throws -> TriggeredSchedule?

    // MARK: The console (`/ui`, docs/console.md)

    /// The playbook of a registered version, as parsed; `nil` when the version is not registered.
    func playbook(versionID: Int64) async throws -> Playbook?

    /// Every problem and warning of a playbook source, checked as registering would (the agent registry
    /// included) without registering it; empty when it is clean.
    func checkPlaybook(source: String, file: String?) async throws -> [API.Diagnostic]

    /// The SLA light (`green`, `yellow`, `red`) of each given run that has open tasks with a deadline.
    func runLights(runIDs: [String]) async throws -> [String: String]

    /// Verifies one run's audit chain against the head its row records; empty when intact.
    func verifyRunChain(id: RunID) async throws -> [String]

    /// Records a console session (`digest`: SHA-256 of the cookie's secret) for the token whose secret has
    /// SHA-256 `tokenDigest`, valid for `lifetime`.
    func createConsoleSession(digest: [UInt8], tokenName: String, tokenDigest: [UInt8], csrfToken: String,
        lifetime: Duration) async throws

    /// The unexpired console session whose cookie secret has SHA-256 `digest`.
    func consoleSession(digest: [UInt8]) async throws -> Store.ConsoleSession?

    /// Ends a console session.
    func deleteConsoleSession(digest: [UInt8]) async throws

    /// Claims an open task attempt for `actor` at the console's desk; answers who holds it afterwards, `nil`
    /// when the attempt is not open.
    func claimDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Store.DeskClaim?

    /// Releases `actor`'s desk claim; false when `actor` did not hold it.
    func releaseDeskTask(id: TaskID, attempt: Int, actor: String) async throws -> Bool

    /// The desk claims on the given tasks.
    func deskClaims(taskIDs: [String]) async throws -> [Store.DeskClaim]
}

/// What became of one submitted input.
public struct SubmissionResult: Hashable, Sendable {
    public var outcome: BatchOutcome
    /// The runs the input concerns.
    public var runs: [RunID]

    public init(outcome: BatchOutcome, runs: [RunID]) {
        self.outcome = outcome
        self.runs = runs
    }
}

/// A schedule fired by hand (`POST /v1/schedules/{playbook}/{schedule}/trigger`): one run at once, whatever the
/// schedule's `overlap` and pause, started by the trigger a fire has
/// (``ActService/Orchestrator/fireEvent(_:fire:eventID:manual:)``, with `schedule.manual: true`).
///
/// It leaves the schedule's state alone: the next fires come when they would have, and `overlap` does not
/// count the run it starts as the previous fire's.
public struct ScheduleTrigger: Sendable {
    /// `schedule:<playbook>/<schedule>/manual/<key>`: the run id derives from it, so a repeated key starts
    /// nothing new.
    public var eventID: String
    /// The input that starts the run.
    public var input: BatchInput

    /// The trigger of `row` at `now`.
    ///
    /// - Parameter key: The caller's `Idempotency-Key`; `nil`: `now` in milliseconds.
    public init(_ row: ScheduleRow, key: String?, now: Instant) {
        let fire = now.millisecondsSinceEpoch
        eventID = Self.eventID(playbook: row.playbookID, schedule: row.scheduleID, key: key ?? String(fire))
        input = .start(playbookID: row.playbookID,
            event: Orchestrator.fireEvent(row, fire: fire, eventID: eventID, manual: true))
    }

    /// The event id of a fire by hand: `schedule:<playbook>/<schedule>/manual/<key>`. A scheduled fire's is
    /// ``ActEngine/ScheduleClock/eventID(playbook:schedule:fire:)`` (a time, never `manual/…`).
    public static func eventID(playbook: String, schedule: String, key: String) -> String {
        "schedule:\(playbook)/\(schedule)/manual/\(key)"
    }
}

/// What triggering a schedule by hand did.
public struct TriggeredSchedule: Hashable, Sendable {
    /// ``ScheduleTrigger/eventID``.
    public var eventID: String
    /// The outcome and the run it concerns (also when a repeated key had started it before).
    public var submission: SubmissionResult

    public init(eventID: String, submission: SubmissionResult) {
        self.eventID = eventID
        self.submission = submission
    }
}
