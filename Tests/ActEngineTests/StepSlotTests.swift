import ActEngine
import ActPlaybook
import Testing

/// `concurrency:` on a step: the visit waits (`queued`) for a slot the service grants; a refusal or a newer
/// visit taking the slot fails it; whatever ends the visit gives the slot back exactly once.
@Suite struct StepSlotTests {
    static let limit = Concurrency(key: .path(["payload", "address"]), keySource: "payload.address")
    static func playbook(_ onLimit: Concurrency.OnLimit = .queue, approval: Bool = false) -> Playbook {
        var limit = Self.limit
        limit.onLimit = onLimit
        return Playbook(id: "Inspect.v1", steps: [
            task("intake"),
            task("inspect", .human("inspector"), sla: .hours(4), onFailure: "notify", approval: approval, concurrency: limit),
            task("report"),
            task("notify"),
        ])
    }

    static func started(_ playbook: Playbook) -> RunStateMachine {
        var (machine, _) = RunStateMachine.start(runID: "wf_s", playbook: playbook, payload: ["address": "12 Elm St"], now: t0)
        _ = machine.handle(.taskCompleted("wf_s/intake/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        return machine
    }

    @Test func theStepWaitsForItsSlotThenStarts() {
        var (machine, _) = RunStateMachine.start(runID: "wf_s", playbook: Self.playbook(), payload: ["address": "12 Elm St"], now: t0)
        let entered = machine.handle(.taskCompleted("wf_s/intake/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        #expect(machine.state.record("inspect")?.status == .queued)
        #expect(machine.state.record("inspect")?.slot?.scope == "Inspect.v1/inspect")
        #expect(summary(entered).contains("ask slot 12 Elm St inspect#1"))
        #expect(summary(entered).contains("audit queued inspect"))
        #expect(entered.dispatches.isEmpty, "no task before the slot")
        // The SLA clock runs from entering the step, queued time included.
        #expect(summary(entered).contains("schedule wf_s/inspect/1/sla-breach sla_breach +4h1s"))

        // A grant for another visit is not this one's.
        #expect(machine.handle(.slotGranted(step: "inspect", visit: 2), now: at(.seconds(2))).isEmpty)
        let granted = machine.handle(.slotGranted(step: "inspect", visit: 1), now: at(.minutes(5)))
        #expect(machine.state.record("inspect")?.status == .running)
        #expect(summary(granted).contains("dispatch wf_s/inspect/1#1 → task.human.inspector"))
        #expect(summary(granted).contains("audit released inspect"))
        #expect(machine.handle(.slotGranted(step: "inspect", visit: 1), now: at(.minutes(6))).isEmpty, "a repeated grant")

        let done = machine.handle(.taskCompleted("wf_s/inspect/1", attempt: 1, output: [:]), now: at(.minutes(7)))
        #expect(summary(done).contains("leave slot 12 Elm St inspect#1"))
        #expect(machine.state.record("inspect")?.slot == nil)
    }

    @Test func cancelNewestFailsTheQueuedVisitAndItsOnFailureApplies() {
        var machine = Self.started(Self.playbook(.cancelNewest))
        let refused = machine.handle(.slotCancelled(step: "inspect", visit: 1, reason: "limit reached"), now: at(.seconds(2)))
        let record = machine.state.record("inspect")
        #expect(record?.status == .failed && record?.error == "limit reached" && record?.slot == nil)
        #expect(summary(refused).contains("leave slot 12 Elm St inspect#1"))
        #expect(summary(refused).contains("emit metrics.step_failed inspect"))
        #expect(summary(refused).contains("dispatch wf_s/notify/1#1 → task.ai.notify"), "on_failure: notify")
    }

    /// `cancel_in_progress` reaching a visit whose person has the task: the task is cancelled and the step
    /// fails, even while a human decision is pending.
    @Test func cancelInProgressFailsTheVisitWaitingOnAHuman() {
        var machine = Self.started(Self.playbook(.cancelInProgress, approval: true))
        _ = machine.handle(.slotGranted(step: "inspect", visit: 1), now: at(.seconds(2)))
        _ = machine.handle(.taskCompleted("wf_s/inspect/1", attempt: 1, output: ["found": true]), now: at(.minutes(1)))
        #expect(machine.state.record("inspect")?.status == .awaitingApproval)
        let taken = machine.handle(.slotCancelled(step: "inspect", visit: 1, reason: "a newer visit took it"), now: at(.minutes(2)))
        #expect(machine.state.record("inspect")?.status == .failed)
        #expect(summary(taken).contains("leave slot 12 Elm St inspect#1"))
        #expect(summary(taken).contains("dispatch wf_s/notify/1#1 → task.ai.notify"))
        // The approval that comes later no longer applies.
        #expect(machine.handle(.approval(step: "inspect", approved: true, actor: "officer#2", reason: nil, payload: nil),
            now: at(.minutes(3))).isEmpty)
    }

    @Test func cancellingTheRunGivesTheQueuedPlaceBack() {
        var machine = Self.started(Self.playbook())
        let cancelled = machine.handle(.cancel(reason: "withdrawn"), now: at(.seconds(5)))
        #expect(summary(cancelled).contains("leave slot 12 Elm St inspect#1"))
        #expect(machine.state.record("inspect")?.status == .cancelled)
        // A grant arriving after the cancel starts nothing.
        #expect(machine.handle(.slotGranted(step: "inspect", visit: 1), now: at(.seconds(6))).isEmpty)
    }

    @Test func aKeyWithNoValueLimitsNothing() {
        var (machine, _) = RunStateMachine.start(runID: "wf_s", playbook: Self.playbook(), payload: [:], now: t0)
        let entered = machine.handle(.taskCompleted("wf_s/intake/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        #expect(machine.state.record("inspect")?.status == .running && machine.state.record("inspect")?.slot == nil)
        #expect(summary(entered).contains("dispatch wf_s/inspect/1#1 → task.human.inspector"))
    }
}
