import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// A task carries earlier steps' outputs in `context`; a few large AI outputs must not make task messages
/// grow past what the broker accepts (engine.task_context_bytes).
@Suite("task context bound")
struct TaskContextBoundTests {
    static func output(_ bytes: Int) -> JSONValue { ["text": .string(String(repeating: "x", count: bytes))] }

    static let context: JSONValue = [
        "steps": ["intake": output(100), "summary": output(300_000), "analysis": output(200_000)],
        "result": output(50_000),
    ]

    @Test func aContextWithinTheLimitIsUnchanged() {
        #expect(OutboundMessages.bounded(context: Self.context, limit: 1 << 20, run: RunID("wf_1")) == Self.context)
        #expect(OutboundMessages.bounded(context: Self.context, limit: 0, run: RunID("wf_1")) == Self.context)
    }

    @Test func theLargestOutputsAreLeftOutFirstAndTheTaskSaysWhere() {
        let bounded = OutboundMessages.bounded(context: Self.context, limit: 256 << 10, run: RunID("wf_1"))
        #expect(bounded.canonicalEncoding.count <= 256 << 10)
        #expect(bounded["steps"]?["summary"] == nil)
        #expect(bounded["steps"]?["analysis"] == Self.output(200_000))
        #expect(bounded["steps"]?["intake"] == Self.output(100))
        #expect(bounded["result"] == Self.output(50_000))
        #expect(bounded["omitted"]?["fields"] == ["summary"])
        #expect(bounded["omitted"]?["read"] == "GET /v1/runs/wf_1")
    }

    @Test func theResultGoesTooWhenItAloneIsAboveTheLimit() {
        let bounded = OutboundMessages.bounded(context: Self.context, limit: 10_000, run: RunID("wf_1"))
        #expect(bounded.canonicalEncoding.count <= 10_000)
        #expect(bounded["result"] == .null)
        #expect(bounded["omitted"]?["fields"] == ["analysis", "result", "summary"])
        #expect(bounded["steps"]?["intake"] == Self.output(100))
    }

    @Test func taskMessagesUseTheBound() {
        let messages = OutboundMessages(exchanges: .init(), taskContextBytes: 64 << 10)
        let dispatch = TaskDispatch(task: TaskID("wf_1/s/1"), attempt: 1, run: RunID("wf_1"), playbook: PlaybookID("P"),
            step: StepID("s"), visit: 1, assignee: Assignee(kind: .ai, name: "x"), target: .routingKey("task.ai.x"),
            agent: nil, deadline: nil, payload: [:], input: nil, context: Self.context, isCompensation: false)
        let message = messages.task(dispatch, traceID: String(repeating: "a", count: 32),
            now: Instant(millisecondsSinceEpoch: 0))
        #expect(message.body.count < 70 << 10)
    }
}
