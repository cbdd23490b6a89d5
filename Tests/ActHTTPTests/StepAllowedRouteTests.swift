import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 13: a step's `allowed:` over HTTP. The caller is the token's principal; one the step does not name
/// gets a 403 `not-allowed` problem that names who may, its attempt is in the run's timeline, and the gate
/// stays shut until someone it names answers.
@Suite("step allowed:")
struct StepAllowedRouteTests {
    static let zoning = Playbooks.zoning + "\n    allowed: [officer#*]\n"
    static let tokens = Token.specifications + ["officer#4:officer-secret:operate", "clerk#7:clerk-secret:operate"]

    @Test func onlyAnActorTheStepNamesAnswersAndApproves() async throws {
        let world = try await TestWorld(playbooks: [Self.zoning], tokens: Self.tokens)
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", json: #"{"type": "zoning.requested", "id": "z-1"}"#)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let task = pathSegment("\(runID)/zoningApproval/1")

            // The portal's result under the clerk's token, then an approval by the clerk: both refused.
            let result = try await client.send(.post, "/v1/tasks/\(task)/complete", token: "clerk-secret",
                json: #"{"output": {"permit": "P-9"}}"#)
            #expect(result.status == .forbidden)
            #expect(try result.json["type"] == "https://hms-act.dev/problems/not-allowed")
            #expect(try result.json["detail"]?.stringValue?.contains("clerk#7 may not answer step zoningApproval") == true)
            let done = try await client.send(.post, "/v1/tasks/\(task)/complete", token: "officer-secret",
                json: #"{"output": {"permit": "P-9"}}"#)
            #expect(try done.json["outcome"] == "applied")

            let forged = try await client.send(.post, "/v1/callbacks/\(runID)/zoningApproval", token: "clerk-secret",
                json: #"{"approved": true}"#)
            #expect(forged.status == .forbidden)
            #expect(try forged.json["detail"]?.stringValue?.contains("allowed: lists officer#*") == true)
            var detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.steps.first?.status == "awaiting_approval")
            #expect(detail.timeline.filter { $0.kind == "attempt.refused" && $0.actor == "clerk#7" }.count == 2)

            let approved = try await client.send(.post, "/v1/callbacks/\(runID)/zoningApproval", token: "officer-secret",
                json: #"{"approved": true, "reason": "zoning ok"}"#)
            #expect(approved.status == .accepted)
            detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "completed")
            #expect(detail.timeline.contains { $0.kind == "approval.given" && $0.actor == "officer#4" })
        }
    }
}
