import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing
import Yams

@Suite("metrics, OpenAPI, timestamps")
struct OperationsRouteTests {
    @Test func metricsAreTextExposition() async throws {
        let world = try await TestWorld()
        world.metrics.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "hms_act", metricName: "test", unitName: "total", helpText: "test"),
            labels: [("kind", "x")]).increment(by: Int64(3))
        try await world.test { client in
            let response = try await client.send(.get, "/metrics", token: Token.read)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4")
            #expect(response.text.contains("# TYPE hms_act_test_total counter"))
            #expect(response.text.contains(#"hms_act_test_total{kind="x"} 3"#))
        }
    }

    /// The served document is the file in the repository, byte for byte: one source.
    @Test func openAPIDocumentIsServed() async throws {
        let world = try await TestWorld()
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/ActHTTP/Resources/openapi.yaml")
        let expected = try Data(contentsOf: file)
        try await world.test { client in
            let response = try await client.send(.get, "/openapi.yaml", token: Token.read)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/yaml")
            #expect(Data(response.body.readableBytesView) == expected)
        }
    }

    /// Every route of the contract is in the document, and the document has no route the router lacks.
    @Test func openAPIDocumentCoversEveryRoute() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/ActHTTP/Resources/openapi.yaml")
        let document = try #require(try Yams.load(yaml: String(contentsOf: file, encoding: .utf8)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let routed = Set(Route.all.map { "\($0.method.rawValue) \($0.path)" })
        #expect(documented == routed)
        for route in Route.all where route.scope == nil {
            let operation = paths[route.path]?[route.method.rawValue.lowercased()] as? [String: Any]
            #expect((operation?["security"] as? [Any])?.isEmpty == true, "\(route.path) is open")
        }
        let schemes = (document["components"] as? [String: Any])?["securitySchemes"] as? [String: Any]
        #expect(schemes?["bearer"] != nil)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_795_000_000_123, "2026-11-18T11:06:40.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ])
    func timestamps(milliseconds: Int64, text: String) {
        #expect(API.timestamp(milliseconds) == text)
    }
}
