/// The task attempts one event touches, so the machine can report how their statuses changed
/// (``RunCommand/taskStatusChanged(_:)``) without comparing whole states.
struct TaskStatusLedger {
    struct Attempt: Hashable, Comparable {
        var task: TaskID
        var attempt: Int

        static func < (lhs: Attempt, rhs: Attempt) -> Bool {
            (lhs.task.rawValue, lhs.attempt) < (rhs.task.rawValue, rhs.attempt)
        }
    }

    /// The status each touched attempt had when the event began.
    private(set) var before: [Attempt: TaskStatus] = [:]
    /// Attempts the event created; their dispatch reports them, so they are never listed.
    private var created: Set<Attempt> = []

    mutating func noteBefore(_ attempt: Attempt, _ status: TaskStatus) {
        guard !created.contains(attempt), before[attempt] == nil else { return }
        before[attempt] = status
    }

    mutating func noteCreated(_ attempt: Attempt) {
        created.insert(attempt)
    }
}

extension RunStateMachine {
    /// The status the `tasks` table shows for an attempt of a step's task: an attempt in flight takes its
    /// status from its step once the step has ended.
    static func status(of task: TaskRecord, in record: StepRecord) -> TaskStatus {
        switch task.state {
        case .completed: .completed
        case .failed, .retryScheduled: .failed
        case .inFlight: record.status.isActive ? .dispatched : (record.status == .timedOut ? .timedOut : .cancelled)
        }
    }

    /// The status the `tasks` table shows for a compensation's current attempt.
    static func status(of task: CompensationTask, runStatus: RunStatus) -> TaskStatus {
        switch task.outcome {
        case .inFlight: runStatus == .compensating ? .dispatched : .cancelled
        case .completed: .completed
        case .failed, .skipped: .failed
        }
    }

    /// Notes the statuses of a step record's attempts; call before the event first changes the record or
    /// one of its tasks.
    mutating func willChangeTasks(ofRecord r: Int) {
        let record = state.steps[r]
        for task in record.tasks {
            taskLedger.noteBefore(.init(task: task.id, attempt: task.attempt), Self.status(of: task, in: record))
        }
    }

    /// Notes the statuses of the compensations; call before changing them or the run's status.
    mutating func willChangeCompensations() {
        guard let progress = state.compensation else { return }
        for task in progress.done + (progress.current.map { [$0] } ?? []) {
            taskLedger.noteBefore(.init(task: task.task, attempt: task.currentAttempt),
                Self.status(of: task, runStatus: state.status))
        }
    }

    /// Notes an attempt the event creates.
    mutating func didCreateAttempt(_ task: TaskID, _ attempt: Int) {
        taskLedger.noteCreated(.init(task: task, attempt: attempt))
    }

    /// The status changes of the event just handled, in task-id order: first the attempts whose status
    /// differs from the event's start, then those that were in flight and are gone (superseded by a new
    /// visit of their step), closed as failed.
    func taskStatusUpdates() -> [RunCommand] {
        var changed: [RunCommand] = []
        var superseded: [RunCommand] = []
        for (attempt, before) in taskLedger.before.sorted(by: { $0.key < $1.key }) {
            if let (status, record) = currentStatus(of: attempt) {
                guard status != before else { continue }
                changed.append(
                    .taskStatusChanged(
                        TaskStatusUpdate(
                            task: attempt.task, attempt: attempt.attempt, status: status, output: record?.output,
                            error: record?.error
                        )
                    )
                )
            } else if before == .dispatched {
                superseded.append(
                    .taskStatusChanged(TaskStatusUpdate(task: attempt.task, attempt: attempt.attempt, status: .failed))
                )
            }
        }
        return changed + superseded
    }

    /// The attempt's status now, with its record for a step's task (`nil` for a compensation); `nil` when
    /// the state no longer holds the attempt.
    private func currentStatus(of attempt: TaskStatusLedger.Attempt) -> (TaskStatus, TaskRecord?)? {
        if let progress = state.compensation {
            let tasks = progress.done + (progress.current.map { [$0] } ?? [])
            if let task = tasks.last(where: { $0.task == attempt.task && $0.currentAttempt == attempt.attempt }) {
                return (Self.status(of: task, runStatus: state.status), nil)
            }
        }
        for record in state.steps.reversed() {
            if let task = record.tasks.first(where: { $0.id == attempt.task && $0.attempt == attempt.attempt }) {
                return (Self.status(of: task, in: record), task)
            }
        }
        return nil
    }
}
