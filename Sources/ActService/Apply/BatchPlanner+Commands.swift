import ActEngine
import ActPlaybook
import ActStore

extension BatchPlanner.Planning {
    /// Executes the engine's commands for one run as rows of the batch.
    ///
    /// - Returns: The effects that go into the input's audit entry: each dispatch, emitted event, audit
    ///   note and end, in command order (timers and task statuses have rows of their own).
    mutating func execute(_ commands: [RunCommand], in run: inout WorkingRun, traceID: String, actor: String)
        -> JSONValue
    {
        var effects: [JSONValue] = []
        for command in commands {
            switch command {
            case .dispatchTask(let dispatch):
                effects.append(self.dispatch(dispatch, traceID: traceID, from: run.machine.state))
            case .scheduleTimer(let id, let kind, let due):
                setTimer(id, to: TimerRow(timerID: id.rawValue, runID: run.row.runID, kind: kind.rawValue,
                    dueAt: due.millisecondsSinceEpoch))
            case .cancelTimer(let id):
                setTimer(id, to: nil)
            case .emit(let event):
                effects.append(emit(event, traceID: traceID))
            case .audit(let record):
                effects.append(Self.note(record))
            case .runFinished(let status):
                effects.append(finish(&run, status: status))
            case .taskStatusChanged(let update):
                updateTask(update)
            case .askSlot(let claim, let step, let visit):
                plan.concurrency.append(.arrive(scope: claim.scope, key: claim.key,
                    holder: ConcurrencyHolder(run: run.row.runID, step: step.rawValue, visit: visit), limit: claim.limit,
                    onLimit: claim.onLimit, priority: run.machine.state.priority ?? 0))
            case .leaveSlot(let claim, _, _):
                plan.concurrency.append(.leave(scope: claim.scope, key: claim.key, run: run.row.runID, limit: claim.limit))
            case .incidentOpened(let incident, let holdsRun):
                effects.append(openIncident(incident, holdsRun: holdsRun, run: run.row))
            case .incidentClosed(let resolution, let reason):
                effects.append(closeIncident(of: run.row.runID, IncidentResolution(action: resolution, actor: actor,
                    note: reason, at: now.millisecondsSinceEpoch)))
            }
        }
        return .array(effects)
    }

    /// A new task attempt: its row and its message (in the outbox, or in `pull_tasks` for a pull agent).
    ///
    /// A sub-playbook's attempt has no message: its child run starts here (``startChild(_:playbook:parent:traceID:)``).
    private mutating func dispatch(_ dispatch: TaskDispatch, traceID: String, from state: RunState) -> JSONValue {
        let target: String =
            switch dispatch.target {
            case .routingKey(let key): key
            case .queue(let queue): "queue:" + queue
            case .pull: "pull"
            case .http: "http"
            case .playbook(let playbook): "playbook:" + playbook.rawValue
            }
        plan.batch.dispatchedTasks.append(TaskRow(
            taskID: dispatch.task.rawValue, attempt: dispatch.attempt, runID: dispatch.run.rawValue,
            stepID: dispatch.step.rawValue, assignee: dispatch.assignee.label, agentID: dispatch.agent?.rawValue,
            target: target, status: .dispatched, deadline: dispatch.deadline?.millisecondsSinceEpoch,
            warnAt: dispatch.warnAt?.millisecondsSinceEpoch, isCompensation: dispatch.isCompensation, output: nil,
            error: nil, createdAt: now.millisecondsSinceEpoch, updatedAt: now.millisecondsSinceEpoch))
        if case .playbook(let playbook) = dispatch.target {
            let child = startChild(dispatch, playbook: playbook, parent: state, traceID: traceID)
            return ["dispatch": .string(dispatch.idempotencyKey), "to": .string(target), "child_run_id": .string(child.rawValue)]
        }
        let message = planner.messages.task(dispatch, traceID: traceID, now: now)
        switch dispatch.target {
        case .pull:
            // Claimed over HTTP by its agent: never published, so never unroutable.
            plan.batch.pullTasks.append(PullTask(taskID: dispatch.task.rawValue, attempt: dispatch.attempt,
                runID: dispatch.run.rawValue, assignee: dispatch.agent?.rawValue ?? dispatch.assignee.label, body: message.body,
                createdAt: now.millisecondsSinceEpoch))
        case .http:
            // Claimed by hms-act's own HTTP caller (any replica's), with the same leases.
            plan.batch.pullTasks.append(PullTask(taskID: dispatch.task.rawValue, attempt: dispatch.attempt,
                runID: dispatch.run.rawValue, assignee: PullTask.httpCaller, body: message.body,
                createdAt: now.millisecondsSinceEpoch))
        case .routingKey, .queue:
            plan.batch.outbox.append(message)
        case .playbook:
            break
        }
        return ["dispatch": .string(dispatch.idempotencyKey), "to": .string(target)]
    }

    /// Schedules (`row`) or cancels (`nil`) a timer; only the batch's last word on each timer is written.
    mutating func setTimer(_ id: TimerID, to row: TimerRow?) {
        if timers[id.rawValue] == nil { timerOrder.append(id.rawValue) }
        timers[id.rawValue] = .some(row)
    }

    /// A governance message.
    private mutating func emit(_ event: GovernanceEvent, traceID: String) -> JSONValue {
        plan.batch.outbox.append(planner.messages.governance(event, traceID: traceID))
        plan.emitted.append(event)
        return ["emit": .string(event.kind.rawValue)]
    }

    /// A transition without a message of its own: only the audit entry tells it.
    private static func note(_ record: AuditRecord) -> JSONValue {
        var note: [String: JSONValue] = ["note": .string(record.kind.rawValue)]
        if let step = record.step { note["step"] = .string(step.rawValue) }
        if let detail = record.detail { note["detail"] = .string(detail) }
        if let actor = record.actor { note["actor"] = .string(actor) }
        return .object(note)
    }

    /// The end of a run.
    private mutating func finish(_ run: inout WorkingRun, status: RunStatus) -> JSONValue {
        run.row.finishedAt = now.millisecondsSinceEpoch
        plan.finished[RunID(run.row.runID)] = status
        if let claim = run.machine.state.concurrency {
            plan.concurrency.append(.leave(scope: claim.scope, key: claim.key, run: run.row.runID, limit: claim.limit))
        }
        if let parent = run.machine.state.parent {
            answerParent(ChildTimer(task: parent.task, attempt: parent.attempt, child: RunID(run.row.runID)),
                parent: parent.run)
        }
        return ["finished": .string(status.rawValue)]
    }

    /// A new incident row, holding its run or only telling.
    private mutating func openIncident(_ incident: RunIncident, holdsRun: Bool, run: RunRow) -> JSONValue {
        plan.batch.incidents.append(Incident(kind: incident.kind.rawValue, runID: run.runID, detail: [
            "playbook": .string(run.playbookID), "playbook_version": .int(run.versionID),
            "step_id": .string(incident.step.rawValue), "visit": .int(incident.visit),
            "reason": .string(incident.reason), "task_id": incident.task.map { .string($0.rawValue) } ?? .null,
            "attempt": incident.attempt.map { .int($0) } ?? .null,
        ], createdAt: now.millisecondsSinceEpoch, holdsRun: holdsRun))
        return ["incident": .string(incident.kind.rawValue), "holds_run": .bool(holdsRun)]
    }

    /// Resolves the incident the run waits on: the one this batch opened, else the stored one.
    private mutating func closeIncident(of runID: String, _ resolution: IncidentResolution) -> JSONValue {
        if let i = plan.batch.incidents.lastIndex(where: { $0.runID == runID && $0.holdsRun && $0.resolution == nil }) {
            plan.batch.incidents[i].resolution = resolution
        } else {
            plan.batch.resolvedRunIncidents[runID] = resolution
        }
        return ["incident_resolved": .string(resolution.action)]
    }

    /// A task attempt's new status.
    private mutating func updateTask(_ update: TaskStatusUpdate) {
        plan.batch.taskChanges.append(TaskStatusChange(taskID: update.task.rawValue, attempt: update.attempt,
            status: update.status, output: update.output, error: update.error, at: now.millisecondsSinceEpoch))
    }
}
