public import ActPlaybook
import ActService

/// The JSON shapes of the HTTP API (`docs`: the contract; `Resources/openapi.yaml`: the schema).
///
/// Every type encodes its keys in snake_case and writes absent values as `null` rather than leaving the
/// key out, so clients see the same keys on every response. Times are RFC 3339 UTC strings with
/// milliseconds (``API/timestamp(_:)``), durations are milliseconds.
public enum API {
    /// A run as lists show it.
    public struct RunSummary: Hashable, Sendable, Codable {
        public var runID: String
        public var playbook: String
        public var status: String
        public var traceID: String
        /// The event type that started the run.
        public var trigger: String?
        public var createdAt: String
        public var updatedAt: String
        public var finishedAt: String?

        public init(runID: String, playbook: String, status: String, traceID: String, trigger: String?,
            createdAt: String, updatedAt: String, finishedAt: String?)
        {
            self.runID = runID
            self.playbook = playbook
            self.status = status
            self.traceID = traceID
            self.trigger = trigger
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.finishedAt = finishedAt
        }

        enum CodingKeys: String, CodingKey {
            case runID = "run_id", playbook, status, traceID = "trace_id", trigger
            case createdAt = "created_at", updatedAt = "updated_at", finishedAt = "finished_at"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(runID, forKey: .runID)
            try c.encode(playbook, forKey: .playbook)
            try c.encode(status, forKey: .status)
            try c.encode(traceID, forKey: .traceID)
            try c.encode(trigger, forKey: .trigger)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(updatedAt, forKey: .updatedAt)
            try c.encode(finishedAt, forKey: .finishedAt)
        }
    }

    /// One page of runs, newest first.
    /// A page of open tasks; `next` is the `after` of the next page.
    public struct TaskPage: Hashable, Sendable, Encodable {
        public var tasks: [Task]
        public var next: String?

        public init(tasks: [Task], next: String?) {
            self.tasks = tasks
            self.next = next
        }

        enum CodingKeys: String, CodingKey { case tasks, next }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tasks, forKey: .tasks)
            try c.encode(next, forKey: .next)
        }
    }

    public struct RunPage: Hashable, Sendable, Codable {
        public var runs: [RunSummary]
        /// The `after` cursor of the next page; `nil` on the last page.
        public var next: String?

        public init(runs: [RunSummary], next: String?) {
            self.runs = runs
            self.next = next
        }

        enum CodingKeys: String, CodingKey { case runs, next }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(runs, forKey: .runs)
            try c.encode(next, forKey: .next)
        }
    }

    /// Why a run failed or was cancelled.
    public struct Failure: Hashable, Sendable, Codable {
        /// The failing step; `nil` for a cancel.
        public var step: String?
        public var reason: String

        public init(step: String?, reason: String) {
            self.step = step
            self.reason = reason
        }

        enum CodingKeys: String, CodingKey { case step, reason }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(step, forKey: .step)
            try c.encode(reason, forKey: .reason)
        }
    }

    /// Where a step visit stands against its SLA.
    public struct SLA: Hashable, Sendable, Codable {
        /// The light: no SLA, before the warning, past the warning, past the deadline, breach reported.
        public enum State: String, Hashable, Sendable, Codable {
            case none, green, yellow, red, breached
        }

        public var state: State
        public var deadline: String?
        public var warnAt: String?

        public init(state: State, deadline: String?, warnAt: String?) {
            self.state = state
            self.deadline = deadline
            self.warnAt = warnAt
        }

        enum CodingKeys: String, CodingKey { case state, deadline, warnAt = "warn_at" }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(state, forKey: .state)
            try c.encode(deadline, forKey: .deadline)
            try c.encode(warnAt, forKey: .warnAt)
        }
    }

    /// The latest visit of one step of a run.
    public struct Step: Hashable, Sendable, Codable {
        public var stepID: String
        public var visit: Int
        /// `running`, `queued`, `awaiting_approval`, `waiting`, `completed`, `failed`, `timeout`, `skipped`, `cancelled`.
        public var status: String
        public var startedAt: String
        public var finishedAt: String?
        /// From start to finish; `nil` while the step is active.
        public var durationMS: Int64?
        /// The playbook step's assignee label (`ai.classifier`); `nil` for switches, waits and blocks.
        public var assignee: String?
        /// The agent of the latest task, when routing picked one.
        public var agent: String?
        /// The highest attempt among the visit's tasks; `nil` without tasks.
        public var attempt: Int?
        public var error: String?
        public var output: JSONValue?
        public var sla: SLA

        public init(stepID: String, visit: Int, status: String, startedAt: String, finishedAt: String?,
            durationMS: Int64?, assignee: String?, agent: String?, attempt: Int?, error: String?, output: JSONValue?,
            sla: SLA)
        {
            self.stepID = stepID
            self.visit = visit
            self.status = status
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.durationMS = durationMS
            self.assignee = assignee
            self.agent = agent
            self.attempt = attempt
            self.error = error
            self.output = output
            self.sla = sla
        }

        enum CodingKeys: String, CodingKey {
            case stepID = "step_id", visit, status, startedAt = "started_at", finishedAt = "finished_at"
            case durationMS = "duration_ms", assignee, agent, attempt, error, output, sla
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stepID, forKey: .stepID)
            try c.encode(visit, forKey: .visit)
            try c.encode(status, forKey: .status)
            try c.encode(startedAt, forKey: .startedAt)
            try c.encode(finishedAt, forKey: .finishedAt)
            try c.encode(durationMS, forKey: .durationMS)
            try c.encode(assignee, forKey: .assignee)
            try c.encode(agent, forKey: .agent)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(error, forKey: .error)
            try c.encode(output, forKey: .output)
            try c.encode(sla, forKey: .sla)
        }
    }

    /// A pull task as claimed (`POST /v1/tasks/claim`): the `hms.task` message a pushed worker would have
    /// received (`task_id`, `attempt`, `run_id`, `payload`, `input`, `context`, …) with the lease's fields
    /// added: `lease_id`, `lease_expires_at`, and `claims` (2 or more: an earlier lease expired).
    public struct ClaimedTask: Hashable, Sendable, Encodable {
        public var message: JSONValue
        public var leaseID: String
        public var leaseExpiresAt: String
        public var claims: Int

        public init(message: JSONValue, leaseID: String, leaseExpiresAt: String, claims: Int) {
            self.message = message
            self.leaseID = leaseID
            self.leaseExpiresAt = leaseExpiresAt
            self.claims = claims
        }

        public func encode(to encoder: any Encoder) throws {
            var members: [String: JSONValue] = [:]
            if case .object(let fields) = message { members = fields }
            members["lease_id"] = .string(leaseID)
            members["lease_expires_at"] = .string(leaseExpiresAt)
            members["claims"] = .int(claims)
            try JSONValue.object(members).encode(to: encoder)
        }
    }

    /// A lease as extended (`POST /v1/tasks/{id}/heartbeat`).
    public struct Lease: Hashable, Sendable, Codable {
        public var taskID: String
        public var attempt: Int
        public var leaseID: String
        public var leaseExpiresAt: String

        public init(taskID: String, attempt: Int, leaseID: String, leaseExpiresAt: String) {
            self.taskID = taskID
            self.attempt = attempt
            self.leaseID = leaseID
            self.leaseExpiresAt = leaseExpiresAt
        }

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", attempt, leaseID = "lease_id", leaseExpiresAt = "lease_expires_at"
        }
    }

    /// The lease on a pull-task attempt, as the answer routes check it.
    public struct LeaseState: Hashable, Sendable {
        /// Who holds (or last held) it, expired or not: only a claim by another worker replaces it. nil:
        /// never claimed.
        public var leaseID: String?

        public init(leaseID: String?) { self.leaseID = leaseID }
    }

    /// One dispatched attempt of a task.
    public struct Task: Hashable, Sendable, Codable {
        public var taskID: String
        public var attempt: Int
        public var runID: String
        public var stepID: String
        public var assignee: String
        public var agent: String?
        /// The routing key on the tasks exchange, or `queue:<name>` for an agent's own queue.
        public var target: String
        /// `dispatched`, `completed`, `failed`, `timeout`, `cancelled`.
        public var status: String
        public var deadline: String?
        public var warnAt: String?
        public var compensation: Bool
        public var createdAt: String
        public var updatedAt: String
        public var output: JSONValue?
        public var error: String?
        /// The child run a sub-playbook attempt (target `playbook:<id>`) started; `nil` for any other task.
        public var childRunID: String?

        public init(taskID: String, attempt: Int, runID: String, stepID: String, assignee: String, agent: String?,
            target: String, status: String, deadline: String?, warnAt: String?, compensation: Bool,
            createdAt: String, updatedAt: String, output: JSONValue?, error: String?, childRunID: String? = nil)
        {
            self.childRunID = childRunID
            self.taskID = taskID
            self.attempt = attempt
            self.runID = runID
            self.stepID = stepID
            self.assignee = assignee
            self.agent = agent
            self.target = target
            self.status = status
            self.deadline = deadline
            self.warnAt = warnAt
            self.compensation = compensation
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.output = output
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", attempt, runID = "run_id", stepID = "step_id", assignee, agent, target, status
            case deadline, warnAt = "warn_at", compensation, createdAt = "created_at", updatedAt = "updated_at"
            case output, error, childRunID = "child_run_id"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(taskID, forKey: .taskID)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(runID, forKey: .runID)
            try c.encode(stepID, forKey: .stepID)
            try c.encode(assignee, forKey: .assignee)
            try c.encode(agent, forKey: .agent)
            try c.encode(target, forKey: .target)
            try c.encode(status, forKey: .status)
            try c.encode(deadline, forKey: .deadline)
            try c.encode(warnAt, forKey: .warnAt)
            try c.encode(compensation, forKey: .compensation)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(updatedAt, forKey: .updatedAt)
            try c.encode(output, forKey: .output)
            try c.encode(error, forKey: .error)
            try c.encodeIfPresent(childRunID, forKey: .childRunID)
        }
    }

    /// One entry of a run's audit trail.
    public struct TimelineEntry: Hashable, Sendable, Codable {
        public var seq: Int64
        public var at: String
        public var kind: String
        public var actor: String
        public var data: JSONValue

        public init(seq: Int64, at: String, kind: String, actor: String, data: JSONValue) {
            self.seq = seq
            self.at = at
            self.kind = kind
            self.actor = actor
            self.data = data
        }
    }

    /// Everything about one run: its summary, steps, tasks and audit timeline.
    public struct RunDetail: Hashable, Sendable, Codable {
        public var summary: RunSummary
        public var playbookVersion: Int64
        public var payload: JSONValue
        public var result: JSONValue?
        public var failure: Failure?
        /// What the run waits on while its status is `incident`: `{kind, step_id, visit, reason, at, task_id,
        /// attempt}`.
        public var incident: JSONValue?
        public var steps: [Step]
        public var tasks: [Task]
        public var timeline: [TimelineEntry]
        /// The sub-playbook step this run performs for another run: `{run_id, task_id, attempt, depth}`;
        /// `nil` for a run of its own.
        public var parent: JSONValue?

        public init(summary: RunSummary, playbookVersion: Int64, payload: JSONValue, result: JSONValue?,
            failure: Failure?, incident: JSONValue? = nil, steps: [Step], tasks: [Task], timeline: [TimelineEntry],
            parent: JSONValue? = nil)
        {
            self.parent = parent
            self.summary = summary
            self.playbookVersion = playbookVersion
            self.payload = payload
            self.result = result
            self.failure = failure
            self.incident = incident
            self.steps = steps
            self.tasks = tasks
            self.timeline = timeline
        }

        enum CodingKeys: String, CodingKey {
            case playbookVersion = "playbook_version", payload, result, failure, incident, steps, tasks, timeline, parent
        }

        public init(from decoder: any Decoder) throws {
            summary = try RunSummary(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            playbookVersion = try c.decode(Int64.self, forKey: .playbookVersion)
            payload = try c.decode(JSONValue.self, forKey: .payload)
            result = try c.decodeIfPresent(JSONValue.self, forKey: .result)
            failure = try c.decodeIfPresent(Failure.self, forKey: .failure)
            incident = try c.decodeIfPresent(JSONValue.self, forKey: .incident)
            steps = try c.decode([Step].self, forKey: .steps)
            tasks = try c.decode([Task].self, forKey: .tasks)
            timeline = try c.decode([TimelineEntry].self, forKey: .timeline)
            parent = try c.decodeIfPresent(JSONValue.self, forKey: .parent)
        }

        public func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(playbookVersion, forKey: .playbookVersion)
            try c.encode(payload, forKey: .payload)
            try c.encode(result, forKey: .result)
            try c.encode(failure, forKey: .failure)
            try c.encode(incident ?? .null, forKey: .incident)
            try c.encode(steps, forKey: .steps)
            try c.encode(tasks, forKey: .tasks)
            try c.encode(timeline, forKey: .timeline)
            try c.encode(parent ?? .null, forKey: .parent)
        }
    }

    /// A playbook problem, flattened for JSON.
    public struct Diagnostic: Hashable, Sendable, Codable {
        public var severity: String
        public var code: String
        public var message: String
        public var fix: String?
        public var line: Int?
        public var column: Int?
        public var file: String?

        /// Every problem and warning of a playbook source as registering would find them against `agents`.
        public static func check(source: String, file: String?, agents: [ActPlaybook.Agent]) -> [Diagnostic] {
            do {
                let loaded = try PlaybookLoader.load(yaml: source, file: file)
                return PlaybookRegistrar.check(loaded, agents: agents).diagnostics.map(Diagnostic.init)
            } catch {
                return error.diagnostics.map(Diagnostic.init)
            }
        }

        public init(_ diagnostic: ActPlaybook.Diagnostic) {
            self.severity = diagnostic.severity.rawValue
            self.code = diagnostic.code
            self.message = diagnostic.message
            self.fix = diagnostic.fix
            self.line = diagnostic.location?.line
            self.column = diagnostic.location?.column
            self.file = diagnostic.location?.file
        }

        enum CodingKeys: String, CodingKey { case severity, code, message, fix, line, column, file }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(severity, forKey: .severity)
            try c.encode(code, forKey: .code)
            try c.encode(message, forKey: .message)
            try c.encode(fix, forKey: .fix)
            try c.encode(line, forKey: .line)
            try c.encode(column, forKey: .column)
            try c.encode(file, forKey: .file)
        }
    }

    /// The outcome of `POST /v1/playbooks`.
    public struct PlaybookRegistration: Hashable, Sendable, Codable {
        public var playbook: String
        public var version: Int64
        public var checksum: String
        public var triggers: [String]
        /// `false` when the same source was registered before (the existing version is returned).
        public var created: Bool
        public var warnings: [Diagnostic]

        public init(playbook: String, version: Int64, checksum: String, triggers: [String], created: Bool,
            warnings: [Diagnostic])
        {
            self.playbook = playbook
            self.version = version
            self.checksum = checksum
            self.triggers = triggers
            self.created = created
            self.warnings = warnings
        }
    }

    /// The newest version of a registered playbook.
    public struct PlaybookSummary: Hashable, Sendable, Codable {
        public var playbook: String
        public var version: Int64
        public var checksum: String
        public var triggers: [String]
        public var registeredAt: String
        public var description: String?
        /// Top-level steps.
        public var steps: Int

        public init(playbook: String, version: Int64, checksum: String, triggers: [String], registeredAt: String,
            description: String?, steps: Int)
        {
            self.playbook = playbook
            self.version = version
            self.checksum = checksum
            self.triggers = triggers
            self.registeredAt = registeredAt
            self.description = description
            self.steps = steps
        }

        enum CodingKeys: String, CodingKey {
            case playbook, version, checksum, triggers, registeredAt = "registered_at", description, steps
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(playbook, forKey: .playbook)
            try c.encode(version, forKey: .version)
            try c.encode(checksum, forKey: .checksum)
            try c.encode(triggers, forKey: .triggers)
            try c.encode(registeredAt, forKey: .registeredAt)
            try c.encode(description, forKey: .description)
            try c.encode(steps, forKey: .steps)
        }
    }

    /// A playbook summary with the source of its newest version.
    public struct PlaybookDetail: Hashable, Sendable, Codable {
        public var summary: PlaybookSummary
        public var source: String

        public init(summary: PlaybookSummary, source: String) {
            self.summary = summary
            self.source = source
        }

        enum CodingKeys: String, CodingKey { case source }

        public init(from decoder: any Decoder) throws {
            summary = try PlaybookSummary(from: decoder)
            source = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .source)
        }

        public func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(source, forKey: .source)
        }
    }

    /// An agent of the registry, with whether its shift covers now.
    public struct Agent: Hashable, Sendable, Codable {
        public var id: String
        public var skills: [String]
        /// `8:00-22:00 UTC`; `nil` means always on shift.
        public var shift: String?
        public var queue: String?
        /// The routing key its tasks use when it has no queue of its own.
        public var routingKey: String?
        /// `push` (published over AMQP) or `pull` (claimed over HTTP).
        public var delivery: String
        public var onShift: Bool

        public init(id: String, skills: [String], shift: String?, queue: String?, routingKey: String?,
            delivery: String = "push", onShift: Bool)
        {
            self.id = id
            self.skills = skills
            self.shift = shift
            self.queue = queue
            self.routingKey = routingKey
            self.delivery = delivery
            self.onShift = onShift
        }

        enum CodingKeys: String, CodingKey {
            case id, skills, shift, queue, routingKey = "routing_key", delivery, onShift = "on_shift"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(skills, forKey: .skills)
            try c.encode(shift, forKey: .shift)
            try c.encode(queue, forKey: .queue)
            try c.encode(routingKey, forKey: .routingKey)
            try c.encode(delivery, forKey: .delivery)
            try c.encode(onShift, forKey: .onShift)
        }
    }

    /// Something an operator must look at.
    public struct Incident: Hashable, Sendable, Codable {
        public var id: Int64
        public var kind: String
        public var runID: String?
        public var detail: JSONValue
        public var createdAt: String
        /// Whether the run waits on it (status `incident`) until it is answered with retry, skip or fail.
        public var holdsRun: Bool
        /// `open` or `resolved`.
        public var status: String
        public var resolution: Resolution?

        public struct Resolution: Hashable, Sendable, Codable {
            /// `resolve`, `retry`, `skip`, `fail`, `rewind` or `cancel`.
            public var action: String
            public var actor: String
            public var reason: String?
            public var at: String

            public init(action: String, actor: String, reason: String?, at: String) {
                self.action = action
                self.actor = actor
                self.reason = reason
                self.at = at
            }

            public func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(action, forKey: .action)
                try c.encode(actor, forKey: .actor)
                try c.encode(reason, forKey: .reason)
                try c.encode(at, forKey: .at)
            }
        }

        public init(
            id: Int64, kind: String, runID: String?, detail: JSONValue, createdAt: String, holdsRun: Bool = false,
            resolution: Resolution? = nil
        ) {
            self.id = id
            self.kind = kind
            self.runID = runID
            self.detail = detail
            self.createdAt = createdAt
            self.holdsRun = holdsRun
            self.status = resolution == nil ? "open" : "resolved"
            self.resolution = resolution
        }

        enum CodingKeys: String, CodingKey {
            case id, kind, runID = "run_id", detail, createdAt = "created_at", holdsRun = "holds_run", status, resolution
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(kind, forKey: .kind)
            try c.encode(runID, forKey: .runID)
            try c.encode(detail, forKey: .detail)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(holdsRun, forKey: .holdsRun)
            try c.encode(status, forKey: .status)
            try c.encode(resolution, forKey: .resolution)
        }
    }

    /// A page of incidents, newest first; `next` pages on (`before`).
    public struct IncidentPage: Hashable, Sendable, Encodable {
        public var incidents: [Incident]
        public var next: String?

        public init(incidents: [Incident], next: String?) {
            self.incidents = incidents
            self.next = next
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(incidents, forKey: .incidents)
            try c.encode(next, forKey: .next)
        }

        enum CodingKeys: String, CodingKey { case incidents, next }
    }

    /// A playbook schedule (`schedules:`) and where it stands (`GET /v1/schedules`).
    public struct Schedule: Hashable, Sendable, Encodable {
        public var playbook: String
        public var scheduleID: String
        /// As written: `cron 0 2 * * *` or `every 30s`.
        public var spec: String
        /// The IANA time zone of a cron schedule (`UTC` when not written).
        public var timeZone: String
        /// `none`, `one` or `all`.
        public var catchUp: String
        /// How far back missed fires count, as a playbook writes a span (`24h`).
        public var catchUpWindow: String
        /// `skip`, `buffer_one`, `allow` or `cancel_previous`.
        public var overlap: String
        /// As a playbook writes a span (`30s`); `nil` without jitter.
        public var jitter: String?
        /// Paused schedules skip their fires; resuming does not make them up.
        public var paused: Bool
        /// Who paused it, and why (`ops: billing freeze`), while it is paused.
        public var pausedBy: String?
        /// The nominal instant of the next fire; `nil` when it never fires again.
        public var nextFireAt: String?
        /// The latest fire handled (started, held or skipped).
        public var lastFireAt: String?
        /// The run the latest started fire started.
        public var lastRunID: String?
        /// A fire held (`overlap: buffer_one`) until the previous fire's run ends.
        public var bufferedFireAt: String?
        /// Fires started and skipped so far.
        public var started: Int
        public var skipped: Int
        /// Why the latest skipped fire was skipped.
        public var lastSkip: String?
        /// When a replica looks at it next (the next fire plus its jitter); `nil`: never.
        public var dueAt: String?

        public init(playbook: String, scheduleID: String, spec: String, timeZone: String, catchUp: String,
            catchUpWindow: String, overlap: String, jitter: String?, paused: Bool, pausedBy: String?,
            nextFireAt: String?, lastFireAt: String?, lastRunID: String?, bufferedFireAt: String?, started: Int,
            skipped: Int, lastSkip: String?, dueAt: String?)
        {
            self.playbook = playbook
            self.scheduleID = scheduleID
            self.spec = spec
            self.timeZone = timeZone
            self.catchUp = catchUp
            self.catchUpWindow = catchUpWindow
            self.overlap = overlap
            self.jitter = jitter
            self.paused = paused
            self.pausedBy = pausedBy
            self.nextFireAt = nextFireAt
            self.lastFireAt = lastFireAt
            self.lastRunID = lastRunID
            self.bufferedFireAt = bufferedFireAt
            self.started = started
            self.skipped = skipped
            self.lastSkip = lastSkip
            self.dueAt = dueAt
        }

        enum CodingKeys: String, CodingKey {
            case playbook, scheduleID = "schedule_id", spec, timeZone = "time_zone", catchUp = "catch_up"
            case catchUpWindow = "catch_up_window", overlap, jitter, paused, pausedBy = "paused_by"
            case nextFireAt = "next_fire_at", lastFireAt = "last_fire_at", lastRunID = "last_run_id"
            case bufferedFireAt = "buffered_fire_at", started, skipped, lastSkip = "last_skip", dueAt = "due_at"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(playbook, forKey: .playbook)
            try c.encode(scheduleID, forKey: .scheduleID)
            try c.encode(spec, forKey: .spec)
            try c.encode(timeZone, forKey: .timeZone)
            try c.encode(catchUp, forKey: .catchUp)
            try c.encode(catchUpWindow, forKey: .catchUpWindow)
            try c.encode(overlap, forKey: .overlap)
            try c.encode(jitter, forKey: .jitter)
            try c.encode(paused, forKey: .paused)
            try c.encode(pausedBy, forKey: .pausedBy)
            try c.encode(nextFireAt, forKey: .nextFireAt)
            try c.encode(lastFireAt, forKey: .lastFireAt)
            try c.encode(lastRunID, forKey: .lastRunID)
            try c.encode(bufferedFireAt, forKey: .bufferedFireAt)
            try c.encode(started, forKey: .started)
            try c.encode(skipped, forKey: .skipped)
            try c.encode(lastSkip, forKey: .lastSkip)
            try c.encode(dueAt, forKey: .dueAt)
        }
    }

    /// Whether the service's dependencies answer.
    public struct Readiness: Hashable, Sendable, Codable {
        public var postgres: Bool
        public var amqp: Bool
        /// Queues whose consumer is retrying a batch that cannot commit yet (empty when all make progress).
        public var retrying: [String]

        public init(postgres: Bool, amqp: Bool, retrying: [String] = []) {
            self.postgres = postgres
            self.amqp = amqp
            self.retrying = retrying
        }

        /// Ready only when both answer and no consumer is stuck retrying.
        public var isReady: Bool { postgres && amqp && retrying.isEmpty }
    }
}
