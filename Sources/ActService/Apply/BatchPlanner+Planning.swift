import ActEngine
import ActPlaybook
import ActStore
internal import Foundation

extension BatchPlanner {
    /// The work of planning one batch: the runs it touched so far, the timers it set, and the plan.
    struct Planning {
        /// A run the batch touched, with its row as it will be written.
        struct WorkingRun {
            var row: RunRow
            var machine: RunStateMachine
            var changed: Bool
        }

        /// What the audit entry of an input says, before the engine's effects are added.
        struct AuditNote {
            var kind: String
            var actor: String
            var data: JSONValue
        }

        let planner: BatchPlanner
        let runs: [String: RunRow]
        let knownStates: [String: RunState]
        let now: Instant
        var plan = Plan()
        var working: [RunID: WorkingRun] = [:]
        /// The last operation on each timer id: schedule (a row) or cancel (`nil`), in first-touch order.
        var timers: [String: TimerRow?] = [:]
        var timerOrder: [String] = []
        private let decoder = JSONDecoder()

        init(planner: BatchPlanner, runs: [String: RunRow], knownStates: [String: RunState], now: Instant) {
            self.planner = planner
            self.runs = runs
            self.knownStates = knownStates
            self.now = now
        }

        // MARK: Inputs

        /// Applies one new input.
        mutating func apply(_ input: BatchInput) -> BatchOutcome {
            switch input {
            case .trigger(let event):
                return trigger(event)
            case .start(let playbookID, let event):
                guard let entry = planner.catalog.currentEntry(playbookID: playbookID) else {
                    if planner.catalog.latestEntry(playbookID: playbookID) != nil {
                        return .rejected(reason: "every version of \(playbookID) is disabled; enable one "
                            + "(hms-act playbook enable \(playbookID) VERSION)")
                    }
                    return .rejected(reason: "no playbook \(playbookID) is registered")
                }
                return start(entry, event: event)
            case .worker(.taskResult(let result), _):
                return taskResult(result)
            case .worker(.signal(let runID, let name, let payload), _):
                return deliver(.signal(name: name, payload: payload), to: RunID(runID),
                    note: AuditNote(kind: "signal", actor: "signal",
                        data: ["signal": .string(name), "payload": payload]),
                    missing: .rejected(reason: "no run \(runID) to signal"))
            case .worker(.approval(let approval), _):
                return self.approval(approval)
            case .timer(let row) where row.kind == Self.childFinished:
                return childFinished(row)
            case .timer(let row) where row.kind == Self.parentChanged:
                return parentChanged(row)
            case .timer(let row) where Self.concurrencyTimerKinds.contains(row.kind):
                return concurrencyTimer(row)
            case .timer(let row):
                return deliver(.timerFired(TimerID(row.timerID)), to: RunID(row.runID),
                    note: AuditNote(kind: "timer." + row.kind, actor: "hms-act",
                        data: ["timer_id": .string(row.timerID), "due_ms": .int(row.dueAt)]),
                    missing: .ignored(reason: "timer \(row.timerID) belongs to no run"))
            case .operatorCommand(let runID, let event, let actor, _, let reason):
                return operatorCommand(event, to: runID, actor: actor, reason: reason)
            case .refusedAttempt(let attempt, _):
                return refused(attempt)
            case .migrate(let runID, let version, let mapping, let actor, _):
                return migrate(runID, to: version, mapping: mapping, actor: actor)
            }
        }

        /// Moves a run to another playbook version, or refuses with the step it would be stranded at.
        private mutating func migrate(_ runID: RunID, to versionID: Int64, mapping: [StepID: StepID], actor: String)
            -> BatchOutcome
        {
            guard let target = planner.catalog.byVersion[versionID] else {
                return .rejected(reason: "playbook version \(versionID) is not registered")
            }
            var run: WorkingRun
            switch load(runID) {
            case .none: return .rejected(reason: "no run \(runID)")
            case .failure(let rejection): return .rejected(reason: rejection.reason)
            case .success(let found): run = found
            }
            let from = run.row.versionID
            guard from != versionID else {
                return .ignored(reason: "run \(runID) is on version \(versionID) already")
            }
            switch RunMigration.migrate(run.machine.state, from: run.machine.playbook, to: target.playbook, mapping: mapping) {
            case .failure(let refusal):
                return .rejected(reason: refusal.description)
            case .success(let moved):
                run.machine = RunStateMachine(state: moved, playbook: target.playbook, configuration: planner.engine)
                run.row.versionID = versionID
                run.row.playbookID = target.version.playbookID
                var renamed: [String: JSONValue] = [:]
                for (old, new) in mapping { renamed[old.rawValue] = .string(new.rawValue) }
                appendAudit(to: &run, kind: "run.migrated", actor: actor, data: [
                    "from_version": .int(from), "to_version": .int(versionID),
                    "playbook": .string(target.version.playbookID), "playbook_sha256": .string(target.version.checksum),
                    "mapping": .object(renamed),
                ])
                run.changed = true
                working[runID] = run
                return .applied
            }
        }

        /// A trigger starts one run of every playbook it triggers.
        private mutating func trigger(_ event: TriggerEvent) -> BatchOutcome {
            let entries = planner.catalog.entries(forTrigger: event.type)
            guard !entries.isEmpty else {
                let disabled = planner.catalog.disabledPlaybooks(forTrigger: event.type)
                let reason = disabled.isEmpty
                    ? "no registered playbook is triggered by \(event.type)"
                    : "every version of \(disabled.joined(separator: ", ")) (triggered by \(event.type)) is disabled; "
                        + "enable one (hms-act playbook enable PLAYBOOK VERSION)"
                guard event.arrivedOnTriggerQueue else { return .ignored(reason: reason) }
                let fix = disabled.isEmpty ? "; register the playbook (hms-act playbook register)" : ""
                return .rejected(reason: reason + fix + ", then replay this dead letter (hms-act dead collect, "
                    + "hms-act dead replay)")
            }
            var outcomes: [BatchOutcome] = []
            for entry in entries { outcomes.append(start(entry, event: event)) }
            return outcomes.contains(.applied) ? .applied : outcomes[0]
        }

        private mutating func taskResult(_ result: WorkerMessage.TaskResult) -> BatchOutcome {
            let task = TaskID(result.taskID)
            if let refusal = refusedByStep(.taskResult(result), run: task.runID, actor: result.agent) { return refusal }
            var data: [String: JSONValue] = ["task_id": .string(result.taskID), "attempt": .int(result.attempt)]
            let event: RunEvent
            let kind: String
            switch result.outcome {
            case .completed(let output):
                event = .taskCompleted(task, attempt: result.attempt, output: output)
                data["output"] = output
                kind = "task.completed"
            case .failed(let reason, let retryable):
                event = .taskFailed(task, attempt: result.attempt, reason: reason, retryable: retryable)
                data["reason"] = .string(reason)
                data["retryable"] = .bool(retryable)
                kind = "task.failed"
            }
            return deliver(event, to: task.runID,
                note: AuditNote(kind: kind, actor: result.agent ?? "worker", data: .object(data)),
                missing: .rejected(reason: "no run \(task.runID) for task \(result.taskID); check the task_id"))
        }

        private mutating func approval(_ approval: WorkerMessage.Approval) -> BatchOutcome {
            if let refusal = refusedByStep(.approval(approval), run: RunID(approval.runID), actor: approval.actor) {
                return refusal
            }
            let event = RunEvent.approval(step: StepID(approval.stepID), approved: approval.approved,
                actor: approval.actor, reason: approval.reason, payload: approval.payload)
            let data: JSONValue = ["step_id": .string(approval.stepID),
                "reason": approval.reason.map(JSONValue.string) ?? .null, "payload": approval.payload]
            return deliver(event, to: RunID(approval.runID),
                note: AuditNote(kind: approval.approved ? "approval.given" : "approval.refused", actor: approval.actor,
                    data: data),
                missing: .rejected(reason: "no run \(approval.runID) to approve"))
        }

        /// A result or approval from an actor its step's `allowed:` does not name (issue 13) is refused as one
        /// from the wrong broker user is, with the step's patterns in the reason and the trail; `nil`: it may go
        /// on. The actor is the authenticated one (``BrokerIdentities``, the HTTP principal); a result that names
        /// none is refused too, since nobody could be checked.
        private mutating func refusedByStep(_ message: WorkerMessage, run runID: RunID, actor: String?) -> BatchOutcome? {
            guard case .success(let run)? = load(runID) else { return nil }  // `deliver` answers for a missing run
            working[runID] = run  // unchanged; `deliver` then finds it decoded instead of decoding it again
            let step: StepID
            let patterns: [String]
            let act: String
            switch message {
            case .taskResult(let result):
                guard let allowed = run.machine.allowedActors(ofTask: TaskID(result.taskID)) else { return nil }
                (step, patterns, act) = (allowed.step, allowed.patterns, "answer")
            case .approval(let approval):
                step = StepID(approval.stepID)
                guard let allowed = run.machine.allowedActors(ofStep: step) else { return nil }
                (patterns, act) = (allowed, approval.approved ? "approve" : "refuse")
            case .signal:
                return nil
            }
            if let actor, ActorPattern.matches(any: patterns, actor) { return nil }
            let listed = patterns.joined(separator: ", ")
            let reason = actor.map { "\($0) may not \(act) step \(step) of run \(runID): its allowed: lists \(listed)" }
                ?? "the result for step \(step) of run \(runID) names no agent, and the step's allowed: lists \(listed); "
                    + "send the result with `agent`, or set amqp.actors so that the broker user is its agent"
            return refused(RefusedAttempt(message: message, brokerUser: nil, claimedActor: actor, reason: reason),
                by: actor ?? "worker", allowed: patterns)
        }

        /// A message refused because of who sent it: the run's trail records the attempt (who, as whom, what,
        /// why) and nothing else changes; the message is dead-lettered with the reason (403 over HTTP).
        ///
        /// - Parameters:
        ///   - actor: Who the trail names; by default the broker user (`amqp:desk-portal`).
        ///   - allowed: The step's `allowed:` patterns, when they are why.
        private mutating func refused(_ attempt: RefusedAttempt, by actor: String? = nil, allowed: [String]? = nil)
            -> BatchOutcome
        {
            let runID = RunID(attempt.runID)
            guard case .success(var run)? = load(runID) else { return .forbidden(reason: attempt.reason) }
            var data: [String: JSONValue] = [
                "reason": .string(attempt.reason),
                "broker_user": attempt.brokerUser.map(JSONValue.string) ?? .null,
                "claimed_actor": attempt.claimedActor.map(JSONValue.string) ?? .null,
            ]
            switch attempt.message {
            case .approval(let approval):
                data["message"] = "approval"
                data["step_id"] = .string(approval.stepID)
                data["approved"] = .bool(approval.approved)
            case .taskResult(let result):
                data["message"] = "task.result"
                data["task_id"] = .string(result.taskID)
                data["attempt"] = .int(result.attempt)
            case .signal(_, let name, _):
                data["message"] = "signal"
                data["signal"] = .string(name)
            }
            if let allowed { data["allowed"] = .array(allowed.map(JSONValue.string)) }
            appendAudit(to: &run, kind: "attempt.refused", actor: actor ?? "amqp:" + (attempt.brokerUser ?? "(no user_id)"),
                data: .object(data))
            run.changed = true
            working[runID] = run
            return .forbidden(reason: attempt.reason)
        }

        private mutating func operatorCommand(_ event: RunEvent, to runID: RunID, actor: String, reason: String?)
            -> BatchOutcome
        {
            if case .success(let run)? = load(runID) {
                let state = run.machine.state
                let playbook = run.machine.playbook
                var problem: String?
                if case .incidentAction(let action, let step, let visit, _, _) = event {
                    problem = RunStateMachine.incidentProblem(state: state, playbook: playbook, action: action,
                        step: step, visit: visit)
                } else if case .rewind(let step, _, _) = event {
                    problem = RunStateMachine.rewindProblem(state: state, playbook: playbook, to: step)
                }
                if let problem { return .rejected(reason: problem) }
            }
            let kind: String
            var data: [String: JSONValue] = [:]
            switch event {
            case .pause:
                kind = "run.paused"
                if let reason { data["reason"] = .string(reason) }
            case .resume:
                kind = "run.resumed"
                if let reason { data["reason"] = .string(reason) }
            case .cancel(let reason):
                kind = "run.cancel_requested"
                data["reason"] = .string(reason)
            case .incidentAction(let action, _, _, _, let reason):
                kind = "incident." + action.name
                data["reason"] = reason.map(JSONValue.string) ?? .null
                switch action {
                case .retry(let input): data["input"] = input ?? .null
                case .skip(let output): data["output"] = output
                case .fail: break
                }
            case .rewind(let step, _, let reason):
                kind = "run.rewound"
                data["step_id"] = .string(step.rawValue)
                data["reason"] = reason.map(JSONValue.string) ?? .null
            case .released:
                kind = "run.released"
            case .taskCompleted, .taskFailed, .timerFired, .signal, .approval, .slotGranted, .slotCancelled:
                kind = "operator.event"
            }
            return deliver(event, to: runID, note: AuditNote(kind: kind, actor: actor, data: .object(data)),
                missing: .rejected(reason: "no run \(runID)"))
        }

        // MARK: Runs

        /// The playbook's `key:` on the new run's payload, as text; nil without one, or when it gives no
        /// string or number (the run is then found by its trigger event's id).
        static func businessKey(of playbook: Playbook, state: RunState) -> String? {
            guard let expression = playbook.key else { return nil }
            switch expression.evaluate(in: state) {
            case .string(let text) where !text.isEmpty: return String(text.prefix(500))
            case .number(let number): return number.keyText
            default: return nil
            }
        }

        /// The playbook's `priority:` on a new run's payload, clamped to 0…9; `nil` without one or when it gives no
        /// number.
        static func priority(of playbook: Playbook, on context: RunState) -> Int? {
            guard let expression = playbook.priority else { return nil }
            guard case .number(let number) = expression.evaluate(in: context), let value = Double(number.keyText) else {
                return nil
            }
            return min(max(Int(value.rounded(.down)), 0), 9)
        }

        /// Starts the run `event` makes of `entry`, unless that run exists already; `parent` for a child run.
        mutating func start(_ entry: PlaybookCatalog.Entry, event: TriggerEvent, parent: RunState.ParentLink? = nil)
            -> BatchOutcome
        {
            let runID = RunID.forTrigger(playbook: entry.version.playbookID, eventID: event.id)
            if working[runID] != nil || runs[runID.rawValue] != nil {
                return .ignored(reason: "event \(event.id) already started run \(runID)")
            }
            // What the playbook's `concurrency:` and `priority:` read: the new run's payload.
            let context = RunState(runID: runID, playbookID: entry.playbook.id, payload: event.payload, startedAt: now)
            let claim = Self.concurrencyClaim(entry, on: context)
            let priority = event.priority ?? Self.priority(of: entry.playbook, on: context)
            let (machine, commands) = RunStateMachine.start(runID: runID, playbook: entry.playbook,
                payload: event.payload, now: now, configuration: planner.engine, parent: parent, queuedFor: claim,
                priority: priority)
            if let claim {
                plan.concurrency.append(.arrive(scope: claim.scope, key: claim.key,
                    holder: ConcurrencyHolder(run: runID.rawValue), limit: claim.limit, onLimit: claim.onLimit,
                    priority: priority ?? 0))
            }
            let traceID = OutboundMessages.traceID(runID: runID.rawValue, traceparent: event.traceparent)
            var run = WorkingRun(
                row: RunRow(runID: runID.rawValue, playbookID: entry.version.playbookID,
                    versionID: entry.version.versionID, status: machine.state.status.rawValue, state: [],
                    traceID: traceID, triggerEventID: event.id, triggerType: event.type, auditSequence: 0,
                    auditHead: [], createdAt: now.millisecondsSinceEpoch, updatedAt: now.millisecondsSinceEpoch,
                    finishedAt: nil, businessKey: Self.businessKey(of: entry.playbook, state: machine.state)),
                machine: machine, changed: true)
            let effects = execute(commands, in: &run, traceID: traceID, actor: event.source ?? "hms-act")
            var data: [String: JSONValue] = [
                "playbook": .string(entry.version.playbookID),
                "playbook_version": .int(entry.version.versionID),
                "playbook_sha256": .string(entry.version.checksum),
                "event_id": .string(event.id), "event_type": .string(event.type),
                "payload": event.payload, "effects": effects,
            ]
            if let claim {
                data["concurrency_key"] = .string(claim.key)
            }
            if let parent {
                data["parent_run_id"] = .string(parent.run.rawValue)
                data["parent_task_id"] = .string(parent.task.rawValue)
                data["parent_attempt"] = .int(parent.attempt)
            }
            appendAudit(to: &run, kind: "run.started", actor: event.source ?? "hms-act", data: .object(data))
            working[runID] = run
            plan.started.append(runID)
            plan.batch.runPayloads.append((runID.rawValue, now.millisecondsSinceEpoch, event.payload))
            return .applied
        }

        /// Hands `event` to its run's machine, executes the commands and audits the input with their effects.
        mutating func deliver(_ event: RunEvent, to runID: RunID, note: AuditNote, missing: BatchOutcome)
            -> BatchOutcome
        {
            var run: WorkingRun
            switch load(runID) {
            case .none: return missing
            case .failure(let rejection): return .rejected(reason: rejection.reason)
            case .success(let found): run = found
            }
            let before = run.machine.state
            let commands = run.machine.handle(event, now: now)
            if commands.isEmpty, run.machine.state == before {
                working[runID] = run
                return .ignored(
                    reason: "\(note.kind) does not apply to run \(runID) in its current state (late or repeated)")
            }
            let effects = execute(commands, in: &run, traceID: run.row.traceID, actor: note.actor)
            notifyChildren(of: run.machine.state, before: before, changes: commands.compactMap { command in
                if case .taskStatusChanged(let change) = command { return change }
                return nil
            })
            var data = note.data
            if case .object(var members) = data {
                members["effects"] = effects
                data = .object(members)
            }
            appendAudit(to: &run, kind: note.kind, actor: note.actor, data: data)
            run.changed = true
            working[runID] = run
            return .applied
        }

        /// The run as this batch left it, else as locked (`nil`: no such run).
        func load(_ runID: RunID) -> Result<WorkingRun, MessageRejection>? {
            if let run = working[runID] { return .success(run) }
            guard let row = runs[runID.rawValue] else { return nil }
            guard let entry = planner.catalog.byVersion[row.versionID] else {
                return .failure(MessageRejection(
                    "run \(runID) uses playbook version \(row.versionID), which this replica cannot load"))
            }
            let state: RunState
            if let known = knownStates[runID.rawValue] {
                state = known
            } else {
                do {
                    state = try decoder.decode(RunState.self, from: Data(row.state))
                } catch {
                    return .failure(MessageRejection(
                        "run \(runID) has a state this version of hms-act cannot read (\(Self.describe(error)))"))
                }
            }
            return .success(WorkingRun(row: row, machine: RunStateMachine(state: state, playbook: entry.playbook,
                configuration: planner.engine), changed: false))
        }

        /// Where decoding a state failed (the coding path), without the values the state holds.
        private static func describe(_ error: any Error) -> String {
            guard let error = error as? DecodingError else { return "\(type(of: error))" }
            var path: [any CodingKey] = []
            var what = "unreadable value"
            if case .typeMismatch(_, let context) = error {
                (path, what) = (context.codingPath, "unexpected type")
            } else if case .valueNotFound(_, let context) = error {
                (path, what) = (context.codingPath, "missing value")
            } else if case .keyNotFound(let key, let context) = error {
                (path, what) = (context.codingPath + [key], "missing key")
            } else if case .dataCorrupted(let context) = error {
                path = context.codingPath
            }
            let location = path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return "\(what) at \(location.isEmpty ? "the top level" : location)"
        }

        /// Appends the next entry of the run's audit chain.
        mutating func appendAudit(to run: inout WorkingRun, kind: String, actor: String, data: JSONValue) {
            let entry = AuditEntry(runID: run.row.runID, sequence: run.row.auditSequence + 1,
                at: now.millisecondsSinceEpoch, kind: kind, actor: actor, data: data)
            let hash = AuditChain.hash(previous: run.row.auditHead, entry: entry)
            plan.batch.audit.append(.init(entry: entry, previousHash: run.row.auditHead, hash: hash))
            run.row.auditSequence = entry.sequence
            run.row.auditHead = hash
        }

        // MARK: Finishing

        /// Writes the changed runs' new states and the timers' last operations into the plan.
        ///
        /// - Throws: `EncodingError` when a state cannot be encoded: writing the old state with the new
        ///   status would lose what the batch did.
        mutating func finish() throws -> Plan {
            // jsonb keeps its own key order, so sorting keys here would only cost time.
            let encoder = JSONEncoder()
            for runID in working.keys.sorted() {
                guard var run = working[runID], run.changed else { continue }
                run.row.status = run.machine.state.status.rawValue
                if !run.machine.state.status.isFinished { run.row.finishedAt = nil }  // a rewound run
                run.row.updatedAt = now.millisecondsSinceEpoch
                run.row.state = Array(try encoder.encode(run.machine.state))
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
}
