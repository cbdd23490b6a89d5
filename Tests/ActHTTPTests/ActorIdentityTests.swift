import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 13: who did something is the authenticated principal, never a name in the body. Each test sends
/// the attack (an `operate` token whose body names someone else) and checks that it is refused with a
/// 403 `actor-mismatch` problem and that nothing changed.
@Suite("actor identity")
struct ActorIdentityTests {
    @Test func anApprovalNamingAnotherActorIsRefusedAndTheGateStaysClosed() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.zoning])
        try await world.test { client in
            let runID = try await awaitingZoningApproval(client)

            let forged = try await client.send(.post, "/v1/callbacks/\(runID)/zoningApproval", token: Token.operate,
                json: #"{"approved": true, "actor": "officer#4", "reason": "ok"}"#)
            #expect(forged.status == .forbidden)
            #expect(try forged.json["type"] == "https://hms-act.dev/problems/actor-mismatch")
            #expect(try forged.json["principal"] == "ops")
            #expect(try forged.json["claimed"] == "officer#4")
            #expect(try forged.json["errors"]?.arrayValue?.first?["field"] == "actor")

            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "running")
            #expect(detail.steps.first?.status == "awaiting_approval")
            #expect(!detail.timeline.contains { $0.kind == "approval.given" })
        }
    }

    @Test func anApprovalIsRecordedUnderTheTokensPrincipal() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.zoning])
        try await world.test { client in
            let runID = try await awaitingZoningApproval(client)
            // Naming oneself is allowed: it says nothing the token does not.
            let approved = try await client.send(.post, "/v1/callbacks/\(runID)/zoningApproval", token: Token.operate,
                json: #"{"approved": true, "actor": "ops", "reason": "ok"}"#)
            #expect(approved.status == .accepted)
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "completed")
            #expect(detail.timeline.contains { $0.kind == "approval.given" && $0.actor == "ops" })
        }
    }

    @Test(arguments: ["complete", "fail"])
    func aTaskResultNamingAnotherAgentIsRefusedAndTheTaskStaysOpen(verb: String) async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let task = pathSegment("\(runID)/classify/1")
            let body =
                verb == "complete"
                ? #"{"output": {"severity": "Low"}, "agent": "inspector#3"}"#
                : #"{"reason": "no", "retryable": false, "agent": "inspector#3"}"#
            let forged = try await client.send(.post, "/v1/tasks/\(task)/\(verb)", token: Token.operate, json: body)
            #expect(forged.status == .forbidden)
            #expect(try forged.json["type"] == "https://hms-act.dev/problems/actor-mismatch")
            #expect(try forged.json["errors"]?.arrayValue?.first?["field"] == "agent")

            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "running")
            #expect(detail.steps.first?.status != "completed" && detail.steps.first?.status != "failed")
            #expect(!detail.timeline.contains { $0.actor == "inspector#3" })
        }
    }

    @Test func aTaskResultIsRecordedUnderTheTokensPrincipal() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let task = pathSegment("\(runID)/classify/1")
            let done = try await client.send(.post, "/v1/tasks/\(task)/complete", token: Token.operate,
                json: #"{"output": {"severity": "Low"}}"#)
            #expect(done.status == .accepted)
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.timeline.contains { $0.kind == "task.completed" && $0.actor == "ops" })
        }
    }

    @Test(arguments: ["pause", "resume", "cancel"])
    func aRunCommandNamingAnotherActorIsRefused(command: String) async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let forged = try await client.send(.post, "/v1/runs/\(runID)/\(command)", token: Token.operate,
                json: #"{"reason": "duplicate complaint", "actor": "clerk#7"}"#)
            #expect(forged.status == .forbidden)
            #expect(try forged.json["type"] == "https://hms-act.dev/problems/actor-mismatch")
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "running")
            #expect(!detail.timeline.contains { $0.actor == "clerk#7" })
        }
    }

    /// Starts a zoning run and completes its task, so that its step waits for approval.
    private func awaitingZoningApproval(_ client: some TestClientProtocol) async throws -> String {
        let started = try await client.send(.post, "/v1/events", json: #"{"type": "zoning.requested", "id": "z-1"}"#)
        let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
        let task = pathSegment("\(runID)/zoningApproval/1")
        let done = try await client.send(.post, "/v1/tasks/\(task)/complete", json: #"{"permit": "P-9"}"#)
        #expect(try done.json["outcome"] == "applied")
        let awaiting = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
        try #require(awaiting.steps.first?.status == "awaiting_approval")
        return runID
    }
}
