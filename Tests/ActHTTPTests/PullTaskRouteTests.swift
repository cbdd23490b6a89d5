import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Pull agents (`delivery: pull`): tasks claimed with a lease over HTTP, never published.
@Suite("pull tasks")
struct PullTaskRouteTests {
    static let labeler = Agent(id: "ai.fraud-labeler", delivery: .pull)

    static func claim(_ client: some TestClientProtocol, lease: Int = 30) async throws -> [JSONValue] {
        let response = try await client.send(.post, "/v1/tasks/claim", token: Token.operate,
            json: #"{"actor": "AI:fraud-labeler", "lease_seconds": \#(lease)}"#)
        #expect(response.status == .ok)
        return try response.json["tasks"]?.arrayValue ?? []
    }

    /// One claim holds the task; an expired lease makes it claimable again, and the first holder's answer is
    /// then refused (409) while the new holder's applies.
    @Test func aLeaseHoldsTheTaskUntilItExpiresAndAStaleHolderGets409() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc], agents: [Self.labeler])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let first = try #require(try await Self.claim(client).first)
            let taskID = "\(runID)/classify/1"
            #expect(first["task_id"] == .string(taskID) && first["attempt"] == 1 && first["claims"] == 1)
            #expect(first["type"] == "hms.task" && first["payload"]?["complaint_id"] == "C-1")
            let firstLease = try #require(first["lease_id"]?.stringValue)
            #expect(try await Self.claim(client).isEmpty, "a held task was claimed twice")

            let renewed = try await client.send(.post, "/v1/tasks/\(pathSegment(taskID))/heartbeat",
                token: Token.operate, json: #"{"lease_id": "\#(firstLease)", "lease_seconds": 30}"#)
            #expect(try renewed.status == .ok && renewed.json["lease_id"]?.stringValue == firstLease)

            world.plane.advance(milliseconds: 31_000)
            let second = try #require(try await Self.claim(client).first)
            let secondLease = try #require(second["lease_id"]?.stringValue)
            #expect(second["task_id"] == .string(taskID) && second["claims"] == 2 && secondLease != firstLease)

            let stale = try await client.send(.post, "/v1/tasks/\(pathSegment(taskID))/complete", token: Token.operate,
                json: #"{"output": {"severity": "High"}, "lease_id": "\#(firstLease)"}"#)
            #expect(stale.status == .conflict)
            #expect(try stale.json["type"]?.stringValue?.hasSuffix("lease-lost") == true)
            let staleBeat = try await client.send(.post, "/v1/tasks/\(pathSegment(taskID))/heartbeat",
                token: Token.operate, json: #"{"lease_id": "\#(firstLease)"}"#)
            #expect(staleBeat.status == .conflict)

            let done = try await client.send(.post, "/v1/tasks/\(pathSegment(taskID))/complete", token: Token.operate,
                json: #"{"output": {"severity": "Low"}, "lease_id": "\#(secondLease)"}"#)
            #expect(try done.status == .accepted && done.json["outcome"] == "applied")
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.steps.first?.output == ["severity": "Low"])
            #expect(detail.tasks.first?.target == "pull")

            let closed = try await client.send(.post, "/v1/tasks/\(pathSegment(taskID))/heartbeat",
                token: Token.operate, json: #"{"lease_id": "\#(secondLease)"}"#)
            #expect(try closed.status == .conflict && closed.json["type"]?.stringValue?.hasSuffix("task-closed") == true)
            #expect(try await Self.claim(client).isEmpty)
        }
    }

    /// A token bound to agents (`:agents=`) claims, heartbeats and answers only their tasks: another agent's
    /// worker token is refused (403) on each, whatever its scopes.
    @Test func aTokenBoundToAnotherAgentCannotClaimOrAnswerTheTask() async throws {
        let tokens = Token.specifications + ["labeler:l-secret:operate:agents=ai.fraud-labeler",
                                             "mailer:m-secret:operate+admin:agents=ai.mailer"]
        let world = try await TestWorld(playbooks: [Playbooks.ftc], agents: [Self.labeler], tokens: tokens)
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let taskPath = "/v1/tasks/\(pathSegment("\(runID)/classify/1"))"
            let claim = #"{"agent": "ai.fraud-labeler", "lease_seconds": 30}"#
            func refused(_ response: TestResponse) throws -> Bool {
                try response.status == .forbidden && response.json["type"]?.stringValue?.hasSuffix("agent-not-allowed") == true
            }
            #expect(try refused(try await client.send(.post, "/v1/tasks/claim", token: "m-secret", json: claim)))
            #expect(try refused(try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler", token: "m-secret")))

            let response = try await client.send(.post, "/v1/tasks/claim", token: "l-secret", json: claim)
            let claimed = try #require(try response.json["tasks"]?.arrayValue?.first)
            let lease = try #require(claimed["lease_id"]?.stringValue)
            #expect(try refused(try await client.send(.post, "\(taskPath)/heartbeat", token: "m-secret",
                json: #"{"lease_id": "\#(lease)"}"#)))
            #expect(try refused(try await client.send(.post, "\(taskPath)/complete", token: "m-secret",
                json: #"{"output": {"severity": "Forged"}, "lease_id": "\#(lease)"}"#)))
            #expect(try refused(try await client.send(.post, "\(taskPath)/fail", token: "m-secret",
                json: #"{"reason": "x", "lease_id": "\#(lease)"}"#)))

            let done = try await client.send(.post, "\(taskPath)/complete", token: "l-secret",
                json: #"{"output": {"severity": "Low"}, "lease_id": "\#(lease)"}"#)
            #expect(try done.status == .accepted && done.json["outcome"] == "applied")
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.steps.first?.output == ["severity": "Low"])
        }
    }

    @Test func aFailureUnderAStaleAttemptIsRefused() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc], agents: [Self.labeler])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let claimed = try #require(try await Self.claim(client).first)
            let lease = try #require(claimed["lease_id"]?.stringValue)
            let response = try await client.send(.post, "/v1/tasks/\(pathSegment("\(runID)/classify/1"))/fail",
                token: Token.operate, json: #"{"reason": "x", "attempt": 2, "lease_id": "\#(lease)"}"#)
            #expect(try response.status == .conflict && response.json["type"]?.stringValue?.hasSuffix("stale-attempt") == true)
        }
    }

    /// A task of an agent that is not a pull agent is published as before: a claim never returns it, and a
    /// lease names nothing.
    @Test func aPushAgentsTasksAreNotClaimable() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            #expect(try await Self.claim(client).isEmpty)
            let response = try await client.send(.post, "/v1/tasks/\(pathSegment("\(runID)/classify/1"))/complete",
                token: Token.operate, json: #"{"output": {}, "lease_id": "lease_x"}"#)
            #expect(try response.status == .conflict && response.json["type"]?.stringValue?.hasSuffix("lease-mismatch") == true)
        }
    }

    /// Chapter 001's worker as printed, for a pull agent: `GET /act/tasks?actor=` claims and answers a bare
    /// list whose `id`s carry the lease, so the bare-body completion is lease-checked.
    @Test func theChapterShapeClaimsAPullAgentsTasks() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc], agents: [Self.labeler])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let forReaders = try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler", token: Token.read)
            #expect(forReaders.status == .forbidden, "a read token claimed tasks")
            let listed = try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler&lease_seconds=5",
                token: Token.operate)
            let tasks = try #require(try listed.json.arrayValue)
            let task = try #require(tasks.first)
            #expect(tasks.count == 1 && task["run_id"] == .string(runID) && task["lease_id"]?.stringValue != nil)
            let id = try #require(task["id"]?.stringValue)
            let empty = try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler", token: Token.operate)
            #expect(try empty.json == [])

            world.plane.advance(milliseconds: 6_000)
            let again = try #require(try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler",
                token: Token.operate).json.arrayValue?.first)
            let lapsed = try await client.send(.post, "/act/tasks/\(id)/complete", token: Token.operate,
                json: #"{"severity": "High"}"#)
            #expect(lapsed.status == .conflict, "the first holder answered after its lease lapsed")
            let newID = try #require(again["id"]?.stringValue)
            let done = try await client.send(.post, "/act/tasks/\(newID)/complete", token: Token.operate,
                json: #"{"severity": "Low"}"#)
            #expect(try done.status == .accepted && done.json["outcome"] == "applied")
        }
    }

    @Test func anonymousRequestsActOnlyWhenTheDemoModeAllowsThem() async throws {
        let closed = try await TestWorld(playbooks: [Playbooks.ftc])
        try await closed.test { client in
            let refused = try await client.send(.get, "/v1/runs", token: nil)
            #expect(refused.status == .unauthorized)
        }
        let open = try await TestWorld(playbooks: [Playbooks.ftc], anonymous: true)
        try await open.test { client in
            let event = try await client.send(.post, "/act/events", token: nil,
                json: #"{"name": "ComplaintLogged", "payload": {"complaintId": "C-42"}}"#)
            #expect(event.status == .accepted)
            let runs = try await client.send(.get, "/v1/runs", token: nil)
            #expect(runs.status == .ok)
            let register = try await client.send(.post, "/v1/playbooks", token: nil, json: #"{"source": "id: x"}"#)
            #expect(register.status == .forbidden, "anonymous may not register playbooks")
            let wrong = try await client.send(.get, "/v1/runs", token: "wrong")
            #expect(wrong.status == .unauthorized, "a wrong token is still refused")
        }
    }

    @Test(arguments: [
        (#"{}"#, "agent"), (#"{"agent": "a", "actor": "AI:b"}"#, "agent"), (#"{"agent": "a", "max_tasks": 0}"#, "max_tasks"),
        (#"{"agent": "a", "lease_seconds": 0}"#, "lease_seconds"), (#"{"agent": "a", "wait_seconds": 31}"#, "wait_seconds"),
        (#"{"agent": "a\u0000"}"#, "agent"),
    ])
    func aClaimThatDoesNotReadIs400NamingTheField(body: String, field: String) async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let response = try await client.send(.post, "/v1/tasks/claim", token: Token.operate, json: body)
            #expect(response.status == .badRequest)
            let errors = try response.json["errors"]?.arrayValue
            #expect(errors?.first?["field"] == .string(field), "\(body)")
        }
    }

    @Test func claimingNeedsTheOperateScope() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let response = try await client.send(.post, "/v1/tasks/claim", token: Token.read, json: #"{"agent": "a"}"#)
            #expect(response.status == .forbidden)
        }
    }
}
