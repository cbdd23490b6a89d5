import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import Foundation
import Testing

/// Numbers pass through the whole system exactly: event ids above 2^53 are distinct events, and payload
/// integers and decimals reach workers, the run's stored state and the audit chain with every digit.
@Suite struct ExactNumberIntegrationTests {
    static let playbook = """
        id: Exact.v1
        trigger: exact.numbers
        steps:
          - id: intake
            agent: ai.intake
          - id: review
            agent: human.reviewer
        """

    @Test func numericIDsAbove2To53StartTwoRunsAndPayloadDigitsReachWorkersAndTheStore() async throws {
        try await SystemHarness.run(playbooks: [Self.playbook]) { task in
            task.stepID == "intake" ? .complete(["score": task.body["payload"]?["big"] ?? .null]) : .complete([:])
        } _: { system in
            // Two plain-JSON triggers whose ids have the same `Double`.
            let payload = #"{"big": 12345678901234567890, "ratio": 0.1, "amount": 123456789.123456789}"#
            for id in ["9007199254740993", "9007199254740992"] {
                try await system.emitRaw("exact.numbers",
                    body: Array(#"{"type": "exact.numbers", "id": \#(id), "payload": \#(payload)}"#.utf8))
            }
            let runs = ["9007199254740993", "9007199254740992"].map { System.runID(playbook: "Exact.v1", eventID: $0) }
            #expect(runs[0] != runs[1])
            for run in runs { #expect(try await system.waitForEnd(of: run) == "run.completed") }

            // What the worker received (read exactly from the message bytes by the harness).
            let expected = try JSONValue(parsing: Array(payload.utf8))
            for run in runs {
                let tasks = system.tasks.all.filter { $0.body["run_id"]?.stringValue == run }
                #expect(tasks.count == 2)
                for task in tasks {
                    #expect(task.body["payload"] == expected)
                    #expect(task.body["payload"]?["big"]?.numberValue?.text == "12345678901234567890")
                    #expect(task.body["payload"]?["ratio"]?.numberValue?.text == "0.1")
                    #expect(task.body["payload"]?["amount"]?.numberValue?.text == "123456789.123456789")
                }
                // The intake's output, as the next step saw it in its context.
                let review = try #require(tasks.first { $0.body["step_id"] == "review" })
                #expect(review.body["context"]?["steps"]?["intake"]?["score"]?.numberValue?.text
                    == "12345678901234567890")
            }

            // The stored run: its row's state as PostgreSQL keeps it, and as the service decodes it.
            let store = system.store
            for (run, id) in zip(runs, ["9007199254740993", "9007199254740992"]) {
                let row = try #require(try await store.run(id: run))
                #expect(row.triggerEventID == id)
                let state = try JSONValue(parsing: row.state)
                #expect(state["payload"] == expected)
                let decoded = try JSONDecoder().decode(RunState.self, from: Data(row.state))
                #expect(decoded.payload == expected)
                let started = try #require(try await store.auditTrail(runID: run).first)
                #expect(started.entry.data["payload"] == expected)
            }
            let key = try system.configuration.audit.signingKey()
            let governance = system.configuration.amqp.exchanges.governance
            _ = try await store.writeCheckpoint(signingKey: key,
                now: Int64(Date().timeIntervalSince1970 * 1_000))
            { written in
                OutboxMessage(exchange: governance, routingKey: "audit.checkpoint", messageID: "audit.checkpoint:\(written.id)",
                    correlationID: nil, type: "audit.checkpoint", headers: [:], body: Array("{}".utf8), createdAt: 0)
            }
            let report = try await store.verifyAudit(trusted: [key.publicKey])
            #expect(report.isIntact, "\(report.findings)")
        }
    }
}
