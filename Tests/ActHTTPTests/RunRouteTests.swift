import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("events and runs")
struct RunRouteTests {
    @Test func eventStartsARunThatListsAndDetails() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let accepted = try await client.send(.post, "/v1/events", token: Token.operate,
                json: #"{"type": "ComplaintLogged", "id": "evt-1", "payload": {"complaint_id": "C-1"}}"#)
            #expect(accepted.status == .accepted)
            let body = try accepted.json
            #expect(body["event_id"] == "evt-1")
            #expect(body["type"] == "ComplaintLogged")
            #expect(body["outcome"] == "applied")
            #expect(body["reason"] == nil)
            let runID = try #require(body["runs"]?.arrayValue?.first?.stringValue)
            #expect(runID.hasPrefix("wf_"))

            let list = try await client.send(.get, "/v1/runs", token: Token.read)
            #expect(list.status == .ok)
            let page = try list.decode(API.RunPage.self)
            #expect(page.runs.map(\.runID) == [runID])
            #expect(page.runs.first?.playbook == "FTC-Complaint")
            #expect(page.runs.first?.status == "running")
            #expect(page.runs.first?.trigger == "ComplaintLogged")
            #expect(page.next == nil)
            #expect(try list.json["next"] == .null)
            #expect(try list.json[path: "runs.0.finished_at"] == .null)

            let detailResponse = try await client.send(.get, "/v1/runs/\(runID)", token: Token.read)
            #expect(detailResponse.status == .ok)
            let detail = try detailResponse.decode(API.RunDetail.self)
            #expect(detail.summary.runID == runID)
            #expect(detail.playbookVersion == 1)
            #expect(detail.payload == ["complaint_id": "C-1"])
            #expect(detail.failure == nil)
            let classify = try #require(detail.steps.first)
            #expect(classify.stepID == "classify")
            #expect(classify.status == "running")
            #expect(classify.assignee == "ai.fraud-labeler")
            #expect(classify.attempt == 1)
            #expect(classify.sla.state == .none)
            #expect(detail.tasks.map(\.taskID) == ["\(runID)/classify/1"])
            #expect(detail.tasks.first?.target == "task.ai.fraud-labeler")
            #expect(detail.timeline.first?.kind == "run.started")
            #expect(detail.timeline.first?.seq == 1)
            // Explicit nulls, RFC 3339 times with milliseconds.
            let json = try detailResponse.json
            #expect(json["failure"] == .null)
            #expect(json[path: "steps.0.finished_at"] == .null)
            let created = try #require(json["created_at"]?.stringValue)
            #expect(created.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        }
    }

    @Test func repeatedEventIsIgnoredAndNamesTheSameRun() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let first = try await startFTCRun(client)
            let again = try await client.send(.post, "/act/events", token: Token.operate,
                json: #"{"name": "ComplaintLogged", "id": "evt-1", "payload": {"complaint_id": "C-1"}}"#)
            #expect(again.status == .accepted)
            #expect(try again.json["outcome"] == "ignored")
            #expect(try again.json["reason"]?.stringValue?.isEmpty == false)
            #expect(try again.json["runs"] == [.string(first)])
        }
    }

    @Test func eventNoPlaybookListensToIsIgnored() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate,
                json: #"{"type": "nobody.listens", "payload": {}}"#)
            #expect(response.status == .accepted)
            #expect(try response.json["outcome"] == "ignored")
            #expect(try response.json["runs"] == [])
        }
    }

    @Test func structuredAndBinaryCloudEventsStartRuns() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let structured = try await client.send(.post, "/v1/events", token: Token.operate,
                json: #"{"specversion": "1.0", "type": "ComplaintLogged", "id": "ce-1", "source": "/portal", "data": {"a": 1}}"#,
                contentType: "application/cloudevents+json")
            #expect(structured.status == .accepted)
            #expect(try structured.json["outcome"] == "applied")
            #expect(try structured.json["event_id"] == "ce-1")

            var headers = HTTPFields()
            headers[.init("ce-specversion")!] = "1.0"
            headers[.init("ce-type")!] = "ComplaintLogged"
            headers[.init("ce-id")!] = "ce-2"
            let binary = try await client.send(.post, "/v1/events", token: Token.operate, json: #"{"a": 2}"#,
                headers: headers)
            #expect(binary.status == .accepted)
            #expect(try binary.json["event_id"] == "ce-2")
            #expect(try binary.json["outcome"] == "applied")
        }
    }

    @Test func startRunExplicitly() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let response = try await client.send(.post, "/v1/runs", token: Token.operate,
                json: #"{"playbook": "FTC-Complaint", "payload": {"x": 1}, "id": "start-1"}"#)
            #expect(response.status == .accepted)
            #expect(try response.json["event_id"] == "start-1")
            #expect(try response.json["outcome"] == "applied")
            let runID = try #require(try response.json["runs"]?.arrayValue?.first?.stringValue)
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.payload == ["x": 1])
            let again = try await client.send(.post, "/v1/runs", token: Token.operate,
                json: #"{"playbook": "FTC-Complaint", "id": "start-1"}"#)
            #expect(try again.json["outcome"] == "ignored")
        }
    }

    @Test func pagingWithTheCursor() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        var started: [String] = []
        for index in 1...5 {
            started.append(try await world.test { client in try await startFTCRun(client, id: "evt-\(index)") })
            world.plane.advance(milliseconds: 1_000)
        }
        let newestFirst = Array(started.reversed())
        try await world.test { client in
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = "limit=2" + (cursor.map { "&after=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? "")
                let page = try await client.send(.get, "/v1/runs?\(query)").decode(API.RunPage.self)
                #expect(page.runs.count <= 2)
                seen += page.runs.map(\.runID)
                cursor = page.next
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == newestFirst)

            let filtered = try await client.send(.get, "/v1/runs?playbook=Other").decode(API.RunPage.self)
            #expect(filtered.runs.isEmpty)
            let running = try await client.send(.get, "/v1/runs?status=running&playbook=FTC-Complaint")
                .decode(API.RunPage.self)
            #expect(running.runs.count == 5)
        }
    }

    @Test func pauseResumeCancel() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let pause = try await client.send(.post, "/v1/runs/\(runID)/pause", token: Token.operate)
            #expect(pause.status == .accepted)
            #expect(try pause.json == ["run_id": .string(runID), "outcome": "applied"])
            do {
                let value = try await client.send(.get, "/v1/runs/\(runID)")
                #expect(try value.decode(API.RunDetail.self).summary.status == "paused")
            }

            let resume = try await client.send(.post, "/v1/runs/\(runID)/resume", token: Token.operate, json: "{}")
            #expect(try resume.json["outcome"] == "applied")
            let again = try await client.send(.post, "/v1/runs/\(runID)/resume", token: Token.operate)
            #expect(try again.json["outcome"] == "ignored")

            let cancel = try await client.send(.post, "/v1/runs/\(runID)/cancel", token: Token.operate,
                json: #"{"reason": "duplicate complaint"}"#)
            #expect(try cancel.json["outcome"] == "applied")
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "cancelled")
            #expect(detail.summary.finishedAt != nil)
            #expect(detail.failure?.reason == "duplicate complaint")
            #expect(detail.timeline.contains { $0.kind == "run.cancel_requested" && $0.actor == "ops" })
        }
    }

    @Test func idempotencyKeyMakesARepeatHarmless() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let key: HTTPFields = [.init("Idempotency-Key")!: "k-1"]
            let first = try await client.send(.post, "/v1/runs/\(runID)/pause", headers: key)
            #expect(try first.json["outcome"] == "applied")
            try await client.send(.post, "/v1/runs/\(runID)/resume")
            let repeated = try await client.send(.post, "/v1/runs/\(runID)/pause", headers: key)
            #expect(try repeated.json["outcome"] == "ignored")
            do {
                let value = try await client.send(.get, "/v1/runs/\(runID)")
                #expect(try value.decode(API.RunDetail.self).summary.status == "running")
            }
        }
    }

    @Test func signalEndsAWait() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.payment])
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "payment_failed", "id": "p-1"}"#)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let waiting = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(waiting.steps.first?.status == "waiting")

            let signal = try await client.send(.post, "/v1/runs/\(runID)/signals/bank_updated", token: Token.operate,
                json: #"{"payload": {"iban": "DE00"}}"#)
            #expect(signal.status == .accepted)
            #expect(try signal.json == ["run_id": .string(runID), "signal": "bank_updated", "outcome": "applied"])
            let after = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(after.steps.first?.status == "completed")
            #expect(after.steps.map(\.stepID) == ["wait_for_fix", "close"])
        }
    }

    /// A signal may name the business key (here the trigger event's id, chapter 002's payment id) instead of
    /// the run id; a key no running run has is a 404, a key that is neither text nor a number a 400.
    @Test func aSignalByBusinessKeyReachesTheRun() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.payment])
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "payment_failed", "id": "987"}"#)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let found = try await client.send(.get, "/v1/runs?key=987").decode(API.RunPage.self)
            #expect(found.runs.map(\.runID) == [runID])
            #expect(try await client.send(.get, "/v1/runs?key=988").decode(API.RunPage.self).runs.isEmpty)
            let signal = try await client.send(.post, "/v1/signals/bank_updated", token: Token.operate,
                json: #"{"key": 987, "payload": {"iban": "DE00"}}"#)
            #expect(signal.status == .accepted)
            #expect(try signal.json == ["signal": "bank_updated", "key": "987",
                "runs": [["run_id": .string(runID), "signal": "bank_updated", "outcome": "applied"]]])
            let after = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(after.steps.first?.status == "completed")

            let other = try await client.send(.post, "/v1/signals/bank_updated", token: Token.operate,
                json: #"{"key": "988", "playbook": "payment_failed_flow"}"#)
            #expect(other.status == .notFound)
            #expect(try other.json["detail"]?.stringValue?.contains("no running or paused run has the key 988") == true)
            let bad = try await client.send(.post, "/v1/signals/bank_updated", token: Token.operate, json: #"{"key": ""}"#)
            #expect(bad.status == .badRequest)
            #expect(try bad.json["errors"]?.arrayValue?.first?["field"] == "key")
        }
    }

    /// Chapter 003's `waitFor('/callbacks/${trace}/${step.id}')`: the run's trace id instead of its id, and an
    /// empty POST approves.
    @Test func anEmptyCallbackByTraceIDApproves() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.zoning])
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "zoning.requested", "id": "z-2"}"#)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let summary = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self).summary
            #expect(summary.traceID.count == 32 && summary.traceID != runID)
            let task = pathSegment("\(runID)/zoningApproval/1")
            #expect(try await client.send(.post, "/v1/tasks/\(task)/complete", json: #"{}"#).status == .accepted)

            let callback = try await client.send(.post, "/callbacks/\(summary.traceID)/zoningApproval", token: Token.operate)
            #expect(callback.status == .accepted)
            #expect(try callback.json == ["run_id": .string(runID), "step_id": "zoningApproval", "outcome": "applied"])
            let finished = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(finished.summary.status == "completed")
            let unknown = try await client.send(.post, "/callbacks/0123456789abcdef0123456789abcdef/zoningApproval",
                token: Token.operate)
            #expect(unknown.status == .notFound)
        }
    }

    @Test(arguments: ["/v1/callbacks", "/callbacks"])
    func callbackApprovesAPausedStep(prefix: String) async throws {
        let world = try await TestWorld(playbooks: [Playbooks.zoning])
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "zoning.requested", "id": "z-1"}"#)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let task = pathSegment("\(runID)/zoningApproval/1")
            let done = try await client.send(.post, "/v1/tasks/\(task)/complete", json: #"{"permit": "P-9"}"#)
            #expect(try done.json["outcome"] == "applied")
            let awaiting = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(awaiting.steps.first?.status == "awaiting_approval")

            let callback = try await client.send(.post, "\(prefix)/\(runID)/zoningApproval", token: Token.operate,
                json: #"{"approved": true, "reason": "ok"}"#)
            #expect(callback.status == .accepted)
            #expect(try callback.json == ["run_id": .string(runID), "step_id": "zoningApproval", "outcome": "applied"])
            let finished = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(finished.summary.status == "completed")
            #expect(finished.timeline.contains { $0.kind == "approval.given" && $0.actor == "ops" })
        }
    }
}
