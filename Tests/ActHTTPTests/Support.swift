import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing

/// Tokens of the tests: one per scope.
enum Token {
    static let specifications = ["reader:r-secret:read", "ops:o-secret:operate", "root:a-secret:admin"]
    static let read = "r-secret"
    static let operate = "o-secret"
    static let admin = "a-secret"
}

/// One route of the contract, as the router and `openapi.yaml` must both have it.
struct Route: CustomTestStringConvertible, Sendable {
    var method: HTTPRequest.Method
    /// With OpenAPI-style parameters (`{id}`).
    var path: String
    /// `nil` for the open probes.
    var scope: String?

    var testDescription: String { "\(method) \(path)" }

    /// The path with sample values for its parameters.
    var samplePath: String {
        path.replacingOccurrences(of: "{id}", with: "wf_x").replacingOccurrences(of: "{name}", with: "fixed")
            .replacingOccurrences(of: "{run}", with: "wf_x").replacingOccurrences(of: "{step}", with: "review")
            .replacingOccurrences(of: "{playbook}", with: "Nightly").replacingOccurrences(of: "{schedule}", with: "sweep")
    }

    /// Every route of http-contract.md, aliases included.
    static let all: [Route] = [
        Route(method: .get, path: "/livez", scope: nil),
        Route(method: .get, path: "/healthz", scope: nil),
        Route(method: .get, path: "/readyz", scope: nil),
        Route(method: .get, path: "/metrics", scope: "read"),
        Route(method: .get, path: "/openapi.yaml", scope: "read"),
        Route(method: .post, path: "/v1/events", scope: "operate"),
        Route(method: .post, path: "/act/events", scope: "operate"),
        Route(method: .get, path: "/v1/runs", scope: "read"),
        Route(method: .post, path: "/v1/runs", scope: "operate"),
        Route(method: .get, path: "/v1/runs/{id}", scope: "read"),
        Route(method: .post, path: "/v1/runs/{id}/pause", scope: "operate"),
        Route(method: .post, path: "/v1/runs/{id}/resume", scope: "operate"),
        Route(method: .post, path: "/v1/runs/{id}/cancel", scope: "operate"),
        Route(method: .post, path: "/v1/runs/{id}/signals/{name}", scope: "operate"),
        Route(method: .post, path: "/v1/signals/{name}", scope: "operate"),
        Route(method: .get, path: "/v1/tasks", scope: "read"),
        Route(method: .get, path: "/act/tasks", scope: "read"),
        Route(method: .post, path: "/v1/tasks/claim", scope: "operate"),
        Route(method: .post, path: "/v1/tasks/{id}/heartbeat", scope: "operate"),
        Route(method: .post, path: "/v1/tasks/{id}/complete", scope: "operate"),
        Route(method: .post, path: "/act/tasks/{id}/complete", scope: "operate"),
        Route(method: .post, path: "/v1/tasks/{id}/fail", scope: "operate"),
        Route(method: .post, path: "/act/tasks/{id}/fail", scope: "operate"),
        Route(method: .post, path: "/v1/callbacks/{run}/{step}", scope: "operate"),
        Route(method: .post, path: "/callbacks/{run}/{step}", scope: "operate"),
        Route(method: .get, path: "/v1/playbooks", scope: "read"),
        Route(method: .post, path: "/v1/playbooks", scope: "admin"),
        Route(method: .get, path: "/v1/playbooks/{id}", scope: "read"),
        Route(method: .get, path: "/v1/playbooks/{id}/versions", scope: "read"),
        Route(method: .post, path: "/v1/playbooks/{id}/versions/{version}/state", scope: "admin"),
        Route(method: .post, path: "/v1/playbooks/{id}/pin", scope: "admin"),
        Route(method: .get, path: "/v1/agents", scope: "read"),
        Route(method: .get, path: "/v1/incidents", scope: "read"),
        Route(method: .get, path: "/v1/incidents/{id}", scope: "read"),
        Route(method: .post, path: "/v1/incidents/{id}/retry", scope: "operate"),
        Route(method: .post, path: "/v1/incidents/{id}/skip", scope: "operate"),
        Route(method: .post, path: "/v1/incidents/{id}/fail", scope: "operate"),
        Route(method: .post, path: "/v1/incidents/{id}/resolve", scope: "operate"),
        Route(method: .post, path: "/v1/runs/{id}/rewind", scope: "operate"),
        Route(method: .get, path: "/v1/dead-letters", scope: "read"),
        Route(method: .get, path: "/v1/dead-letters/{id}", scope: "read"),
        Route(method: .get, path: "/v1/bulk-operations", scope: "read"),
        Route(method: .post, path: "/v1/bulk-operations", scope: "operate"),
        Route(method: .get, path: "/v1/bulk-operations/{id}", scope: "read"),
        Route(method: .post, path: "/v1/bulk-operations/{id}/stop", scope: "operate"),
        Route(method: .post, path: "/v1/playbook-migrations", scope: "operate"),
        Route(method: .get, path: "/v1/schedules", scope: "read"),
        Route(method: .post, path: "/v1/schedules/{playbook}/{schedule}/pause", scope: "operate"),
        Route(method: .post, path: "/v1/schedules/{playbook}/{schedule}/resume", scope: "operate"),
        Route(method: .post, path: "/v1/schedules/{playbook}/{schedule}/trigger", scope: "operate"),
    ]

    static var protected: [Route] { all.filter { $0.scope != nil } }
}

/// Playbooks of the tests.
enum Playbooks {
    /// Chapter 001, as written.
    static let ftc = """
        id: FTC-Complaint
        start: ComplaintLogged          # event name
        steps:
          - id: classify
            actor: AI:fraud-labeler
            on_complete: severity_branch
          - id: severity_branch
            type: switch
            expr: "result.severity"
            cases:
              High: human_review
              Low: notify_citizen
          - id: human_review
            actor: HUMAN:investigator
            sla: 4h
            on_timeout: escalate
            on_complete: notify_citizen
          - id: escalate
            actor: HUMAN:supervisor
          - id: notify_citizen
            actor: SVC:email-svc
        """

    /// Chapter 003's approval step, with a trigger.
    static let zoning = """
        id: ZoningApproval
        trigger: zoning.requested
        steps:
          - id: zoningApproval
            service: zoningPortal.approve
            pause: true
        """

    /// A wait ended by a signal.
    static let payment = """
        id: PaymentFix
        trigger: payment_failed
        steps:
          - id: wait_for_fix
            wait_days: 5
            until_signal: bank_updated
          - id: close
            actor: SVC:helpdesk
        """

    /// A step that refers to a step that does not exist (line 6, column 18).
    static let broken = """
        id: Broken
        trigger: broken.happened
        steps:
          - id: first
            actor: AI:x
            on_complete: secnd
          - id: second
            actor: AI:y
        """
}

/// A test's world: the fake control plane, a metrics registry and the application over them.
struct TestWorld {
    let plane: InMemoryControlPlane
    let metrics: PrometheusCollectorRegistry
    let app: Application<RouterResponder<APIRequestContext>>

    init(playbooks: [String] = [], agents: [Agent] = [], tokens: [String] = Token.specifications,
        anonymous: Bool = false) async throws
    {
        plane = InMemoryControlPlane(agents: agents)
        for source in playbooks { _ = try await plane.registerPlaybook(source: source, file: nil, triggers: []) }
        metrics = PrometheusCollectorRegistry()
        let logger = Logger(label: "ActHTTPTests") { _ in SwiftLogNoOpLogHandler() }
        let router = buildRouter(controlPlane: plane, tokens: tokens, anonymous: anonymous, metrics: metrics, logger: logger)
        app = Application(router: router, logger: logger)
    }

    /// Runs `body` with a client sending requests straight to the router (no server).
    func test<Value: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    /// Sends a request with a bearer token and, when given, a body (JSON unless another type is given).
    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = Token.admin, json: String? = nil,
        body: [UInt8]? = nil, contentType: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse
    {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var bytes = body
        if let json { bytes = Array(json.utf8) }
        if bytes != nil { headers[.contentType] = contentType ?? "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
    }
}

extension TestResponse {
    /// The body as text.
    var text: String { String(decoding: body.readableBytesView, as: UTF8.self) }

    /// The body as JSON.
    var json: JSONValue {
        get throws { try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)) }
    }

    /// The body decoded as `type`.
    func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        try JSONDecoder().decode(type, from: Data(body.readableBytesView))
    }
}

extension JSONValue {
    /// Follows a dotted path (`steps.0.status`).
    subscript(path path: String) -> JSONValue? {
        value(at: path.split(separator: ".").map(String.init))
    }

    var intValue: Int? {
        numberValue?.intValue
    }

    var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// Percent-encodes a task id for a path segment.
func pathSegment(_ text: String) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove("/")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// Starts an FTC run with event `id` and returns its run id.
func startFTCRun(_ client: some TestClientProtocol, id: String = "evt-1") async throws -> String {
    let response = try await client.send(.post, "/act/events", token: Token.operate,
        json: #"{"name": "ComplaintLogged", "id": "\#(id)", "payload": {"complaint_id": "C-1"}}"#)
    #expect(response.status == .accepted)
    let runs = try response.json["runs"]?.arrayValue ?? []
    try #require(runs.count == 1)
    return try #require(runs[0].stringValue)
}
