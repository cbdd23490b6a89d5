import ActHTTP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// Pull agents (`delivery: pull`) against the real service, broker and database: tasks are claimed with a
/// lease over HTTP and never published; two pollers never get one task; an expired lease redelivers; a
/// stale holder's answer is refused with 409; nothing is unroutable and the outbox stays empty.
@Suite struct PullTaskTests {
    /// What the pollers took, shared between them.
    final class Claimed: Sendable {
        let items = Mutex<[JSONValue]>([])
    }

    static let labeler = Agent(id: "ai.fraud-labeler", delivery: .pull)
    static let token = "worker-secret"

    static func post(_ base: String, _ path: String, _ json: String) async throws -> HTTPIntegrationTests.Response {
        try await HTTPIntegrationTests.request("POST", base + path, token: token, json: json)
    }

    static func claim(_ base: String, max: Int = 1, lease: Double = 60, wait: Double = 0) async throws -> [JSONValue] {
        let response = try await post(base, "/v1/tasks/claim",
            #"{"actor": "AI:fraud-labeler", "max_tasks": \#(max), "lease_seconds": \#(lease), "wait_seconds": \#(wait)}"#)
        #expect(response.status == 200, "claim: \(response.body)")
        guard case .array(let tasks)? = response.body["tasks"] else { return [] }
        return tasks
    }

    static func path(_ taskID: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return taskID.addingPercentEncoding(withAllowedCharacters: allowed) ?? taskID
    }

    static func complete(_ base: String, _ task: JSONValue, lease: String? = nil) async throws -> Int {
        let taskID = task["task_id"]?.stringValue ?? ""
        let leaseID = lease ?? task["lease_id"]?.stringValue ?? ""
        return try await post(base, "/v1/tasks/\(path(taskID))/complete",
            #"{"output": {"severity": "Low"}, "lease_id": "\#(leaseID)"}"#).status
    }

    @Test func pollersClaimEachTaskOnceALapsedLeaseRedeliversAndNothingIsPublished() async throws {
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.ftc], replicas: 0) { _ in .complete([:]) } _: { system in
            try await HTTPIntegrationTests.serving(system, tokens: ["labeler:\(Self.token):operate+read"],
                agents: [Self.labeler]) { base, runtime in
                let clock = ContinuousClock()

                // A long poll: the claim waits for the event that arrives after it.
                async let waiting = Self.claim(base, wait: 20)
                try await Task.sleep(for: .milliseconds(300))
                try await system.emit("ComplaintLogged", id: "pull-0")
                let first = try await waiting
                #expect(first.count == 1 && first.first?["run_id"]?.stringValue
                    == System.runID(playbook: "FTC-Complaint", eventID: "pull-0"))

                // Eight more, taken by four pollers at once: each task exactly once.
                for index in 1...8 { try await system.emit("ComplaintLogged", id: "pull-\(index)") }
                let claimed = Claimed()
                try await withThrowingTaskGroup(of: Void.self) { pollers in
                    for _ in 0..<4 {
                        pollers.addTask {
                            let stop = clock.now + .seconds(30)
                            while claimed.items.withLock({ $0.count }) < 8, clock.now < stop {
                                let got = try await Self.claim(base, max: 2, wait: 1)
                                claimed.items.withLock { $0 += got }
                            }
                        }
                    }
                    try await pollers.waitForAll()
                }
                let ids = claimed.items.withLock { $0 }.compactMap { $0["task_id"]?.stringValue }
                #expect(ids.count == 8 && Set(ids).count == 8, "claimed: \(ids.sorted())")

                // The first task's lease lapses: it is claimed again, and its first holder is refused.
                let lapsing = try #require(first.first)
                let lapsingID = try #require(lapsing["task_id"]?.stringValue)
                let heartbeat = try await Self.post(base, "/v1/tasks/\(Self.path(lapsingID))/heartbeat",
                    #"{"lease_id": "\#(lapsing["lease_id"]?.stringValue ?? "")", "lease_seconds": 1}"#)
                #expect(heartbeat.status == 200, "\(heartbeat.body)")
                try await Task.sleep(for: .milliseconds(1_500))
                let again = try #require(try await Self.claim(base).first)
                #expect(again["task_id"]?.stringValue == lapsingID && again["claims"] == 2)
                #expect(try await Self.complete(base, again, lease: lapsing["lease_id"]?.stringValue) == 409)
                #expect(try await Self.complete(base, again) == 202)

                for task in claimed.items.withLock({ $0 }) { #expect(try await Self.complete(base, task) == 202) }
                for index in 0...8 {
                    let run = System.runID(playbook: "FTC-Complaint", eventID: "pull-\(index)")
                    #expect(try await system.waitForEnd(of: run) == "run.completed")
                }
                // Pulled tasks never went to the broker (the harness taps every task message), so nothing was
                // unroutable and nothing is left in the outbox.
                #expect(system.tasks.count("task.ai.fraud-labeler") == 0)
                #expect(system.tasks.all.filter { $0.body["assignee"] == "svc.email-svc" }.count == 9)
                #expect(try await runtime.store.openIncidents(limit: 100).isEmpty)
                let gauges = try await runtime.store.gauges()
                #expect(gauges.outboxPending == 0)
                #expect(try await Self.claim(base).isEmpty)
            }
        }
    }
}
