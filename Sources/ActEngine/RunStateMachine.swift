public import ActPlaybook

/// The pure, deterministic state machine of one run: `(state, event, now) → (state, commands)`.
///
/// It does no I/O, reads no clock and draws no random numbers: the service loads ``state``, calls
/// ``handle(_:now:)`` and commits the new state together with the returned commands. Replaying the same
/// events at the same instants yields the same commands, so replicas and replays agree on every id.
///
/// ## Flow
/// Top-level steps run one at a time, in written order unless `next`/`on_complete`, `on_failure`,
/// `on_timeout` or a switch says otherwise. A step whose `when:` is false is skipped and the flow goes on
/// with its successor (`next`, else the step written after it). Reaching the end completes the run.
///
/// ## Tasks
/// A task is dispatched to one agent (or, with fan-out, one task per matching agent). A retryable failure
/// with retries left schedules a backoff timer and then attempt + 1 under the same ``TaskID``; otherwise
/// the step fails and the flow goes to `on_failure`, or the run fails. `pause: true` steps complete only
/// with an approval.
///
/// ## SLAs
/// Entering a task, wait or parallel step with an SLA schedules a warning and a breach timer. Each is
/// reported at most once per step visit. A breach never fails a step: with `on_timeout` (top-level steps
/// only) the step is timed out and later answers are ignored; without it the step keeps waiting.
///
/// ## Parallel blocks
/// Every branch starts at once. Branches are task or wait steps; their own `next`/`on_failure`/
/// `on_timeout` are ignored (the block's join decides). With ``Parallel/JoinPolicy/allMustSucceed`` the
/// first failed branch fails the block at once, without waiting for the others: their tasks are abandoned
/// (status `cancelled`) and their late answers ignored. With ``Parallel/JoinPolicy/allMustFinish`` the
/// block completes when every branch has finished, failed or not. The block's output is an object keyed
/// by branch id holding each completed branch's output.
///
/// ## Failure, cancel and compensation
/// When the run fails or is cancelled, every completed step visit with a `compensate:` action is undone,
/// newest completion first, one task at a time (single attempt; a failed compensation is reported with
/// `metrics.step_failed` and the rest still run). Then the run finishes as failed or cancelled.
///
/// ## Ignored events
/// An event that does not apply leaves ``state`` unchanged and returns no commands; see ``RunEvent``.
public struct RunStateMachine: Sendable {
    /// The run, as persisted.
    public internal(set) var state: RunState
    /// The playbook version the run started with.
    public let playbook: Playbook
    public let configuration: EngineConfiguration

    let index: PlaybookIndex
    /// Commands produced by the event being handled.
    private var output: [RunCommand] = []
    /// The patched input an incident's retry gives the visit it starts.
    var retryInput: (step: StepID, input: JSONValue)?
    /// The top-level step the flow last left, to name it when its successor does not exist.
    private var lastLeft: StepID?
    /// The instant of the event being handled.
    private(set) var now: Instant
    /// The task attempts the event being handled touched (``RunCommand/taskStatusChanged(_:)``).
    var taskLedger = TaskStatusLedger()

    /// Resumes a machine over a persisted state.
    ///
    /// - Parameters:
    ///   - state: The run as loaded from the store.
    ///   - playbook: The playbook version named by `state.playbookID` (the caller looks it up).
    ///   - configuration: The engine settings (agent registry, SLA warning fraction, loop limit).
    public init(state: RunState, playbook: Playbook, configuration: EngineConfiguration = EngineConfiguration()) {
        self.state = state
        self.playbook = playbook
        self.configuration = configuration
        self.index = PlaybookIndex(playbook: playbook, agents: configuration.agents)
        self.now = state.startedAt
    }

    /// Starts a run: enters the first step (skipping, switching, dispatching as needed).
    ///
    /// An empty playbook completes at once. `parent` links a child run to the `playbook:` step it performs.
    /// - Returns: The machine and the first commands (dispatches, timers, and possibly the end of the run).
    public static func start(
        runID: RunID,
        playbook: Playbook,
        payload: JSONValue,
        now: Instant,
        configuration: EngineConfiguration = EngineConfiguration(),
        parent: RunState.ParentLink? = nil,
        queuedFor concurrency: RunState.ConcurrencyClaim? = nil,
        priority: Int? = nil
    ) -> (machine: RunStateMachine, commands: [RunCommand]) {
        var state = RunState(runID: runID, playbookID: playbook.id, payload: payload, startedAt: now)
        state.parent = parent
        state.priority = priority
        state.concurrency = concurrency
        var machine = RunStateMachine(state: state, playbook: playbook, configuration: configuration)
        machine.now = now
        if concurrency != nil {
            // It waits for its slot (RunEvent.released) before its first step.
            machine.state.status = .queued
            return (machine, [])
        }
        machine.proceed(to: playbook.steps.first.map { .step($0.id) } ?? .end)
        machine.deliverKeptSignals()
        let commands = machine.output
        machine.output = []
        return (machine, commands)
    }

    /// Applies one event.
    ///
    /// - Parameters:
    ///   - event: What happened.
    ///   - now: When it is being applied; timers are scheduled relative to it.
    /// - Returns: What the service must do, in order. Empty when the event does not apply (and then the
    ///   state is unchanged).
    public mutating func handle(_ event: RunEvent, now: Instant) -> [RunCommand] {
        self.now = now
        output = []
        taskLedger = TaskStatusLedger()
        switch state.status {
        case .completed, .failed, .cancelled:
            guard case .rewind(let step, let actor, let reason) = event else { return [] }
            rewind(to: step, actor: actor, reason: reason)
            deliverKeptSignals()
        case .compensating:
            handleWhileCompensating(event)
        case .incident:
            handleWhileIncident(event)
            deliverKeptSignals()
        case .running, .paused:
            handleWhileActive(event)
            deliverKeptSignals()
        case .queued:
            handleWhileQueued(event)
        }
        output.append(contentsOf: taskStatusUpdates())
        let commands = output
        output = []
        return commands
    }

    // MARK: - Events

    private mutating func handleWhileActive(_ event: RunEvent) {
        switch event {
        case .taskCompleted(let id, let attempt, let result):
            taskCompleted(id, attempt: attempt, output: result)
        case .taskFailed(let id, let attempt, let reason, let retryable):
            taskFailed(id, attempt: attempt, reason: reason, retryable: retryable)
        case .timerFired(let id):
            timerFired(id)
        case .signal(let name, let payload):
            signalReceived(name, payload: payload)
        case .approval(let step, let approved, let actor, let reason, let payload):
            approvalReceived(step, approved: approved, actor: actor, reason: reason, payload: payload)
        case .pause:
            guard state.status == .running else { return }
            state.status = .paused
            audit(.paused)
        case .resume:
            guard state.status == .paused else { return }
            state.status = .running
            audit(.resumed, detail: state.heldDispatches.isEmpty ? nil : "\(state.heldDispatches.count) held dispatches")
            let held = state.heldDispatches
            state.heldDispatches = []
            for dispatch in held { send(dispatch) }
        case .cancel(let reason):
            cancel(reason: reason)
        case .slotGranted(let step, let visit):
            slotGranted(step, visit: visit)
        case .slotCancelled(let step, let visit, let reason):
            slotCancelled(step, visit: visit, reason: reason)
        case .incidentAction, .rewind, .released:
            return
        }
    }

    /// A queued run starts when released, ends when cancelled, and keeps signals for the waits it will reach.
    private mutating func handleWhileQueued(_ event: RunEvent) {
        switch event {
        case .released:
            state.status = .running
            audit(.released, detail: state.concurrency.map { "concurrency key \($0.key)" })
            proceed(to: playbook.steps.first.map { .step($0.id) } ?? .end)
            deliverKeptSignals()
        case .cancel(let reason):
            cancel(reason: reason)
        case .signal(let name, let payload):
            keep(name, payload: payload)
        case .taskCompleted, .taskFailed, .timerFired, .approval, .pause, .resume, .incidentAction, .rewind,
            .slotGranted, .slotCancelled:
            return
        }
    }

    mutating func cancel(reason: String) {
        state.failure = RunFailure(step: nil, reason: reason)
        audit(.cancelled, detail: reason)
        abandonActiveSteps(reason: "run cancelled: \(reason)")
        startCompensation(ending: .cancelled)
    }

    private mutating func handleWhileCompensating(_ event: RunEvent) {
        switch event {
        case .taskCompleted(let id, let attempt, _):
            compensationAnswered(id, attempt: attempt, failure: nil)
        case .taskFailed(let id, let attempt, let reason, _):
            compensationAnswered(id, attempt: attempt, failure: reason)
        case .timerFired, .signal, .approval, .pause, .resume, .cancel, .incidentAction, .rewind, .released,
            .slotGranted, .slotCancelled:
            return
        }
    }

    /// A run waiting on an incident takes the operator's answer, a rewind, a cancel (a step's incident
    /// only) and signals (kept for after a retry); nothing else is in flight.
    private mutating func handleWhileIncident(_ event: RunEvent) {
        guard let incident = state.incident else { return }
        switch (event, incident.kind) {
        case (.incidentAction(let action, let step, let visit, let actor, let reason), .stepFailed):
            guard step ?? incident.step == incident.step, visit ?? incident.visit == incident.visit else { return }
            answerStepIncident(incident, action, actor: actor, reason: reason)
        case (.incidentAction(let action, let step, let visit, let actor, let reason), .compensationFailed):
            guard step ?? incident.step == incident.step, visit ?? incident.visit == incident.visit else { return }
            answerCompensationIncident(incident, action, actor: actor, reason: reason)
        case (.rewind(let step, let actor, let reason), .stepFailed):
            rewind(to: step, actor: actor, reason: reason)
        case (.cancel(let reason), .stepFailed):
            closeIncident(resolution: "cancel", reason: reason)
            cancel(reason: reason)
        case (.signal(let name, let payload), .stepFailed):
            keep(name, payload: payload)
        case (.taskCompleted, _), (.taskFailed, _), (.timerFired, _), (.signal, _), (.approval, _), (.pause, _),
            (.resume, _), (.cancel, _), (.rewind, _), (.released, _), (.slotGranted, _), (.slotCancelled, _):
            return
        }
    }

    private mutating func taskCompleted(_ id: TaskID, attempt: Int, output result: JSONValue) {
        guard let (r, t) = locateInFlightTask(id, attempt: attempt), let step = index.step(state.steps[r].step),
            case .task(let spec) = step.kind
        else { return }
        willChangeTasks(ofRecord: r)
        state.steps[r].tasks[t].state = .completed
        state.steps[r].tasks[t].output = result
        if spec.forEach != nil {
            itemSettled(r, step, spec)
            return
        }
        let tasks = state.steps[r].tasks
        guard tasks.allSatisfy({ $0.state == .completed }) else { return }
        let combined: JSONValue
        switch spec.mode {
        case .single:
            combined = result
        case .fanOut:
            var members: [String: JSONValue] = [:]
            for task in tasks { members[task.agent?.rawValue ?? spec.assignee.label] = task.output ?? .null }
            combined = .object(members)
        }
        if spec.requiresApproval {
            state.steps[r].status = .awaitingApproval
            state.steps[r].taskOutput = combined
            return
        }
        finish(step.id, .completed(combined))
    }

    private mutating func taskFailed(_ id: TaskID, attempt: Int, reason: String, retryable: Bool) {
        guard let (r, t) = locateInFlightTask(id, attempt: attempt), let step = index.step(state.steps[r].step),
            case .task(let spec) = step.kind
        else { return }
        let willRetry = retryable && attempt <= step.retry.maxRetries
        willChangeTasks(ofRecord: r)
        let task = state.steps[r].tasks[t]
        emit(
            .stepFailed, step: step.id, task: id, attempt: attempt, assignee: spec.assignee.label,
            agent: task.agent, duration: now - task.dispatchedAt, detail: reason, willRetry: willRetry
        )
        state.steps[r].tasks[t].error = reason
        if willRetry {
            state.steps[r].tasks[t].state = .retryScheduled
            schedule(
                TimerID.retry(id, attempt: attempt + 1), .retryBackoff,
                due: now + step.retry.delay(beforeRetry: attempt), step: step.id, visit: state.steps[r].visit,
                task: id
            )
        } else {
            state.steps[r].tasks[t].state = .failed
            if spec.forEach != nil {
                itemSettled(r, step, spec)
                return
            }
            finish(step.id, .failed(reason, reported: true))
        }
    }

    private mutating func timerFired(_ id: TimerID) {
        guard let position = state.timers.firstIndex(where: { $0.id == id }) else { return }
        let timer = state.timers[position]
        guard let r = recordIndex(timer.step), state.steps[r].visit == timer.visit, state.steps[r].status.isActive,
            let step = index.step(timer.step)
        else { return }
        state.timers.remove(at: position)
        let record = state.steps[r]
        switch timer.kind {
        case .retryBackoff:
            guard let t = record.tasks.firstIndex(where: { $0.id == timer.task }),
                record.tasks[t].state == .retryScheduled, case .task(let spec) = step.kind
            else { return }
            willChangeTasks(ofRecord: r)
            state.steps[r].tasks[t].attempt += 1
            didCreateAttempt(state.steps[r].tasks[t].id, state.steps[r].tasks[t].attempt)
            state.steps[r].tasks[t].state = .inFlight
            state.steps[r].tasks[t].dispatchedAt = now
            dispatch(step: step, assignee: spec.assignee, task: state.steps[r].tasks[t], input: state.steps[r].input ?? spec.input)
        case .slaWarning:
            guard !record.slaWarned else { return }
            state.steps[r].slaWarned = true
            emit(.slaWarning, step: step.id, assignee: step.assigneeLabel, detail: slaDetail(step, record))
        case .slaBreach:
            guard !record.slaBreached else { return }
            state.steps[r].slaBreached = true
            emit(.slaViolation, step: step.id, assignee: step.assigneeLabel, detail: slaDetail(step, record))
            if step.onTimeout != nil, index.isTopLevel(step.id) {
                finish(step.id, .timedOut)
            }
        case .waitOver:
            guard record.status == .waiting else { return }
            finish(step.id, .timedOut)
        }
    }

    private mutating func signalReceived(_ name: String, payload: JSONValue) {
        let listening = state.steps.filter { record in
            guard record.status == .waiting, case .wait(let wait) = index.step(record.step)?.kind else { return false }
            return wait.signal == name
        }
        if listening.isEmpty {
            keep(name, payload: payload)
            return
        }
        for record in listening {
            // An earlier wait's completion may have moved the flow on; finish only what is still waiting.
            guard let current = state.record(record.step), current.visit == record.visit, current.status == .waiting
            else { continue }
            audit(.signalled, step: record.step, detail: name)
            finish(record.step, .completed(payload))
        }
    }

    /// Keeps a signal nobody listens for yet, for a wait that starts within the retention.
    mutating func keep(_ name: String, payload: JSONValue) {
        guard configuration.signalRetention > .zero, [.queued, .running, .paused, .incident].contains(state.status) else { return }
        var pending = unexpiredSignals()
        pending.append(RunState.PendingSignal(name: name, payload: payload, at: now))
        if pending.count > EngineConfiguration.maxPendingSignals {
            let dropped = pending.removeFirst()
            audit(.signalDropped, detail: "\(dropped.name): more than \(EngineConfiguration.maxPendingSignals) signals kept")
        }
        state.pendingSignals = pending
        audit(.signalKept, detail: "\(name): no wait listens yet; kept for \(configuration.signalRetention)")
    }

    /// The kept signals still within the retention (expired ones are forgotten).
    private func unexpiredSignals() -> [RunState.PendingSignal] {
        (state.pendingSignals ?? []).filter { $0.at + configuration.signalRetention >= now }
    }

    /// Ends waits that started listening for a signal kept earlier: the oldest such signal first, each
    /// used once, as if it arrived now.
    private mutating func deliverKeptSignals() {
        guard state.pendingSignals != nil else { return }
        var pending = unexpiredSignals()
        while state.status == .running || state.status == .paused {
            let waiting = Set(state.steps.compactMap { record -> String? in
                guard record.status == .waiting, case .wait(let wait) = index.step(record.step)?.kind else { return nil }
                return wait.signal
            })
            guard let position = pending.firstIndex(where: { waiting.contains($0.name) }) else { break }
            let signal = pending.remove(at: position)
            state.pendingSignals = pending
            signalReceived(signal.name, payload: signal.payload)
            pending = state.pendingSignals ?? []
        }
        state.pendingSignals = pending.isEmpty ? nil : pending
    }

    private mutating func approvalReceived(
        _ stepID: StepID, approved: Bool, actor: String, reason: String?, payload: JSONValue
    ) {
        guard let r = recordIndex(stepID), state.steps[r].status == .running || state.steps[r].status == .awaitingApproval,
            let step = index.step(stepID), case .task(let spec) = step.kind, spec.requiresApproval
        else { return }
        if approved {
            var members: [String: JSONValue] = [:]
            switch payload {
            case .object(let object): members = object
            case .null: break
            case .bool, .number, .string, .array: members["payload"] = payload
            }
            members["actor"] = .string(actor)
            members["approved"] = true
            if let reason { members["reason"] = .string(reason) }
            audit(.approved, step: stepID, actor: actor, detail: reason)
            finish(stepID, .completed(.object(members)))
        } else {
            let why = "refused by \(actor)" + (reason.map { ": \($0)" } ?? "")
            audit(.refused, step: stepID, actor: actor, detail: reason)
            emit(.stepFailed, step: stepID, assignee: spec.assignee.label, detail: why, willRetry: false)
            finish(stepID, .failed(why, reported: true))
        }
    }

    private mutating func compensationAnswered(_ id: TaskID, attempt: Int, failure: String?) {
        guard var progress = state.compensation, var current = progress.current, current.task == id,
            attempt == current.currentAttempt, current.outcome == .inFlight
        else { return }
        willChangeCompensations()
        let assignee = index.step(current.step)?.compensate?.label
        let duration = now - current.dispatchedAt
        if let failure {
            current.outcome = .failed
            current.error = failure
            emit(
                .stepFailed, step: current.step, visit: current.visit, task: id, attempt: attempt, assignee: assignee,
                duration: duration, detail: failure, willRetry: false, isCompensation: true
            )
            let incident = RunIncident(kind: .compensationFailed, step: current.step, visit: current.visit,
                reason: failure, at: now, task: id, attempt: attempt)
            if failurePolicy == .incident {
                progress.current = current
                state.compensation = progress
                holdOnIncident(incident)
                return
            }
            record(.incidentOpened(incident, holdsRun: false))
        } else {
            current.outcome = .completed
            emit(
                .stepCompleted, step: current.step, visit: current.visit, task: id, attempt: attempt, assignee: assignee,
                duration: duration, isCompensation: true
            )
        }
        progress.current = nil
        progress.done.append(current)
        state.compensation = progress
        compensateNext()
    }

    // MARK: - Flow

    /// Where the flow goes next.
    enum Flow: Hashable {
        case step(StepID)
        /// The end of the playbook: the run completes.
        case end
        /// The run fails (then compensates).
        case fail(StepID?, String)
    }

    /// How a step visit ended.
    enum Outcome: Hashable {
        case completed(JSONValue)
        /// `reported`: `metrics.step_failed` was already emitted (by the task attempt or the refusal).
        case failed(String, reported: Bool)
        case timedOut
    }

    private enum Entered {
        case active
        case next(Flow)
    }

    /// Follows the flow through instantaneous steps (skipped, switches) until a step waits for something
    /// or the run ends. Iterative, so long chains cannot exhaust the stack; the visit limit ends cycles.
    mutating func proceed(to flow: Flow) {
        var flow = flow
        while true {
            switch flow {
            case .end:
                finishRun(.completed)
                return
            case .fail(let step, let reason):
                if failurePolicy == .incident, let step, index.isTopLevel(step), let record = state.record(step),
                    record.status == .failed
                {
                    let task = record.tasks.first { $0.state == .failed }
                    holdOnIncident(RunIncident(kind: .stepFailed, step: step, visit: record.visit, reason: reason,
                        at: now, task: task?.id, attempt: task?.attempt))
                    return
                }
                state.failure = RunFailure(step: step, reason: reason)
                abandonActiveSteps(reason: "run failed")
                startCompensation(ending: .failed)
                return
            case .step(let id):
                guard let step = index.step(id), index.isTopLevel(id) else {
                    flow = .fail(lastLeft, "unknown step \(id)")
                    continue
                }
                switch enterTopLevel(step) {
                case .active: return
                case .next(let next): flow = next
                }
            }
        }
    }

    private mutating func enterTopLevel(_ step: Step) -> Entered {
        lastLeft = step.id
        let r = beginVisit(step)
        guard state.steps[r].visit <= configuration.maxVisitsPerStep else {
            let reason = loopLimitReason(step.id)
            state.steps[r].error = reason
            close(r, status: .failed)
            emit(.stepFailed, step: step.id, detail: reason, willRetry: false)
            return .next(.fail(step.id, reason))
        }
        state.currentStep = step.id
        if let patch = retryInput, patch.step == step.id { state.steps[r].input = patch.input }
        if let condition = step.when, !condition.holds(in: state) {
            close(r, status: .skipped)
            audit(.skipped, step: step.id, detail: "when: false")
            state.currentStep = nil
            return .next(successor(of: step))
        }
        switch step.kind {
        case .task(let spec):
            scheduleSLA(step, r)
            if queueForSlot(step, spec, r) { return .active }
            if let outcome = startTask(step, spec, r) { return close(step.id, outcome).map { .next($0) } ?? .active }
            return .active
        case .wait(let wait):
            scheduleSLA(step, r)
            startWait(step, wait, r)
            return .active
        case .parallel(let block):
            scheduleSLA(step, r)
            emit(.stepStarted, step: step.id, detail: "parallel: \(block.branches.count) branches")
            for branch in block.branches { enterBranch(branch) }
            if let flow = joinIfDone(step.id) { return .next(flow) }
            return .active
        case .choice(let choice):
            state.currentStep = nil
            let value = choice.expression.evaluate(in: state)
            let key = value.caseKey
            let matched = choice.cases.first { $0.match == key }
            if let target = matched?.target ?? choice.defaultTarget {
                state.steps[r].output = [
                    "value": value, "case": .string(matched?.match ?? "default"), "target": .string(target.rawValue),
                ]
                close(r, status: .completed)
                audit(.decided, step: step.id, detail: "\(key) → \(target)")
                return .next(.step(target))
            }
            let reason = "no case matched \(choice.expressionSource) = \(value.caseKey.isEmpty ? value.typeName : key)"
            state.steps[r].error = reason
            close(r, status: .failed)
            emit(.stepFailed, step: step.id, detail: reason, willRetry: false)
            return .next(step.onFailure.map { .step($0) } ?? .fail(step.id, reason))
        }
    }

    private mutating func enterBranch(_ branch: Step) {
        let r = beginVisit(branch)
        guard state.steps[r].visit <= configuration.maxVisitsPerStep else {
            let reason = loopLimitReason(branch.id)
            state.steps[r].error = reason
            close(r, status: .failed)
            emit(.stepFailed, step: branch.id, detail: reason, willRetry: false)
            return
        }
        if let condition = branch.when, !condition.holds(in: state) {
            close(r, status: .skipped)
            audit(.skipped, step: branch.id, detail: "when: false")
            return
        }
        switch branch.kind {
        case .task(let spec):
            scheduleSLA(branch, r)
            if queueForSlot(branch, spec, r) { return }
            if let outcome = startTask(branch, spec, r) { settleBranch(branch, r, outcome) }
        case .wait(let wait):
            scheduleSLA(branch, r)
            startWait(branch, wait, r)
        case .choice, .parallel:
            let reason = "a switch or parallel block cannot be a branch of a parallel block"
            state.steps[r].error = reason
            close(r, status: .failed)
            emit(.stepFailed, step: branch.id, detail: reason, willRetry: false)
        }
    }

    /// Creates the record of the next visit of `step`, replacing the previous one; the caller checks the
    /// visit against the loop limit.
    /// - Returns: The record's index.
    private mutating func beginVisit(_ step: Step) -> Int {
        let existing = recordIndex(step.id)
        let visit = existing.map { state.steps[$0].visit + 1 } ?? 1
        let record = StepRecord(step: step.id, visit: visit, startedAt: now)
        if let existing {
            willChangeTasks(ofRecord: existing)
            state.steps[existing] = record
            return existing
        }
        state.steps.append(record)
        return state.steps.count - 1
    }

    private func loopLimitReason(_ id: StepID) -> String {
        "loop limit: step \(id) entered more than \(configuration.maxVisitsPerStep) times"
    }

    /// Dispatches the step's task (one per agent for fan-out, the first items of a `for_each:`).
    /// - Returns: How the visit ended when it ends at once (a `for_each:` list that is empty or unusable).
    mutating func startTask(_ step: Step, _ spec: TaskSpec, _ r: Int) -> Outcome? {
        if let forEach = spec.forEach { return startItems(step, spec, forEach, r) }
        for route in routes(for: spec.assignee, skills: spec.skills, mode: spec.mode) {
            let id = TaskID(
                run: state.runID, step: step.id, visit: state.steps[r].visit, agent: route.perAgent ? route.agent : nil
            )
            let task = TaskRecord(id: id, attempt: 1, agent: route.agent, target: route.target, dispatchedAt: now)
            state.steps[r].tasks.append(task)
            didCreateAttempt(id, 1)
            dispatch(step: step, assignee: spec.assignee, task: task, input: state.steps[r].input ?? spec.input)
        }
        return nil
    }

    /// Ends a parallel branch's visit as it is entered (the block's join is checked after every branch
    /// entered), reporting it as ``close(_:_:)`` would.
    private mutating func settleBranch(_ branch: Step, _ r: Int, _ outcome: Outcome) {
        switch outcome {
        case .completed(let value):
            state.steps[r].output = value
            close(r, status: .completed)
            emit(.stepCompleted, step: branch.id, duration: .zero)
        case .failed(let reason, _):
            state.steps[r].error = reason
            close(r, status: .failed)
            emit(.stepFailed, step: branch.id, detail: reason, willRetry: false)
        case .timedOut:
            close(r, status: .timedOut)
        }
    }

    private mutating func startWait(_ step: Step, _ wait: Wait, _ r: Int) {
        state.steps[r].status = .waiting
        let duration = wait.duration.map { " up to \($0)" } ?? ""
        emit(.stepStarted, step: step.id, detail: "wait\(duration) for signal \(wait.signal)")
        if let duration = wait.duration {
            schedule(
                TimerID.waitOver(run: state.runID, step: step.id, visit: state.steps[r].visit), .waitOver,
                due: now + duration, step: step.id, visit: state.steps[r].visit
            )
        }
    }

    private mutating func scheduleSLA(_ step: Step, _ r: Int) {
        guard let sla = step.sla else { return }
        let visit = state.steps[r].visit
        state.steps[r].deadline = now + sla.duration
        let warning = sla.warningOffset(defaultFraction: configuration.slaWarningFraction)
        if warning > .zero, warning < sla.duration {
            schedule(
                .slaWarning(run: state.runID, step: step.id, visit: visit), .slaWarning, due: now + warning,
                step: step.id, visit: visit
            )
        }
        schedule(
            .slaBreach(run: state.runID, step: step.id, visit: visit), .slaBreach, due: now + sla.duration, step: step.id,
            visit: visit
        )
    }

    private func slaDetail(_ step: Step, _ record: StepRecord) -> String {
        "SLA \(step.sla?.duration.description ?? "?") (started \((now - record.startedAt).description) ago)"
    }

    /// Ends a step visit and moves the flow on (top-level) or checks its block's join (branch).
    mutating func finish(_ id: StepID, _ outcome: Outcome) {
        if let flow = close(id, outcome) { proceed(to: flow) }
    }

    /// Ends a step visit: records the outcome, cancels the visit's timers, abandons a block's branches,
    /// reports it, and says where the flow goes (`nil`: nowhere yet).
    mutating func close(_ id: StepID, _ outcome: Outcome) -> Flow? {
        guard let r = recordIndex(id), let step = index.step(id) else { return nil }
        let record = state.steps[r]
        switch outcome {
        case .completed(let value):
            state.steps[r].output = value
            close(r, status: .completed)
            let single = record.tasks.count == 1 ? record.tasks.first : nil
            emit(
                .stepCompleted, step: id, task: single?.id, attempt: single?.attempt, assignee: step.assigneeLabel,
                agent: single?.agent, duration: now - record.startedAt
            )
            if step.compensate != nil {
                state.completed.append(CompletedStep(step: id, visit: record.visit, at: now))
            }
        case .failed(let reason, let reported):
            state.steps[r].error = reason
            close(r, status: .failed)
            if !reported {
                emit(.stepFailed, step: id, assignee: step.assigneeLabel, detail: reason, willRetry: false)
            }
        case .timedOut:
            close(r, status: .timedOut)
            if case .wait = step.kind {
                audit(.timedOut, step: id, detail: "wait ran out after \((now - record.startedAt).description)")
                emit(.stepCompleted, step: id, duration: now - record.startedAt, detail: "timeout")
            } else {
                audit(.timedOut, step: id, detail: "SLA \(step.sla?.duration.description ?? "?") breached")
            }
        }
        if case .parallel(let block) = step.kind {
            abandon(block.branches.map(\.id), reason: "parallel block \(id) ended")
        }
        guard index.isTopLevel(id) else {
            guard case .branch(let block, _) = index.locations[id] else { return nil }
            return joinIfDone(block)
        }
        state.currentStep = nil
        lastLeft = id
        switch outcome {
        case .completed(let value):
            if case .choice = step.kind {} else {
                state.result = value
                state.resultStep = id
            }
            return successor(of: step)
        case .failed(let reason, _):
            return step.onFailure.map { .step($0) } ?? .fail(id, reason)
        case .timedOut:
            return step.onTimeout.map { .step($0) } ?? successor(of: step)
        }
    }

    /// Sets a record's final status and cancels the timers of that visit.
    mutating func close(_ r: Int, status: StepStatus) {
        willChangeTasks(ofRecord: r)
        leaveSlot(r)
        state.steps[r].status = status
        state.steps[r].finishedAt = now
        let step = state.steps[r].step
        let visit = state.steps[r].visit
        cancelTimers { $0.step == step && $0.visit == visit }
    }

    /// The block's outcome once its join is decided; `nil` while branches still run.
    private mutating func joinIfDone(_ blockID: StepID) -> Flow? {
        guard let r = recordIndex(blockID), state.steps[r].status == .running, let step = index.step(blockID),
            case .parallel(let block) = step.kind
        else { return nil }
        var allFinished = true
        var outputs: [String: JSONValue] = [:]
        for branch in block.branches {
            guard let record = state.record(branch.id), !record.status.isActive else {
                allFinished = false
                continue
            }
            switch record.status {
            case .failed:
                if block.join == .allMustSucceed {
                    return close(blockID, .failed("branch \(branch.id) failed: \(record.error ?? "")", reported: false))
                }
            case .completed:
                outputs[branch.id.rawValue] = record.output ?? .null
            case .timedOut, .skipped, .cancelled, .running, .queued, .awaitingApproval, .waiting:
                break
            }
        }
        guard allFinished else { return nil }
        return close(blockID, .completed(.object(outputs)))
    }

    func successor(of step: Step) -> Flow {
        if let next = step.next { return .step(next) }
        return index.following(step.id).map { .step($0) } ?? .end
    }

    private mutating func abandon(_ ids: [StepID], reason: String) {
        for id in ids {
            guard let r = recordIndex(id), state.steps[r].status.isActive else { continue }
            state.steps[r].error = reason
            close(r, status: .cancelled)
        }
    }

    mutating func abandonActiveSteps(reason: String) {
        abandon(state.steps.filter { $0.status.isActive }.map(\.step), reason: reason)
        state.currentStep = nil
        state.heldDispatches = []
        cancelTimers { _ in true }
    }

    // MARK: - Ending

    mutating func startCompensation(ending: RunStatus) {
        willChangeCompensations()
        state.status = .compensating
        state.compensation = CompensationProgress(
            ending: ending, remaining: state.completed.reversed(), current: nil, done: []
        )
        compensateNext()
    }

    mutating func compensateNext() {
        guard var progress = state.compensation else { return }
        while !progress.remaining.isEmpty {
            let item = progress.remaining.removeFirst()
            guard index.step(item.step)?.compensate != nil else { continue }
            let id = TaskID.compensation(run: state.runID, step: item.step, visit: item.visit)
            progress.current = CompensationTask(
                step: item.step, visit: item.visit, task: id, outcome: .inFlight, error: nil, dispatchedAt: now
            )
            state.compensation = progress
            sendCompensation()
            return
        }
        state.compensation = progress
        finishRun(progress.ending)
    }

    /// Sends the current compensation's attempt.
    mutating func sendCompensation() {
        guard let current = state.compensation?.current, let action = index.step(current.step)?.compensate else { return }
        let route = routes(for: action, skills: [], mode: .single).first
        didCreateAttempt(current.task, current.currentAttempt)
        send(
            TaskDispatch(
                task: current.task, attempt: current.currentAttempt, run: state.runID, playbook: state.playbookID,
                step: current.step, visit: current.visit, assignee: action,
                target: route?.target ?? .routingKey(action.routingKey), agent: route?.agent, deadline: nil,
                payload: state.payload, input: state.record(current.step)?.output, context: dispatchContext(),
                isCompensation: true
            )
        )
    }

    private mutating func finishRun(_ status: RunStatus) {
        willChangeCompensations()
        state.status = status
        state.finishedAt = now
        state.currentStep = nil
        state.heldDispatches = []
        cancelTimers { _ in true }
        let kind: GovernanceEvent.Kind
        switch status {
        case .completed: kind = .runCompleted
        case .cancelled: kind = .runCancelled
        case .failed, .queued, .running, .paused, .compensating, .incident: kind = .runFailed
        }
        emit(kind, step: state.failure?.step, duration: now - state.startedAt, detail: state.failure?.reason)
        output.append(.runFinished(status))
    }

    // MARK: - Effects

    /// Sends (or, while paused, holds) one attempt; `input` is the step's `input:` as written (or patched).
    ///
    /// The message's input: for an item of a `for_each:`, `input:` with its `${…}` read on the run and
    /// `item`/`index`, else `{"item", "index"}`; for a sub-playbook, `input:` with its `${…}` read on the run,
    /// else the run's payload; for any other task, `input:` as written.
    mutating func dispatch(step: Step, assignee: Assignee, task: TaskRecord, input: JSONValue?) {
        let input: JSONValue? =
            if let index = task.item, let items = state.record(step.id)?.items, items.indices.contains(index) {
                input?.resolvingTemplates(in: ItemContext(run: state, item: items[index], index: index))
                    ?? ["item": items[index], "index": .int(index)]
            } else if assignee.kind == .playbook {
                input?.resolvingTemplates(in: state) ?? state.payload
            } else {
                input
            }
        let dispatch = TaskDispatch(
            task: task.id, attempt: task.attempt, run: state.runID, playbook: state.playbookID, step: step.id,
            visit: state.record(step.id)?.visit ?? 1, assignee: assignee, target: task.target, agent: task.agent, deadline: state.record(step.id)?.deadline,
            payload: state.payload, input: input, context: dispatchContext(), isCompensation: false
        )
        if state.status == .paused {
            state.heldDispatches.append(dispatch)
        } else {
            send(dispatch)
        }
    }

    /// Sends a dispatch now; its ``TaskDispatch/warnAt`` counts from now.
    private mutating func send(_ dispatch: TaskDispatch) {
        var dispatch = dispatch
        dispatch.priority = state.priority
        if dispatch.deadline != nil, let sla = index.step(dispatch.step)?.sla {
            dispatch.warnAt = now + sla.warningOffset(defaultFraction: configuration.slaWarningFraction)
        }
        output.append(.dispatchTask(dispatch))
        emit(
            .stepStarted, step: dispatch.step, visit: dispatch.visit, task: dispatch.task, attempt: dispatch.attempt,
            assignee: dispatch.assignee.label, agent: dispatch.agent, isCompensation: dispatch.isCompensation
        )
    }

    private func dispatchContext() -> JSONValue {
        var outputs: [String: JSONValue] = [:]
        for record in state.steps where record.status == .completed {
            if let value = record.output { outputs[record.step.rawValue] = value }
        }
        return ["steps": .object(outputs), "result": state.result ?? .null]
    }

    mutating func emit(
        _ kind: GovernanceEvent.Kind, step: StepID? = nil, visit: Int? = nil, task: TaskID? = nil,
        attempt: Int? = nil, assignee: String? = nil, agent: AgentID? = nil, duration: TimeSpan? = nil,
        detail: String? = nil, willRetry: Bool? = nil, isCompensation: Bool = false
    ) {
        output.append(
            .emit(
                GovernanceEvent(
                    kind: kind, run: state.runID, playbook: state.playbookID, step: step,
                    visit: visit ?? step.flatMap { state.record($0)?.visit }, task: task,
                    attempt: attempt, assignee: assignee, agent: agent, at: now, duration: duration, detail: detail,
                    willRetry: willRetry, isCompensation: isCompensation
                )
            )
        )
    }

    /// Adds a command the event produced.
    mutating func record(_ command: RunCommand) {
        output.append(command)
    }

    mutating func audit(
        _ kind: AuditRecord.Kind, step: StepID? = nil, actor: String? = nil, detail: String? = nil
    ) {
        output.append(.audit(AuditRecord(kind: kind, step: step, at: now, actor: actor, detail: detail)))
    }

    private mutating func schedule(
        _ id: TimerID, _ kind: TimerKind, due: Instant, step: StepID, visit: Int, task: TaskID? = nil
    ) {
        state.timers.append(PendingTimer(id: id, kind: kind, due: due, step: step, visit: visit, task: task))
        output.append(.scheduleTimer(id, kind, due: due))
    }

    mutating func cancelTimers(where predicate: (PendingTimer) -> Bool) {
        var kept: [PendingTimer] = []
        for timer in state.timers {
            if predicate(timer) {
                output.append(.cancelTimer(timer.id))
            } else {
                kept.append(timer)
            }
        }
        state.timers = kept
    }

    // MARK: - Lookups

    func recordIndex(_ id: StepID) -> Int? {
        state.steps.firstIndex { $0.step == id }
    }

    /// The active record and task holding attempt `attempt` of task `id` in flight (and not held).
    private func locateInFlightTask(_ id: TaskID, attempt: Int) -> (Int, Int)? {
        guard !state.heldDispatches.contains(where: { $0.task == id && $0.attempt == attempt }) else { return nil }
        for (r, record) in state.steps.enumerated() where record.status == .running {
            if let t = record.tasks.firstIndex(where: { $0.id == id }), record.tasks[t].attempt == attempt,
                record.tasks[t].state == .inFlight
            {
                return (r, t)
            }
        }
        return nil
    }
}

extension Step {
    /// The assignee label of a task step, for governance events.
    var assigneeLabel: String? {
        guard case .task(let spec) = kind else { return nil }
        return spec.assignee.label
    }
}
