import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// `for_each:` over the real broker and database: a 1,000-item map with `max_concurrency: 20` never has more
/// than 20 item tasks open (checked from the tasks table's dispatch and answer instants, which the batch that
/// finishes one item and starts the next shares), keeps its results in item order, and tolerates failures.
@Suite(.serialized) struct ForEachMapTests {
    static let scan = """
        id: AttachmentScan.v1
        trigger: attachments.received
        steps:
          - id: scan
            agent: ai.scanner
            for_each: ${payload.files}
            max_concurrency: 20
            tolerated_failures: 1%
            input: {file: "${item}", n: "${index}"}
          - id: file
            agent: ai.filer
        """

    @Test func aThousandItemsNeverHaveMoreThanTwentyOpen() async throws {
        let files = (0..<1_000).map { JSONValue.string("f\($0).pdf") }
        try await SystemHarness.run(playbooks: [Self.scan]) { task in
            guard task.assignee == "ai.scanner" else { return .complete([:]) }
            let n = task.body["input"]?["n"]?.numberValue?.intValue ?? -1
            // Ten items fail for good: exactly the 1% tolerated.
            if n % 100 == 7 { return .fail("unreadable", retryable: false) }
            return .complete(["scanned": task.body["input"]?["file"] ?? .null])
        } _: { system in
            try await system.emit("attachments.received", id: "batch-1", payload: ["files": .array(files)])
            let run = System.runID(playbook: "AttachmentScan.v1", eventID: "batch-1")
            #expect(try await system.waitForEnd(of: run, timeout: .seconds(240)) == "run.completed")

            let items = try await system.store.tasks(ofRun: run).filter { $0.stepID == "scan" }
            #expect(items.count == 1_000)
            // The [dispatched, answered) intervals: the most open at any instant.
            let most = mostAtOnce(items.map { ($0.createdAt, $0.updatedAt) })
            #expect(most <= 20, "\(most) item tasks were open at once")
            #expect(most >= 10, "the map ran items one at a time (\(most) at most)")

            let row = try #require(try await system.store.run(id: run))
            let state = try JSONDecoder().decode(RunState.self, from: Data(row.state))
            let output = try #require(state.record("scan")?.output)
            guard case .array(let results)? = output["results"], case .array(let failed)? = output["failed"] else {
                Issue.record("unexpected output \(output)")
                return
            }
            #expect(results.count == 1_000 && failed.count == 10)
            #expect(results[0] == ["scanned": "f0.pdf"] && results[999] == ["scanned": "f999.pdf"])
            #expect(results[7] == .null && failed.first == ["index": 7, "error": "unreadable"])
        }
    }
}
