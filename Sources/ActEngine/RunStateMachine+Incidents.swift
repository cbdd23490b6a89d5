public import ActPlaybook

/// Incidents and rewinds: what an operator does to a run that failed or waits on a failure.
///
/// Under ``FailurePolicy/incident`` a step failure that nothing in the playbook handles (no `on_failure:`)
/// does not fail the run: the run waits in status ``RunStatus/incident`` with nothing in flight and no timer
/// running, until ``IncidentAction/retry(input:)``, ``IncidentAction/skip(output:)`` or
/// ``IncidentAction/fail``. A failed compensation waits the same way; under ``FailurePolicy/fail`` it is
/// recorded (``RunCommand/incidentOpened(_:holdsRun:)`` without holding the run) and the others still run.
extension RunStateMachine {
    /// What an unhandled failure does in this run: the playbook's `on_failure:`, else the setting.
    var failurePolicy: FailurePolicy { playbook.onFailure ?? configuration.onFailure }

    /// Stops the run on `incident` until an operator answers it.
    mutating func holdOnIncident(_ incident: RunIncident) {
        var incident = incident
        if state.status == .paused { incident.pausedBefore = true }
        if incident.kind == .stepFailed { abandonActiveSteps(reason: "the run waits on an incident") }
        willChangeCompensations()
        state.status = .incident
        state.incident = incident
        audit(.incident, step: incident.step, detail: incident.reason)
        emit(
            .incidentOpened, step: incident.step, visit: incident.visit, task: incident.task, attempt: incident.attempt,
            detail: incident.reason, isCompensation: incident.kind == .compensationFailed
        )
        record(.incidentOpened(incident, holdsRun: true))
    }

    mutating func closeIncident(resolution: String, reason: String?) {
        state.incident = nil
        record(.incidentClosed(resolution: resolution, reason: reason))
    }

    /// An operator's answer to a failed step.
    mutating func answerStepIncident(_ incident: RunIncident, _ action: IncidentAction, actor: String, reason: String?) {
        guard let step = index.step(incident.step), let r = recordIndex(incident.step),
            state.steps[r].visit == incident.visit, state.steps[r].status == .failed
        else { return }
        var patchedInput: JSONValue?
        if case .retry(let patch) = action {
            let written: JSONValue?
            switch step.kind {
            case .task(let spec): written = spec.input
            case .choice, .parallel, .wait:
                guard patch == nil else { return }  // only a task has an input to patch
                written = nil
            }
            let base = state.steps[r].input ?? written
            patchedInput = patch.map { (base ?? .null).mergePatched(with: $0) } ?? state.steps[r].input
        }
        closeIncident(resolution: action.name, reason: reason)
        // An operator's pause outlives the incident: what the answer dispatches is held until resume.
        state.status = incident.pausedBefore == true ? .paused : .running
        audit(.incidentAnswered, step: step.id, actor: actor, detail: Self.describe(action, reason: reason))
        switch action {
        case .retry:
            retryInput = patchedInput.map { (step.id, $0) }
            proceed(to: .step(step.id))
            retryInput = nil
        case .skip(let value):
            let visit = state.steps[r].visit
            state.steps[r].error = nil
            let flow = close(step.id, .completed(value))
            // hms-act did not do the step, so it does not undo it.
            state.completed.removeAll { $0.step == step.id && $0.visit == visit }
            if let flow { proceed(to: flow) }
        case .fail:
            state.failure = RunFailure(step: step.id, reason: incident.reason)
            abandonActiveSteps(reason: "run failed")
            startCompensation(ending: .failed)
        }
    }

    /// An operator's answer to a failed compensation.
    mutating func answerCompensationIncident(
        _ incident: RunIncident, _ action: IncidentAction, actor: String, reason: String?
    ) {
        guard var progress = state.compensation, var current = progress.current, current.task == incident.task,
            current.outcome == .failed
        else { return }
        if case .retry(let patch) = action, patch != nil { return }  // a compensation's input is the step's output
        willChangeCompensations()
        closeIncident(resolution: action.name, reason: reason)
        state.status = .compensating
        audit(.incidentAnswered, step: current.step, actor: actor, detail: Self.describe(action, reason: reason))
        switch action {
        case .retry:
            current.attempt = current.currentAttempt + 1
            current.outcome = .inFlight
            current.error = nil
            current.dispatchedAt = now
            progress.current = current
            state.compensation = progress
            sendCompensation()
        case .skip, .fail:
            if case .skip = action { current.outcome = .skipped }
            progress.current = nil
            progress.done.append(current)
            state.compensation = progress
            compensateNext()
        }
    }

    private static func describe(_ action: IncidentAction, reason: String?) -> String {
        action.name + (reason.map { ": \($0)" } ?? "")
    }

    /// Why `action` cannot answer the incident at visit `visit` of `step` in `state`, as a sentence with
    /// the fix; `nil` when it can.
    public static func incidentProblem(
        state: RunState, playbook: Playbook, action: IncidentAction, step: StepID?, visit: Int?
    ) -> String? {
        guard state.status == .incident, let incident = state.incident else {
            return "run \(state.runID) is \(state.status.rawValue) and waits on no incident; list its incidents "
                + "with GET /v1/incidents?run=\(state.runID)"
        }
        guard step ?? incident.step == incident.step, visit ?? incident.visit == incident.visit else {
            return "run \(state.runID) now waits on another incident (step \(incident.step), visit \(incident.visit)); "
                + "answer that one"
        }
        guard case .retry(.some) = action else { return nil }
        if incident.kind == .compensationFailed {
            return "a compensation's input is the output of the step it undoes; retry it without `input`"
        }
        guard case .task = playbook.step(incident.step)?.kind else {
            return "step \(incident.step) is not a task, so it has no input to patch; retry it without `input`"
        }
        return nil
    }

    // MARK: - Rewind

    /// Why `step` cannot be rewound to in `state`, as a sentence with the fix; `nil` when it can.
    public static func rewindProblem(state: RunState, playbook: Playbook, to step: StepID) -> String? {
        guard let position = playbook.index(of: step) else {
            if playbook.steps.contains(where: { $0.branches.contains(step) }) {
                return "step \(step) is a branch of a parallel block; rewind to the block"
            }
            return "playbook \(playbook.id) has no step \(step)"
        }
        switch state.status {
        case .queued, .running, .paused, .compensating:
            return "run \(state.runID) is \(state.status.rawValue); only a run that finished or waits on a step's incident can be rewound (cancel it first)"
        case .incident where state.incident?.kind == .compensationFailed:
            return "run \(state.runID) waits on a failed compensation; answer that incident first"
        case .incident, .completed, .failed, .cancelled:
            break
        }
        guard state.record(step) != nil else {
            let reached = playbook.steps.filter { state.record($0.id) != nil }.map(\.id.rawValue)
            return "run \(state.runID) never reached step \(step); rewind to a step it reached: "
                + reached.joined(separator: ", ")
        }
        let setAside = steps(from: position, in: playbook)
        let undone = (state.compensation?.done ?? []).map(\.step).filter { !setAside.contains($0) }
        if let earliest = playbook.steps.first(where: { undone.contains($0.id) }) {
            return "step \(earliest.id) was compensated when the run ended; rewind to \(earliest.id) or a step before it"
        }
        return nil
    }

    /// The top-level steps from `position` on, with their parallel branches.
    private static func steps(from position: Int, in playbook: Playbook) -> Set<StepID> {
        Set(playbook.steps[position...].flatMap { [$0.id] + $0.branches })
    }

    /// Runs the run again from `stepID`, keeping what the steps before it produced.
    mutating func rewind(to stepID: StepID, actor: String, reason: String?) {
        guard Self.rewindProblem(state: state, playbook: playbook, to: stepID) == nil,
            let position = playbook.index(of: stepID)
        else { return }
        let setAside = Self.steps(from: position, in: playbook)
        willChangeCompensations()
        if state.incident != nil { closeIncident(resolution: "rewind", reason: reason) }
        for r in state.steps.indices where setAside.contains(state.steps[r].step) {
            willChangeTasks(ofRecord: r)
            leaveSlot(r)
            state.steps[r].status = .cancelled
            state.steps[r].error = "set aside: rewound to \(stepID) by \(actor)"
        }
        state.completed.removeAll { setAside.contains($0.step) }
        let latest = state.steps
            .filter { $0.status == .completed && index.isTopLevel($0.step) && !(index.step($0.step)?.isChoice ?? true) }
            .max { ($0.finishedAt ?? $0.startedAt) < ($1.finishedAt ?? $1.startedAt) }
        state.result = latest?.output
        state.resultStep = latest?.step
        state.status = .running
        state.finishedAt = nil
        state.failure = nil
        state.compensation = nil
        state.heldDispatches = []
        audit(.rewound, step: stepID, actor: actor, detail: reason)
        proceed(to: .step(stepID))
    }
}

extension Step {
    /// The ids of a parallel block's branches (none for other steps).
    var branches: [StepID] {
        guard case .parallel(let block) = kind else { return [] }
        return block.branches.map(\.id)
    }

    var isChoice: Bool {
        if case .choice = kind { return true }
        return false
    }
}

extension JSONValue {
    /// This value with a JSON merge patch (RFC 7396) applied: an object patch sets or (with `null`) removes
    /// members, recursively; any other patch replaces the value.
    func mergePatched(with patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var members: [String: JSONValue] = [:]
        if case .object(let existing) = self { members = existing }
        for (key, value) in changes {
            if value == .null {
                members.removeValue(forKey: key)
            } else {
                members[key] = (members[key] ?? .null).mergePatched(with: value)
            }
        }
        return .object(members)
    }
}
