public import ActEngine
import ActPlaybook
public import ActStore
internal import Foundation

/// Turns a batch of inputs into the writes of one transaction: it drives each run's
/// ``RunStateMachine`` and maps the resulting commands to rows (runs, tasks, timers, outbox, audit).
///
/// The planner is pure: the caller claims the inbox keys and locks the runs first, passes the locked rows
/// in, and commits ``Plan/batch`` before acknowledging anything. Inputs for the same run within one
/// batch apply in order to the same machine, so a batch is equivalent to applying its inputs one by one.
public struct BatchPlanner: Sendable {
    public var catalog: PlaybookCatalog
    public var engine: EngineConfiguration
    public var messages: OutboundMessages

    public init(catalog: PlaybookCatalog, engine: EngineConfiguration, messages: OutboundMessages) {
        self.catalog = catalog
        self.engine = engine
        self.messages = messages
    }

    /// The writes of a batch and what became of each input.
    public struct Plan: Sendable {
        public var batch = StoreBatch()
        /// One per input, in input order.
        public var outcomes: [BatchOutcome] = []
        /// Runs that finished in this batch.
        public var finished: [RunID: RunStatus] = [:]
        /// Runs started in this batch.
        public var started: [RunID] = []
        /// The new state of every run in `batch.runs`, by run id, for ``RunStateCache``.
        public var states: [String: RunState] = [:]
        /// The governance events this batch emits (its outbox holds their messages), for the metrics
        /// recorded once it commits.
        public var emitted: [GovernanceEvent] = []
    }

    /// One input with whether the inbox claim found it new.
    public struct Item: Sendable {
        public var input: BatchInput
        public var fresh: Bool

        public init(_ input: BatchInput, fresh: Bool = true) {
            self.input = input
            self.fresh = fresh
        }
    }

    private struct WorkingRun {
        var row: RunRow
        var machine: RunStateMachine
        var changed: Bool
    }

    /// Plans a batch.
    ///
    /// - Parameters:
    ///   - items: The inputs with their inbox verdicts.
    ///   - runs: The locked rows of every run the inputs touch (absent: the run does not exist).
    ///   - now: The instant the batch applies at.
    /// - Parameter knownStates: Decoded states of some of `runs`, known to match their rows (see
    ///   ``RunStateCache``); the others are decoded from the rows.
    public func plan(_ items: [Item], runs: [String: RunRow], knownStates: [String: RunState] = [:], now: Instant) -> Plan {
        var plan = Plan()
        var working: [RunID: WorkingRun] = [:]
        var timers: [String: TimerRow?] = [:]  // last operation per timer id: schedule (row) or cancel (nil)
        var timerOrder: [String] = []
        let decoder = JSONDecoder()

        func load(_ runID: RunID) -> Result<WorkingRun, MessageRejection>? {
            if let run = working[runID] { return .success(run) }
            guard let row = runs[runID.rawValue] else { return nil }
            guard let entry = catalog.byVersion[row.versionID] else {
                return .failure(MessageRejection("run \(runID) uses playbook version \(row.versionID), which this replica cannot load"))
            }
            guard let state = knownStates[runID.rawValue] ?? (try? decoder.decode(RunState.self, from: Data(row.state))) else {
                return .failure(MessageRejection("run \(runID) has a state this version of hms-act cannot read"))
            }
            return .success(WorkingRun(row: row, machine: RunStateMachine(state: state, playbook: entry.playbook,
                configuration: engine), changed: false))
        }

        func record(_ commands: [RunCommand], in run: inout WorkingRun, traceID: String) -> JSONValue {
            var effects: [JSONValue] = []
            for command in commands {
                switch command {
                case .dispatchTask(let dispatch):
                    let target: String =
                        switch dispatch.target {
                        case .routingKey(let key): key
                        case .queue(let queue): "queue:" + queue
                        }
                    plan.batch.dispatchedTasks.append(TaskRow(
                        taskID: dispatch.task.rawValue, attempt: dispatch.attempt, runID: dispatch.run.rawValue,
                        stepID: dispatch.step.rawValue, assignee: dispatch.assignee.label,
                        agentID: dispatch.agent?.rawValue, target: target, status: .dispatched,
                        deadline: dispatch.deadline?.millisecondsSinceEpoch,
                        warnAt: dispatch.warnAt?.millisecondsSinceEpoch,
                        isCompensation: dispatch.isCompensation, output: nil, error: nil,
                        createdAt: now.millisecondsSinceEpoch, updatedAt: now.millisecondsSinceEpoch))
                    plan.batch.outbox.append(messages.task(dispatch, traceID: traceID, now: now))
                    effects.append(["dispatch": .string(dispatch.idempotencyKey), "to": .string(target)])
                case .scheduleTimer(let id, let kind, let due):
                    if timers[id.rawValue] == nil { timerOrder.append(id.rawValue) }
                    timers[id.rawValue] = .some(TimerRow(timerID: id.rawValue, runID: run.row.runID,
                        kind: kind.rawValue, dueAt: due.millisecondsSinceEpoch))
                case .cancelTimer(let id):
                    if timers[id.rawValue] == nil { timerOrder.append(id.rawValue) }
                    timers[id.rawValue] = .some(nil)
                case .emit(let event):
                    plan.batch.outbox.append(messages.governance(event, traceID: traceID))
                    plan.emitted.append(event)
                    effects.append(["emit": .string(event.kind.rawValue)])
                case .audit(let record):
                    var note: [String: JSONValue] = ["note": .string(record.kind.rawValue)]
                    if let step = record.step { note["step"] = .string(step.rawValue) }
                    if let detail = record.detail { note["detail"] = .string(detail) }
                    if let actor = record.actor { note["actor"] = .string(actor) }
                    effects.append(.object(note))
                case .runFinished(let status):
                    run.row.finishedAt = now.millisecondsSinceEpoch
                    plan.finished[RunID(run.row.runID)] = status
                    effects.append(["finished": .string(status.rawValue)])
                case .taskStatusChanged(let update):
                    plan.batch.taskChanges.append(TaskStatusChange(taskID: update.task.rawValue,
                        attempt: update.attempt, status: update.status, output: update.output,
                        error: update.error, at: now.millisecondsSinceEpoch))
                }
            }
            return .array(effects)
        }

        func audit(_ run: inout WorkingRun, kind: String, actor: String, data: JSONValue) {
            let entry = AuditEntry(runID: run.row.runID, sequence: run.row.auditSequence + 1,
                at: now.millisecondsSinceEpoch, kind: kind, actor: actor, data: data)
            let hash = AuditChain.hash(previous: run.row.auditHead, entry: entry)
            plan.batch.audit.append(.init(entry: entry, previousHash: run.row.auditHead, hash: hash))
            run.row.auditSequence = entry.sequence
            run.row.auditHead = hash
        }

        func start(_ entry: PlaybookCatalog.Entry, event: TriggerEvent) -> BatchOutcome {
            let runID = RunID.forTrigger(playbook: entry.version.playbookID, eventID: event.id)
            if working[runID] != nil || runs[runID.rawValue] != nil {
                return .ignored(reason: "event \(event.id) already started run \(runID)")
            }
            let (machine, commands) = RunStateMachine.start(runID: runID, playbook: entry.playbook,
                payload: event.payload, now: now, configuration: engine)
            let traceID = OutboundMessages.traceID(runID: runID.rawValue, traceparent: event.traceparent)
            var run = WorkingRun(
                row: RunRow(runID: runID.rawValue, playbookID: entry.version.playbookID,
                    versionID: entry.version.versionID, status: machine.state.status.rawValue, state: [],
                    traceID: traceID, triggerEventID: event.id, triggerType: event.type, auditSequence: 0,
                    auditHead: [], createdAt: now.millisecondsSinceEpoch, updatedAt: now.millisecondsSinceEpoch,
                    finishedAt: nil),
                machine: machine, changed: true)
            let effects = record(commands, in: &run, traceID: traceID)
            audit(&run, kind: "run.started", actor: event.source ?? "hms-act", data: [
                "playbook": .string(entry.version.playbookID),
                "playbook_version": .int(entry.version.versionID),
                "playbook_sha256": .string(entry.version.checksum),
                "event_id": .string(event.id), "event_type": .string(event.type),
                "payload": event.payload, "effects": effects,
            ])
            working[runID] = run
            plan.started.append(runID)
            return .applied
        }

        func apply(_ event: RunEvent, to runID: RunID, kind: String, actor: String, data: JSONValue,
            missing: BatchOutcome) -> BatchOutcome
        {
            guard let loaded = load(runID) else { return missing }
            var run: WorkingRun
            switch loaded {
            case .success(let found): run = found
            case .failure(let rejection): return .rejected(reason: rejection.reason)
            }
            let before = run.machine.state
            let commands = run.machine.handle(event, now: now)
            if commands.isEmpty, run.machine.state == before {
                working[runID] = run
                return .ignored(reason: "\(kind) does not apply to run \(runID) in its current state (late or repeated)")
            }
            let effects = record(commands, in: &run, traceID: run.row.traceID)
            var data = data
            if case .object(var members) = data {
                members["effects"] = effects
                data = .object(members)
            }
            audit(&run, kind: kind, actor: actor, data: data)
            run.changed = true
            working[runID] = run
            return .applied
        }

        for item in items {
            guard item.fresh else {
                plan.outcomes.append(.ignored(reason: "already applied (inbox)"))
                continue
            }
            switch item.input {
            case .trigger(let event):
                let entries = catalog.entries(forTrigger: event.type)
                if entries.isEmpty {
                    plan.outcomes.append(.ignored(reason: "no registered playbook is triggered by \(event.type)"))
                } else {
                    let outcomes = entries.map { start($0, event: event) }
                    plan.outcomes.append(outcomes.contains(.applied) ? .applied : outcomes[0])
                }
            case .start(let playbookID, let event):
                if let entry = catalog.latestEntry(playbookID: playbookID) {
                    plan.outcomes.append(start(entry, event: event))
                } else {
                    plan.outcomes.append(.rejected(reason: "no playbook \(playbookID) is registered"))
                }
            case .worker(.taskResult(let result), _):
                let runID = TaskID(result.taskID).runID
                let event: RunEvent
                var data: [String: JSONValue] = ["task_id": .string(result.taskID),
                    "attempt": .int(result.attempt)]
                let kind: String
                switch result.outcome {
                case .completed(let output):
                    event = .taskCompleted(TaskID(result.taskID), attempt: result.attempt, output: output)
                    data["output"] = output
                    kind = "task.completed"
                case .failed(let reason, let retryable):
                    event = .taskFailed(TaskID(result.taskID), attempt: result.attempt, reason: reason,
                        retryable: retryable)
                    data["reason"] = .string(reason)
                    data["retryable"] = .bool(retryable)
                    kind = "task.failed"
                }
                plan.outcomes.append(apply(event, to: runID, kind: kind, actor: result.agent ?? "worker",
                    data: .object(data),
                    missing: .rejected(reason: "no run \(runID) for task \(result.taskID); check the task_id")))
            case .worker(.signal(let runID, let name, let payload), _):
                plan.outcomes.append(apply(.signal(name: name, payload: payload), to: RunID(runID), kind: "signal",
                    actor: "signal", data: ["signal": .string(name), "payload": payload],
                    missing: .rejected(reason: "no run \(runID) to signal")))
            case .worker(.approval(let approval), _):
                plan.outcomes.append(apply(
                    .approval(step: StepID(approval.stepID), approved: approval.approved, actor: approval.actor,
                        reason: approval.reason, payload: approval.payload),
                    to: RunID(approval.runID), kind: approval.approved ? "approval.given" : "approval.refused",
                    actor: approval.actor,
                    data: ["step_id": .string(approval.stepID), "reason": approval.reason.map(JSONValue.string) ?? .null,
                        "payload": approval.payload],
                    missing: .rejected(reason: "no run \(approval.runID) to approve")))
            case .timer(let row):
                plan.outcomes.append(apply(.timerFired(TimerID(row.timerID)), to: RunID(row.runID),
                    kind: "timer." + row.kind, actor: "hms-act",
                    data: ["timer_id": .string(row.timerID), "due_ms": .int(row.dueAt)],
                    missing: .ignored(reason: "timer \(row.timerID) belongs to no run")))
            case .operatorCommand(let runID, let event, let actor, _):
                let kind: String
                var data: [String: JSONValue] = [:]
                switch event {
                case .pause: kind = "run.paused"
                case .resume: kind = "run.resumed"
                case .cancel(let reason):
                    kind = "run.cancel_requested"
                    data["reason"] = .string(reason)
                case .taskCompleted, .taskFailed, .timerFired, .signal, .approval: kind = "operator.event"
                }
                plan.outcomes.append(apply(event, to: runID, kind: kind, actor: actor, data: .object(data),
                    missing: .rejected(reason: "no run \(runID)")))
            }
        }

        // jsonb keeps its own key order, so sorting keys here would only cost time.
        let encoder = JSONEncoder()
        for runID in working.keys.sorted() {
            guard var run = working[runID], run.changed else { continue }
            run.row.status = run.machine.state.status.rawValue
            run.row.updatedAt = now.millisecondsSinceEpoch
            run.row.state = (try? encoder.encode(run.machine.state)).map { Array($0) } ?? run.row.state
            plan.batch.runs.append(run.row)
            plan.states[runID.rawValue] = run.machine.state
        }
        for id in timerOrder {
            switch timers[id] {
            case .some(.some(let row)): plan.batch.scheduledTimers.append(row)
            case .some(.none): plan.batch.cancelledTimers.append(id)
            case .none: break
            }
        }
        return plan
    }
}
