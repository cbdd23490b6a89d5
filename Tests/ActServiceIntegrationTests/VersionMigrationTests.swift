import ActHTTP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Moving runs to a new playbook version against the real service, broker and database, as an operator
/// would over HTTP: the dry run counts the waiting runs that move and names each run at a step v2 removed;
/// the move is refused while any run would be stranded and nothing changes; once those runs passed that
/// step, every run moves (a bulk operation) and finishes under v2, running the step only v2 has.
@Suite struct VersionMigrationTests {
    static let v1 = """
        id: Permit
        trigger: permit.requested
        steps:
          - id: intake
            service: permits.intake
          - id: wait_for_docs
            wait: 5d
          - id: review
            service: permits.review
        """
    static let v2 = """
        id: Permit
        trigger: permit.requested
        steps:
          - id: wait_for_docs
            wait: 5d
          - id: check
            service: permits.check
          - id: notify
            service: permits.notify
        """
    static let token = "ops-secret"

    static func call(_ method: String, _ url: String, _ json: String? = nil) async throws -> HTTPIntegrationTests.Response {
        try await HTTPIntegrationTests.request(method, url, token: token, json: json)
    }

    @Test func waitingRunsMoveToV2AndRunsAtARemovedStepAreRefusedFirst() async throws {
        // Intake is answered for even-numbered permits only; the odd ones stay at intake.
        try await SystemHarness.run(playbooks: [Self.v1], replicas: 0) { task in
            if task.stepID == "intake", (task.body["payload"]?["n"]?.numberValue?.intValue ?? 0) % 2 == 1 { return .ignore }
            return .complete(["ok": true])
        } _: { system in
            try await HTTPIntegrationTests.serving(system, tokens: ["ops#1:\(Self.token):admin"]) { base, runtime in
                for n in 0..<6 { try await system.emit("permit.requested", id: "p-\(n)", payload: ["n": .int(Int64(n))]) }
                let runs = (0..<6).map { System.runID(playbook: "Permit", eventID: "p-\($0)") }
                func waitUntilWaiting(_ run: String) async throws {
                    for _ in 0..<500 {
                        if let row = try await runtime.store.run(id: run),
                            String(decoding: row.state, as: UTF8.self).contains("\"waiting\"")
                        {
                            return
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    Issue.record("run \(run) never reached its wait")
                }
                for n in [0, 2, 4] { try await waitUntilWaiting(runs[n]) }
                let v1 = try #require(try await Self.call("GET", base + "/v1/playbooks/Permit").body["version"]?
                    .numberValue?.intValue)
                let registered = try await HTTPIntegrationTests.request("POST", base + "/v1/playbooks", token: Self.token,
                    json: #"{"source": \#(JSONValue.string(Self.v2).compactText)}"#)
                #expect(registered.status == 201, "\(registered.body)")
                let v2 = try #require(registered.body["version"]?.numberValue?.intValue)
                let request = #"{"from_version": \#(v1), "to_version": \#(v2), "mapping": {"review": "check"}"#

                // The dry run: three move, three are at intake, which v2 removed.
                let dry = try await Self.call("POST", base + "/v1/playbook-migrations", request + "}")
                #expect(dry.status == 200, "\(dry.body)")
                #expect(dry.body["active"] == 6 && dry.body["movable"] == 3 && dry.body["refused_count"] == 3)
                let refusedRuns = Set((dry.body["refused"]?.arrayValue ?? []).compactMap { $0["run_id"]?.stringValue })
                #expect(refusedRuns == Set([1, 3, 5].map { runs[$0] }))
                #expect(dry.body["refused"]?.arrayValue?.first?["reason"]?.stringValue?.contains("is at step intake") == true)

                // The move is refused while any run would be stranded; nothing changed.
                let refused = try await Self.call("POST", base + "/v1/playbook-migrations", request + #", "dry_run": false}"#)
                #expect(refused.status == 409 && refused.body["refused_count"] == 3, "\(refused.body)")
                #expect(try await runtime.store.run(id: runs[0])?.versionID == Int64(v1))

                // The odd ones pass intake by hand; now every run moves, and finishes under v2.
                for n in [1, 3, 5] {
                    let answered = try await Self.call("POST", base + "/v1/tasks/\(PullTaskTests.path(runs[n] + "/intake/1"))/complete",
                        #"{"output": {"ok": true}}"#)
                    #expect(answered.status == 202, "\(answered.body)")
                    try await waitUntilWaiting(runs[n])
                }
                let moved = try await Self.call("POST", base + "/v1/playbook-migrations",
                    request + #", "dry_run": false, "reason": "intake moved to the portal"}"#)
                #expect(moved.status == 202 && moved.body["movable"] == 6, "\(moved.body)")
                let operation = try #require(moved.body["operation"]?["id"]?.numberValue?.intValue)
                for _ in 0..<200 {
                    if try await Self.call("GET", base + "/v1/bulk-operations/\(operation)").body["state"] == "done" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let done = try await Self.call("GET", base + "/v1/bulk-operations/\(operation)").body
                #expect(done["state"] == "done" && done["progress"]?["applied"] == 6, "\(done)")
                for run in runs {
                    #expect(try await runtime.store.run(id: run)?.versionID == Int64(v2))
                    let signalled = try await Self.call("POST", base + "/v1/runs/\(run)/signals/wait_for_docs", "{}")
                    #expect(signalled.status == 202)
                }
                for run in runs { #expect(try await system.waitForEnd(of: run) == "run.completed") }
                let steps = system.tasks.all.compactMap { $0.body["step_id"]?.stringValue }
                #expect(steps.filter { $0 == "notify" }.count == 6 && steps.filter { $0 == "review" }.isEmpty)
                let trail = try await runtime.store.auditTrail(runID: runs[0]).map(\.entry)
                #expect(trail.contains { $0.kind == "run.migrated" && $0.actor == "ops#1" })
            }
        }
    }
}

extension JSONValue {
    var compactText: String { String(decoding: canonicalEncoding, as: UTF8.self) }
}
