public import ActPlaybook

/// The outcome of a ``Simulation``: the timeline, the final state and everything the engine asked for.
public struct SimulationReport: Hashable, Sendable, Codable {
    public var runID: RunID
    public var playbookID: PlaybookID
    public var start: Instant
    /// What happened, in order.
    public var entries: [TimelineEntry]
    /// How the run ended; `running` or `paused` when it was left waiting with nothing scripted to come.
    public var status: RunStatus
    public var state: RunState
    /// Every task message, in dispatch order.
    public var dispatches: [TaskDispatch]
    /// Every governance message, in order.
    public var governance: [GovernanceEvent]
    public var audit: [AuditRecord]

    /// How long the run took, when it finished.
    public var duration: TimeSpan? {
        state.finishedAt.map { $0 - state.startedAt }
    }
}

/// One line of a timeline.
public struct TimelineEntry: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// A task attempt was dispatched (or a wait or parallel block began).
        case started
        case completed
        /// A task attempt or a step failed.
        case failed
        /// A wait ran out, or an SLA breach sent the step to `on_timeout`.
        case timedOut = "timed_out"
        case skipped
        /// A switch chose its target.
        case decision
        case slaWarning = "sla_warning"
        case slaViolation = "sla_violation"
        /// A signal ended a wait.
        case signal
        case approval
        case paused
        case resumed
        case cancelRequested = "cancel_requested"
        case compensationStarted = "compensation_started"
        case compensated
        case compensationFailed = "compensation_failed"
        /// The run waits on an incident (a failed step or compensation under `on_failure: incident`).
        case incident
        /// An operator answered an incident or rewound the run.
        case operatorAction = "operator_action"
        /// A signal or approval that applied to nothing.
        case ignored
        case runFinished = "run_finished"
    }

    /// Time since the run started.
    public var offset: TimeSpan
    public var step: StepID?
    /// Who did it: the answering worker, agent or assignee label; the approver.
    public var actor: String?
    public var kind: Kind
    /// For completions, failures and the end: how long the step (attempt) or run took.
    public var duration: TimeSpan?
    public var attempt: Int?
    public var detail: String?
    /// For ``Kind/runFinished``: the final status.
    public var status: RunStatus?

    public init(
        offset: TimeSpan, step: StepID? = nil, actor: String? = nil, kind: Kind, duration: TimeSpan? = nil,
        attempt: Int? = nil, detail: String? = nil, status: RunStatus? = nil
    ) {
        self.offset = offset
        self.step = step
        self.actor = actor
        self.kind = kind
        self.duration = duration
        self.attempt = attempt
        self.detail = detail
        self.status = status
    }
}
