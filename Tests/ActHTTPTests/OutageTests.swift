import ActHTTP
import ActPlaybook
import HummingbirdTesting
import ActPostgres
import Foundation
import HTTPTypes
import Testing

/// What a client sees when PostgreSQL or RabbitMQ is down, or refuses a value: never a bare 500.
@Suite("outages and refused values")
struct OutageTests {
    static let event = #"{"type": "ComplaintLogged", "id": "evt-outage", "payload": {"complaint_id": "C-9"}}"#

    @Test("an unreachable or overloaded database is 503 with Retry-After", arguments: [
        PostgresError(code: .connectionFailed, reason: "connection refused"),
        PostgresError(code: .connectionClosed, reason: "server closed the connection"),
        PostgresError(code: .poolTimeout, reason: "no connection within 10 s"),
        PostgresError(code: .timedOut, reason: "no answer within 35 s"),
        PostgresError(code: .server, sqlState: "57P01"),
        PostgresError(code: .server, sqlState: "53300"),
        PostgresError(code: .server, sqlState: "57014"),
    ])
    func databaseOutageIs503(error: PostgresError) async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        world.plane.failSubmissions(with: error)
        try await world.test { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate, json: Self.event)
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "5")
            #expect(response.headers[.contentType] == "application/problem+json")
            let body = try response.json
            #expect(body["type"] == "https://hms-act.dev/problems/unavailable")
            #expect(body["detail"]?.stringValue?.contains("Retry-After") == true)
        }
        // The outage ends: the same request goes through.
        world.plane.failSubmissions(with: nil)
        try await world.test { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate, json: Self.event)
            #expect(response.status == .accepted)
        }
    }

    @Test func aValueTheDatabaseRefusesIs422WithWhatToFix() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        world.plane.failSubmissions(with: PostgresError(code: .server, sqlState: "22P05",
            serverMessage: "unsupported Unicode escape sequence"))
        try await world.test { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate, json: Self.event)
            #expect(response.status == .unprocessableContent)
            let body = try response.json
            #expect(body["type"] == "https://hms-act.dev/problems/unstorable-body")
            #expect(body["detail"]?.stringValue?.contains("U+0000") == true)
        }
    }

    @Test func aBugInOurOwnSQLIsStill500() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        world.plane.failSubmissions(with: PostgresError(code: .server, sqlState: "42P01"))
        try await world.test { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate, json: Self.event)
            #expect(response.status == .internalServerError)
        }
    }
}
