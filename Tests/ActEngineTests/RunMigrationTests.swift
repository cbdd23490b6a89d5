import ActEngine
import ActPlaybook
import Testing

/// Moving a run to another version of its playbook: it goes on from where it is under the new version, or
/// is refused with the step it would be stranded at.
@Suite struct RunMigrationTests {
    /// v1: intake → wait_for_docs (a wait) → review (compensated by undo_review).
    static let v1 = Playbook(id: "permit", steps: [task("intake", compensate: .ai("undo_intake")), wait("wait_for_docs", .days(5)),
        task("review")])
    /// v2: intake is gone; review is renamed check; notify is new.
    static let v2 = Playbook(id: "permit", steps: [wait("wait_for_docs", .days(5)), task("check"), task("notify")])

    @Test func aWaitingRunMovesAndGoesOnUnderTheNewVersion() throws {
        var playbook = Self.v1
        playbook.steps[0].compensate = nil
        var machine = drive(playbook, [(.taskCompleted("r/intake/1", attempt: 1, output: ["filed": true]), .seconds(1))])
        #expect(machine.state.record("wait_for_docs")?.status == .waiting)
        let moved = try RunMigration.migrate(machine.state, from: playbook, to: Self.v2, mapping: ["review": "check"]).get()
        #expect(moved.timers.map(\.step) == ["wait_for_docs"])
        machine = RunStateMachine(state: moved, playbook: Self.v2)
        let signalled = machine.handle(.signal(name: "wait_for_docs", payload: ["docs": 2]), now: t0 + .hours(1))
        #expect(signalled.dispatches.map(\.idempotencyKey) == ["r/check/1#1"])
        _ = machine.handle(.taskCompleted("r/check/1", attempt: 1, output: done), now: t0 + .hours(2))
        let last = machine.handle(.taskCompleted("r/notify/1", attempt: 1, output: done), now: t0 + .hours(3))
        #expect(summary(last).contains("finished completed"))
        // The removed step stays in the history, with its output in the context.
        #expect(machine.state.record("intake")?.output == ["filed": true])
    }

    @Test func aRunAtARemovedStepIsRefusedWithTheStepAndTheFix() {
        let machine = drive(Self.v1, [])
        guard case .failure(let refusal) = RunMigration.migrate(machine.state, from: Self.v1, to: Self.v2) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.description.contains("is at step intake"))
        #expect(refusal.description.contains("mapping {\"intake\": \"…\"}"))
    }

    @Test func aCompletedStepThatWouldLoseItsUndoOrAKindChangeIsRefused() {
        // intake completed with a compensate: v2 cannot undo it.
        let waiting = drive(Self.v1, [(.taskCompleted("r/intake/1", attempt: 1, output: done), .seconds(1))])
        guard case .failure(let lost) = RunMigration.migrate(waiting.state, from: Self.v1, to: Self.v2) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(lost.description.contains("would undo step intake"))
        // A wait mapped onto a task.
        var playbook = Self.v1
        playbook.steps[0].compensate = nil
        let atWait = drive(playbook, [(.taskCompleted("r/intake/1", attempt: 1, output: done), .seconds(1))])
        guard case .failure(let kind) = RunMigration.migrate(atWait.state, from: playbook, to: Self.v2,
            mapping: ["wait_for_docs": "check"])
        else {
            Issue.record("expected a refusal")
            return
        }
        #expect(kind.description.contains("a wait step, but check is a task step"))
        // Finished runs do not move.
        let finished = drive(Playbooks.sequence, [
            (.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(1)),
            (.taskCompleted("r/b/1", attempt: 1, output: done), .seconds(2)),
        ])
        #expect(throws: MigrationRefusal.self) {
            _ = try RunMigration.migrate(finished.state, from: Playbooks.sequence, to: Playbooks.sequence).get()
        }
    }

    @Test func aTaskInFlightKeepsItsIdSoItsAnswerStillApplies() throws {
        let v2 = Playbook(id: "seq", steps: [task("a"), task("c")])
        var machine = drive(Playbooks.sequence, [])
        let moved = try RunMigration.migrate(machine.state, from: Playbooks.sequence, to: v2).get()
        machine = RunStateMachine(state: moved, playbook: v2)
        let answered = machine.handle(.taskCompleted("r/a/1", attempt: 1, output: done), now: t0 + .seconds(5))
        #expect(answered.dispatches.map(\.idempotencyKey) == ["r/c/1#1"])
    }
}
