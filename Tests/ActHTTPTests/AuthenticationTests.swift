import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Bearer tokens and scopes")
struct AuthenticationTests {
    @Test("every route but the probes needs a token", arguments: Route.protected)
    func protectedRouteWithoutTokenIs401(route: Route) async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let response = try await client.send(route.method, route.samplePath, token: nil)
            #expect(response.status == .unauthorized)
            #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(try response.json["type"] == "https://hms-act.dev/problems/unauthorized")
            #expect(try response.json["status"] == 401)
        }
    }

    @Test func wrongTokenIs401WithInvalidToken() async throws {
        let world = try await TestWorld()
        try await world.test { client in
            for token in ["nope", "r-secre", "r-secrett", ""] {
                let response = try await client.send(.get, "/v1/runs", token: token)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.contains("invalid_token") == true)
            }
            let basic = try await client.execute(uri: "/v1/runs", method: .get,
                headers: [.authorization: "Basic cjpyLXNlY3JldA=="])
            #expect(basic.status == .unauthorized)
        }
    }

    @Test func probesNeedNoToken() async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let live = try await client.send(.get, "/livez", token: nil)
            #expect(live.status == .ok)
            #expect(try live.json == ["status": "ok"])
            let ready = try await client.send(.get, "/readyz", token: nil)
            #expect(ready.status == .ok)
            #expect(try ready.json == ["postgres": true, "amqp": true, "retrying": []])
        }
        world.plane.setReadiness(API.Readiness(postgres: true, amqp: false))
        try await world.test { client in
            let ready = try await client.send(.get, "/readyz", token: nil)
            #expect(ready.status == .serviceUnavailable)
            #expect(try ready.json == ["postgres": true, "amqp": false, "retrying": []])
        }
        // Both servers answer, but a consumer cannot commit its batch: the replica makes no progress.
        world.plane.setReadiness(API.Readiness(postgres: true, amqp: true, retrying: ["hms-act.triggers"]))
        try await world.test { client in
            let ready = try await client.send(.get, "/readyz", token: nil)
            #expect(ready.status == .serviceUnavailable)
            #expect(try ready.json == ["postgres": true, "amqp": true, "retrying": ["hms-act.triggers"]])
        }
    }

    @Test("a token without the scope is 403", arguments: Route.protected)
    func missingScopeIs403(route: Route) async throws {
        let world = try await TestWorld()
        try await world.test { client in
            let weaker: String? =
                switch route.scope {
                case "operate": Token.read
                case "admin": Token.operate
                default: nil
                }
            guard let weaker else { return }
            let response = try await client.send(route.method, route.samplePath, token: weaker, json: "{}")
            #expect(response.status == .forbidden)
            #expect(try response.json["type"] == "https://hms-act.dev/problems/insufficient-scope")
            #expect(try response.json["required_scope"] == .string(route.scope ?? ""))
        }
    }

    @Test func broaderScopesImplyNarrowerOnes() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            for token in [Token.read, Token.operate, Token.admin] {
                let response = try await client.send(.get, "/v1/runs", token: token)
                #expect(response.status == .ok)
            }
            let event = #"{"name": "ComplaintLogged", "id": "e1", "payload": {}}"#
            let response = try await client.send(.post, "/v1/events", token: Token.admin, json: event)
            #expect(response.status == .accepted)
        }
    }

    @Test func actorDefaultsToTheTokenName() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            try await client.send(.post, "/v1/runs/\(runID)/pause", token: Token.operate)
            let detail = try await client.send(.get, "/v1/runs/\(runID)", token: Token.read).json
            let pause = detail["timeline"]?.arrayValue?.first { $0["kind"] == "run.paused" }
            #expect(pause?["actor"] == "ops")
        }
    }
}
