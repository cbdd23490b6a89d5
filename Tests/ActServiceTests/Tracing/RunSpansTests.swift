import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// The spans of a batch (``RunSpans``): one trace per run, the ids the messages carry, results continuing
/// the worker's span. The shape over real OTLP, with a real worker, is test_traces.py's.
@Suite struct RunSpansTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let caller = "00f067aa0ba902b7"
    static let builder = RunSpans(exchanges: .init(), schema: "hms_act")

    static func spans(_ inputs: [BatchInput], _ plan: BatchPlanner.Plan) -> [SpanData] {
        builder.spans(inputs: inputs, plan: plan, start: 1_000, end: 2_000, source: "messages",
            batchIDs: (traceID: String(repeating: "ab", count: 16), spanID: String(repeating: "cd", count: 8)))
    }

    static func started() throws -> (input: BatchInput, plan: BatchPlanner.Plan, run: RunRow) {
        var event = BatchPlannerTests.event
        event.traceparent = "00-\(traceID)-\(caller)-01"
        let input = BatchInput.trigger(event)
        let plan = try BatchPlannerTests.planner().plan([.init(input)], runs: [:], now: BatchPlannerTests.t0)
        return (input, plan, try #require(plan.batch.runs.first))
    }

    @Test func theRootContinuesTheTriggerAndTheDispatchIsTheSpanItsMessageNames() throws {
        let (input, plan, run) = try Self.started()
        let spans = Self.spans([input], plan)
        #expect(spans.map(\.name) == ["apply batch", "process ComplaintLogged", "dispatch classify #1"])

        let root = spans[1]
        #expect(root.traceID == Self.traceID && run.traceID == Self.traceID)
        #expect(root.parentSpanID == Self.caller)
        #expect(root.spanID == SpanData.rootSpanID(run: run.runID))
        #expect(root.kind == .consumer)
        #expect(root.attribute("messaging.rabbitmq.destination.routing_key") == "ComplaintLogged")
        #expect(root.attribute("hms.run_id") == .string(run.runID))

        let dispatch = spans[2]
        let message = try #require(plan.batch.outbox.first { $0.type == "hms.task" })
        let named = try #require(SpanData.parse(traceparent: message.headers["traceparent"]))
        #expect(named.traceID == Self.traceID)
        #expect(dispatch.spanID == named.spanID, "a worker continuing the message's traceparent is its child")
        #expect(dispatch.parentSpanID == root.spanID && dispatch.kind == .producer)
        #expect(dispatch.attribute("messaging.destination.name") == "hms.tasks")
        #expect(dispatch.attribute("messaging.rabbitmq.destination.routing_key") == "task.ai.fraud-labeler")
        #expect(dispatch.attribute("hms.attempt") == .int(1))

        let batch = spans[0]
        #expect(batch.traceID != Self.traceID && batch.parentSpanID == nil)
        #expect(batch.attribute("db.system.name") == "postgresql")
        #expect(batch.links.map(\.spanID) == [root.spanID, dispatch.spanID])
    }

    @Test func aTriggerWithoutTraceparentGetsTheRunsOwnTraceAndARootWithoutParent() throws {
        let plan = try BatchPlannerTests.planner().plan([.init(.trigger(BatchPlannerTests.event))], runs: [:],
            now: BatchPlannerTests.t0)
        let spans = Self.spans([.trigger(BatchPlannerTests.event)], plan)
        let run = try #require(plan.batch.runs.first)
        #expect(spans[1].traceID == run.traceID && spans[1].parentSpanID == nil)
    }

    @Test func aResultContinuesTheWorkersSpanAndLinksTheDispatch() throws {
        let (_, first, run) = try Self.started()
        let task = try #require(first.batch.dispatchedTasks.first)
        let worker = "b7ad6b7169203331"
        let result = BatchInput.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .failed(reason: "model overloaded", retryable: true), agent: "labeler#2",
            traceparent: "00-\(Self.traceID)-\(worker)-01")), messageID: "m-1")
        let plan = try BatchPlannerTests.planner().plan([.init(result)], runs: [run.runID: run],
            now: BatchPlannerTests.t0 + .seconds(1))
        let spans = Self.spans([result], plan)
        let applied = try #require(spans.first { $0.name == "result classify #1" })
        #expect(applied.parentSpanID == worker)
        #expect(applied.links.map(\.spanID) == [SpanData.dispatchSpanID(task: task.taskID, attempt: 1)])
        #expect(applied.status == .error("model overloaded"))
        #expect(applied.attribute("hms.retryable") == true && applied.attribute("hms.agent") == "labeler#2")
        #expect(applied.attribute("messaging.message.id") == "m-1")
    }

    @Test func aResultFromAnotherTraceOrWithoutOneHangsOffTheDispatch() throws {
        let (_, first, run) = try Self.started()
        let task = try #require(first.batch.dispatchedTasks.first)
        for traceparent in [nil, "00-\(String(repeating: "1", count: 32))-b7ad6b7169203331-01", "garbage"] {
            let result = BatchInput.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
                outcome: .completed(output: ["severity": "Low"]), traceparent: traceparent)), messageID: nil)
            let plan = try BatchPlannerTests.planner().plan([.init(result)], runs: [run.runID: run],
                now: BatchPlannerTests.t0 + .seconds(1))
            let applied = try #require(Self.spans([result], plan).first { $0.name == "result classify #1" })
            #expect(applied.parentSpanID == SpanData.dispatchSpanID(task: task.taskID, attempt: 1))
            #expect(applied.status == .unset)
        }
    }

    @Test func anInputThatChangedNothingMakesNoSpan() throws {
        let (_, first, run) = try Self.started()
        let task = try #require(first.batch.dispatchedTasks.first)
        let result = BatchInput.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .completed(output: [:]))), messageID: nil)
        let plan = try BatchPlannerTests.planner().plan([.init(result, fresh: false)], runs: [run.runID: run],
            now: BatchPlannerTests.t0 + .seconds(1))
        #expect(Self.spans([result], plan).isEmpty)
    }

    @Test func spanIDsMatchW3CLengthsAndTraceparentsAreReadStrictly() {
        #expect(SpanData.rootSpanID(run: "wf_1").count == 16)
        #expect(SpanData.randomTraceID().count == 32 && SpanData.randomSpanID().count == 16)
        #expect(SpanData.parse(traceparent: "00-\(Self.traceID)-\(Self.caller)-01")! == (Self.traceID, Self.caller))
        #expect(SpanData.parse(traceparent: "00-\(Self.traceID.uppercased())-\(Self.caller)-01")?.traceID == Self.traceID)
        for bad in ["", "00-\(Self.traceID)-\(Self.caller)", "00-\(String(repeating: "0", count: 32))-\(Self.caller)-01",
            "00-\(Self.traceID)-0000000000000000-01", "00-\(Self.traceID)-\(Self.caller)x-01", "00-zz\(Self.traceID.dropFirst(2))-\(Self.caller)-01"]
        {
            #expect(SpanData.parse(traceparent: bad) == nil, "\(bad)")
        }
    }
}
