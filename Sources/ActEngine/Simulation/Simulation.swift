public import ActPlaybook

/// Runs one playbook on a virtual clock against a ``SimulationScript``.
///
/// Answers, timers, signals, approvals and operator commands go into one priority queue and are applied
/// in (time, sequence) order, so a 5-day wait or a 48-hour SLA takes microseconds and every run of the
/// same script produces the same report. The simulation stops when the run finishes or nothing is pending
/// (then the report's status is still `running` or `paused`: the run is stuck waiting).
public struct Simulation: Sendable {
    public var playbook: Playbook
    public var script: SimulationScript
    public var runID: RunID
    public var configuration: EngineConfiguration
    /// A bound on the events applied, against scripts that retry forever.
    public var maximumEvents: Int

    public init(
        playbook: Playbook,
        script: SimulationScript = SimulationScript(),
        runID: RunID = "sim",
        configuration: EngineConfiguration = EngineConfiguration(),
        maximumEvents: Int = 100_000
    ) {
        self.playbook = playbook
        self.script = script
        self.runID = runID
        self.configuration = configuration
        self.maximumEvents = maximumEvents
    }

    /// Plays the script.
    public func run() -> SimulationReport {
        run(observing: { _, _, _ in })
    }

    /// Plays the script and shows every applied event's state before and after, with its commands, to
    /// `observe` (tests check the engine's own accounts against the states).
    package func run(
        observing observe: (_ before: RunState, _ after: RunState, _ commands: [RunCommand]) -> Void
    ) -> SimulationReport {
        var configuration = configuration
        if let agents = script.agents { configuration.agents = agents }
        var recorder = Recorder(start: script.start)
        let start = script.start
        let (initial, commands) = RunStateMachine.start(
            runID: runID, playbook: playbook, payload: script.payload, now: start, configuration: configuration
        )
        var machine = initial
        var queue = EventQueue()
        for signal in script.signals {
            queue.push(at: start + signal.at, .event(.signal(name: signal.name, payload: signal.payload)))
        }
        for approval in script.approvals {
            queue.push(
                at: start + approval.at,
                .event(
                    .approval(
                        step: approval.step, approved: approval.approve, actor: approval.actor,
                        reason: approval.reason, payload: approval.payload
                    )
                )
            )
        }
        for control in script.controls {
            let event: RunEvent
            switch control.action {
            case .pause: event = .pause
            case .resume: event = .resume
            case .cancel: event = .cancel(reason: control.reason ?? "cancelled by operator")
            }
            queue.push(at: start + control.at, .event(event))
        }
        var timers: [TimerID: Instant] = [:]
        func apply(_ commands: [RunCommand], at now: Instant) {
            for command in commands {
                switch command {
                case .dispatchTask(let dispatch):
                    let answer = script.answer(to: dispatch)
                    recorder.dispatched(dispatch, answer: answer)
                    guard !answer.noAnswer else { continue }
                    let event: RunEvent =
                        if let reason = answer.fail {
                            .taskFailed(dispatch.task, attempt: dispatch.attempt, reason: reason, retryable: answer.retryable)
                        } else {
                            .taskCompleted(dispatch.task, attempt: dispatch.attempt, output: answer.output)
                        }
                    queue.push(at: now + answer.after, .event(event))
                case .scheduleTimer(let id, _, let due):
                    timers[id] = due
                    queue.push(at: due, .timer(id))
                case .cancelTimer(let id):
                    timers[id] = nil
                case .emit(let event):
                    recorder.governance(event)
                case .audit(let record):
                    recorder.audit(record)
                case .runFinished(let status):
                    recorder.finished(status, at: now, reason: machine.state.failure?.reason)
                case .incidentOpened, .incidentClosed:
                    break  // the governance event and the audit record tell them
                case .taskStatusChanged:
                    break  // the timeline shows steps; the governance events already tell each attempt's end
                case .askSlot(_, let step, let visit):
                    // A lone run finds every slot free: the step starts at once.
                    queue.push(at: now, .event(.slotGranted(step: step, visit: visit)))
                case .leaveSlot:
                    break
                }
            }
        }
        apply(commands, at: start)
        var applied = 0
        while !machine.state.status.isFinished, applied < maximumEvents, let (time, item) = queue.pop() {
            let event: RunEvent
            switch item {
            case .timer(let id):
                guard timers[id] == time else { continue }
                timers[id] = nil
                event = .timerFired(id)
            case .event(let scripted):
                event = scripted
            }
            applied += 1
            let before = machine.state
            let commands = machine.handle(event, now: time)
            observe(before, machine.state, commands)
            if commands.isEmpty, machine.state == before { recorder.ignored(event, at: time) }
            apply(commands, at: time)
        }
        return recorder.report(runID: runID, playbook: playbook.id, state: machine.state)
    }
}

/// A min-heap of pending simulation items ordered by (time, insertion sequence).
struct EventQueue {
    enum Item {
        case event(RunEvent)
        case timer(TimerID)
    }

    private var heap: [(time: Instant, sequence: Int, item: Item)] = []
    private var nextSequence = 0

    private static func precedes(
        _ a: (time: Instant, sequence: Int, item: Item), _ b: (time: Instant, sequence: Int, item: Item)
    ) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }

    mutating func push(at time: Instant, _ item: Item) {
        heap.append((time, nextSequence, item))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Instant, Item)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, Self.precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, Self.precedes(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.item)
    }
}

/// Turns commands into timeline entries.
private struct Recorder {
    let start: Instant
    var entries: [TimelineEntry] = []
    var dispatches: [TaskDispatch] = []
    var events: [GovernanceEvent] = []
    var audits: [AuditRecord] = []
    /// Who answers each attempt, as the timeline shows it.
    var answeredBy: [String: String] = [:]

    init(start: Instant) { self.start = start }

    mutating func dispatched(_ dispatch: TaskDispatch, answer: ScriptedAnswer) {
        dispatches.append(dispatch)
        answeredBy[dispatch.idempotencyKey] = answer.by ?? dispatch.agent?.rawValue ?? dispatch.assignee.label
    }

    mutating func governance(_ event: GovernanceEvent) {
        events.append(event)
        let actor = actor(for: event)
        let kind: TimelineEntry.Kind
        var detail = event.detail
        switch event.kind {
        case .stepStarted: kind = event.isCompensation ? .compensationStarted : .started
        case .stepCompleted:
            if event.detail == "timeout" { return }  // the audit record's `timedOut` entry says it
            kind = event.isCompensation ? .compensated : .completed
        case .stepFailed:
            kind = event.isCompensation ? .compensationFailed : .failed
            if event.willRetry == true, let attempt = event.attempt {
                detail = (detail ?? "") + " (retrying, attempt \(attempt + 1) next)"
            }
        case .slaWarning: kind = .slaWarning
        case .slaViolation: kind = .slaViolation
        case .incidentOpened: kind = .incident
        case .runCompleted, .runFailed, .runCancelled: return
        }
        entries.append(
            TimelineEntry(
                offset: event.at - start, step: event.step, actor: actor, kind: kind, duration: event.duration,
                attempt: event.attempt, detail: detail
            )
        )
    }

    private func actor(for event: GovernanceEvent) -> String? {
        if let task = event.task, let attempt = event.attempt,
            let by = answeredBy["\(task.rawValue)#\(attempt)"]
        {
            return by
        }
        return event.agent?.rawValue ?? event.assignee
    }

    mutating func audit(_ record: AuditRecord) {
        audits.append(record)
        let kind: TimelineEntry.Kind
        switch record.kind {
        case .skipped: kind = .skipped
        case .decided: kind = .decision
        case .timedOut: kind = .timedOut
        case .signalled, .signalKept: kind = .signal
        case .signalDropped: kind = .ignored
        case .approved, .refused: kind = .approval
        case .paused: kind = .paused
        case .queued: return  // a lone run finds its step's slot free (``Simulation``)
        case .released where record.step != nil: return
        case .resumed, .released: kind = .resumed
        case .cancelled: kind = .cancelRequested
        case .incident: return  // the run.incident event tells it
        case .incidentAnswered, .rewound: kind = .operatorAction
        }
        var detail = record.detail
        if record.kind == .approved || record.kind == .refused {
            detail = (record.kind == .approved ? "approved" : "refused") + (record.detail.map { ": \($0)" } ?? "")
        }
        entries.append(
            TimelineEntry(offset: record.at - start, step: record.step, actor: record.actor, kind: kind, detail: detail)
        )
    }

    mutating func ignored(_ event: RunEvent, at time: Instant) {
        switch event {
        case .signal(let name, _):
            entries.append(TimelineEntry(offset: time - start, kind: .ignored, detail: "signal \(name): nobody waits for it"))
        case .approval(let step, _, let actor, _, _):
            entries.append(
                TimelineEntry(offset: time - start, step: step, actor: actor, kind: .ignored, detail: "approval: step not awaiting one")
            )
        case .taskCompleted, .taskFailed, .timerFired, .pause, .resume, .cancel, .incidentAction, .rewind, .released,
            .slotGranted, .slotCancelled:
            break
        }
    }

    mutating func finished(_ status: RunStatus, at time: Instant, reason: String?) {
        entries.append(
            TimelineEntry(offset: time - start, kind: .runFinished, duration: time - start, detail: reason, status: status)
        )
    }

    func report(runID: RunID, playbook: PlaybookID, state: RunState) -> SimulationReport {
        SimulationReport(
            runID: runID, playbookID: playbook, start: start, entries: entries, status: state.status,
            state: state, dispatches: dispatches, governance: events, audit: audits
        )
    }
}
