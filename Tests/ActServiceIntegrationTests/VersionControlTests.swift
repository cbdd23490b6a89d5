import ActHTTP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Pinning, deprecating and disabling playbook versions against the real service, broker and database: an
/// operator's change over HTTP reaches the other replica within a second, and triggers start runs on the
/// version the controls choose.
@Suite struct VersionControlTests {
    static let token = "ops-secret"

    /// Waits until the other replica's catalog starts new runs of Permit on `version` (nil: on none).
    static func untilReplicaChooses(_ version: Int?, _ system: System) async throws {
        for _ in 0..<500 {
            if system.orchestrator.catalog.current["Permit"].map(Int.init) == version { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the replica never chose version \(version.map(String.init) ?? "none")")
    }

    /// Emits a trigger and returns the version its run started on.
    static func startedVersion(_ system: System, id: String) async throws -> Int64? {
        try await system.emit("permit.requested", id: id)
        let run = System.runID(playbook: "Permit", eventID: id)
        for _ in 0..<500 {
            if let row = try await system.store.run(id: run) { return row.versionID }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("run \(run) never started")
        return nil
    }

    @Test func triggersStartRunsOnTheVersionOperatorsChoose() async throws {
        try await SystemHarness.run(playbooks: [VersionMigrationTests.v1]) { _ in .ignore } _: { system in
            try await HTTPIntegrationTests.serving(system, tokens: ["ops#1:\(Self.token):admin"]) { base, _ in
                func call(_ method: String, _ path: String, _ json: String? = nil) async throws -> HTTPIntegrationTests.Response {
                    try await HTTPIntegrationTests.request(method, base + path, token: Self.token, json: json)
                }
                let v1 = try #require(try await call("GET", "/v1/playbooks/Permit").body["version"]?.numberValue?.intValue)
                let registered = try await call("POST", "/v1/playbooks",
                    #"{"source": \#(JSONValue.string(VersionMigrationTests.v2).compactText)}"#)
                let v2 = try #require(registered.body["version"]?.numberValue?.intValue)
                try await Self.untilReplicaChooses(v2, system)
                #expect(try await Self.startedVersion(system, id: "a") == Int64(v2))

                let disabled = try await call("POST", "/v1/playbooks/Permit/versions/\(v2)/state",
                    #"{"state": "disabled", "reason": "v2 drops intake"}"#)
                #expect(disabled.status == 200 && disabled.body["current"] == .int(v1), "\(disabled.body)")
                try await Self.untilReplicaChooses(v1, system)
                #expect(try await Self.startedVersion(system, id: "b") == Int64(v1))

                let pinDisabled = try await call("POST", "/v1/playbooks/Permit/pin", "{\"version\": \(v2)}")
                #expect(pinDisabled.status == 409, "\(pinDisabled.body)")
                #expect(try await call("POST", "/v1/playbooks/Permit/versions/\(v2)/state", #"{"state": "active"}"#).status == 200)
                try await Self.untilReplicaChooses(v2, system)
                #expect(try await call("POST", "/v1/playbooks/Permit/pin", "{\"version\": \(v1)}").status == 200)
                try await Self.untilReplicaChooses(v1, system)
                #expect(try await Self.startedVersion(system, id: "c") == Int64(v1))
                let disablePinned = try await call("POST", "/v1/playbooks/Permit/versions/\(v1)/state", #"{"state": "disabled"}"#)
                #expect(disablePinned.status == 409, "\(disablePinned.body)")

                // Every version disabled: an explicit start is refused with the reason; no replica chooses one.
                #expect(try await call("POST", "/v1/playbooks/Permit/pin", #"{"version": null}"#).status == 200)
                for version in [v1, v2] {
                    #expect(try await call("POST", "/v1/playbooks/Permit/versions/\(version)/state", #"{"state": "disabled"}"#).status == 200)
                }
                try await Self.untilReplicaChooses(nil, system)
                let refused = try await call("POST", "/v1/runs", #"{"playbook": "Permit", "id": "d"}"#)
                #expect(refused.status == 409)
                #expect(refused.body["detail"]?.stringValue?.contains("every version of Permit is disabled") == true)

                // Every change is on record with its actor.
                let versions = try await call("GET", "/v1/playbooks/Permit/versions")
                let changes = versions.body["changes"]?.arrayValue ?? []
                #expect(changes.count == 6 && changes.allSatisfy { $0["actor"] == "ops#1" }, "\(versions.body)")
                #expect(changes.last?["reason"] == "v2 drops intake")
                // Runs already on a disabled version go on: the three started are still there, not cancelled.
                for id in ["a", "b", "c"] {
                    let row = try await system.store.run(id: System.runID(playbook: "Permit", eventID: id))
                    #expect(row?.status == "running")
                }
            }
        }
    }
}
