public import ActPlaybook

/// Moving a run to another version of its playbook (`hms-act playbook migrate`): the run keeps its history
/// and goes on under the new version from where it is.
///
/// Step ids map to themselves unless `mapping` renames them (`{"old_id": "new_id"}`). A run can move when
/// every step it is in (active records, the current step, its timers, held dispatches, its incident) and
/// every completed step it would undo later exists in the new version, as the same kind of step in the same
/// place (top level, or a branch of the same block), and an undoable one still has its `compensate:`.
/// Otherwise it is refused with the step it would be stranded at. Records of steps the new version no longer
/// has stay as history (their outputs stay in the context). Tasks in flight keep their ids, so their answers
/// still apply; their retries and later steps follow the new version.
public enum RunMigration {
    /// The migrated state, or why the run cannot move (a sentence naming the step and the fix).
    public static func migrate(
        _ state: RunState, from old: Playbook, to new: Playbook, mapping: [StepID: StepID] = [:]
    ) -> Result<RunState, MigrationRefusal> {
        if state.status == .compensating {
            return .failure(.init("run \(state.runID) is compensating; migrate it after it ends"))
        }
        if state.status.isFinished {
            return .failure(.init("run \(state.runID) is \(state.status.rawValue); only an active run moves"))
        }
        let oldIndex = PlaybookIndex(playbook: old, agents: [])
        let newIndex = PlaybookIndex(playbook: new, agents: [])
        func map(_ id: StepID) -> StepID { mapping[id] ?? id }

        /// Why `id` (a step the run needs) cannot be in the new version; `nil` when it can.
        func problem(_ id: StepID, needing what: String) -> String? {
            let target = map(id)
            guard let newStep = newIndex.step(target) else {
                return "run \(state.runID) \(what) step \(id), which version \(new.id) has no step \(target) for; "
                    + "map it to a step of the new version (mapping {\"\(id)\": \"…\"}) or let the run finish first"
            }
            if let oldStep = oldIndex.step(id), kind(of: oldStep) != kind(of: newStep) {
                return "run \(state.runID) \(what) step \(id), a \(kind(of: oldStep)) step, but \(target) is a "
                    + "\(kind(of: newStep)) step in the new version; map it to a \(kind(of: oldStep)) step"
            }
            if place(of: id, in: oldIndex, map: map) != place(of: target, in: newIndex, map: { $0 }) {
                return "run \(state.runID) \(what) step \(id), which is \(placeName(id, oldIndex)), but \(target) is "
                    + "\(placeName(target, newIndex)) in the new version"
            }
            return nil
        }

        for record in state.steps where record.status.isActive {
            if let reason = problem(record.step, needing: "is at") { return .failure(.init(reason)) }
        }
        if let current = state.currentStep, let reason = problem(current, needing: "is at") {
            return .failure(.init(reason))
        }
        for timer in state.timers {
            if let reason = problem(timer.step, needing: "has a timer of") { return .failure(.init(reason)) }
        }
        for held in state.heldDispatches {
            if let reason = problem(held.step, needing: "holds a task of") { return .failure(.init(reason)) }
        }
        if let incident = state.incident, let reason = problem(incident.step, needing: "waits on an incident at") {
            return .failure(.init(reason))
        }
        for done in state.completed {
            if let reason = problem(done.step, needing: "would undo") { return .failure(.init(reason)) }
            if newIndex.step(map(done.step))?.compensate == nil {
                return .failure(.init("run \(state.runID) would undo step \(done.step) if it failed, but \(map(done.step)) "
                    + "has no compensate: in the new version; keep it, or let the run finish first"))
            }
        }

        var moved = state
        moved.playbookID = new.id
        for r in moved.steps.indices where newIndex.step(map(moved.steps[r].step)) != nil {
            moved.steps[r].step = map(moved.steps[r].step)
        }
        moved.currentStep = moved.currentStep.map(map)
        moved.resultStep = moved.resultStep.map { newIndex.step(map($0)) != nil ? map($0) : $0 }
        moved.completed = moved.completed.map { CompletedStep(step: map($0.step), visit: $0.visit, at: $0.at) }
        moved.timers = moved.timers.map { timer in
            var timer = timer
            timer.step = map(timer.step)
            return timer
        }
        moved.heldDispatches = moved.heldDispatches.map { held in
            var held = held
            held.step = map(held.step)
            held.playbook = new.id
            return held
        }
        if var incident = moved.incident {
            incident.step = map(incident.step)
            moved.incident = incident
        }
        return .success(moved)
    }

    private static func kind(of step: Step) -> String {
        switch step.kind {
        case .task: "task"
        case .wait: "wait"
        case .parallel: "parallel"
        case .choice: "switch"
        }
    }

    /// `nil` for a top-level step, else its block (mapped into the new version's ids).
    private static func place(of id: StepID, in index: PlaybookIndex, map: (StepID) -> StepID) -> StepID? {
        guard case .branch(let block, _)? = index.locations[id] else { return nil }
        return map(block)
    }

    private static func placeName(_ id: StepID, _ index: PlaybookIndex) -> String {
        guard case .branch(let block, _)? = index.locations[id] else { return "a top-level step" }
        return "a branch of \(block)"
    }
}

/// Why a run cannot move to another version.
public struct MigrationRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
