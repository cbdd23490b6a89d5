import ActHTTP
import ActPlaybook
import ActService
import ActTesting
import Foundation
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real composition root (`buildApplication`) on port 0 against the real servers: auth, problem+json and
/// an event driven through the API to a finished run.
@Suite struct HTTPIntegrationTests {
    struct Response {
        var status: Int
        var body: JSONValue
        var contentType: String
    }

    static func request(_ method: String, _ url: String, token: String?, json: String? = nil) async throws -> Response {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return Response(status: http.statusCode, body: (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .null,
            contentType: http.value(forHTTPHeaderField: "Content-Type") ?? "")
    }

    @Test func theAPIRequiresATokenAnswersProblemsAndDrivesARun() async throws {
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.noise], replicas: 0) { _ in .complete([:]) } _: { system in
            try await Self.serving(system, tokens: ["ops:s3cret:admin", "viewer:look:read"]) { base, _ in

                #expect(try await Self.request("GET", base + "/livez", token: nil).status == 200)
                let unauthorized = try await Self.request("GET", base + "/v1/runs", token: nil)
                #expect(unauthorized.status == 401)
                #expect(unauthorized.contentType.hasPrefix("application/problem+json"))
                #expect(try await Self.request("POST", base + "/v1/events", token: "look", json: "{}").status == 403)
                let bad = try await Self.request("POST", base + "/v1/events", token: "s3cret", json: "{not json")
                #expect(bad.status == 400)
                #expect(bad.body["title"] != nil && bad.body["detail"] != nil)

                let accepted = try await Self.request("POST", base + "/v1/events", token: "s3cret",
                    json: #"{"type": "noise.complaint.filed", "id": "http-1", "payload": {"address": "123 Oak St"}}"#)
                #expect(accepted.status == 202)
                let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "http-1")
                #expect(accepted.body["runs"] == [.string(run)])
                #expect(try await system.waitForEnd(of: run) == "run.completed")
                let detail = try await Self.request("GET", base + "/v1/runs/\(run)", token: "look")
                #expect(detail.body["status"] == "completed")
                #expect(detail.body["steps"].map { if case .array(let steps) = $0 { steps.count } else { 0 } } == 3)
                let missing = try await Self.request("GET", base + "/v1/runs/wf_nope", token: "look")
                #expect(missing.status == 404)
            }
        }
    }

    /// `buildApplication` (the service and its HTTP API) on a free loopback port against the system's servers:
    /// runs `body` with the base URL and the runtime, then shuts the service down gracefully.
    static func serving(_ system: System, tokens: [String], agents: [Agent] = [],
        _ body: (_ base: String, _ runtime: ServiceRuntime) async throws -> Void) async throws
    {
        var configuration = system.configuration
        configuration.http.host = "127.0.0.1"
        configuration.http.port = 0
        configuration.http.tokens = tokens
        let port = Mutex<Int?>(nil)
        let (application, runtime) = try await buildApplication(configuration: configuration, agents: agents,
            playbooksDirectory: system.playbooksDirectory, metrics: PrometheusCollectorRegistry(),
            logger: TestEnvironment.logger("test.http"), onServerRunning: { bound in port.withLock { $0 = bound } })
        let group = ServiceGroup(configuration: .init(services: [.init(service: application)],
            logger: TestEnvironment.logger("test.http")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(30)
            while port.withLock({ $0 }) == nil, clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            try await body("http://127.0.0.1:\(try #require(port.withLock { $0 }))", runtime)
            await group.triggerGracefulShutdown()
            // The HTTP server ends its run with CancellationError once shut down; that is the expected end.
            do { try await tasks.waitForAll() } catch is CancellationError {}
        }
    }
}
