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
}
