import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 13: static tokens may be configured as the SHA-256 of their secret, so that reading the
/// configuration does not give a working token.
@Suite("hashed bearer tokens")
struct HashedTokenTests {
    /// `desk:sha256:…:operate` for the secret `d-secret` (`printf d-secret | sha256sum`).
    static let digest = "7d882bf5292de661a4e0ba987fcdb5782787d84891a142264a2fc89d8a83e6d2"
    static let tokens = Token.specifications + ["desk:sha256:\(digest):operate"]

    @Test func aHashedEntryAuthenticatesItsSecretAsItsPrincipal() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.zoning], tokens: Self.tokens)
        try await world.test { client in
            let started = try await client.send(.post, "/v1/events", token: "d-secret",
                json: #"{"type": "zoning.requested", "id": "z-1"}"#)
            #expect(started.status == .accepted)
            let runID = try #require(try started.json["runs"]?.arrayValue?.first?.stringValue)
            let pause = try await client.send(.post, "/v1/runs/\(runID)/pause", token: "d-secret")
            #expect(pause.status == .accepted)
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.timeline.contains { $0.kind == "run.paused" && $0.actor == "desk" })
        }
    }

    @Test func theStoredDigestIsNotAToken() async throws {
        let world = try await TestWorld(tokens: Self.tokens)
        try await world.test { client in
            for token in [Self.digest, "sha256:\(Self.digest)", Self.digest.uppercased()] {
                let response = try await client.send(.get, "/v1/runs", token: token)
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func clearAndHashedEntriesOfOneSecretAreTheSameToken() async throws {
        let world = try await TestWorld(tokens: ["a:d-secret:read", "b:sha256:\(Self.digest.uppercased()):read"])
        try await world.test { client in
            let response = try await client.send(.get, "/v1/runs", token: "d-secret")
            #expect(response.status == .ok)
        }
    }
}
