public import ActPlaybook

/// Something that happened to a run: a worker's answer, a timer, a signal, an approval or an operator's
/// command.
///
/// Every event has a defined outcome in every state. One that does not apply — a late or duplicate
/// answer, an answer for an attempt that is not in flight, a timer that was cancelled, a signal no wait
/// listens to, an approval for a step that is not waiting for one, `resume` while running, anything
/// after the run finished — yields no commands and leaves the state unchanged.
public enum RunEvent: Hashable, Sendable, Codable {
    /// A worker finished attempt `attempt` of a task.
    case taskCompleted(TaskID, attempt: Int, output: JSONValue)
    /// A worker gave up on attempt `attempt`. With `retryable` and attempts left, the task is retried
    /// after the step's backoff; otherwise the step fails.
    case taskFailed(TaskID, attempt: Int, reason: String, retryable: Bool)
    /// A timer scheduled with ``RunCommand/scheduleTimer(_:_:due:)`` is due.
    case timerFired(TimerID)
    /// A named signal: it ends every active wait step listening for `name`. When none listens, it is kept
    /// (``RunState/pendingSignals``) for ``EngineConfiguration/signalRetention``, and the first wait for
    /// that name to start within that time ends at once with its payload.
    case signal(name: String, payload: JSONValue)
    /// The human decision on a `pause: true` step. Accepted while the step is active (its task may still be
    /// in flight); approved completes the step, refused fails it without retry.
    case approval(step: StepID, approved: Bool, actor: String, reason: String?, payload: JSONValue)
    /// Hold new dispatches; results still apply.
    case pause
    /// Release the held dispatches and continue.
    case resume
    /// Stop the run: cancel its timers, ignore later results, undo completed steps, end as cancelled.
    case cancel(reason: String)
    /// An operator's answer to the incident a run waits on (status ``RunStatus/incident``): the one at
    /// visit `visit` of `step`, so that an answer meant for an earlier incident never acts on a later one;
    /// `nil` for both: whichever it waits on now (a bulk operation's retry).
    case incidentAction(IncidentAction, step: StepID?, visit: Int?, actor: String, reason: String?)
    /// Run again from a top-level step: a run that finished, or one waiting on a step's incident. The records
    /// of that step and of every step written after it are set aside (status `cancelled`, their outputs no
    /// longer in the context); the outputs of the steps before it are kept. Refused (ignored) when a step it
    /// would keep was compensated (``RunStateMachine/rewindProblem(state:playbook:to:)``).
    case rewind(to: StepID, actor: String, reason: String?)
    /// A queued run (``RunStatus/queued``) got its concurrency slot: it starts its first step now.
    case released
    /// Visit `visit` of a queued step (``StepStatus/queued``) got a slot of its key: its task starts now.
    case slotGranted(step: StepID, visit: Int)
    /// Visit `visit` of a step with `concurrency:` is refused its slot (`cancel_newest`) or gives it up to a
    /// newer visit (`cancel_in_progress`): it fails without retry, and its `on_failure` applies.
    case slotCancelled(step: StepID, visit: Int, reason: String)
}

/// What an operator does about an incident.
public enum IncidentAction: Hashable, Sendable, Codable {
    /// Enter the failed step again, as a new visit; for a task step `input` (a JSON merge patch, RFC 7396)
    /// is merged into its `input:`. For a failed compensation: send it again as the next attempt.
    case retry(input: JSONValue?)
    /// Go on as if the step completed with `output` (it is then not compensated); for a failed compensation,
    /// as if it was undone.
    case skip(output: JSONValue)
    /// Give up: the run fails and its completed steps are compensated; for a failed compensation, it stays
    /// failed and the other compensations run.
    case fail

    /// `retry`, `skip` or `fail`.
    public var name: String {
        switch self {
        case .retry: "retry"
        case .skip: "skip"
        case .fail: "fail"
        }
    }
}
