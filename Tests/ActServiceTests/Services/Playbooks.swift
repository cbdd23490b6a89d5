import ActEngine
import ActPlaybook
import ActStore
import ActService
import ActTesting

/// Playbooks the service unit tests run on the in-memory ports.
enum Playbooks {
    /// Two steps, each a task for a worker.
    static let twoSteps = """
        id: TwoSteps.v1
        trigger: case.filed
        steps:
          - id: intake
            agent: ai.intake
          - id: review
            agent: human.reviewer
        """

    /// One task with a one-minute SLA.
    static let timed = """
        id: Timed.v1
        trigger: case.timed
        steps:
          - id: answer
            agent: human.desk
            sla: 1m
        """

    /// The run started by event `id` of `playbook`.
    static func run(_ playbook: String, _ id: String) -> String {
        OutboundMessages.runID(playbook: playbook, eventID: id).rawValue
    }
}

extension InMemorySystem {
    /// The tasks published for `run`, as (task id, step id).
    func tasks(of run: String) -> [(task: String, step: String)] {
        tasksPublished.filter { $0["run_id"]?.stringValue == run }.compactMap { task in
            guard let id = task["task_id"]?.stringValue, let step = task["step_id"]?.stringValue else { return nil }
            return (id, step)
        }
    }

    /// The status of `run` in the committed tables.
    func status(of run: String) -> String? {
        store.committed.runs[run]?.status
    }
}
