public import ActPlaybook

/// The whole persisted state of one run. The store saves it as JSON next to the run row.
///
/// Every collection is an array in a deterministic order, so the same history always encodes to the same
/// bytes. Records keep only the latest visit of each step: a task of an older visit is unknown, so its
/// late answer is ignored.
public struct RunState: Hashable, Sendable, Codable {
    public var runID: RunID
    public var playbookID: PlaybookID
    public var status: RunStatus
    /// The trigger's payload (`payload.*` in expressions).
    public var payload: JSONValue
    public var startedAt: Instant
    public var finishedAt: Instant?
    /// The top-level step the run is in (a parallel block while its branches run); `nil` between steps,
    /// while compensating and at the end.
    public var currentStep: StepID?
    /// The latest visit of every step entered so far (top-level steps and parallel branches), in the order
    /// they were first entered.
    public var steps: [StepRecord]
    /// The output of the most recently completed top-level task, wait or parallel step (`result.*`).
    public var result: JSONValue?
    /// The step that produced ``result``.
    public var resultStep: StepID?
    /// Completed step visits that have a `compensate` action, in completion order.
    public var completed: [CompletedStep]
    /// Dispatches made while paused; they go out, in order, on resume.
    public var heldDispatches: [TaskDispatch]
    /// Timers scheduled and not yet fired or cancelled, in scheduling order.
    public var timers: [PendingTimer]
    /// Undo progress once the run failed or was cancelled.
    public var compensation: CompensationProgress?
    /// Why the run failed (or was cancelled), once it did.
    public var failure: RunFailure?
    /// Signals that arrived while no wait listened for them, oldest first, kept for
    /// ``EngineConfiguration/signalRetention`` for a wait that starts later (`nil`: none; states written
    /// before signals were kept have no such field).
    public var pendingSignals: [PendingSignal]?
    /// The incident the run waits on while its status is ``RunStatus/incident``: a step failure nothing in
    /// the playbook handles, or a failed compensation, under ``FailurePolicy/incident``.
    public var incident: RunIncident?
    /// The step of another run this run performs, when it was started by a `playbook:` step (`nil`: a run of
    /// its own; states written before sub-playbooks have no such field).
    public var parent: ParentLink?
    /// The concurrency key slot this run holds or waits for (`concurrency:` on its playbook); `nil` without.
    public var concurrency: ConcurrencyClaim?
    /// 0…9, higher first: its tasks' AMQP priority and its place in a concurrency key's queue (`nil`: none).
    public var priority: Int?

    public init(runID: RunID, playbookID: PlaybookID, payload: JSONValue, startedAt: Instant) {
        self.runID = runID
        self.playbookID = playbookID
        self.status = .running
        self.payload = payload
        self.startedAt = startedAt
        self.finishedAt = nil
        self.currentStep = nil
        self.steps = []
        self.result = nil
        self.resultStep = nil
        self.completed = []
        self.heldDispatches = []
        self.timers = []
        self.compensation = nil
        self.failure = nil
    }

    /// A signal no wait listened for yet.
    public struct PendingSignal: Hashable, Sendable, Codable {
        public var name: String
        public var payload: JSONValue
        public var at: Instant

        public init(name: String, payload: JSONValue, at: Instant) {
            self.name = name
            self.payload = payload
            self.at = at
        }
    }

    /// The task a child run answers: which run, task and attempt started it, and how deep it is nested.
    public struct ParentLink: Hashable, Sendable, Codable {
        public var run: RunID
        public var task: TaskID
        public var attempt: Int
        /// 1 for a child of a run of its own, 2 for a grandchild, …
        public var depth: Int

        public init(run: RunID, task: TaskID, attempt: Int, depth: Int) {
            self.run = run
            self.task = task
            self.attempt = attempt
            self.depth = depth
        }
    }

    /// A run's place under its playbook's `concurrency:` (or a step visit's, under the step's): which key,
    /// and what happens at the limit.
    public struct ConcurrencyClaim: Hashable, Sendable, Codable {
        /// The playbook id (a step's: `<playbook>/<step>`): keys of different playbooks (steps) never share
        /// slots.
        public var scope: String
        /// The key's value on the run's payload, as text (`12 Elm St`).
        public var key: String
        public var limit: Int
        public var onLimit: Concurrency.OnLimit

        public init(scope: String, key: String, limit: Int, onLimit: Concurrency.OnLimit) {
            self.scope = scope
            self.key = key
            self.limit = limit
            self.onLimit = onLimit
        }
    }

    /// How deep the run is nested: 0 for a run of its own.
    public var depth: Int { parent?.depth ?? 0 }

    /// The record of the latest visit of `step`, if it was ever entered.
    public func record(_ step: StepID) -> StepRecord? {
        steps.first { $0.step == step }
    }
}

/// Where a run is in its life.
public enum RunStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Waiting for a slot of its playbook's concurrency key (`concurrency:`): no step has started; it starts
    /// with ``RunEvent/released`` and may be cancelled meanwhile.
    case queued
    case running
    /// Results still apply, but new dispatches are held until resumed.
    case paused
    /// The run failed or was cancelled and its completed steps are being undone, one at a time.
    case compensating
    /// A step failed (or a compensation did) and the run waits for an operator to retry, skip or fail it
    /// (``RunState/incident``). Nothing is in flight; signals are kept for after a retry.
    case incident
    case completed
    case failed
    case cancelled

    /// Whether the run is over; a finished run ignores every event.
    public var isFinished: Bool {
        switch self {
        case .completed, .failed, .cancelled: true
        case .queued, .running, .paused, .compensating, .incident: false
        }
    }
}

/// Where one visit of a step is.
public enum StepStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Tasks are in flight (or waiting for a retry), or the branches of a parallel block run.
    case running
    /// A task step with `concurrency:` waits for a slot of its key (``StepRecord/slot``); it starts with
    /// ``RunEvent/slotGranted(step:visit:)``.
    case queued
    /// `pause: true`: the task answered and the step waits for a human approval.
    case awaitingApproval = "awaiting_approval"
    /// A wait step, until its signal or its duration.
    case waiting
    case completed
    case failed
    /// The SLA was breached and the step has `on_timeout`, or a wait ran out. Later answers are ignored.
    case timedOut = "timeout"
    /// `when:` was false.
    case skipped
    /// Abandoned: its parallel block ended without it, or the run failed or was cancelled around it.
    case cancelled

    /// Whether the step still takes answers, signals, approvals and timers.
    public var isActive: Bool {
        switch self {
        case .running, .queued, .awaitingApproval, .waiting: true
        case .completed, .failed, .timedOut, .skipped, .cancelled: false
        }
    }
}

/// One visit of one step.
public struct StepRecord: Hashable, Sendable, Codable {
    public var step: StepID
    /// 1 for the first time the run enters the step; loops make it grow.
    public var visit: Int
    public var status: StepStatus
    /// The tasks of this visit: one for a single task, one per agent for fan-out, none for other kinds.
    public var tasks: [TaskRecord]
    /// The step's output once completed (a switch records `{value, case, target}`).
    public var output: JSONValue?
    /// For `pause: true`: what the task answered, kept until the approval arrives.
    public var taskOutput: JSONValue?
    public var startedAt: Instant
    public var finishedAt: Instant?
    /// Why the step failed (or was cancelled).
    public var error: String?
    /// The task input of this visit when an operator patched it (an incident's retry); `nil`: the step's
    /// `input:`.
    public var input: JSONValue?
    /// The SLA deadline of this visit, when the step has an SLA.
    public var deadline: Instant?
    public var slaWarned: Bool
    public var slaBreached: Bool
    /// A `for_each:` step's list, as evaluated when the visit started (`nil` for every other step). Its tasks
    /// are the items started so far, in item order.
    public var items: [JSONValue]?
    /// The concurrency slot this visit waits for (status `queued`) or holds (`concurrency:` on the step);
    /// `nil` without, and once the visit ended (the slot is then left).
    public var slot: RunState.ConcurrencyClaim?

    public init(step: StepID, visit: Int, startedAt: Instant) {
        self.step = step
        self.visit = visit
        self.status = .running
        self.tasks = []
        self.output = nil
        self.taskOutput = nil
        self.startedAt = startedAt
        self.finishedAt = nil
        self.error = nil
        self.deadline = nil
        self.slaWarned = false
        self.slaBreached = false
    }
}

/// One task of a step visit, with its current attempt.
public struct TaskRecord: Hashable, Sendable, Codable {
    public enum State: String, Hashable, Sendable, Codable {
        /// Dispatched (or held while paused); waiting for the answer of ``TaskRecord/attempt``.
        case inFlight = "in_flight"
        /// The attempt failed and a retry-backoff timer runs.
        case retryScheduled = "retry_scheduled"
        case completed
        case failed
    }

    public var id: TaskID
    public var attempt: Int
    public var agent: AgentID?
    public var target: DispatchTarget
    public var state: State
    public var output: JSONValue?
    public var error: String?
    public var dispatchedAt: Instant
    /// The item of a `for_each:` step this task runs (its index in ``StepRecord/items``); `nil` otherwise.
    public var item: Int?

    public init(id: TaskID, attempt: Int, agent: AgentID?, target: DispatchTarget, dispatchedAt: Instant) {
        self.id = id
        self.attempt = attempt
        self.agent = agent
        self.target = target
        self.state = .inFlight
        self.output = nil
        self.error = nil
        self.dispatchedAt = dispatchedAt
    }
}

/// A completed step visit that has something to undo.
public struct CompletedStep: Hashable, Sendable, Codable {
    public var step: StepID
    public var visit: Int
    public var at: Instant

    public init(step: StepID, visit: Int, at: Instant) {
        self.step = step
        self.visit = visit
        self.at = at
    }
}

/// What the engine will do when a timer fires.
public enum TimerKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// Dispatch the next attempt of a task.
    case retryBackoff = "retry_backoff"
    /// Emit `sla.warning` for the step visit.
    case slaWarning = "sla_warning"
    /// Emit `sla.violation`, and with `on_timeout` time the step out.
    case slaBreach = "sla_breach"
    /// End a wait step with status `timeout`.
    case waitOver = "wait_over"
}

/// A timer the engine asked for and still expects.
public struct PendingTimer: Hashable, Sendable, Codable {
    public var id: TimerID
    public var kind: TimerKind
    public var due: Instant
    public var step: StepID
    public var visit: Int
    /// For a retry backoff: the task to dispatch again.
    public var task: TaskID?

    public init(id: TimerID, kind: TimerKind, due: Instant, step: StepID, visit: Int, task: TaskID? = nil) {
        self.id = id
        self.kind = kind
        self.due = due
        self.step = step
        self.visit = visit
        self.task = task
    }
}

/// Undo progress: compensations run one at a time, newest completion first.
public struct CompensationProgress: Hashable, Sendable, Codable {
    /// How the run ends once everything is undone: `.failed` or `.cancelled`.
    public var ending: RunStatus
    /// Still to undo, in the order they run.
    public var remaining: [CompletedStep]
    /// The compensation task in flight.
    public var current: CompensationTask?
    /// Finished compensations, in the order they ran.
    public var done: [CompensationTask]

    public init(ending: RunStatus, remaining: [CompletedStep], current: CompensationTask? = nil, done: [CompensationTask] = []) {
        self.ending = ending
        self.remaining = remaining
        self.current = current
        self.done = done
    }
}

/// One compensation task (`compensate: achSvc.refund` of a completed step visit).
public struct CompensationTask: Hashable, Sendable, Codable {
    public enum Outcome: String, Hashable, Sendable, Codable {
        case inFlight = "in_flight"
        case completed
        case failed
        /// It failed and an operator said it was undone by hand (an incident's `skip`).
        case skipped
    }

    public var step: StepID
    public var visit: Int
    public var task: TaskID
    public var outcome: Outcome
    public var error: String?
    public var dispatchedAt: Instant
    /// The attempt in flight or last made: an incident's retry sends the compensation again (`nil`: 1).
    public var attempt: Int?

    public init(
        step: StepID, visit: Int, task: TaskID, outcome: Outcome, error: String? = nil, dispatchedAt: Instant,
        attempt: Int? = nil
    ) {
        self.step = step
        self.visit = visit
        self.task = task
        self.outcome = outcome
        self.error = error
        self.dispatchedAt = dispatchedAt
        self.attempt = attempt
    }

    /// The attempt in flight or last made.
    public var currentAttempt: Int { attempt ?? 1 }
}

/// What a run in status ``RunStatus/incident`` waits on.
public struct RunIncident: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// A step failed (retries exhausted, refused, no switch case, loop limit) and nothing handles it.
        case stepFailed = "step_failed"
        /// A compensation task failed.
        case compensationFailed = "compensation_failed"
    }

    public var kind: Kind
    /// The failed step (for a compensation: the step being undone).
    public var step: StepID
    public var visit: Int
    public var reason: String
    public var at: Instant
    /// The failed task, when a task failed (for a compensation, its task).
    public var task: TaskID?
    public var attempt: Int?
    /// The run was paused when the incident opened: answering it leaves the run paused (`nil`: it was not).
    public var pausedBefore: Bool?

    public init(kind: Kind, step: StepID, visit: Int, reason: String, at: Instant, task: TaskID? = nil, attempt: Int? = nil) {
        self.kind = kind
        self.step = step
        self.visit = visit
        self.reason = reason
        self.at = at
        self.task = task
        self.attempt = attempt
    }
}

/// Why a run failed or was cancelled.
public struct RunFailure: Hashable, Sendable, Codable {
    /// The step whose failure failed the run; `nil` for a cancel.
    public var step: StepID?
    public var reason: String

    public init(step: StepID?, reason: String) {
        self.step = step
        self.reason = reason
    }
}
