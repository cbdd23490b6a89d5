import ActAMQP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Bulk operations against the real service, broker and database: a bulk cancel of 10,000 running runs
/// finishes although the replica working on it stops mid-way. Another takes the operation over once its
/// lease lapses and goes on from the recorded position: every run is cancelled exactly once, and the counts
/// add up.
@Suite struct BulkOperationTests {
    static let playbook = """
        id: Bulk.v1
        trigger: bulk.requested
        steps:
          - id: review
            agent: human.reviewer
        """

    @Test func aBulkCancelOfTenThousandRunsFinishesAfterTheReplicaWorkingOnItStops() async throws {
        let count = 10_000
        try await SystemHarness.run(playbooks: [Self.playbook], configure: { $0.engine.bulkOperator = false }) { _ in
            .ignore
        } _: { system in
            let amqp = system.configuration.amqp
            try await system.emitWhenBound("bulk.requested", id: "bulk-0")
            for start in stride(from: 1, to: count, by: 500) {
                let messages = (start..<min(count, start + 500)).map { index in
                    AMQPMessage(body: (["type": "bulk.requested", "id": .string("bulk-\(index)"), "payload": ["n": .int(index)]]
                        as JSONValue).canonicalEncoding, exchange: amqp.exchanges.events, routingKey: "bulk.requested",
                        properties: AMQPProperties(contentType: "application/json"))
                }
                let outcomes = try await system.worker.publish(messages)
                #expect(outcomes.allSatisfy { $0 == .confirmed })
            }
            let store = system.store
            for _ in 0..<1_200 {
                if try await store.gauges().runsByStatus["running"] ?? 0 >= count { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await store.gauges().runsByStatus["running"] == count)

            let operation = try await store.createBulkOperation(BulkOperation(action: .cancel,
                filter: BulkOperation.Filter(playbook: "Bulk.v1", status: "running"), reason: "duplicate campaign",
                requestedBy: "ops#1", ratePerSecond: 5_000))
            let runtime = try #require(system.runtimes.first)
            let logger = TestEnvironment.logger("test.bulk")
            let first = BulkOperator(orchestrator: runtime.orchestrator, store: store, owner: "replica-a",
                lease: .seconds(2), logger: logger)
            for _ in 0..<6 { #expect(try await first.step()) }
            // replica-a stops here, holding the lease: nobody else may work on the operation until it lapses.
            let halfway = try #require(try await store.bulkOperation(id: operation.id))
            #expect(halfway.state == .running && halfway.matched == 3_000 && halfway.applied == 3_000)
            let second = BulkOperator(orchestrator: runtime.orchestrator, store: store, owner: "replica-b",
                lease: .seconds(2), logger: logger)
            #expect(try await second.step() == false)
            try await Task.sleep(for: .milliseconds(2_200))
            for _ in 0..<40 {
                guard try await store.bulkOperation(id: operation.id)?.state == .running else { break }
                #expect(try await second.step())
            }
            let finished = try #require(try await store.bulkOperation(id: operation.id))
            #expect(finished.state == .done && finished.finishedAt != nil)
            #expect(finished.matched == Int64(count) && finished.applied == Int64(count))
            #expect(finished.ignored == 0 && finished.refused == 0)
            for _ in 0..<600 {
                if try await store.runCountsByStatus()["cancelled"] ?? 0 >= count { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let statuses = try await store.runCountsByStatus()
            #expect(statuses["cancelled"] == count && statuses["running"] == nil, "\(statuses)")
            // Each run's trail names the operator and the reason, once.
            let run = System.runID(playbook: "Bulk.v1", eventID: "bulk-42")
            let trail = try await store.auditTrail(runID: run).map(\.entry)
            #expect(trail.filter { $0.kind == "run.cancel_requested" }.map(\.actor) == ["ops#1"])
            // Nothing is left to do.
            #expect(try await second.step() == false)
        }
    }
}
