import ActPlaybook
import ActService
import Testing

@Suite struct TriggerEventTests {
    private func message(_ json: String, contentType: String? = "application/json", headers: [String: JSONValue] = [:],
        routingKey: String = "noise.complaint.filed", messageID: String? = nil) -> InboundMessage
    {
        InboundMessage(routingKey: routingKey, contentType: contentType, messageID: messageID, headers: headers,
            body: Array(json.utf8))
    }

    @Test func readsTheChaptersPlainJSON() throws {
        let event = try TriggerEvent(message: message(
            #"{"type": "noise.complaint.filed", "id": "e-1", "time": "2024-05-14T10:03:00", "payload": {"address": "123 Oak St"}}"#))
        #expect(event.id == "e-1")
        #expect(event.type == "noise.complaint.filed")
        #expect(event.payload == ["address": "123 Oak St"])
    }

    @Test func readsThePriorityHeaderAndRefusesOneOutOfRange() throws {
        let json = #"{"type": "noise.complaint.filed", "id": "e-1", "payload": {}}"#
        #expect(try TriggerEvent(message: message(json, headers: ["x-hms-priority": "7"])).priority == 7)
        #expect(try TriggerEvent(message: message(json, headers: ["x-hms-priority": 3])).priority == 3)
        #expect(try TriggerEvent(message: message(json)).priority == nil)
        #expect(throws: MessageRejection.self) { try TriggerEvent(message: message(json, headers: ["x-hms-priority": "12"])) }
        do {
            _ = try TriggerEvent(message: message(json, headers: ["x-hms-priority": "urgent"]))
        } catch {
            #expect(error.reason.contains("header x-hms-priority is urgent; give a whole number from 0 (lowest) to 9"))
        }
    }

    @Test func readsChapterOnesNameField() throws {
        let event = try TriggerEvent(message: message(
            #"{"name": "ComplaintLogged", "payload": {"complaintId": "C-42"}}"#, routingKey: "ComplaintLogged",
            messageID: "m-7"))
        #expect(event.type == "ComplaintLogged")
        #expect(event.id == "m-7")
    }

    @Test(arguments: ["cloudEvents:", "cloudEvents_", "ce-", "ce_"])
    func readsBinaryMode(prefix: String) throws {
        let headers: [String: JSONValue] = [
            prefix + "specversion": "1.0", prefix + "id": "ce-9", prefix + "type": "payment_failed",
            prefix + "source": "/finance", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ]
        let event = try TriggerEvent(message: message(#"{"amount": 120}"#, headers: headers, routingKey: "x"))
        #expect(event.id == "ce-9")
        #expect(event.type == "payment_failed")
        #expect(event.source == "/finance")
        #expect(event.payload == ["amount": 120])
        #expect(event.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    }

    @Test func readsStructuredMode() throws {
        let event = try TriggerEvent(message: message(
            #"{"specversion": "1.0", "id": "s-1", "type": "permit.renewal.requested", "source": "/portal", "data": {"permit": "P-1"}}"#,
            contentType: "application/cloudevents+json; charset=utf-8"))
        #expect(event.type == "permit.renewal.requested")
        #expect(event.payload == ["permit": "P-1"])
    }

    @Test func sameBodyWithoutIDGetsTheSameID() throws {
        let first = try TriggerEvent(message: message(#"{"type": "t", "payload": {}}"#))
        let second = try TriggerEvent(message: message(#"{"type": "t", "payload": {}}"#))
        #expect(first.id == second.id)
        #expect(first.id.hasPrefix("sha256:"))
    }

    @Test func rejectsWhatItCannotRead() {
        #expect(throws: MessageRejection.self) { try TriggerEvent(message: message("not json")) }
        #expect(throws: MessageRejection.self) { try TriggerEvent(message: message("[1, 2]")) }
        #expect(throws: MessageRejection.self) {
            try TriggerEvent(message: message(#"{"specversion": "0.3", "type": "x"}"#,
                contentType: "application/cloudevents+json"))
        }
    }
}

@Suite struct WorkerMessageTests {
    private func message(_ json: String, type: String? = nil) -> InboundMessage {
        InboundMessage(routingKey: "result.ai.classifier", contentType: "application/json", type: type, body: Array(json.utf8))
    }

    @Test func readsACompletedResult() throws {
        let reply = try WorkerMessage(message: message(
            #"{"task_id": "t-1", "attempt": 1, "status": "completed", "output": {"severity": "High"}}"#))
        #expect(reply == .taskResult(.init(taskID: "t-1", attempt: 1, outcome: .completed(output: ["severity": "High"]))))
        #expect(reply.inboxKey(messageID: "anything") == "result:t-1#1:completed")
    }

    @Test func readsAFailureWithRetryable() throws {
        let reply = try WorkerMessage(message: message(
            #"{"task_id": "t-1", "attempt": 2, "status": "failed", "reason": "IRS mismatch", "retryable": false}"#))
        #expect(reply == .taskResult(.init(taskID: "t-1", attempt: 2, outcome: .failed(reason: "IRS mismatch", retryable: false))))
    }

    @Test func readsSignalsAndApprovals() throws {
        let signal = try WorkerMessage(message: message(#"{"run_id": "wf_1", "signal": "bank_updated"}"#))
        #expect(signal == .signal(runID: "wf_1", name: "bank_updated", payload: .null))
        let approval = try WorkerMessage(message: message(
            #"{"run_id": "wf_1", "step_id": "zoningApproval", "approved": false, "actor": "officer#4", "reason": "zone R1"}"#))
        #expect(approval == .approval(.init(runID: "wf_1", stepID: "zoningApproval", approved: false, actor: "officer#4",
            reason: "zone R1", payload: .null)))
    }

    @Test(arguments: [
        #"{"attempt": 1, "status": "completed"}"#,
        #"{"task_id": "t", "status": "completed"}"#,
        #"{"task_id": "t", "attempt": 0, "status": "completed"}"#,
        #"{"task_id": "t", "attempt": 1, "status": "maybe"}"#,
        #"{"run_id": "r", "approved": "yes", "step_id": "s", "actor": "a"}"#,
    ])
    func rejectsIncompleteResults(json: String) {
        #expect(throws: MessageRejection.self) { try WorkerMessage(message: message(json)) }
    }
}
