import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Concurrency keys over the real broker and database with two replicas: 200 triggers for one key with
/// limit 1 never run two at once (from the audit trail's instants), other keys are not held up, and the
/// `cancel_newest` / `cancel_in_progress` policies.
@Suite(.serialized) struct ConcurrencyKeyTests {
    static func inspection(limit: Int = 1, onLimit: String = "queue") -> String {
        """
        id: Inspection.v1
        trigger: inspection.requested
        concurrency: {key: "${payload.address}", limit: \(limit), on_limit: \(onLimit)}
        steps:
          - id: inspect
            agent: ai.inspector
        """
    }

    @Test func twoHundredRunsOfOneKeyNeverRunTwoAtOnce() async throws {
        try await SystemHarness.run(playbooks: [Self.inspection()], replicas: 2) { _ in .complete(["ok": true]) } _: { system in
            let ids = (0..<200).map { "elm-\($0)" }
            for id in ids { try await system.emit("inspection.requested", id: id, payload: ["address": "12 Elm St"]) }
            // Another address is not held up by the queue.
            try await system.emit("inspection.requested", id: "oak", payload: ["address": "3 Oak Ave"])
            let oak = System.runID(playbook: "Inspection.v1", eventID: "oak")
            #expect(try await system.waitForEnd(of: oak, timeout: .seconds(60)) == "run.completed")
            let runs = ids.map { System.runID(playbook: "Inspection.v1", eventID: $0) }
            try await system.governance.wait("every run of the key to end", timeout: .seconds(300)) { messages in
                Set(messages.filter { $0.routingKey == "run.completed" }.compactMap { $0.body["run_id"]?.stringValue })
                    .isSuperset(of: runs)
            }
            // From each trail: released at, finished at. No two intervals of the key overlap.
            var intervals: [(start: Int64, end: Int64)] = []
            for run in runs {
                let trail = try await system.store.auditTrail(runID: run).map(\.entry)
                let released = try #require(trail.first { $0.kind == "run.released" }?.at, "\(run) was never released")
                let finished = try #require(try await system.store.run(id: run)?.finishedAt)
                intervals.append((released, finished))
            }
            let most = mostAtOnce(intervals)
            #expect(most == 1, "\(most) runs of one key ran at once")
        }
    }

    @Test func cancelNewestRefusesTheNewcomerAndCancelInProgressReplacesTheHolder() async throws {
        let newest = Self.inspection(onLimit: "cancel_newest")
        try await SystemHarness.run(playbooks: [newest]) { _ in .ignore } _: { system in
            try await system.emit("inspection.requested", id: "first", payload: ["address": "1 Ash"])
            let first = System.runID(playbook: "Inspection.v1", eventID: "first")
            try await system.tasks.wait("the first run's task") { $0.contains { $0.body["run_id"]?.stringValue == first } }
            try await system.emit("inspection.requested", id: "second", payload: ["address": "1 Ash"])
            let second = System.runID(playbook: "Inspection.v1", eventID: "second")
            #expect(try await system.waitForEnd(of: second) == "run.cancelled")
            let row = try #require(try await system.store.run(id: second))
            let state = try JSONDecoder().decode(RunState.self, from: Data(row.state))
            #expect(state.failure?.reason == "concurrency key '1 Ash' has 1 run(s) going already (on_limit: cancel_newest)")
            #expect(state.steps.isEmpty)  // it never started a step
            #expect(try await system.store.run(id: first)?.status == "running")
        }
        try await SystemHarness.run(playbooks: [Self.inspection(onLimit: "cancel_in_progress")]) { task in
            task.runID == System.runID(playbook: "Inspection.v1", eventID: "old") ? .ignore : .complete([:])
        } _: { system in
            try await system.emit("inspection.requested", id: "old", payload: ["address": "2 Birch"])
            let old = System.runID(playbook: "Inspection.v1", eventID: "old")
            try await system.tasks.wait("the old run's task") { $0.contains { $0.body["run_id"]?.stringValue == old } }
            try await system.emit("inspection.requested", id: "new", payload: ["address": "2 Birch"])
            let new = System.runID(playbook: "Inspection.v1", eventID: "new")
            #expect(try await system.waitForEnd(of: old) == "run.cancelled")
            #expect(try await system.waitForEnd(of: new) == "run.completed")
            let trail = try await system.store.auditTrail(runID: old).map(\.entry)
            #expect(trail.contains { $0.kind == "run.cancel_requested" && $0.actor == "concurrency" })
        }
    }

    @Test func queuedRunsStartByPriorityThenAgeAndTheirTasksCarryIt() async throws {
        try await SystemHarness.run(playbooks: [Self.inspection()]) { task in
            task.runID == System.runID(playbook: "Inspection.v1", eventID: "holder") ? .ignore : .complete([:])
        } _: { system in
            try await system.emit("inspection.requested", id: "holder", payload: ["address": "4 Fir"])
            let holder = System.runID(playbook: "Inspection.v1", eventID: "holder")
            try await system.tasks.wait("the holder's task") { $0.contains { $0.body["run_id"]?.stringValue == holder } }
            for (id, priority) in [("low-1", "1"), ("none", nil), ("high", "9"), ("low-2", "1")] as [(String, String?)] {
                try await system.emit("inspection.requested", id: id, payload: ["address": "4 Fir"],
                    headers: priority.map { ["x-hms-priority": .string($0)] } ?? [:])
            }
            let last = System.runID(playbook: "Inspection.v1", eventID: "low-2")
            for _ in 0..<100 where try await system.store.run(id: last)?.status != "queued" {
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(holder), event: .cancel(reason: "done"),
                actor: "ops", key: "cancel-holder")])
            for id in ["high", "low-1", "low-2", "none"] {
                #expect(try await system.waitForEnd(of: System.runID(playbook: "Inspection.v1", eventID: id)) == "run.completed")
            }
            // One at a time: the order they were released in is the order their tasks went out.
            let order = system.tasks.all.compactMap { message -> String? in
                guard let run = message.body["run_id"]?.stringValue, run != holder else { return nil }
                return ["high", "low-1", "low-2", "none"].first { System.runID(playbook: "Inspection.v1", eventID: $0) == run }
            }
            #expect(order == ["high", "low-1", "low-2", "none"])
            let high = try #require(system.tasks.all.first { $0.body["run_id"]?.stringValue == System.runID(playbook: "Inspection.v1", eventID: "high") })
            #expect(high.headers["x-hms-priority"] == .string("9"))
        }
    }

    @Test func aQueuedRunCancelledByAnOperatorLeavesTheQueue() async throws {
        try await SystemHarness.run(playbooks: [Self.inspection()]) { task in
            task.runID == System.runID(playbook: "Inspection.v1", eventID: "a") ? .ignore : .complete([:])
        } _: { system in
            for id in ["a", "b", "c"] { try await system.emit("inspection.requested", id: id, payload: ["address": "9 Pine"]) }
            let (a, b, c) = (System.runID(playbook: "Inspection.v1", eventID: "a"),
                System.runID(playbook: "Inspection.v1", eventID: "b"), System.runID(playbook: "Inspection.v1", eventID: "c"))
            try await system.tasks.wait("a's task") { $0.contains { $0.body["run_id"]?.stringValue == a } }
            for _ in 0..<100 where try await system.store.run(id: c)?.status != "queued" { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await system.store.run(id: b)?.status == "queued")
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(b), event: .cancel(reason: "duplicate"),
                actor: "ops", key: "cancel-b")])
            #expect(try await system.waitForEnd(of: b) == "run.cancelled")
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(a), event: .cancel(reason: "done"),
                actor: "ops", key: "cancel-a")])
            #expect(try await system.waitForEnd(of: c) == "run.completed")
        }
    }
}
