import ActHTTP
import ActPlaybook
import ActStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("playbooks, agents, incidents")
struct PlaybookRouteTests {
    @Test(arguments: ["application/yaml", "text/yaml", "application/x-yaml"])
    func registerYAML(contentType: String) async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let created = try await client.send(.post, "/v1/playbooks", token: Token.admin, json: nil,
                body: Array(Playbooks.ftc.utf8), contentType: contentType)
            #expect(created.status == .created)
            let registration = try created.decode(API.PlaybookRegistration.self)
            #expect(registration.playbook == "FTC-Complaint")
            #expect(registration.version == 1)
            #expect(registration.triggers == ["ComplaintLogged"])
            #expect(registration.created)
            #expect(!registration.checksum.isEmpty)
            #expect(try created.json["warnings"]?.arrayValue != nil)

            let again = try await client.send(.post, "/v1/playbooks", token: Token.admin, json: nil,
                body: Array(Playbooks.ftc.utf8), contentType: contentType)
            #expect(again.status == .ok)
            #expect(try again.json["created"] == false)
            #expect(try again.json["version"] == 1)
        }
    }

    @Test func registerJSONWithExtraTriggers() async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let body = try String(decoding: APIEncodingForTests.encode(["source": .string(Playbooks.zoning),
                "file": "zoning.yaml", "triggers": ["zoning.amended"]]), as: UTF8.self)
            let response = try await client.send(.post, "/v1/playbooks", token: Token.admin, json: body)
            #expect(response.status == .created)
            #expect(try response.json["triggers"] == ["zoning.requested", "zoning.amended"])
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "zoning.amended"}"#)
            #expect(try started.json["outcome"] == "applied")

            let broken = try String(decoding: APIEncodingForTests.encode(["source": .string(Playbooks.broken),
                "file": "broken.yaml"]), as: UTF8.self)
            let refused = try await client.send(.post, "/v1/playbooks", token: Token.admin, json: broken)
            #expect(refused.status == .unprocessableContent)
            #expect(try refused.json[path: "diagnostics.0.file"] == "broken.yaml")

            let empty = try await client.send(.post, "/v1/playbooks", token: Token.admin, json: #"{"source": "  "}"#)
            #expect(empty.status == .badRequest)
        }
    }

    @Test func listAndDetail() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc, Playbooks.zoning])
        try await world.test { client in
            let list = try await client.send(.get, "/v1/playbooks", token: Token.read)
            #expect(list.status == .ok)
            let playbooks = try #require(try list.json["playbooks"]?.arrayValue)
            #expect(playbooks.map { $0["playbook"] } == ["FTC-Complaint", "ZoningApproval"])
            #expect(playbooks.first?["steps"] == 5)
            #expect(playbooks.first?["description"] == .null)
            #expect(playbooks.first?["registered_at"]?.stringValue?.hasSuffix("Z") == true)

            let detail = try await client.send(.get, "/v1/playbooks/FTC-Complaint", token: Token.read)
            #expect(detail.status == .ok)
            let decoded = try detail.decode(API.PlaybookDetail.self)
            #expect(decoded.source == Playbooks.ftc)
            #expect(decoded.summary.triggers == ["ComplaintLogged"])
        }
    }

    @Test func agents() async throws {
        let inspector = Agent(id: "human.field_inspector", skills: ["noise-meter"],
            shift: Shift(startMinute: 0, endMinute: 1, timeZone: "UTC"), queue: "inspection.queue")
        let labeler = Agent(id: "ai.fraud-labeler", skills: ["fraud"])
        let world = try await TestWorld(agents: [inspector, labeler])
        try await world.test { client in
            let response = try await client.send(.get, "/v1/agents", token: Token.read)
            #expect(response.status == .ok)
            let agents = try #require(try response.json["agents"]?.arrayValue)
            #expect(agents.map { $0["id"] } == ["ai.fraud-labeler", "human.field_inspector"])
            #expect(agents[0] == ["id": "ai.fraud-labeler", "skills": ["fraud"], "shift": .null, "queue": .null,
                "routing_key": "task.ai.fraud-labeler", "delivery": "push", "on_shift": true])
            #expect(agents[1]["queue"] == "inspection.queue")
            #expect(agents[1]["routing_key"] == .null)
            #expect(agents[1]["shift"] == "0:00-0:01 UTC")
            #expect(agents[1]["on_shift"] == false)  // the clock of the fake is not at 00:00 UTC
        }
    }

    /// Bulk operations are requested with a filter (never over every run), by the caller, and can be stopped.
    @Test func bulkOperations() async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let created = try await client.send(.post, "/v1/bulk-operations", token: Token.operate,
                json: #"{"action": "cancel", "filter": {"playbook": "FTC-Complaint", "status": "running", "created_after": "2026-12-01T00:00:00Z"}, "reason": "duplicates", "rate_per_second": 50}"#)
            #expect(created.status == .accepted)
            let operation = try created.json
            #expect(operation["action"] == "cancel" && operation["state"] == "running" && operation["requested_by"] == "ops")
            #expect(operation[path: "filter.created_after"] == "2026-12-01T00:00:00.000Z")
            #expect(operation[path: "filter.key"] == .null && operation["rate_per_second"] == 50)
            #expect(operation[path: "progress.matched"] == 0)
            let id = try #require(operation["id"]?.intValue)

            for (body, field) in [
                (#"{"action": "cancel", "filter": {}}"#, "filter"),
                (#"{"action": "cancel"}"#, "filter"),
                (#"{"action": "explode", "filter": {"status": "running"}}"#, "action"),
                (#"{"action": "cancel", "filter": {"status": "sleeping"}}"#, "filter.status"),
                (#"{"action": "cancel", "filter": {"created_after": "yesterday"}}"#, "filter.created_after"),
                (#"{"action": "cancel", "filter": {"status": "running"}, "rate_per_second": 0}"#, "rate_per_second"),
            ] {
                let refused = try await client.send(.post, "/v1/bulk-operations", token: Token.operate, json: body)
                #expect(refused.status == .badRequest, "\(body)")
                let problem = try refused.json
                #expect(problem[path: "errors.0.field"] == .string(field), "\(body): \(problem)")
            }
            #expect(try await client.send(.post, "/v1/bulk-operations", token: Token.read, json: "{}").status == .forbidden)

            #expect(try await client.send(.get, "/v1/bulk-operations").json["bulk_operations"]?.arrayValue?.count == 1)
            let stopped = try await client.send(.post, "/v1/bulk-operations/\(id)/stop", token: Token.operate)
            #expect(stopped.status == .ok)
            #expect(try stopped.json["state"] == "stopped")
            #expect(try await client.send(.post, "/v1/bulk-operations/\(id)/stop", token: Token.operate).status == .conflict)
            #expect(try await client.send(.get, "/v1/bulk-operations?state=running").json["bulk_operations"]?.arrayValue?
                .isEmpty == true)
            #expect(try await client.send(.get, "/v1/bulk-operations/99").status == .notFound)
        }
    }

    @Test func searchParametersAreCheckedAndPagesCarryACursor() async throws {
        let world = try await TestWorld()
        try await world.test { client in
            #expect(try await client.send(.get, "/v1/runs?payload=%7B%22ward%22%3A1%7D").status == .ok)
            for bad in ["payload=nope", "payload=%5B1%5D", "payload=%7B%7D", "created_after=yesterday"] {
                let refused = try await client.send(.get, "/v1/runs?" + bad)
                #expect(refused.status == .badRequest, "\(bad)")
            }
            let tasks = try await client.send(.get, "/v1/tasks?sort=deadline").json
            #expect(tasks["next"] == .null && tasks["tasks"] == [])
            #expect(try await client.send(.get, "/v1/tasks?sort=priority").status == .badRequest)
        }
    }

    @Test func deadLetters() async throws {
        let world = try await TestWorld()
        world.plane.addDeadLetter(DeadLetter(id: 1, collectedAt: 1_000, exchange: "hms.events", routingKey: "a.b",
            queue: "hms-act.triggers", reason: "no registered playbook is triggered by a.b", messageID: "m-1",
            properties: ["content_type": "application/json"], body: Array(#"{"type": "a.b"}"#.utf8)))
        world.plane.addDeadLetter(DeadLetter(id: 2, collectedAt: 2_000, exchange: "hms.results", routingKey: "result.x",
            queue: nil, reason: "unreadable", messageID: nil, properties: [:], body: [0xFF, 0x00], status: .discarded,
            handledAt: 3_000, handledBy: "ops#1", note: "junk"))
        try await world.test { client in
            let waiting = try await client.send(.get, "/v1/dead-letters", token: Token.read).json
            #expect(waiting["dead_letters"]?.arrayValue?.map { $0["id"] } == [1])
            #expect(waiting[path: "dead_letters.0.body"] == ["type": "a.b"])
            #expect(waiting[path: "dead_letters.0.body_encoding"] == "json")
            let all = try await client.send(.get, "/v1/dead-letters?status=all&limit=1").json
            #expect(all["dead_letters"]?.arrayValue?.map { $0["id"] } == [2] && all["next"] == "2")
            let junk = try await client.send(.get, "/v1/dead-letters/2").json
            #expect(junk["body_encoding"] == "base64" && junk["body"] == "/wA=" && junk["handled_by"] == "ops#1")
            #expect(try await client.send(.get, "/v1/dead-letters/3").status == .notFound)
            #expect(try await client.send(.get, "/v1/dead-letters?status=x").status == .badRequest)
        }
    }

    @Test func incidents() async throws {
        let world = try await TestWorld()
        world.plane.addIncident(Incident(incidentID: 1, kind: "unroutable", runID: "wf_1", detail: ["key": "task.x"],
            createdAt: 1_000))
        world.plane.addIncident(Incident(incidentID: 2, kind: "poison", runID: nil, detail: .null, createdAt: 2_000))
        try await world.test { client in
            let response = try await client.send(.get, "/v1/incidents", token: Token.read)
            #expect(response.status == .ok)
            let incidents = try #require(try response.json["incidents"]?.arrayValue)
            #expect(incidents.map { $0["id"] } == [2, 1])
            #expect(incidents[0]["run_id"] == .null)
            #expect(incidents[1] == ["id": 1, "kind": "unroutable", "run_id": "wf_1", "detail": ["key": "task.x"],
                "created_at": "1970-01-01T00:00:01.000Z", "holds_run": false, "status": "open", "resolution": .null])
            let page = try await client.send(.get, "/v1/incidents?limit=1").json
            #expect(page["incidents"]?.arrayValue?.count == 1)
            #expect(page["next"] == "2")
            #expect(try await client.send(.get, "/v1/incidents?before=2").json["incidents"]?.arrayValue?.map { $0["id"] } == [1])
            #expect(try await client.send(.get, "/v1/incidents?run=wf_1").json["incidents"]?.arrayValue?.count == 1)
            #expect(try await client.send(.get, "/v1/incidents?status=bogus").status == .badRequest)

            // One that holds no run is resolved once, by the caller, with a reason.
            let retry = try await client.send(.post, "/v1/incidents/1/retry", token: Token.operate, json: "{}")
            #expect(retry.status == .conflict)
            #expect(try retry.json["detail"]?.stringValue?.contains("holds no run") == true)
            let resolve = try await client.send(.post, "/v1/incidents/1/resolve", token: Token.operate,
                json: #"{"reason": "queue bound"}"#)
            #expect(resolve.status == .ok)
            let one = try await client.send(.get, "/v1/incidents/1").json
            #expect(one["status"] == "resolved")
            #expect(one["resolution"]?["action"] == "resolve" && one["resolution"]?["reason"] == "queue bound")
            #expect(try await client.send(.post, "/v1/incidents/1/resolve", token: Token.operate, json: "{}").status
                == .conflict)
            #expect(try await client.send(.get, "/v1/incidents?status=resolved").json["incidents"]?.arrayValue?.count == 1)
            #expect(try await client.send(.get, "/v1/incidents/99").status == .notFound)
            #expect(try await client.send(.get, "/v1/incidents/x").status == .badRequest)
        }
    }
}

enum APIEncodingForTests {
    static func encode(_ value: JSONValue) throws -> [UInt8] {
        Array(try JSONEncoder().encode(value))
    }
}
