public import ActPlaybook

/// `concurrency:` on a task step: at most `limit` visits of the step at once, across the playbook's runs, per
/// value of its key.
///
/// Entering such a step asks for a slot (``RunCommand/askSlot(_:step:visit:)``) and leaves the visit
/// ``StepStatus/queued``; the service decides under the key's lock and answers with
/// ``RunEvent/slotGranted(step:visit:)`` (the task starts) or ``RunEvent/slotCancelled(step:visit:reason:)``
/// (the step fails). Whatever ends the visit — an answer, a failure, a timeout, a cancel, a rewind — leaves the
/// slot (``RunCommand/leaveSlot(_:step:visit:)``), so the next visit waiting for it can start. The SLA clock
/// runs from entering the step, queued time included.
extension RunStateMachine {
    /// Queues the visit for a slot when the step has `concurrency:` and its key has a value.
    /// - Returns: Whether it was queued (then its task starts later).
    mutating func queueForSlot(_ step: Step, _ spec: TaskSpec, _ r: Int) -> Bool {
        guard let concurrency = spec.concurrency, let key = concurrency.key.evaluate(in: state).concurrencyKey else {
            return false
        }
        let claim = RunState.ConcurrencyClaim(scope: "\(state.playbookID.rawValue)/\(step.id.rawValue)", key: key,
            limit: concurrency.limit, onLimit: concurrency.onLimit)
        state.steps[r].slot = claim
        state.steps[r].status = .queued
        record(.askSlot(claim, step: step.id, visit: state.steps[r].visit))
        audit(.queued, step: step.id, detail: "concurrency key \(key)")
        return true
    }

    /// The queued visit got its slot: its task starts.
    mutating func slotGranted(_ stepID: StepID, visit: Int) {
        guard let r = recordIndex(stepID), state.steps[r].visit == visit, state.steps[r].status == .queued,
            let step = index.step(stepID), case .task(let spec) = step.kind
        else { return }
        state.steps[r].status = .running
        audit(.released, step: stepID, detail: state.steps[r].slot.map { "concurrency key \($0.key)" })
        if let outcome = startTask(step, spec, r) { finish(stepID, outcome) }
    }

    /// The visit may not have (or keep) its slot: it fails without retry; tasks in flight are cancelled.
    mutating func slotCancelled(_ stepID: StepID, visit: Int, reason: String) {
        guard let r = recordIndex(stepID), state.steps[r].visit == visit, state.steps[r].status.isActive,
            state.steps[r].slot != nil
        else { return }
        finish(stepID, .failed(reason, reported: false))
    }

    /// The visit ends: it gives its slot (or its place in the queue) back.
    mutating func leaveSlot(_ r: Int) {
        guard let claim = state.steps[r].slot else { return }
        state.steps[r].slot = nil
        record(.leaveSlot(claim, step: state.steps[r].step, visit: state.steps[r].visit))
    }
}

extension JSONValue {
    /// The text a concurrency key's value stands for (at most 500 characters); `nil` for a value that limits
    /// nothing (missing, null, empty, a list or an object).
    public var concurrencyKey: String? {
        switch self {
        case .string(let text) where !text.isEmpty: String(text.prefix(500))
        case .number(let number): number.keyText
        case .bool(let flag): flag ? "true" : "false"
        case .null, .string, .array, .object: nil
        }
    }
}
