import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Finding runs by what their callers know, on the real broker and database: a signal on `hms.results` that
/// names a business key (the playbook's `key:`, else the trigger event's id) instead of a run id, and a run
/// found by its trace id (chapter 003's callbacks).
@Suite struct CorrelationTests {
    static let permits = """
        id: permit-documents
        trigger: permit.applied
        key: payload.application_id
        steps:
          - id: documents
            wait: signal
            until_signal: documents_received
          - id: review
            actor: HUMAN:clerk
        """

    static let payments = """
        id: payment-fix
        trigger: payment.bounced
        steps:
          - id: wait_for_fix
            wait: 5d
        """

    @Test func aSignalByBusinessKeyReachesOnlyTheRunsWithThatKey() async throws {
        try await SystemHarness.run(playbooks: [Self.permits, Self.payments]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("permit.applied", id: "e-1", payload: ["application_id": "A-1"])
            try await system.emit("permit.applied", id: "e-2", payload: ["application_id": "A-2"])
            try await system.emit("payment.bounced", id: "987", payload: ["id": 987])
            let first = System.runID(playbook: "permit-documents", eventID: "e-1")
            let second = System.runID(playbook: "permit-documents", eventID: "e-2")
            let payment = System.runID(playbook: "payment-fix", eventID: "987")
            for run in [first, second, payment] { try await system.waitUntilWaiting(run) }

            // By the playbook's key, then by the trigger event's id (a playbook without `key:`), as a number.
            try await system.reply(["signal": "documents_received", "key": "A-1", "payload": ["pages": 3]])
            try await system.reply(["signal": "wait_for_fix", "key": 987, "playbook": "payment-fix"])
            #expect(try await system.waitForEnd(of: payment) == "run.completed")
            try await system.tasks.wait("the review of A-1") { $0.contains { $0.body["run_id"] == .string(first) } }
            #expect(try await system.store.run(id: second).map { String(decoding: $0.state, as: UTF8.self) }?
                .contains("\"waiting\"") == true)
            #expect(!system.tasks.all.contains { $0.body["run_id"] == .string(second) })

            // A key nobody has is acknowledged and changes nothing; the store finds runs by trace id too.
            try await system.reply(["signal": "documents_received", "key": "A-404"])
            #expect(try await system.store.activeRunIDs(correlationKey: "A-2", playbook: nil) == [second])
            #expect(try await system.store.activeRunIDs(correlationKey: "A-2", playbook: "payment-fix").isEmpty)
            // Search by key, whatever the status.
            #expect(try await system.store.listRuns(status: nil, playbookID: nil, key: "A-1", after: nil, limit: 10).runs
                .map(\.runID) == [first])
            #expect(try await system.store.listRuns(status: "completed", playbookID: nil, key: "987", after: nil, limit: 10)
                .runs.map(\.runID) == [payment])
            let row = try #require(try await system.store.run(id: second))
            #expect(try await system.store.runID(traceID: row.traceID) == second)
        }
    }

}
