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
/// `cancel_newest` / `cancel_in_progress` policies; the same for a key on one step.
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

    /// Two newcomers in one batch both cancel the holder (and the second cancels the first): each run gets
    /// one decision, and the last newcomer runs.
    @Test func twoNewcomersInOneBatchUnderCancelInProgress() async throws {
        try await SystemHarness.run(playbooks: [Self.inspection(onLimit: "cancel_in_progress")]) { task in
            task.runID == System.runID(playbook: "Inspection.v1", eventID: "last") ? .complete([:]) : .ignore
        } _: { system in
            try await system.emit("inspection.requested", id: "holder", payload: ["address": "5 Yew"])
            let holder = System.runID(playbook: "Inspection.v1", eventID: "holder")
            try await system.tasks.wait("the holder's task") { $0.contains { $0.body["run_id"]?.stringValue == holder } }
            _ = try await system.orchestrator.apply(["first", "last"].map {
                .trigger(TriggerEvent(id: $0, type: "inspection.requested", payload: ["address": "5 Yew"]))
            })
            #expect(try await system.waitForEnd(of: holder) == "run.cancelled")
            #expect(try await system.waitForEnd(of: System.runID(playbook: "Inspection.v1", eventID: "first")) == "run.cancelled")
            #expect(try await system.waitForEnd(of: System.runID(playbook: "Inspection.v1", eventID: "last")) == "run.completed")
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

    static let payout = """
        id: Payout.v1
        trigger: payout.requested
        steps:
          - id: check
            agent: ai.checker
          - id: pay
            service: paymentSvc.pay
            concurrency: {key: "${payload.account}", limit: 1}
          - id: notify
            agent: ai.notifier
        """

    /// A step's key holds across runs and replicas: the `pay` tasks of one account never overlap (from the
    /// tasks table), the other steps of those runs are not held, and another account is not held up.
    @Test func aStepsKeyLetsOneVisitAtATimeAcrossRunsAndReplicas() async throws {
        try await SystemHarness.run(playbooks: [Self.payout], replicas: 2) { _ in .complete(["ok": true]) } _: { system in
            let ids = (0..<40).map { "acct-\($0)" }
            for id in ids { try await system.emit("payout.requested", id: id, payload: ["account": "GB-1"]) }
            try await system.emit("payout.requested", id: "other", payload: ["account": "GB-2"])
            let runs = (ids + ["other"]).map { System.runID(playbook: "Payout.v1", eventID: $0) }
            try await system.governance.wait("every payout to end", timeout: .seconds(300)) { messages in
                Set(messages.filter { $0.routingKey == "run.completed" }.compactMap { $0.body["run_id"]?.stringValue })
                    .isSuperset(of: runs)
            }
            var intervals: [(start: Int64, end: Int64)] = []
            for run in runs.dropLast() {
                let pay = try #require(try await system.store.tasks(ofRun: run).first { $0.stepID == "pay" })
                intervals.append((pay.createdAt, pay.updatedAt))
                let trail = try await system.store.auditTrail(runID: run).map(\.entry)
                #expect(trail.contains { $0.kind == "step.released" }, "\(run): the grant is in its trail")
            }
            let most = mostAtOnce(intervals)
            #expect(most == 1, "\(most) pay steps of one account ran at once")
            #expect(try await RetentionTests.count(system.store, "SELECT count(*) FROM concurrency_slots") == 0,
                "every slot was given back")
        }
    }

    /// `cancel_newest` on a step fails the newcomer's visit, and its `on_failure` takes the run on.
    @Test func aStepRefusedItsSlotFailsAndItsOnFailureApplies() async throws {
        let playbook = """
            id: Payout.v2
            trigger: payout.requested
            steps:
              - id: pay
                service: paymentSvc.pay
                concurrency: {key: "${payload.account}", on_limit: cancel_newest}
                on_failure: refer
              - id: refer
                agent: ai.referrer
            """
        let holder = System.runID(playbook: "Payout.v2", eventID: "holder")
        try await SystemHarness.run(playbooks: [playbook]) { task in task.runID == holder ? .ignore : .complete([:]) } _: { system in
            try await system.emit("payout.requested", id: "holder", payload: ["account": "GB-3"])
            try await system.tasks.wait("the holder's pay task") { $0.contains { $0.body["run_id"]?.stringValue == holder } }
            try await system.emit("payout.requested", id: "newcomer", payload: ["account": "GB-3"])
            let newcomer = System.runID(playbook: "Payout.v2", eventID: "newcomer")
            #expect(try await system.waitForEnd(of: newcomer) == "run.completed")
            let row = try #require(try await system.store.run(id: newcomer))
            let state = try JSONDecoder().decode(RunState.self, from: Data(row.state))
            #expect(state.record("pay")?.status == .failed)
            #expect(state.record("pay")?.error
                == "concurrency key 'GB-3' of step pay has 1 visit(s) going already (on_limit: cancel_newest)")
            #expect(state.record("refer")?.status == .completed)
            #expect(!system.tasks.all.contains { $0.body["run_id"]?.stringValue == newcomer && $0.body["step_id"]?.stringValue == "pay" }, "its pay task never went out")
        }
    }
}
