import ActEngine
import ActStore

/// The task rows a state change touches: each (task, attempt) whose visible status differs between the
/// state before and after an event. Deriving rows from the states, rather than from the event, also
/// catches the tasks an event ends indirectly (an SLA timeout, a failed parallel branch, a cancel).
enum TaskStatusDiff {
    struct Key: Hashable {
        var task: String
        var attempt: Int
    }

    static func statuses(of state: RunState) -> [Key: (String, TaskRecord?)] {
        var statuses: [Key: (String, TaskRecord?)] = [:]
        for record in state.steps {
            for task in record.tasks {
                let status: String =
                    switch task.state {
                    case .completed: "completed"
                    case .failed, .retryScheduled: "failed"
                    case .inFlight:
                        record.status.isActive ? "dispatched" : (record.status == .timedOut ? "timeout" : "cancelled")
                    }
                statuses[Key(task: task.id.rawValue, attempt: task.attempt)] = (status, task)
            }
        }
        if let compensation = state.compensation {
            for task in compensation.done + (compensation.current.map { [$0] } ?? []) {
                let status: String =
                    switch task.outcome {
                    case .inFlight: state.status == .compensating ? "dispatched" : "cancelled"
                    case .completed: "completed"
                    case .failed: "failed"
                    }
                statuses[Key(task: task.task.rawValue, attempt: 1)] = (status, nil)
            }
        }
        return statuses
    }

    static func changes(from before: RunState, to after: RunState, at: Int64) -> [TaskStatusChange] {
        let old = statuses(of: before)
        let new = statuses(of: after)
        var changes: [TaskStatusChange] = []
        for (key, value) in new.sorted(by: { ($0.key.task, $0.key.attempt) < ($1.key.task, $1.key.attempt) }) {
            let previous = old[key]?.0
            guard let previous, previous != value.0 else { continue }  // new attempts are inserted on dispatch
            changes.append(TaskStatusChange(taskID: key.task, attempt: key.attempt, status: value.0,
                output: value.1?.output, error: value.1?.error, at: at))
        }
        // An attempt that failed and was retried keeps its record under a new attempt number: close the old one.
        for (key, value) in old where value.0 == "dispatched" && new[key] == nil {
            changes.append(TaskStatusChange(taskID: key.task, attempt: key.attempt, status: "failed", output: nil,
                error: nil, at: at))
        }
        return changes
    }
}
