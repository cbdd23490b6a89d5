public import ActEngine
public import ActPlaybook

/// A registered, immutable playbook version.
public struct PlaybookVersion: Hashable, Sendable {
    public var versionID: Int64
    public var playbookID: String
    /// SHA-256 of the source, lower-case hex; recorded in the audit trail of every run of this version.
    public var checksum: String
    public var source: String
    /// The normalised model as JSON (what the engine runs).
    public var model: [UInt8]
    public var triggers: [String]
    /// Milliseconds since the epoch.
    public var registeredAt: Int64

    public init(versionID: Int64, playbookID: String, checksum: String, source: String, model: [UInt8],
        triggers: [String], registeredAt: Int64)
    {
        self.versionID = versionID
        self.playbookID = playbookID
        self.checksum = checksum
        self.source = source
        self.model = model
        self.triggers = triggers
        self.registeredAt = registeredAt
    }
}

/// One row of `runs`: the engine's state (JSON) plus the columns queries filter on.
public struct RunRow: Hashable, Sendable {
    public var runID: String
    public var playbookID: String
    public var versionID: Int64
    public var status: String
    /// The encoded `RunState`.
    public var state: [UInt8]
    public var traceID: String
    public var triggerEventID: String?
    public var triggerType: String?
    /// Head of the run's audit chain: the last sequence number and its hash (empty before the first).
    public var auditSequence: Int64
    public var auditHead: [UInt8]
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var finishedAt: Int64?
    /// The playbook's `key:` evaluated on the trigger's payload at start, when it has one: what a signal may
    /// name instead of the run id (else the trigger event's id is). Written once, when the run is created.
    public var businessKey: String?

    public init(runID: String, playbookID: String, versionID: Int64, status: String, state: [UInt8], traceID: String,
        triggerEventID: String?, triggerType: String?, auditSequence: Int64, auditHead: [UInt8], createdAt: Int64,
        updatedAt: Int64, finishedAt: Int64?, businessKey: String? = nil)
    {
        self.businessKey = businessKey
        self.runID = runID
        self.playbookID = playbookID
        self.versionID = versionID
        self.status = status
        self.state = state
        self.traceID = traceID
        self.triggerEventID = triggerEventID
        self.triggerType = triggerType
        self.auditSequence = auditSequence
        self.auditHead = auditHead
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// One row of `tasks`: one dispatched attempt.
public struct TaskRow: Hashable, Sendable {
    public var taskID: String
    public var attempt: Int
    public var runID: String
    public var stepID: String
    public var assignee: String
    public var agentID: String?
    public var target: String
    public var status: TaskStatus
    public var deadline: Int64?
    public var warnAt: Int64?
    public var isCompensation: Bool
    public var output: JSONValue?
    public var error: String?
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(taskID: String, attempt: Int, runID: String, stepID: String, assignee: String, agentID: String?,
        target: String, status: TaskStatus, deadline: Int64?, warnAt: Int64?, isCompensation: Bool, output: JSONValue?,
        error: String?, createdAt: Int64, updatedAt: Int64)
    {
        self.taskID = taskID
        self.attempt = attempt
        self.runID = runID
        self.stepID = stepID
        self.assignee = assignee
        self.agentID = agentID
        self.target = target
        self.status = status
        self.deadline = deadline
        self.warnAt = warnAt
        self.isCompensation = isCompensation
        self.output = output
        self.error = error
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A change of a task attempt's status after a result, a timeout or a cancel.
public struct TaskStatusChange: Hashable, Sendable {
    public var taskID: String
    public var attempt: Int
    public var status: TaskStatus
    public var output: JSONValue?
    public var error: String?
    public var at: Int64

    public init(taskID: String, attempt: Int, status: TaskStatus, output: JSONValue?, error: String?, at: Int64) {
        self.taskID = taskID
        self.attempt = attempt
        self.status = status
        self.output = output
        self.error = error
        self.at = at
    }
}

/// One row of `timers`.
public struct TimerRow: Hashable, Sendable {
    public var timerID: String
    public var runID: String
    public var kind: String
    /// Milliseconds since the epoch.
    public var dueAt: Int64

    public init(timerID: String, runID: String, kind: String, dueAt: Int64) {
        self.timerID = timerID
        self.runID = runID
        self.kind = kind
        self.dueAt = dueAt
    }
}

/// The message of one task attempt of a pull agent (`delivery: pull`), waiting to be claimed over HTTP.
public struct PullTask: Hashable, Sendable {
    public var taskID: String
    public var attempt: Int
    public var runID: String
    /// The pull agent's id (`ai.fraud-labeler`, `human.inspector#3`): what a claim names.
    public var assignee: String
    /// The `hms.task` message a pushed worker would have received.
    public var body: [UInt8]
    /// Milliseconds since the epoch.
    public var createdAt: Int64

    public init(taskID: String, attempt: Int, runID: String, assignee: String, body: [UInt8], createdAt: Int64) {
        self.taskID = taskID
        self.attempt = attempt
        self.runID = runID
        self.assignee = assignee
        self.body = body
        self.createdAt = createdAt
    }

    /// The assignee of `call:` tasks hms-act performs itself: its HTTP caller claims them. Not a valid agent
    /// id, so no pull agent can claim them.
    public static let httpCaller = "@http"
}

/// A pull task as claimed: its message and the lease that holds it.
public struct ClaimedTask: Hashable, Sendable {
    public var task: PullTask
    /// Names the holder: completing, failing or extending needs it.
    public var leaseID: String
    /// Milliseconds since the epoch, by the database's clock.
    public var leaseExpiresAt: Int64
    /// How many leases were granted on this attempt, this one included (2 or more: redelivered).
    public var claims: Int

    public init(task: PullTask, leaseID: String, leaseExpiresAt: Int64, claims: Int) {
        self.task = task
        self.leaseID = leaseID
        self.leaseExpiresAt = leaseExpiresAt
        self.claims = claims
    }
}

/// One message waiting in the outbox.
public struct OutboxMessage: Hashable, Sendable {
    /// Assigned by the database; 0 before insertion.
    public var outboxID: Int64
    public var exchange: String
    public var routingKey: String
    public var messageID: String
    public var correlationID: String?
    public var type: String
    public var contentType: String
    /// String-valued AMQP headers (traceparent, x-hms-*).
    public var headers: [String: String]
    public var body: [UInt8]
    /// Milliseconds since the epoch: the AMQP timestamp.
    public var createdAt: Int64
    public var attempts: Int

    public init(outboxID: Int64 = 0, exchange: String, routingKey: String, messageID: String, correlationID: String?,
        type: String, contentType: String = "application/json", headers: [String: String], body: [UInt8],
        createdAt: Int64, attempts: Int = 0)
    {
        self.outboxID = outboxID
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageID = messageID
        self.correlationID = correlationID
        self.type = type
        self.contentType = contentType
        self.headers = headers
        self.body = body
        self.createdAt = createdAt
        self.attempts = attempts
    }
}

/// Something an operator must look at: an unroutable task, a poison message, a failed step or
/// compensation.
public struct Incident: Hashable, Sendable {
    public var incidentID: Int64
    public var kind: String
    public var runID: String?
    public var detail: JSONValue
    public var createdAt: Int64
    /// The run waits on it (status `incident`) until it is answered with retry, skip or fail.
    public var holdsRun: Bool
    /// How it was resolved, once it was.
    public var resolution: IncidentResolution?

    public init(
        incidentID: Int64 = 0, kind: String, runID: String?, detail: JSONValue, createdAt: Int64, holdsRun: Bool = false,
        resolution: IncidentResolution? = nil
    ) {
        self.incidentID = incidentID
        self.kind = kind
        self.runID = runID
        self.detail = detail
        self.createdAt = createdAt
        self.holdsRun = holdsRun
        self.resolution = resolution
    }
}

/// How an incident was resolved: what was done (`resolve`, `retry`, `skip`, `fail`, `rewind`, `cancel`), by
/// whom, why and when.
public struct IncidentResolution: Hashable, Sendable {
    public var action: String
    public var actor: String
    public var note: String?
    public var at: Int64

    public init(action: String, actor: String, note: String?, at: Int64) {
        self.action = action
        self.actor = actor
        self.note = note
        self.at = at
    }
}

/// A dead-lettered message kept for an operator (`hms-act dead …`).
public struct DeadLetter: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable, CaseIterable {
        /// Waiting for an operator.
        case dead
        case replayed
        case discarded
    }

    public var id: Int64
    public var collectedAt: Int64
    /// Where it was first published: a replay goes back there.
    public var exchange: String
    public var routingKey: String
    /// The queue that gave up on it.
    public var queue: String?
    /// Why it died, and how to fix it (`x-hms-reason`, or the broker's `x-death`).
    public var reason: String
    public var messageID: String?
    /// Its AMQP properties and headers, as JSON.
    public var properties: JSONValue
    public var body: [UInt8]
    public var status: Status
    public var handledAt: Int64?
    public var handledBy: String?
    public var note: String?

    public init(
        id: Int64 = 0, collectedAt: Int64, exchange: String, routingKey: String, queue: String?, reason: String,
        messageID: String?, properties: JSONValue, body: [UInt8], status: Status = .dead, handledAt: Int64? = nil,
        handledBy: String? = nil, note: String? = nil
    ) {
        self.id = id
        self.collectedAt = collectedAt
        self.exchange = exchange
        self.routingKey = routingKey
        self.queue = queue
        self.reason = reason
        self.messageID = messageID
        self.properties = properties
        self.body = body
        self.status = status
        self.handledAt = handledAt
        self.handledBy = handledBy
        self.note = note
    }
}

/// An operator's command over every run a filter matches (`hms-act bulk …`), worked on page by page.
public struct BulkOperation: Hashable, Sendable {
    public enum Action: String, Hashable, Sendable, CaseIterable {
        case cancel, pause, resume
        /// Answer the incident each run waits on with retry.
        case retry
        /// Move each run to another playbook version (``BulkOperation/parameters``: `to_version`, `mapping`).
        case migrate
    }

    public enum State: String, Hashable, Sendable, CaseIterable {
        case running, done
        /// Stopped by an operator before the end.
        case stopped
    }

    /// Which runs: all given conditions hold (and the run existed when the first page was taken).
    public struct Filter: Hashable, Sendable {
        public var playbook: String?
        public var status: String?
        public var key: String?
        /// Milliseconds since the epoch; created at or after.
        public var createdAfter: Int64?
        /// Milliseconds since the epoch; created before.
        public var createdBefore: Int64?
        /// Runs of this playbook version.
        public var version: Int64?

        public init(playbook: String? = nil, status: String? = nil, key: String? = nil, createdAfter: Int64? = nil,
            createdBefore: Int64? = nil, version: Int64? = nil)
        {
            self.playbook = playbook
            self.status = status
            self.key = key
            self.createdAfter = createdAfter
            self.createdBefore = createdBefore
            self.version = version
        }

        public var isEmpty: Bool {
            playbook == nil && status == nil && key == nil && createdAfter == nil && createdBefore == nil
                && version == nil
        }

        public var json: JSONValue {
            var object: [String: JSONValue] = [:]
            if let playbook { object["playbook"] = .string(playbook) }
            if let status { object["status"] = .string(status) }
            if let key { object["key"] = .string(key) }
            if let createdAfter { object["created_after_ms"] = .int(createdAfter) }
            if let createdBefore { object["created_before_ms"] = .int(createdBefore) }
            if let version { object["version"] = .int(version) }
            return .object(object)
        }

        public init(json: JSONValue) {
            playbook = json["playbook"]?.stringValue
            status = json["status"]?.stringValue
            key = json["key"]?.stringValue
            createdAfter = json["created_after_ms"]?.numberValue?.intValue.map(Int64.init)
            createdBefore = json["created_before_ms"]?.numberValue?.intValue.map(Int64.init)
            version = json["version"]?.numberValue?.intValue.map(Int64.init)
        }
    }

    public var id: Int64
    public var action: Action
    public var filter: Filter
    /// What the action needs besides the filter (`migrate`: `{"to_version": 4, "mapping": {"old": "new"}}`).
    public var parameters: JSONValue
    public var reason: String?
    public var requestedBy: String
    public var ratePerSecond: Int
    public var state: State
    public var matched: Int64
    public var applied: Int64
    public var ignored: Int64
    public var refused: Int64
    public var lastError: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var finishedAt: Int64?

    public init(
        id: Int64 = 0, action: Action, filter: Filter, parameters: JSONValue = [:], reason: String?, requestedBy: String,
        ratePerSecond: Int,
        state: State = .running, matched: Int64 = 0, applied: Int64 = 0, ignored: Int64 = 0, refused: Int64 = 0,
        lastError: String? = nil, createdAt: Int64 = 0, updatedAt: Int64 = 0, finishedAt: Int64? = nil
    ) {
        self.id = id
        self.action = action
        self.filter = filter
        self.parameters = parameters
        self.reason = reason
        self.requestedBy = requestedBy
        self.ratePerSecond = ratePerSecond
        self.state = state
        self.matched = matched
        self.applied = applied
        self.ignored = ignored
        self.refused = refused
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// One page of a bulk operation's walk: the runs, and where the page ends.
public struct BulkPage: Sendable {
    public var runIDs: [String]
    /// The last run's `created_at` as PostgreSQL wrote it (exact), and its id: the next page starts after.
    public var cursor: (createdAt: String, runID: String)?
}

/// Every write caused by one batch of applied messages, committed in one transaction.
public struct StoreBatch: Sendable {
    /// Inserted or updated (by run id).
    public var runs: [RunRow] = []
    /// New task attempts.
    public var dispatchedTasks: [TaskRow] = []
    public var taskChanges: [TaskStatusChange] = []
    /// Inserted, or moved when the id exists.
    public var scheduledTimers: [TimerRow] = []
    public var cancelledTimers: [String] = []
    public var outbox: [OutboxMessage] = []
    /// Task messages of pull agents: kept for claiming over HTTP instead of published.
    public var pullTasks: [PullTask] = []
    /// Entries with their chain hashes, in sequence order per run.
    public var audit: [AuditChain.StoredEntry] = []
    /// New incidents; one the same batch already resolved carries its resolution.
    public var incidents: [Incident] = []
    /// Resolutions of the incidents runs waited on before this batch, by run id.
    public var resolvedRunIncidents: [String: IncidentResolution] = [:]
    /// The trigger payloads of the runs this batch started (`run_payloads`, for search), with the runs'
    /// creation times (milliseconds).
    public var runPayloads: [(runID: String, createdAt: Int64, payload: JSONValue)] = []
    /// Inbox keys this batch claimed for inputs it refused: they had no effect, so a corrected or replayed
    /// copy must not be taken for a repeat.
    public var releasedInboxKeys: [String] = []

    public init() {}

    public var isEmpty: Bool {
        runs.isEmpty && dispatchedTasks.isEmpty && taskChanges.isEmpty && scheduledTimers.isEmpty
            && cancelledTimers.isEmpty && outbox.isEmpty && pullTasks.isEmpty && audit.isEmpty && incidents.isEmpty
            && resolvedRunIncidents.isEmpty && releasedInboxKeys.isEmpty && runPayloads.isEmpty
    }

    public mutating func append(contentsOf other: StoreBatch) {
        runs.append(contentsOf: other.runs)
        dispatchedTasks.append(contentsOf: other.dispatchedTasks)
        taskChanges.append(contentsOf: other.taskChanges)
        scheduledTimers.append(contentsOf: other.scheduledTimers)
        cancelledTimers.append(contentsOf: other.cancelledTimers)
        outbox.append(contentsOf: other.outbox)
        pullTasks.append(contentsOf: other.pullTasks)
        audit.append(contentsOf: other.audit)
        incidents.append(contentsOf: other.incidents)
        resolvedRunIncidents.merge(other.resolvedRunIncidents) { first, _ in first }
        releasedInboxKeys.append(contentsOf: other.releasedInboxKeys)
        runPayloads.append(contentsOf: other.runPayloads)
    }
}
