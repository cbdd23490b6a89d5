import ActHTTP
import ActPlaybook
import ActStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Pinning, deprecating and disabling playbook versions over the API: which version new runs start on, and
/// the changes the rules refuse.
@Suite("playbook versions")
struct PlaybookVersionRouteTests {
    /// Version 2 of chapter 003's zoning playbook: one more step.
    static let zoningV2 = Playbooks.zoning + """

          - id: notify
            service: zoningPortal.notify
        """

    /// A world with versions 1 and 2 of ZoningApproval.
    static func world() async throws -> TestWorld {
        let world = try await TestWorld(playbooks: [Playbooks.zoning])
        _ = try await world.plane.registerPlaybook(source: zoningV2, file: nil, triggers: [])
        return world
    }

    /// Starts a run with event id `id` and returns the version it started on.
    static func startedVersion(_ client: any TestClientProtocol, id: String) async throws -> JSONValue? {
        let started = try await client.send(.post, "/v1/runs", token: Token.operate,
            json: #"{"playbook": "ZoningApproval", "id": "\#(id)"}"#)
        #expect(started.status == .accepted, "\(started.text)")
        let run = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
        return try await client.send(.get, "/v1/runs/\(run)", token: Token.read).json["playbook_version"]
    }

    @Test func newRunsFollowPinsAndStates() async throws {
        let world = try await Self.world()
        try await world.test { client in
            let listed = try await client.send(.get, "/v1/playbooks/ZoningApproval/versions", token: Token.read)
            #expect(listed.status == .ok)
            #expect(try listed.json["current"] == 2 && listed.json["pinned"] == .null)
            #expect(try listed.json[path: "versions.0.version"] == 2 && listed.json[path: "versions.0.current"] == true)
            #expect(try await Self.startedVersion(client, id: "a") == 2)

            // Deprecated: the older active version takes over.
            let deprecated = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/2/state",
                token: Token.admin, json: #"{"state": "deprecated", "reason": "wrong letter"}"#)
            #expect(deprecated.status == .ok, "\(deprecated.text)")
            #expect(try deprecated.json["current"] == 1)
            #expect(try deprecated.json[path: "versions.0.state"] == "deprecated")
            #expect(try deprecated.json[path: "versions.0.changed_by"] == "root")
            #expect(try deprecated.json[path: "changes.0.action"] == "deprecated")
            #expect(try deprecated.json[path: "changes.0.reason"] == "wrong letter")
            #expect(try await Self.startedVersion(client, id: "b") == 1)

            // Pinned, a deprecated version is used again.
            let pinned = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.admin,
                json: #"{"version": 2}"#)
            #expect(try pinned.status == .ok && pinned.json["pinned"] == 2 && pinned.json["current"] == 2)
            #expect(try await Self.startedVersion(client, id: "c") == 2)

            // The pinned version cannot be disabled; a disabled one cannot be pinned.
            let disablePinned = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/2/state",
                token: Token.admin, json: #"{"state": "disabled"}"#)
            #expect(disablePinned.status == .conflict)
            #expect(try disablePinned.json["detail"]?.stringValue?.contains("is pinned") == true)
            _ = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/1/state", token: Token.admin,
                json: #"{"state": "disabled"}"#)
            let pinDisabled = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.admin,
                json: #"{"version": 1}"#)
            #expect(pinDisabled.status == .conflict)
            #expect(try pinDisabled.json["detail"]?.stringValue?.contains("is disabled") == true)

            // Unpinned with both versions out of favour: the deprecated one, never the disabled one.
            let unpinned = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.admin,
                json: #"{"version": null, "reason": "v2 fixed"}"#)
            #expect(try unpinned.status == .ok && unpinned.json["pinned"] == .null && unpinned.json["current"] == 2)

            // Every version disabled: starting one is refused with the reason, and a trigger starts nothing.
            _ = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/2/state", token: Token.admin,
                json: #"{"state": "disabled"}"#)
            let refused = try await client.send(.post, "/v1/runs", token: Token.operate,
                json: #"{"playbook": "ZoningApproval", "id": "d"}"#)
            #expect(refused.status == .conflict)
            #expect(try refused.json["detail"]?.stringValue?.contains("every version of ZoningApproval is disabled") == true)
            let triggered = try await client.send(.post, "/v1/events", token: Token.operate,
                json: #"{"type": "zoning.requested", "id": "e"}"#)
            #expect(try triggered.json["outcome"] == "ignored")
            #expect(try triggered.json["reason"]?.stringValue?.contains("is disabled") == true)

            // Enabled again, the newest active version is current.
            let enabled = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/2/state",
                token: Token.admin, json: #"{"state": "active"}"#)
            #expect(try enabled.json["current"] == 2)
        }
    }

    @Test func badRequestsSayWhatIsWrong() async throws {
        let world = try await Self.world()
        try await world.test { client in
            let unknownPlaybook = try await client.send(.get, "/v1/playbooks/Nope/versions", token: Token.read)
            #expect(unknownPlaybook.status == .notFound)
            let unknownVersion = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/9/state",
                token: Token.admin, json: #"{"state": "disabled"}"#)
            #expect(unknownVersion.status == .notFound)
            #expect(try unknownVersion.json["detail"]?.stringValue?.contains("its versions: 1, 2") == true)
            let badState = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/2/state",
                token: Token.admin, json: #"{"state": "retired"}"#)
            #expect(badState.status == .badRequest)
            #expect(try badState.json["detail"]?.stringValue?.contains("active, deprecated or disabled") == true)
            let badVersion = try await client.send(.post, "/v1/playbooks/ZoningApproval/versions/two/state",
                token: Token.admin, json: #"{"state": "active"}"#)
            #expect(badVersion.status == .badRequest)
            let noVersion = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.admin,
                json: #"{}"#)
            #expect(noVersion.status == .badRequest, "an empty body never unpins")
            let operateOnly = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.operate,
                json: #"{"version": 1}"#)
            #expect(operateOnly.status == .forbidden)
            let otherActor = try await client.send(.post, "/v1/playbooks/ZoningApproval/pin", token: Token.admin,
                json: #"{"version": 1, "actor": "someone.else"}"#)
            #expect(otherActor.status == .forbidden)
        }
    }
}
