import ActHTTP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Incidents and rewinds against the real service, broker and database, driven over the HTTP API as an
/// operator would: a step that exhausts its retries holds its run until `retry` (with a patched input)
/// completes it; a failed compensation holds the run until `skip`; a finished run is rewound to a step and
/// only the steps from there run again. Every answer is in the incidents table and the run's audit chain,
/// with the caller's identity, and the chain still verifies.
@Suite struct IncidentOperationsTests {
    static let playbook = """
        id: Refund.v1
        trigger: refund.requested
        on_failure: incident
        steps:
          - id: charge
            service: billing.charge
            compensate:
              service: billing.refund
          - id: ship
            service: shipping.send
            retry: { max: 1, backoff: fixed, initial: 100ms }
            input:
              carrier: dhl
          - id: final
            service: notify.citizen
        """

    static let token = "ops-secret"

    /// What the workers do, by the trigger's `mode`: `retry` (ship fails until its input has a `note`),
    /// `comp` (final fails for good and so does the refund), anything else (everything completes).
    static func answer(_ task: TaskMessage) -> Answer {
        let mode = task.body["payload"]?["mode"]?.stringValue ?? ""
        switch (task.stepID, task.isCompensation) {
        case ("charge", false): return .complete(["charged": 75])
        case ("charge", true): return mode == "comp" ? .fail("bank offline", retryable: true) : .complete([:])
        case ("ship", _):
            if mode == "retry", task.body["input"]?["note"] == nil { return .fail("carrier down", retryable: true) }
            return .complete(["parcel": .string("p-\(task.attempt)")])
        case ("final", _): return mode == "comp" ? .fail("citizen unknown", retryable: false) : .complete([:])
        default: return .fail("unexpected task \(task.taskID)", retryable: false)
        }
    }

    static func call(_ method: String, _ url: String, _ json: String? = nil) async throws
        -> HTTPIntegrationTests.Response
    {
        try await HTTPIntegrationTests.request(method, url, token: token, json: json)
    }

    /// The one open incident of `run`, once there is one.
    static func openIncident(_ base: String, run: String, kind: String) async throws -> JSONValue {
        for _ in 0..<600 {
            let listed = try await call("GET", base + "/v1/incidents?run=\(run)")
            if let incident = listed.body["incidents"]?.arrayValue?.first(where: { $0["kind"]?.stringValue == kind }) {
                return incident
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no \(kind) incident opened for \(run)")
        throw CancellationError()
    }

    static func status(_ base: String, run: String) async throws -> String? {
        try await call("GET", base + "/v1/runs/\(run)").body["status"]?.stringValue
    }

    static func waitForStatus(_ base: String, run: String, _ expected: String) async throws {
        for _ in 0..<600 {
            if try await status(base, run: run) == expected { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("run \(run) never reached \(expected); it is \(try await status(base, run: run) ?? "gone")")
    }

    @Test func incidentsHoldTheRunUntilAnOperatorRetriesSkipsOrRewinds() async throws {
        try await SystemHarness.run(playbooks: [Self.playbook], replicas: 0, answer: Self.answer) { system in
            try await HTTPIntegrationTests.serving(system, tokens: ["ops#1:\(Self.token):operate+read"]) { base, runtime in
                // 1. ship fails twice (its retry included): an incident holds the run; nothing is compensated.
                let retried = System.runID(playbook: "Refund.v1", eventID: "r-1")
                try await system.emit("refund.requested", id: "r-1", payload: ["mode": "retry"])
                let incident = try await Self.openIncident(base, run: retried, kind: "step_failed")
                #expect(incident["holds_run"] == true && incident["status"] == "open")
                #expect(incident["detail"]?["step_id"] == "ship" && incident["detail"]?["attempt"] == 2)
                #expect(incident["detail"]?["reason"] == "carrier down")
                try await Self.waitForStatus(base, run: retried, "incident")
                try await system.governance.wait("incident.opened") { $0.contains { $0.routingKey == "incident.opened" } }
                #expect(system.tasks.all.filter(\.body.isCompensationTask).isEmpty)
                let id = incident.incidentID

                // Resolving is for incidents that hold no run; skip needs an output.
                #expect(try await Self.call("POST", base + "/v1/incidents/\(id)/resolve", "{}").status == 409)
                #expect(try await Self.call("POST", base + "/v1/incidents/\(id)/skip", "{}").status == 400)

                // Retry with a patched input: ship runs again with it and the run completes.
                let retry = try await Self.call("POST", base + "/v1/incidents/\(id)/retry",
                    #"{"input": {"note": "use the depot"}, "reason": "carrier back up"}"#)
                #expect(retry.status == 202 && retry.body["outcome"] == "applied", "\(retry.body)")
                #expect(try await system.waitForEnd(of: retried) == "run.completed")
                let patched = system.tasks.all.last { $0.body["task_id"]?.stringValue?.hasPrefix("\(retried)/ship/2") == true }
                #expect(patched?.body["input"] == ["carrier": "dhl", "note": "use the depot"])
                let answered = try await Self.call("GET", base + "/v1/incidents/\(id)").body
                #expect(answered["status"] == "resolved" && answered["resolution"]?["action"] == "retry")
                #expect(answered["resolution"]?["actor"] == "ops#1" && answered["resolution"]?["reason"] == "carrier back up")
                // A repeat is refused: the incident is resolved.
                #expect(try await Self.call("POST", base + "/v1/incidents/\(id)/retry", "{}").status == 409)

                // 2. final fails for good; the operator gives up; the refund fails: a second incident holds the
                // run; skip (refunded by hand) lets the run end failed.
                let failing = System.runID(playbook: "Refund.v1", eventID: "r-2")
                try await system.emit("refund.requested", id: "r-2", payload: ["mode": "comp"])
                let finalIncident = try await Self.openIncident(base, run: failing, kind: "step_failed")
                let giveUp = try await Self.call("POST", base + "/v1/incidents/\(finalIncident.incidentID)/fail",
                    #"{"reason": "citizen unknown"}"#)
                #expect(giveUp.status == 202, "\(giveUp.body)")
                let compensation = try await Self.openIncident(base, run: failing, kind: "compensation_failed")
                #expect(compensation["holds_run"] == true && compensation["detail"]?["step_id"] == "charge")
                try await Self.waitForStatus(base, run: failing, "incident")
                let skip = try await Self.call("POST", base + "/v1/incidents/\(compensation.incidentID)/skip",
                    #"{"output": null, "reason": "refunded at the counter"}"#)
                #expect(skip.status == 202, "\(skip.body)")
                try await Self.waitForStatus(base, run: failing, "failed")
                #expect(try await Self.call("GET", base + "/v1/incidents?run=\(failing)").body["incidents"]?.arrayValue?
                    .isEmpty == true)
                #expect(try await Self.call("GET", base + "/v1/incidents?run=\(failing)&status=resolved").body["incidents"]?
                    .arrayValue?.compactMap { $0["resolution"]?["action"]?.stringValue }.sorted() == ["fail", "skip"])

                // 3. Rewind a completed run to ship: charge is kept, ship and final run again.
                let done = System.runID(playbook: "Refund.v1", eventID: "r-3")
                try await system.emit("refund.requested", id: "r-3", payload: ["mode": "ok"])
                #expect(try await system.waitForEnd(of: done) == "run.completed")
                let refused = try await Self.call("POST", base + "/v1/runs/\(done)/rewind", #"{"step": "nope"}"#)
                #expect(refused.status == 409 && refused.body["detail"] == "playbook Refund.v1 has no step nope")
                let rewind = try await Self.call("POST", base + "/v1/runs/\(done)/rewind",
                    #"{"step": "ship", "reason": "parcel lost"}"#)
                #expect(rewind.status == 202 && rewind.body["outcome"] == "applied", "\(rewind.body)")
                try await system.governance.wait("the rewound run's second end") { messages in
                    messages.filter { $0.routingKey == "run.completed" && $0.body["run_id"]?.stringValue == done }.count == 2
                }
                let sent = system.tasks.all.compactMap { $0.body["task_id"]?.stringValue }.filter { $0.hasPrefix(done) }
                #expect(sent.map { String($0.dropFirst(done.count + 1)) }.sorted()
                    == ["charge/1", "final/1", "final/2", "ship/1", "ship/2"])
                #expect(try await Self.status(base, run: done) == "completed")
                #expect(try await Self.call("GET", base + "/v1/runs/\(done)").body["finished_at"] != .null)
                #expect(try await Self.call("POST", base + "/v1/runs/\(done)/rewind", #"{"step": "final"}"#).status == 202)
                try await system.governance.wait("the third end") { messages in
                    messages.filter { $0.routingKey == "run.completed" && $0.body["run_id"]?.stringValue == done }.count == 3
                }

                // The trail names the operator for each answer, and the chain verifies.
                let retriedTrail = try await runtime.store.auditTrail(runID: retried).map { ($0.entry.kind, $0.entry.actor) }
                #expect(retriedTrail.contains { $0 == ("incident.retry", "ops#1") })
                let rewoundTrail = try await runtime.store.auditTrail(runID: done).map { ($0.entry.kind, $0.entry.actor) }
                #expect(rewoundTrail.filter { $0 == ("run.rewound", "ops#1") }.count == 2)
                let report = try await runtime.store.verifyAudit(trusted: [try system.configuration.audit.signingKey().publicKey])
                #expect(report.findings.isEmpty, "\(report.findings)")
            }
        }
    }

    /// Under the default `on_failure: fail` a failed compensation does not stop the run: it is recorded as an
    /// incident that holds nothing, and resolved by an operator once the refund was made by hand.
    @Test func aFailedCompensationUnderFailIsRecordedAndResolved() async throws {
        let playbook = Self.playbook.replacingOccurrences(of: "on_failure: incident\n", with: "")
        try await SystemHarness.run(playbooks: [playbook], replicas: 0, answer: Self.answer) { system in
            try await HTTPIntegrationTests.serving(system, tokens: ["ops#1:\(Self.token):operate+read"]) { base, _ in
                let run = System.runID(playbook: "Refund.v1", eventID: "c-1")
                try await system.emit("refund.requested", id: "c-1", payload: ["mode": "comp"])
                #expect(try await system.waitForEnd(of: run) == "run.failed")
                let incident = try await Self.openIncident(base, run: run, kind: "compensation_failed")
                #expect(incident["holds_run"] == false && incident["detail"]?["reason"] == "bank offline")
                let id = incident.incidentID
                #expect(try await Self.call("POST", base + "/v1/incidents/\(id)/retry", "{}").status == 409)
                let resolved = try await Self.call("POST", base + "/v1/incidents/\(id)/resolve",
                    #"{"reason": "refunded by hand"}"#)
                #expect(resolved.status == 200 && resolved.body["action"] == "resolve")
                #expect(try await Self.call("GET", base + "/v1/incidents/\(id)").body["resolution"]?["actor"] == "ops#1")
            }
        }
    }
}

extension JSONValue {
    fileprivate var isCompensationTask: Bool { self["compensation"] == .bool(true) }
    fileprivate var incidentID: Int { self["id"]?.numberValue?.intValue ?? 0 }
    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
