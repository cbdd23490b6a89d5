public import ActPlaybook

extension RunStateMachine {
    /// The `allowed:` patterns of a step (``TaskSpec/allowed``), top-level or in a parallel branch; `nil` when
    /// it names none.
    public func allowedActors(ofStep id: StepID) -> [String]? {
        guard let step = index.step(id), case .task(let spec) = step.kind else { return nil }
        return spec.allowed
    }

    /// The step whose visit dispatched `task` (any attempt, in flight or not), with its `allowed:` patterns;
    /// `nil` when it names none or no visit holds the task (a compensation, or a task of another run).
    public func allowedActors(ofTask task: TaskID) -> (step: StepID, patterns: [String])? {
        guard let record = state.steps.first(where: { record in record.tasks.contains { $0.id == task } }),
            let patterns = allowedActors(ofStep: record.step)
        else { return nil }
        return (record.step, patterns)
    }
}
