import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Sub-playbooks (`playbook:` steps) over the real broker and database: the child's result becomes the step's
/// output, a failed child fails the attempt so the parent's `retry:` starts a new child, cancel and pause
/// cascade from parent to child, and a child that cannot start (nested too deep, playbook unknown) fails its
/// step with the reason.
@Suite(.serialized) struct SubPlaybookTests {
    static let sweep = """
        id: PermitSweep.v1
        trigger: permit.sweep
        steps:
          - id: prepare
            agent: ai.prepare
          - id: inspect
            playbook: SiteInspection.v1
            input:
              address: ${payload.address}
              level: ${result.level}
            retry: {max: 1, initial: 100ms, backoff: fixed}
          - id: close
            agent: ai.close
        """
    static let inspection = """
        id: SiteInspection.v1
        trigger: site.inspection
        steps:
          - id: visit
            agent: human.inspector
          - id: report
            agent: ai.report
        """

    static func child(of parent: String, attempt: Int = 1) -> String {
        TaskDispatch.childRunID(playbook: "SiteInspection.v1", task: TaskID(rawValue: "\(parent)/inspect/1"),
            attempt: attempt).rawValue
    }

    static func state(_ system: System, _ run: String) async throws -> RunState {
        let row = try #require(try await system.store.run(id: run))
        return try JSONDecoder().decode(RunState.self, from: Data(row.state))
    }

    @Test func theChildsResultIsTheStepsOutputAndBothTrailsLinkThem() async throws {
        try await SystemHarness.run(playbooks: [Self.sweep, Self.inspection]) { task in
            switch task.assignee {
            case "ai.prepare": .complete(["level": 2])
            case "ai.report": .complete(["report": "clear", "seen": task.body["payload"] ?? .null])
            default: .complete([:])
            }
        } _: { system in
            try await system.emit("permit.sweep", id: "sweep-1", payload: ["address": "Main St 1"])
            let parent = System.runID(playbook: "PermitSweep.v1", eventID: "sweep-1")
            #expect(try await system.waitForEnd(of: parent) == "run.completed")
            let child = Self.child(of: parent)
            #expect(try await system.waitForEnd(of: child) == "run.completed")

            // The child got the resolved input as its payload; its result is the step's output.
            let parentState = try await Self.state(system, parent)
            #expect(parentState.record("inspect")?.output
                == ["report": "clear", "seen": ["address": "Main St 1", "level": 2]])
            let childState = try await Self.state(system, child)
            #expect(childState.payload == ["address": "Main St 1", "level": 2])
            #expect(childState.parent?.run.rawValue == parent && childState.parent?.depth == 1)
            // No task message was published for the sub-playbook step itself.
            #expect(system.tasks.all.allSatisfy { $0.body["step_id"]?.stringValue != "inspect" })

            // The trails link both ways.
            let childTrail = try await system.store.auditTrail(runID: child).map(\.entry)
            let started = try #require(childTrail.first { $0.kind == "run.started" })
            #expect(started.data["parent_run_id"]?.stringValue == parent)
            #expect(started.data["parent_task_id"]?.stringValue == "\(parent)/inspect/1")
            let parentTrail = try await system.store.auditTrail(runID: parent).map(\.entry)
            #expect(parentTrail.contains { $0.kind == "child.completed" && $0.data["child_run_id"]?.stringValue == child })
            let dispatch = try #require(parentTrail.first { entry in
                guard case .array(let effects)? = entry.data["effects"] else { return false }
                return effects.contains { $0["child_run_id"]?.stringValue == child }
            })
            #expect(dispatch.kind == "task.completed")  // prepare's answer dispatched the child
            #expect(try await system.store.verifyRunChain(runID: parent).isEmpty)
            #expect(try await system.store.verifyRunChain(runID: child).isEmpty)
        }
    }

    @Test func aFailedChildFailsTheAttemptAndTheRetryStartsANewChild() async throws {
        try await SystemHarness.run(playbooks: [Self.sweep, Self.inspection]) { task in
            // The first child's report fails for good; the second child's succeeds.
            if task.assignee == "ai.report", !task.runID.isEmpty,
                task.runID == Self.child(of: System.runID(playbook: "PermitSweep.v1", eventID: "sweep-2"))
            {
                return .fail("camera broken", retryable: false)
            }
            return .complete(["ok": true])
        } _: { system in
            try await system.emit("permit.sweep", id: "sweep-2", payload: ["address": "Elm 2"])
            let parent = System.runID(playbook: "PermitSweep.v1", eventID: "sweep-2")
            #expect(try await system.waitForEnd(of: parent) == "run.completed")
            #expect(try await system.waitForEnd(of: Self.child(of: parent)) == "run.failed")
            #expect(try await system.waitForEnd(of: Self.child(of: parent, attempt: 2)) == "run.completed")
            let failed = try #require(try await system.store.auditTrail(runID: parent).map(\.entry).first { $0.kind == "child.failed" })
            let reason = failed.data["reason"]?.stringValue ?? ""
            #expect(reason.contains("child run \(Self.child(of: parent)) failed at step report: camera broken"), "\(reason)")
        }
    }

    @Test func cancellingOrPausingTheParentReachesTheChild() async throws {
        try await SystemHarness.run(playbooks: [Self.sweep, Self.inspection]) { task in
            task.assignee == "human.inspector" ? .ignore : .complete(["level": 1])
        } _: { system in
            try await system.emit("permit.sweep", id: "sweep-3", payload: ["address": "Oak 3"])
            let parent = System.runID(playbook: "PermitSweep.v1", eventID: "sweep-3")
            let child = Self.child(of: parent)
            try await system.tasks.wait("the child's visit task") { messages in
                messages.contains { $0.body["run_id"]?.stringValue == child && $0.body["step_id"] == "visit" }
            }
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(parent), event: .pause,
                actor: "test", key: "pause-3")])
            try await Self.waitForStatus(system, child, "paused")
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(parent), event: .resume,
                actor: "test", key: "resume-3")])
            try await Self.waitForStatus(system, child, "running")
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(parent),
                event: .cancel(reason: "citizen withdrew"), actor: "test", key: "cancel-3")])
            #expect(try await system.waitForEnd(of: parent) == "run.cancelled")
            #expect(try await system.waitForEnd(of: child) == "run.cancelled")
            let trail = try await system.store.auditTrail(runID: child).map(\.entry)
            let cancel = try #require(trail.first { $0.kind == "run.cancel_requested" })
            #expect(cancel.actor == "run:\(parent)")
            #expect(trail.contains { $0.kind == "run.paused" } && trail.contains { $0.kind == "run.resumed" })
        }
    }

    @Test func aChildThatCannotStartFailsItsStepWithTheReason() async throws {
        let recursive = """
            id: Recursive.v1
            trigger: recursive.start
            steps:
              - id: again
                playbook: Recursive.v1
            """
        let unknown = """
            id: CallsNobody.v1
            trigger: nobody.start
            steps:
              - id: inspect
                playbook: NotRegistered.v1
            """
        try await SystemHarness.run(playbooks: [recursive, unknown], configure: { $0.engine.maxPlaybookDepth = 3 }) { _ in
            .complete([:])
        } _: { system in
            try await system.emit("recursive.start", id: "deep")
            let top = System.runID(playbook: "Recursive.v1", eventID: "deep")
            #expect(try await system.waitForEnd(of: top) == "run.failed")
            // Three levels of children ran; the fourth was not started, and every level failed in turn.
            var run = top
            for level in 1...3 {
                run = TaskDispatch.childRunID(playbook: "Recursive.v1", task: TaskID(rawValue: "\(run)/again/1"),
                    attempt: 1).rawValue
                #expect(try await Self.state(system, run).depth == level)
            }
            let deepest = try #require(try await system.store.auditTrail(runID: run).map(\.entry).first { $0.kind == "child.not_started" })
            #expect(deepest.data["reason"]?.stringValue?.contains("runs nest at most 3 deep (engine.max_playbook_depth)") == true)
            let fourth = TaskDispatch.childRunID(playbook: "Recursive.v1", task: TaskID(rawValue: "\(run)/again/1"), attempt: 1)
            #expect(try await system.store.run(id: fourth.rawValue) == nil)

            try await system.emit("nobody.start", id: "nobody")
            let lonely = System.runID(playbook: "CallsNobody.v1", eventID: "nobody")
            #expect(try await system.waitForEnd(of: lonely) == "run.failed")
            let state = try await Self.state(system, lonely)
            #expect(state.failure?.reason.contains("no playbook NotRegistered.v1 is registered") == true)
        }
    }

    static func waitForStatus(_ system: System, _ run: String, _ status: String) async throws {
        for _ in 0..<500 {
            if try await system.store.run(id: run)?.status == status { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("run \(run) never reached status \(status)")
    }
}

extension SubPlaybookTests {
    @Test func aChildCancelledMidFlightFailsTheParentsStepWithoutRetry() async throws {
        try await SystemHarness.run(playbooks: [Self.sweep, Self.inspection]) { task in
            task.assignee == "human.inspector" ? .ignore : .complete(["level": 1])
        } _: { system in
            try await system.emit("permit.sweep", id: "sweep-4", payload: ["address": "Ash 4"])
            let parent = System.runID(playbook: "PermitSweep.v1", eventID: "sweep-4")
            let child = Self.child(of: parent)
            try await system.tasks.wait("the child's visit task") { messages in
                messages.contains { $0.body["run_id"]?.stringValue == child && $0.body["step_id"] == "visit" }
            }
            _ = try await system.orchestrator.apply([.operatorCommand(runID: RunID(child),
                event: .cancel(reason: "inspection not needed"), actor: "officer", key: "cancel-4")])
            #expect(try await system.waitForEnd(of: child) == "run.cancelled")
            // A cancelled child is someone's decision: the parent's retry does not start another.
            #expect(try await system.waitForEnd(of: parent) == "run.failed")
            #expect(try await system.store.run(id: Self.child(of: parent, attempt: 2)) == nil)
            let state = try await Self.state(system, parent)
            #expect(state.failure?.reason.contains("cancelled") == true, "\(String(describing: state.failure))")
        }
    }
}
