public import ActPlaybook

/// What the service must do after the engine handled an event. Commands are data: the service writes
/// them to the outbox and the timer table in the same transaction as the new ``RunState``.
public enum RunCommand: Hashable, Sendable, Codable {
    /// Publish a task to a worker.
    case dispatchTask(TaskDispatch)
    /// Deliver ``RunEvent/timerFired(_:)`` at `due` (at the latest one second later).
    case scheduleTimer(TimerID, TimerKind, due: Instant)
    /// Forget a timer; if it fires anyway the engine ignores it.
    case cancelTimer(TimerID)
    /// Publish on the governance exchange.
    case emit(GovernanceEvent)
    /// A transition that sends no message of its own (a skip, a switch decision, a timeout, an accepted
    /// signal or approval, pause, resume, cancel): for the audit trail and timelines.
    case audit(AuditRecord)
    /// The run reached its end (`.completed`, `.failed` or `.cancelled`).
    case runFinished(RunStatus)
    /// Record an incident for operators. With `holdsRun` the run waits on it (status `incident`) until
    /// ``RunEvent/incidentAction(_:actor:reason:)``; otherwise (a failed compensation under
    /// ``FailurePolicy/fail``) the run went on and the incident only tells.
    case incidentOpened(RunIncident, holdsRun: Bool)
    /// The incident the run waited on is answered (`retry`, `skip`, `fail`, `rewind`, `cancel`), with the
    /// operator's reason.
    case incidentClosed(resolution: String, reason: String?)
    /// A step visit with `concurrency:` asks for a slot of its key (it is ``StepStatus/queued`` until
    /// ``RunEvent/slotGranted(step:visit:)``).
    case askSlot(RunState.ConcurrencyClaim, step: StepID, visit: Int)
    /// A step visit that asked for a slot ended: its slot (or its place in the queue) frees.
    case leaveSlot(RunState.ConcurrencyClaim, step: StepID, visit: Int)
    /// A task attempt that existed before the event now has another ``TaskStatus``.
    ///
    /// These come after the event's other commands, one per attempt, the net change over the event. An
    /// attempt the event dispatched is not listed: ``dispatchTask(_:)`` creates it as
    /// ``TaskStatus/dispatched``.
    case taskStatusChanged(TaskStatusUpdate)
}

/// Where one attempt of a task is, as the `tasks` table records it; the raw value is the stored text.
public enum TaskStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Sent to a worker (or held while the run is paused); its answer is awaited.
    case dispatched
    case completed
    /// The attempt failed; a retry, if any, is a new attempt of the same task. An attempt superseded before
    /// it answered (its step was entered again within the same event) is closed as failed too.
    case failed
    /// Its step timed out (an SLA breach with `on_timeout`) before the answer came; a late answer is ignored.
    case timedOut = "timeout"
    /// Abandoned before it answered: its step ended without it (a failed parallel branch, an approval
    /// that came first, a cancel), or the run ended while a compensation was in flight.
    case cancelled
}

/// The new status of one task attempt (``RunCommand/taskStatusChanged(_:)``).
public struct TaskStatusUpdate: Hashable, Sendable, Codable {
    public var task: TaskID
    public var attempt: Int
    public var status: TaskStatus
    /// The task's output, once it completed.
    public var output: JSONValue?
    /// The task's last failure reason (it may be an earlier attempt's).
    public var error: String?

    public init(task: TaskID, attempt: Int, status: TaskStatus, output: JSONValue? = nil, error: String? = nil) {
        self.task = task
        self.attempt = attempt
        self.status = status
        self.output = output
        self.error = error
    }
}

/// A transition worth recording that has no governance message.
public struct AuditRecord: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// `when:` was false.
        case skipped
        /// A switch picked its target; detail `High → human_review`.
        case decided
        /// A wait ran out, or an SLA breach sent the step to `on_timeout`.
        case timedOut = "timed_out"
        /// A signal ended a wait.
        case signalled
        /// A signal arrived before any wait listened for it: kept for a later wait.
        case signalKept = "signal_kept"
        /// A kept signal dropped because the run kept too many.
        case signalDropped = "signal_dropped"
        case approved
        case refused
        case paused
        case resumed
        case cancelled
        /// The run waits on an incident.
        case incident
        /// An operator answered the run's incident (detail: retry, skip or fail, and the reason).
        case incidentAnswered = "incident_answered"
        /// An operator ran the run again from a step.
        case rewound
        /// A queued run (or step) got its concurrency slot and started.
        case released
        /// A step waits for a slot of its concurrency key.
        case queued
    }

    public var kind: Kind
    public var step: StepID?
    public var at: Instant
    /// Who acted (the approver), when someone did.
    public var actor: String?
    public var detail: String?

    public init(kind: Kind, step: StepID? = nil, at: Instant, actor: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.step = step
        self.at = at
        self.actor = actor
        self.detail = detail
    }
}

/// Where a task message goes.
public enum DispatchTarget: Hashable, Sendable, Codable {
    /// A routing key on the tasks exchange (`task.ai.classifier`).
    case routingKey(String)
    /// An agent's own queue (default exchange).
    case queue(String)
    /// Not published: a pull agent claims it over HTTP (`delivery: pull`).
    case pull
    /// Not published: hms-act performs the `call:` itself over HTTP (``CallScope``).
    case http
    /// Not published: hms-act starts a child run of this playbook (`playbook:`), in the same transaction;
    /// the child's end answers the task (``TaskDispatch/childRunID``).
    case playbook(PlaybookID)
}

/// One task message: one attempt of one task.
public struct TaskDispatch: Hashable, Sendable, Codable {
    public var task: TaskID
    /// 1 for the first try; each retry adds one.
    public var attempt: Int
    public var run: RunID
    public var playbook: PlaybookID
    public var step: StepID
    /// The step visit the task belongs to (for a compensation: the visit being undone).
    public var visit: Int
    public var assignee: Assignee
    public var target: DispatchTarget
    /// The agent the task was routed to, when one was chosen from the registry.
    public var agent: AgentID?
    /// The SLA deadline of the step visit, when it has one.
    public var deadline: Instant?
    /// From when this attempt counts as at risk of missing ``deadline``: the instant it was sent plus the
    /// step's warning offset (`sla.warn_at`, else ``EngineConfiguration/slaWarningFraction`` of the SLA);
    /// `nil` without a deadline.
    ///
    /// Set when the dispatch is sent (a dispatch held while paused gets it on resume), so for a retry or a
    /// held dispatch it falls later than the step visit's own `sla.warning`.
    public var warnAt: Instant?
    /// The trigger's payload.
    public var payload: JSONValue
    /// The step's `input:`, or for a compensation the output of the step being undone.
    public var input: JSONValue?
    /// What the worker may need from earlier steps: `{"steps": {<id>: <output>}, "result": …}`.
    public var context: JSONValue
    /// Whether this undoes a completed step (`compensate:`).
    public var isCompensation: Bool
    /// The run's priority (0…9), published as the message's AMQP `priority`; `nil`: none.
    public var priority: Int?

    public init(
        task: TaskID, attempt: Int, run: RunID, playbook: PlaybookID, step: StepID, visit: Int, assignee: Assignee,
        target: DispatchTarget, agent: AgentID?, deadline: Instant?, warnAt: Instant? = nil, payload: JSONValue,
        input: JSONValue?, context: JSONValue, isCompensation: Bool
    ) {
        self.task = task
        self.attempt = attempt
        self.run = run
        self.playbook = playbook
        self.step = step
        self.visit = visit
        self.assignee = assignee
        self.target = target
        self.agent = agent
        self.deadline = deadline
        self.warnAt = warnAt
        self.payload = payload
        self.input = input
        self.context = context
        self.isCompensation = isCompensation
    }

    /// The worker's idempotency key and the message id: task id + `#` + attempt.
    public var idempotencyKey: String { "\(task.rawValue)#\(attempt)" }

    /// The child run a sub-playbook attempt starts (``DispatchTarget/playbook(_:)``): the run its playbook's
    /// trigger formula gives for the event id ``idempotencyKey``, so a repeated start never makes two
    /// children, and each retry makes a new one.
    public static func childRunID(playbook: PlaybookID, task: TaskID, attempt: Int) -> RunID {
        RunID.forTrigger(playbook: playbook.rawValue, eventID: "\(task.rawValue)#\(attempt)")
    }
}

/// A message for the governance exchange; ``Kind``'s raw value is its routing key.
public struct GovernanceEvent: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        case stepStarted = "metrics.step_started"
        case stepCompleted = "metrics.step_completed"
        case stepFailed = "metrics.step_failed"
        case slaWarning = "sla.warning"
        case slaViolation = "sla.violation"
        case runCompleted = "run.completed"
        case runFailed = "run.failed"
        case runCancelled = "run.cancelled"
        /// The run waits on an incident (a step or a compensation failed under `on_failure: incident`).
        case incidentOpened = "incident.opened"
    }

    public var kind: Kind
    public var run: RunID
    public var playbook: PlaybookID
    public var step: StepID?
    /// Which visit of ``step`` (1 unless the flow looped back to it).
    public var visit: Int?
    public var task: TaskID?
    public var attempt: Int?
    /// The assignee label (`human.investigator`).
    public var assignee: String?
    public var agent: AgentID?
    public var at: Instant
    /// For completions: time since the step visit started; for a run's end: since the run started.
    public var duration: TimeSpan?
    /// A failure reason, the SLA, or what ended a step.
    public var detail: String?
    /// For `metrics.step_failed` of a task attempt: whether another attempt follows.
    public var willRetry: Bool?
    public var isCompensation: Bool

    public init(
        kind: Kind, run: RunID, playbook: PlaybookID, step: StepID? = nil, visit: Int? = nil, task: TaskID? = nil,
        attempt: Int? = nil, assignee: String? = nil, agent: AgentID? = nil, at: Instant,
        duration: TimeSpan? = nil, detail: String? = nil, willRetry: Bool? = nil, isCompensation: Bool = false
    ) {
        self.kind = kind
        self.run = run
        self.playbook = playbook
        self.step = step
        self.visit = visit
        self.task = task
        self.attempt = attempt
        self.assignee = assignee
        self.agent = agent
        self.at = at
        self.duration = duration
        self.detail = detail
        self.willRetry = willRetry
        self.isCompensation = isCompensation
    }
}
