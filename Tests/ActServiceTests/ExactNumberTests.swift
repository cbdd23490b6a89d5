import ActEngine
import ActPlaybook
import ActService
import ActStore
import Foundation
import Testing

@Suite struct ExactNumberTests {
    private func trigger(_ json: String) throws -> TriggerEvent {
        try TriggerEvent(message: InboundMessage(routingKey: "ComplaintLogged", contentType: "application/json",
            body: Array(json.utf8)))
    }

    @Test func numericEventIDsAbove2To53StartDifferentRuns() throws {
        let first = try trigger(#"{"type": "ComplaintLogged", "id": 9007199254740993, "payload": {}}"#)
        let second = try trigger(#"{"type": "ComplaintLogged", "id": 9007199254740992, "payload": {}}"#)
        #expect(first.id == "9007199254740993")
        #expect(second.id == "9007199254740992")
        let plan = try BatchPlannerTests.planner().plan([.init(.trigger(first)), .init(.trigger(second))], runs: [:],
            now: BatchPlannerTests.t0)
        #expect(plan.outcomes == [.applied, .applied])
        #expect(Set(plan.batch.runs.map(\.runID)) == [
            RunID.forTrigger(playbook: "FTC-Complaint", eventID: "9007199254740993").rawValue,
            RunID.forTrigger(playbook: "FTC-Complaint", eventID: "9007199254740992").rawValue,
        ])
    }

    @Test func smallNumericIDsKeepTheirText() throws {
        #expect(try trigger(#"{"type": "t", "id": 42, "payload": {}}"#).id == "42")
        #expect(try trigger(#"{"type": "t", "id": 42.0, "payload": {}}"#).id == "42")
    }

    @Test func payloadNumbersReachTaskMessagesExactly() throws {
        let event = try trigger(#"{"type": "ComplaintLogged", "id": "e-9", "payload": {"big": 12345678901234567890, "ratio": 0.1, "amount": 123456789.123456789, "wide": 12345678901234567890123}}"#)
        #expect(event.payload["big"]?.numberValue?.text == "12345678901234567890")
        let planner = BatchPlannerTests.planner()
        let first = try planner.plan([.init(.trigger(event))], runs: [:], now: BatchPlannerTests.t0)
        let expected = #""payload":{"amount":123456789.123456789,"big":12345678901234567890,"ratio":0.1,"wide":12345678901234567890123}"#
        let task = try #require(first.batch.outbox.first { $0.type == "hms.task" })
        #expect(String(decoding: task.body, as: UTF8.self).contains(expected))

        // The next batch reads the run's state from its row (as after a restart), not from memory.
        let run = try #require(first.batch.runs.first)
        let dispatched = try #require(first.batch.dispatchedTasks.first)
        let output = try JSONValue(parsing: Array(#"{"severity": "Low", "score": 9007199254740993}"#.utf8))
        let second = try planner.plan([.init(.worker(.taskResult(.init(taskID: dispatched.taskID, attempt: 1,
            outcome: .completed(output: output))), messageID: nil))], runs: [run.runID: run],
            now: BatchPlannerTests.t0 + .seconds(1))
        #expect(second.outcomes == [.applied])
        let next = try #require(second.batch.outbox.first { $0.type == "hms.task" })
        let body = String(decoding: next.body, as: UTF8.self)
        #expect(body.contains(expected))
        #expect(body.contains(#""score":9007199254740993"#))
        let state = try JSONDecoder().decode(RunState.self, from: Data(try #require(second.batch.runs.first).state))
        #expect(state.payload["wide"]?.numberValue?.text == "12345678901234567890123")
    }

    @Test func workerResultsKeepTheirNumbers() throws {
        let message = InboundMessage(routingKey: "result.ai.x", contentType: "application/json", type: "hms.task.result",
            body: Array(#"{"task_id": "wf_1/a/1", "attempt": 1.0, "status": "completed", "output": {"n": 0.1, "id": 18446744073709551615}}"#.utf8))
        guard case .taskResult(let result) = try WorkerMessage(message: message),
            case .completed(let output) = result.outcome
        else {
            Issue.record("expected a completed task result")
            return
        }
        #expect(result.attempt == 1)
        #expect(output["n"]?.numberValue?.text == "0.1")
        #expect(output["id"]?.numberValue?.text == "18446744073709551615")
    }
}
