import ActEngine
import ActPlaybook
import Testing

/// A run queued for its concurrency key: nothing starts until released; a cancel ends it without a step; a
/// signal is kept for the wait it will reach.
@Suite struct QueuedRunTests {
    static let claim = RunState.ConcurrencyClaim(scope: "Inspection.v1", key: "12 Elm St", limit: 1, onLimit: .queue)
    static let playbook = Playbook(id: "Inspection.v1", steps: [wait("site", .hours(1)), task("report")])

    @Test func startsNothingUntilReleased() {
        var (machine, commands) = RunStateMachine.start(runID: "wf_q", playbook: Self.playbook, payload: [:], now: t0,
            queuedFor: Self.claim)
        #expect(commands.isEmpty && machine.state.status == .queued && machine.state.steps.isEmpty)
        #expect(machine.handle(.pause, now: at(.seconds(1))).isEmpty)
        _ = machine.handle(.signal(name: "site", payload: ["found": true]), now: at(.seconds(2)))
        let released = machine.handle(.released, now: at(.seconds(3)))
        #expect(machine.state.status == .running)
        #expect(summary(released).contains { $0.hasPrefix("audit released") })
        // The signal kept while queued ended the wait as soon as it started.
        #expect(machine.state.record("site")?.status == .completed)
        #expect(summary(released).contains("dispatch wf_q/report/1#1 → task.ai.report"))
        #expect(machine.handle(.released, now: at(.seconds(4))).isEmpty)
    }

    @Test func aCancelEndsItWithoutAStep() {
        var (machine, _) = RunStateMachine.start(runID: "wf_q", playbook: Self.playbook, payload: [:], now: t0,
            queuedFor: Self.claim)
        let commands = machine.handle(.cancel(reason: "duplicate"), now: at(.seconds(1)))
        #expect(machine.state.status == .cancelled && machine.state.steps.isEmpty)
        #expect(commands.contains(.runFinished(.cancelled)))
    }
}

/// A run's priority rides on every task message it sends.
@Suite struct RunPriorityTests {
    @Test func everyDispatchCarriesTheRunsPriority() {
        let playbook = Playbook(id: "P.v1", steps: [task("a", compensate: .svc("undo")), task("b")])
        var (machine, started) = RunStateMachine.start(runID: "wf_p", playbook: playbook, payload: [:], now: t0, priority: 7)
        #expect(started.contains { if case .dispatchTask(let d) = $0 { d.priority == 7 } else { false } })
        _ = machine.handle(.taskCompleted("wf_p/a/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        let failed = machine.handle(.taskFailed("wf_p/b/1", attempt: 1, reason: "no", retryable: false), now: at(.seconds(2)))
        // The compensation too.
        #expect(failed.contains { if case .dispatchTask(let d) = $0 { d.isCompensation && d.priority == 7 } else { false } })
    }
}
