import ActEngine
import ActPlaybook
import PropertyBased
import Testing

/// A tiny deterministic generator (SplitMix64): one seed from PropertyBased grows a whole scenario —
/// a playbook, its agents and the order and content of every answer — so a failing seed replays exactly.
struct SplitMix {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double(next() % 10_000) < probability * 10_000
    }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0...items.count - 1)] }
}

/// A random playbook over steps `s0…s5`: tasks (retries, SLAs with and without `on_timeout`, `on_failure`,
/// `when`, compensation, approval, fan-out), switches, parallel blocks and waits, with arbitrary jumps.
func generatePlaybook(_ rng: inout SplitMix) -> (Playbook, [Agent]) {
    let count = rng.int(1...6)
    let ids = (0..<count).map { StepID("s\($0)") }
    var agents: [Agent] = []
    func maybeTarget(_ rng: inout SplitMix, _ probability: Double) -> StepID? {
        rng.chance(probability) ? rng.pick(ids) : nil
    }
    func randomTask(_ id: StepID, _ rng: inout SplitMix, branch: Bool) -> Step {
        let fanOut = !branch && rng.chance(0.1)
        if fanOut {
            for k in 1...rng.int(1...3) { agents.append(Agent(id: AgentID("ai.\(id.rawValue)#\(k)"))) }
        }
        let condition: Expression? =
            rng.chance(0.15) ? .stepCondition(rng.pick(ids), rng.pick(StepCondition.allCases)) : nil
        return task(
            id, retry: rng.int(0...2), backoff: .seconds(Int64(rng.int(1...5))),
            sla: rng.chance(0.4) ? .seconds(Int64(rng.int(5...200))) : nil,
            onFailure: maybeTarget(&rng, 0.2), onTimeout: maybeTarget(&rng, 0.3), when: condition,
            compensate: rng.chance(0.4) ? .ai("undo_\(id.rawValue)") : nil, approval: rng.chance(0.1),
            fanOut: fanOut,
            concurrency: rng.chance(0.2)
                ? Concurrency(key: .literal("k"), keySource: "k", onLimit: rng.pick(Concurrency.OnLimit.allCases)) : nil
        )
    }
    var steps: [Step] = []
    for id in ids {
        let roll = rng.int(0...99)
        if roll < 55 {
            steps.append(randomTask(id, &rng, branch: false))
        } else if roll < 65 {
            steps.append(
                choice(
                    id, ["payload", "k"], [("A", rng.pick(ids)), ("B", rng.pick(ids))],
                    default: maybeTarget(&rng, 0.5), onFailure: maybeTarget(&rng, 0.3)
                )
            )
        } else if roll < 85 {
            let branches = (0..<rng.int(1...3)).map { b -> Step in
                let branchID = StepID("\(id.rawValue).\(b)")
                return rng.chance(0.15)
                    ? wait(branchID, rng.chance(0.7) ? .seconds(Int64(rng.int(10...300))) : nil)
                    : randomTask(branchID, &rng, branch: true)
            }
            steps.append(
                parallel(
                    id, branches, join: rng.chance(0.5) ? .allMustSucceed : .allMustFinish,
                    onFailure: maybeTarget(&rng, 0.2)
                )
            )
        } else {
            steps.append(
                wait(id, rng.chance(0.8) ? .seconds(Int64(rng.int(10...500))) : nil, onTimeout: maybeTarget(&rng, 0.2))
            )
        }
    }
    return (Playbook(id: "generated", steps: steps), agents)
}

/// What one generated run did.
struct Observed {
    var dispatched: [TaskDispatch] = []
    var governance: [GovernanceEvent] = []
    var duplicateDispatches: [String] = []
    var finished: RunStatus?
    var finishCount = 0
    /// Incidents opened that held the run, and the step visits an operator skipped (not compensated).
    var incidents = 0
    var skipped: Set<String> = []
    /// Step visits (`step#visit`) that asked for a concurrency slot, were granted one, and left it.
    var askedSlots: [String] = []
    var grantedSlots: Set<String> = []
    var leftSlots: [String] = []
    /// Dispatches of a step with `concurrency:` before its visit was granted a slot.
    var dispatchedWithoutSlot: [String] = []
}

/// Drives a generated run: every dispatched attempt gets exactly one answer (sometimes delivered twice),
/// every approval step an approval, every wait maybe a signal, and pending items are delivered in random
/// order (timers too, including cancelled ones) with the clock only moving forward.
///
/// `observe` sees every handled event's state before and after, with its commands.
func driveRandomly(
    seed: UInt64, observe: (_ before: RunState, _ after: RunState, _ commands: [RunCommand]) -> Void = { _, _, _ in }
) -> (Playbook, RunStateMachine, Observed) {
    var rng = SplitMix(state: seed)
    let (playbook, agents) = generatePlaybook(&rng)
    var observed = Observed()
    var pending: [(Instant, RunEvent)] = []
    let payload: JSONValue = ["k": rng.pick(["A", "B", "C"])]
    var (machine, first) = RunStateMachine.start(
        runID: "g", playbook: playbook, payload: payload, now: t0,
        configuration: EngineConfiguration(agents: agents, maxVisitsPerStep: 4,
            onFailure: rng.chance(0.4) ? .incident : .fail)
    )
    if rng.chance(0.1) { pending.append((t0 + .seconds(Int64(rng.int(0...600))), .cancel(reason: "random cancel"))) }
    if rng.chance(0.2) {
        pending.append((t0 + .seconds(Int64(rng.int(0...300))), .pause))
        pending.append((t0 + .seconds(Int64(rng.int(0...600))), .resume))
    }
    var now = t0
    var seen: Set<String> = []
    func absorb(_ commands: [RunCommand]) {
        for command in commands {
            switch command {
            case .dispatchTask(let d):
                observed.dispatched.append(d)
                if !d.isCompensation, case .task(let spec)? = playbook.stepIncludingBranches(d.step)?.kind,
                    spec.concurrency != nil, !observed.grantedSlots.contains("\(d.step)#\(d.visit)")
                {
                    observed.dispatchedWithoutSlot.append(d.idempotencyKey)
                }
                if !seen.insert(d.idempotencyKey).inserted { observed.duplicateDispatches.append(d.idempotencyKey) }
                let later = now + .seconds(Int64(rng.int(0...300)))
                let roll = rng.int(0...99)
                let answer: RunEvent =
                    roll < 70
                    ? .taskCompleted(d.task, attempt: d.attempt, output: ["n": .int(roll)])
                    : .taskFailed(d.task, attempt: d.attempt, reason: "boom", retryable: roll < 90)
                pending.append((later, answer))
                if rng.chance(0.15) { pending.append((later + .seconds(1), answer)) }
                if !d.isCompensation, case .task(let spec)? = playbook.stepIncludingBranches(d.step)?.kind,
                    spec.requiresApproval
                {
                    pending.append(
                        (
                            now + .seconds(Int64(rng.int(0...400))),
                            .approval(step: d.step, approved: rng.chance(0.7), actor: "p", reason: nil, payload: nil)
                        )
                    )
                }
            case .scheduleTimer(let id, _, let due):
                pending.append((due, .timerFired(id)))
            case .cancelTimer, .audit, .taskStatusChanged, .incidentClosed:
                break
            case .askSlot(_, let step, let visit):
                // The service grants it some time later, or refuses it (`cancel_newest`, `cancel_in_progress`).
                observed.askedSlots.append("\(step)#\(visit)")
                let decision: RunEvent = rng.chance(0.15)
                    ? .slotCancelled(step: step, visit: visit, reason: "limit") : .slotGranted(step: step, visit: visit)
                pending.append((now + .seconds(Int64(rng.int(0...100))), decision))
            case .leaveSlot(_, let step, let visit):
                observed.leftSlots.append("\(step)#\(visit)")
            case .incidentOpened(let incident, let holdsRun):
                guard holdsRun else { break }
                observed.incidents += 1
                // An operator answers it some time later: retry, skip or fail.
                let roll = rng.int(0...2)
                let action: IncidentAction =
                    roll == 0 ? .retry(input: nil) : roll == 1 ? .skip(output: ["skipped": true]) : .fail
                if roll == 1, incident.kind == .stepFailed { observed.skipped.insert("\(incident.step.rawValue)#\(incident.visit)") }
                pending.append((now + .seconds(Int64(rng.int(0...600))),
                    .incidentAction(action, step: incident.step, visit: incident.visit, actor: "op", reason: nil)))
            case .emit(let event):
                observed.governance.append(event)
                if event.kind == .stepStarted, event.task == nil, let step = event.step,
                    case .wait(let wait)? = playbook.stepIncludingBranches(step)?.kind,
                    wait.duration == nil || rng.chance(0.5)
                {
                    pending.append((now + .seconds(Int64(rng.int(0...400))), .signal(name: wait.signal, payload: ["s": 1])))
                }
            case .runFinished(let status):
                observed.finished = status
                observed.finishCount += 1
            }
        }
    }
    absorb(first)
    first = []
    var steps = 0
    while !machine.state.status.isFinished, steps < 20_000 {
        steps += 1
        if pending.isEmpty {
            guard machine.state.status == .paused else { break }
            pending.append((now, .resume))
        }
        let (time, event) = pending.remove(at: rng.int(0...pending.count - 1))
        now = max(now, time)
        if case .slotGranted(let step, let visit) = event { observed.grantedSlots.insert("\(step)#\(visit)") }
        let before = machine.state
        let commands = machine.handle(event, now: now)
        observe(before, machine.state, commands)
        absorb(commands)
    }
    // After the end, nothing applies any more.
    for (_, event) in pending.prefix(5) { absorb(machine.handle(event, now: now)) }
    return (playbook, machine, observed)
}

extension Playbook {
    func stepIncludingBranches(_ id: StepID) -> Step? {
        for step in steps {
            if step.id == id { return step }
            if case .parallel(let block) = step.kind, let branch = block.branches.first(where: { $0.id == id }) {
                return branch
            }
        }
        return nil
    }
}

@Suite struct RunStateMachinePropertyTests {
    @Test func generatedRunsKeepTheEngineInvariants() async {
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            let (playbook, machine, observed) = driveRandomly(seed: seed)

            // Runs always finish once every task is answered, exactly once.
            #expect(machine.state.status.isFinished, "seed \(seed): stuck \(machine.state.status) in \(playbook)")
            #expect(observed.finishCount == 1)
            #expect(observed.finished == machine.state.status)
            #expect(machine.state.timers.isEmpty && machine.state.heldDispatches.isEmpty)

            // Every step visit that asked for a concurrency slot left it exactly once, and none dispatched
            // its task before it was granted one.
            #expect(observed.askedSlots.sorted() == observed.leftSlots.sorted(), "seed \(seed)")
            #expect(Set(observed.askedSlots).count == observed.askedSlots.count, "seed \(seed)")
            #expect(observed.dispatchedWithoutSlot.isEmpty, "seed \(seed)")
            #expect(machine.state.steps.allSatisfy { $0.slot == nil }, "seed \(seed)")

            // No (task id, attempt) is dispatched twice.
            #expect(observed.duplicateDispatches.isEmpty, "seed \(seed)")

            // Compensations run in reverse completion order.
            // (A skipped step is not compensated; a retried compensation is sent again: its first send counts.)
            let compensable = observed.governance.filter {
                $0.kind == .stepCompleted && !$0.isCompensation
                    && $0.step.flatMap { playbook.stepIncludingBranches($0)?.compensate } != nil
                    && !observed.skipped.contains("\($0.step?.rawValue ?? "")#\($0.visit ?? 0)")
            }
            var sent: Set<String> = []
            let compensations = observed.dispatched.filter {
                $0.isCompensation && sent.insert("\($0.step.rawValue)#\($0.visit)").inserted
            }
            switch machine.state.status {
            case .failed, .cancelled:
                #expect(
                    compensations.map(\.step) == compensable.reversed().compactMap(\.step),
                    "seed \(seed)"
                )
                #expect(compensations.map(\.visit) == compensable.reversed().compactMap(\.visit))
            case .completed:
                #expect(compensations.isEmpty)
            case .queued, .running, .paused, .compensating, .incident:
                break
            }

            // Each SLA warning and breach is reported at most once per step visit.
            for kind in [GovernanceEvent.Kind.slaViolation, .slaWarning] {
                let reported = observed.governance.filter { $0.kind == kind }.map { "\($0.step?.rawValue ?? "")#\($0.visit ?? 0)" }
                #expect(Set(reported).count == reported.count, "seed \(seed): \(kind) \(reported)")
            }

            // Attempts of a task are dispatched in order 1, 2, 3…
            var attempts: [TaskID: Int] = [:]
            for dispatch in observed.dispatched {
                #expect(dispatch.attempt == (attempts[dispatch.task] ?? 0) + 1)
                attempts[dispatch.task] = dispatch.attempt
            }
        }
    }

    /// The generator is only worth its invariants if it reaches the interesting paths.
    @Test func generatorCoversEveryConstruct() {
        var seen: [String: Int] = [:]
        for seed in UInt64(0)..<500 {
            let (_, machine, observed) = driveRandomly(seed: seed &* 0x9E37_79B9)
            seen[machine.state.status.rawValue, default: 0] += 1
            if observed.dispatched.contains(where: \.isCompensation) { seen["compensation", default: 0] += 1 }
            if observed.governance.contains(where: { $0.kind == .slaViolation }) { seen["violation", default: 0] += 1 }
            if observed.governance.contains(where: { $0.willRetry == true }) { seen["retry", default: 0] += 1 }
            if machine.state.steps.contains(where: { $0.status == .timedOut }) { seen["timeout", default: 0] += 1 }
            if machine.state.steps.contains(where: { $0.status == .skipped }) { seen["skipped", default: 0] += 1 }
            if machine.state.steps.contains(where: { $0.tasks.count > 1 }) { seen["fan-out", default: 0] += 1 }
            if machine.state.steps.contains(where: { $0.output?["case"] != nil }) { seen["switch", default: 0] += 1 }
            if machine.state.steps.contains(where: { $0.visit > 1 }) { seen["loop", default: 0] += 1 }
            if !observed.askedSlots.isEmpty { seen["slot", default: 0] += 1 }
            if observed.governance.contains(where: { $0.kind == .stepFailed && $0.detail == "limit" }) {
                seen["slot-cancelled", default: 0] += 1
            }
        }
        for feature in [
            "completed", "failed", "cancelled", "compensation", "violation", "retry", "timeout", "skipped",
            "fan-out", "switch", "loop", "slot", "slot-cancelled",
        ] {
            #expect(seen[feature, default: 0] >= 5, "\(feature): \(seen)")
        }
    }

    @Test func generatedRunsReplayIdentically() async {
        await propertyCheck(count: 50, input: Gen.uint64()) { seed in
            let (_, first, a) = driveRandomly(seed: seed)
            let (_, second, b) = driveRandomly(seed: seed)
            #expect(first.state == second.state)
            #expect(a.dispatched == b.dispatched && a.governance == b.governance)
        }
    }
}
