import ActEngine
import ActPlaybook
import ActStore

/// Sub-playbooks (`playbook:` steps): a parent's task attempt is performed by a child run.
///
/// - **Start.** The attempt's dispatch starts the child in the same transaction: run id
///   ``TaskDispatch/childRunID(playbook:task:attempt:)``, payload the step's resolved `input:`, and a
///   ``RunState/ParentLink`` back to the attempt. A child deeper than `engine.max_playbook_depth`, or of a
///   playbook with no enabled version, is not started.
/// - **Child → parent.** When the child ends (or could not start), a timer on the parent run
///   (`<task>/child/<attempt>/<child run>`, kind ``childFinished``, due at once) carries the answer: the
///   timer scanner claims it like any timer and this planner turns it into the task's completion (the
///   child's result) or failure (retryable unless the child was cancelled or could never start).
/// - **Parent → child.** When the parent pauses or resumes, or the attempt a child performs is abandoned
///   (cancelled, timed out), a timer on the parent (`<parent run>/child-sync/<child run>`, kind
///   ``parentChanged``) makes the child follow: pause, resume or cancel. (On the parent, because a child
///   that never started has no row a timer could belong to.)
///
/// Both directions go through timer rows, committed with the change that caused them, so no answer is lost to
/// a crash, and each batch locks both runs it reads (``BatchInput/runIDs(catalog:)``).
extension BatchPlanner.Planning {
    /// The timer kind that answers a parent's task with its child's end.
    static let childFinished = "child_finished"
    /// The timer kind that makes a child follow its parent's pause, resume or cancel.
    static let parentChanged = "parent_changed"

    /// The parent-side timer id and what it names.
    struct ChildTimer {
        var task: TaskID
        var attempt: Int
        var child: RunID

        var id: String { "\(task.rawValue)/child/\(attempt)/\(child.rawValue)" }

        init(task: TaskID, attempt: Int, child: RunID) {
            self.task = task
            self.attempt = attempt
            self.child = child
        }

        /// Reads `<task>/child/<attempt>/<child run>`.
        init?(_ id: String) {
            let parts = id.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count >= 5, parts[parts.count - 3] == "child", let attempt = Int(parts[parts.count - 2]) else {
                return nil
            }
            self.init(task: TaskID(parts.dropLast(3).joined(separator: "/")), attempt: attempt,
                child: RunID(String(parts[parts.count - 1])))
        }
    }

    /// The child a `parent_changed` timer names (`<parent run>/child-sync/<child run>`).
    static func childOfSyncTimer(_ id: String) -> RunID? {
        let parts = id.split(separator: "/")
        guard parts.count == 3, parts[1] == "child-sync" else { return nil }
        return RunID(String(parts[2]))
    }

    /// The other run a timer row reads besides its own, so the batch locks it too.
    static func otherRun(ofTimer row: TimerRow) -> RunID? {
        switch row.kind {
        case childFinished: ChildTimer(row.timerID)?.child
        case parentChanged: childOfSyncTimer(row.timerID)
        default: nil
        }
    }

    /// The state of a run as this batch left it, else as locked; `nil` when it does not exist or cannot be read.
    func loadedState(_ runID: RunID) -> RunState? {
        guard case .success(let run)? = load(runID) else { return nil }
        return run.machine.state
    }

    /// Schedules a timer row the engine does not own (a sub-playbook's).
    mutating func scheduleTimer(_ row: TimerRow) {
        setTimer(TimerID(row.timerID), to: row)
    }

    // MARK: Start

    /// Starts the child run of a sub-playbook attempt, or, when it cannot start, answers the parent at once
    /// (through its timer, which says why when it fires).
    mutating func startChild(_ dispatch: TaskDispatch, playbook: PlaybookID, parent: RunState, traceID: String)
        -> RunID
    {
        let childID = TaskDispatch.childRunID(playbook: playbook, task: dispatch.task, attempt: dispatch.attempt)
        let depth = parent.depth + 1
        guard depth <= planner.engine.maxPlaybookDepth, let entry = planner.catalog.currentEntry(playbookID: playbook.rawValue)
        else {
            answerParent(ChildTimer(task: dispatch.task, attempt: dispatch.attempt, child: childID), parent: dispatch.run)
            return childID
        }
        let event = TriggerEvent(id: dispatch.idempotencyKey, type: "playbook:" + parent.playbookID.rawValue,
            source: "run:" + parent.runID.rawValue, payload: dispatch.input ?? parent.payload,
            // The parent's trace, under the attempt's dispatch span (``RunSpans``): the child's root continues it.
            traceparent: OutboundMessages.traceparent(traceID: traceID, messageID: dispatch.idempotencyKey))
        let link = RunState.ParentLink(run: dispatch.run, task: dispatch.task, attempt: dispatch.attempt, depth: depth)
        _ = start(entry, event: event, parent: link)
        return childID
    }

    /// Schedules the parent's `child_finished` timer, due now.
    mutating func answerParent(_ timer: ChildTimer, parent: RunID) {
        scheduleTimer(TimerRow(timerID: timer.id, runID: parent.rawValue, kind: Self.childFinished,
            dueAt: now.millisecondsSinceEpoch))
    }

    // MARK: Child → parent

    /// A child ended (or never started): its end answers the parent's task attempt.
    mutating func childFinished(_ row: TimerRow) -> BatchOutcome {
        guard let timer = ChildTimer(row.timerID) else {
            return .ignored(reason: "timer \(row.timerID) names no child run")
        }
        let parentID = RunID(row.runID)
        let child = loadedState(timer.child)
        var data: [String: JSONValue] = [
            "task_id": .string(timer.task.rawValue), "attempt": .int(timer.attempt),
            "child_run_id": .string(timer.child.rawValue),
        ]
        let event: RunEvent
        let kind: String
        switch child?.status {
        case .completed?:
            let output = child?.result ?? .object([:])
            event = .taskCompleted(timer.task, attempt: timer.attempt, output: output)
            data["output"] = output
            kind = "child.completed"
        case .failed?, .cancelled?:
            let status = child?.status ?? .failed
            let why = child?.failure.map { failure in
                (failure.step.map { "at step \($0): " } ?? "") + failure.reason
            } ?? "no reason given"
            let reason = "child run \(timer.child) \(status.rawValue) \(why)"
            event = .taskFailed(timer.task, attempt: timer.attempt, reason: reason, retryable: status == .failed)
            data["reason"] = .string(reason)
            kind = "child.failed"
        case nil:
            guard let parent = loadedState(parentID) else {
                return .ignored(reason: "timer \(row.timerID) belongs to no run")
            }
            let (reason, retryable) = whyChildDidNotStart(timer, parent: parent)
            event = .taskFailed(timer.task, attempt: timer.attempt, reason: reason, retryable: retryable)
            data["reason"] = .string(reason)
            kind = "child.not_started"
        case .queued?, .running?, .paused?, .compensating?, .incident?:
            return .ignored(reason: "child run \(timer.child) has not ended")
        }
        return deliver(event, to: parentID,
            note: AuditNote(kind: kind, actor: "run:" + timer.child.rawValue, data: .object(data)),
            missing: .ignored(reason: "timer \(row.timerID) belongs to no run"))
    }

    /// Why a child is missing: the depth limit, or no enabled version of its playbook.
    private func whyChildDidNotStart(_ timer: ChildTimer, parent: RunState) -> (reason: String, retryable: Bool) {
        let record = parent.steps.first { $0.tasks.contains { $0.id == timer.task } }
        let task = record?.tasks.first { $0.id == timer.task }
        guard case .playbook(let playbook)? = task?.target else {
            return ("child run \(timer.child) does not exist", false)
        }
        if parent.depth + 1 > planner.engine.maxPlaybookDepth {
            return ("sub-playbook \(playbook) not started: runs nest at most \(planner.engine.maxPlaybookDepth) "
                + "deep (engine.max_playbook_depth); does the playbook run itself?", false)
        }
        if planner.catalog.latestEntry(playbookID: playbook.rawValue) != nil {
            return ("sub-playbook \(playbook) not started: every version of it is disabled; enable one "
                + "(hms-act playbook enable \(playbook) VERSION), then retry the step", true)
        }
        return ("sub-playbook \(playbook) not started: no playbook \(playbook) is registered; register it "
            + "(hms-act playbook register), then retry the step", true)
    }

    // MARK: Parent → child

    /// After a parent's event: children whose attempt was abandoned, or whose parent paused or resumed, get a
    /// `parent_changed` timer.
    mutating func notifyChildren(of parent: RunState, before: RunState, changes: [TaskStatusUpdate]) {
        var children: [RunID] = []
        func child(of task: TaskID, attempt: Int, in state: RunState) -> RunID? {
            for record in state.steps {
                guard let found = record.tasks.first(where: { $0.id == task }), case .playbook(let playbook) = found.target
                else { continue }
                return TaskDispatch.childRunID(playbook: playbook, task: task, attempt: attempt)
            }
            return nil
        }
        for change in changes where change.status == .cancelled || change.status == .timedOut {
            // A dispatch held while paused never started its child.
            guard !before.heldDispatches.contains(where: { $0.task == change.task && $0.attempt == change.attempt })
            else { continue }
            if let id = child(of: change.task, attempt: change.attempt, in: before) { children.append(id) }
        }
        if parent.status != before.status, parent.status == .paused || before.status == .paused {
            for record in parent.steps where record.status.isActive {
                for task in record.tasks where task.state == .inFlight {
                    if let id = child(of: task.id, attempt: task.attempt, in: parent) { children.append(id) }
                }
            }
        }
        for id in children {
            scheduleTimer(TimerRow(timerID: "\(parent.runID.rawValue)/child-sync/\(id.rawValue)",
                runID: parent.runID.rawValue, kind: Self.parentChanged, dueAt: now.millisecondsSinceEpoch))
        }
    }

    /// A child follows its parent: cancelled when the attempt it performs is no longer awaited, paused while
    /// the parent is paused, resumed when it is not.
    mutating func parentChanged(_ row: TimerRow) -> BatchOutcome {
        let parentID = RunID(row.runID)
        guard let childID = Self.childOfSyncTimer(row.timerID), let child = loadedState(childID),
            let link = child.parent, link.run == parentID, let parent = loadedState(parentID)
        else { return .ignored(reason: "timer \(row.timerID) names no child run that exists") }
        guard !child.status.isFinished else { return .ignored(reason: "child run \(childID) has ended") }
        let awaited = parent.steps.contains { record in
            record.tasks.contains { $0.id == link.task && $0.attempt == link.attempt && $0.state == .inFlight }
        }
        let actor = "run:" + parentID.rawValue
        if !awaited || parent.status.isFinished || parent.status == .compensating {
            let reason = "parent run \(parentID) no longer waits for it"
            return deliver(.cancel(reason: reason), to: childID,
                note: AuditNote(kind: "run.cancel_requested", actor: actor, data: ["reason": .string(reason)]),
                missing: .ignored(reason: "no child run \(childID)"))
        }
        if parent.status == .paused {
            return deliver(.pause, to: childID,
                note: AuditNote(kind: "run.paused", actor: actor, data: ["reason": "parent run paused"]),
                missing: .ignored(reason: "no child run \(childID)"))
        }
        return deliver(.resume, to: childID,
            note: AuditNote(kind: "run.resumed", actor: actor, data: ["reason": "parent run resumed"]),
            missing: .ignored(reason: "no child run \(childID)"))
    }
}
