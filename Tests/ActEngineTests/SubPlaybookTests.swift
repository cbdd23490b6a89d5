import ActEngine
import ActPlaybook
import Testing

/// `playbook:` steps in the engine: one task routed to a child run, its payload the step's resolved
/// `input:`, and each attempt a child of its own (the service starts and answers it).
@Suite struct SubPlaybookTests {
    static func inspect(input: JSONValue?, retry: Int = 0) -> Playbook {
        Playbook(id: "PermitSweep.v1", steps: [
            task("prepare"),
            Step(id: "inspect",
                kind: .task(TaskSpec(assignee: Assignee(kind: .playbook, name: "SiteInspection.v1"), input: input)),
                retry: RetryPolicy(maxRetries: retry, backoff: .fixed, initial: .seconds(1))),
            task("close"),
        ])
    }

    @Test func dispatchesOneTaskToAChildRunWithTheResolvedInput() throws {
        let playbook = Self.inspect(input: ["address": "${payload.address}", "level": "${result.level}",
            "fixed": "as written", "nested": ["${payload.missing}", 3]])
        var (machine, _) = RunStateMachine.start(runID: "wf_parent", playbook: playbook,
            payload: ["address": "Main St 1"], now: t0)
        let commands = machine.handle(.taskCompleted("wf_parent/prepare/1", attempt: 1, output: ["level": 2]), now: at(.seconds(1)))
        let dispatch = try #require(commands.compactMap { command -> TaskDispatch? in
            if case .dispatchTask(let dispatch) = command { return dispatch }
            return nil
        }.first)
        #expect(dispatch.target == .playbook("SiteInspection.v1"))
        #expect(dispatch.assignee.label == "playbook.SiteInspection.v1")
        #expect(dispatch.input == ["address": "Main St 1", "level": 2, "fixed": "as written", "nested": [.null, 3]])
        #expect(TaskDispatch.childRunID(playbook: "SiteInspection.v1", task: dispatch.task, attempt: 1)
            == RunID.forTrigger(playbook: "SiteInspection.v1", eventID: "wf_parent/inspect/1#1"))
    }

    @Test func withoutInputTheChildGetsTheParentsPayloadAndEachRetryIsANewChild() throws {
        var (machine, _) = RunStateMachine.start(runID: "wf_p", playbook: Self.inspect(input: nil, retry: 1),
            payload: ["address": "Elm 2"], now: t0)
        let first = machine.handle(.taskCompleted("wf_p/prepare/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        #expect(summary(first).contains("dispatch wf_p/inspect/1#1 → playbook:SiteInspection.v1"))
        #expect(first.contains { if case .dispatchTask(let d) = $0 { d.input == ["address": "Elm 2"] } else { false } })
        // The child failed: the step's retry starts attempt 2, a second child; a late answer for 1 is ignored.
        _ = machine.handle(.taskFailed("wf_p/inspect/1", attempt: 1, reason: "child run failed", retryable: true),
            now: at(.seconds(2)))
        let retry = machine.handle(.timerFired(.retry("wf_p/inspect/1", attempt: 2)), now: at(.seconds(3)))
        #expect(summary(retry).contains("dispatch wf_p/inspect/1#2 → playbook:SiteInspection.v1"))
        #expect(machine.handle(.taskCompleted("wf_p/inspect/1", attempt: 1, output: [:]), now: at(.seconds(4))).isEmpty)
        let done = machine.handle(.taskCompleted("wf_p/inspect/1", attempt: 2, output: ["report": "ok"]),
            now: at(.seconds(5)))
        #expect(summary(done).contains("dispatch wf_p/close/1#1 → task.ai.close"))
        #expect(machine.state.record("inspect")?.output == ["report": "ok"])
    }

    @Test func aChildRunKnowsItsParentAndDepth() {
        let link = RunState.ParentLink(run: "wf_p", task: "wf_p/inspect/1", attempt: 1, depth: 2)
        let (machine, _) = RunStateMachine.start(runID: "wf_c", playbook: Self.inspect(input: nil), payload: [:],
            now: t0, parent: link)
        #expect(machine.state.parent == link && machine.state.depth == 2)
        let (own, _) = RunStateMachine.start(runID: "wf_o", playbook: Self.inspect(input: nil), payload: [:], now: t0)
        #expect(own.state.parent == nil && own.state.depth == 0)
    }
}
