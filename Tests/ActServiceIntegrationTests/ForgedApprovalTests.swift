import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// The attack of issue 13 over AMQP, against a real broker and replica: a holder of credentials that may
/// publish on the results exchange releases an approval gate in an officer's name. With `amqp.actors`, the
/// approval is attributed to the RabbitMQ user the broker validated (`user_id`); one that names an actor
/// its user may not act as, or carries no `user_id`, is refused, recorded in the run's audit trail and
/// dead-lettered, and the gate stays shut until the real approval comes.
@Suite struct ForgedApprovalTests {
    static let playbook = """
        id: PermitReview
        trigger: PermitFiled
        steps:
          - id: zoningApproval
            service: zoningPortal.approve
            pause: true
          - id: notify
            service: emailSvc.send
        """

    @Test func aForgedApprovalOverAMQPIsRefusedRecordedAndLeavesTheGateShut() async throws {
        let desk = try AMQPConfiguration(url: TestEnvironment.amqpURL).user
        try await SystemHarness.run(playbooks: [Self.playbook], configure: { $0.amqp.actors = ["\(desk)=officer#*"] },
            answer: { _ in .ignore })
        { system in
            let run = try await awaitingApproval(system, desk: desk, agent: nil)

            // The issue's attack: the body names the officer, nothing says who sent it.
            func approval(_ actor: String) -> JSONValue {
                ["run_id": .string(run), "step_id": "zoningApproval", "approved": true, "actor": .string(actor)]
            }
            try await publish(system, approval("officer#4"), type: "hms.approval", userID: nil)
            // A user the broker vouches for, naming an actor outside its patterns.
            try await publish(system, approval("supervisor#1"), type: "hms.approval", userID: desk)
            let refused = try await waitForTrail(system, run, "two refused attempts") {
                $0.filter { $0.entry.kind == "attempt.refused" }.count == 2
            }.filter { $0.entry.kind == "attempt.refused" }
            #expect(refused.map { $0.entry.data["claimed_actor"] } == ["officer#4", "supervisor#1"])
            #expect(refused.map(\.entry.actor) == ["amqp:(no user_id)", "amqp:\(desk)"])
            #expect(refused.allSatisfy { $0.entry.data["reason"]?.stringValue?.isEmpty == false })
            #expect(try await system.store.run(id: run)?.status == "running", "the gate opened on a forged approval")
            #expect(!system.tasks.all.contains { $0.body["run_id"]?.stringValue == run && $0.body["step_id"] == "notify" })

            // The real approval (same step, same actor as the first forgery) is not taken for a repeat.
            try await publish(system, approval("officer#4"), type: "hms.approval", userID: desk)
            try await system.tasks.wait("the notify task") {
                $0.contains { $0.body["run_id"]?.stringValue == run && $0.body["step_id"] == "notify" }
            }
            let trail = try await system.store.auditTrail(runID: run)
            #expect(trail.contains { $0.entry.kind == "approval.given" && $0.entry.actor == "officer#4" })
            let (findings, _) = AuditChain.verify(run: run, entries: trail)
            #expect(findings.isEmpty, "\(findings)")
        }
    }

    /// A step's `allowed:` over AMQP: the desk portal's broker user may act as clerks and officers, but this
    /// step names officers only, so a clerk's approval (a real identity, vouched for by `amqp.actors`) is refused,
    /// recorded with the step's list and changes nothing; an officer's then opens the gate.
    @Test func aStepsAllowedListRefusesAnActorItsBrokerUserMayActAs() async throws {
        let desk = try AMQPConfiguration(url: TestEnvironment.amqpURL).user
        let playbook = Self.playbook.replacingOccurrences(of: "    pause: true\n", with: "    pause: true\n    allowed: [officer#*]\n")
        #expect(playbook.contains("allowed:"))
        try await SystemHarness.run(playbooks: [playbook], configure: { $0.amqp.actors = ["\(desk)=officer#*;clerk#*"] },
            answer: { _ in .ignore })
        { system in
            let run = try await awaitingApproval(system, desk: desk, agent: "officer#2")

            func approval(_ actor: String) -> JSONValue {
                ["run_id": .string(run), "step_id": "zoningApproval", "approved": true, "actor": .string(actor)]
            }
            try await publish(system, approval("clerk#7"), type: "hms.approval", userID: desk)
            let refused = try await waitForTrail(system, run, "the clerk's refused attempt") {
                $0.contains { $0.entry.kind == "attempt.refused" }
            }.filter { $0.entry.kind == "attempt.refused" }
            #expect(refused.map(\.entry.actor) == ["clerk#7"])
            #expect(refused.first?.entry.data["allowed"] == ["officer#*"])
            #expect(refused.first?.entry.data["reason"]?.stringValue?.contains("clerk#7 may not approve") == true)
            #expect(try await system.store.run(id: run)?.status == "running", "the gate opened for a clerk")

            try await publish(system, approval("officer#4"), type: "hms.approval", userID: desk)
            try await system.tasks.wait("the notify task") {
                $0.contains { $0.body["run_id"]?.stringValue == run && $0.body["step_id"] == "notify" }
            }
            let trail = try await system.store.auditTrail(runID: run)
            #expect(trail.contains { $0.entry.kind == "approval.given" && $0.entry.actor == "officer#4" })
            #expect(AuditChain.verify(run: run, entries: trail).0.isEmpty)
        }
    }

    /// Starts a PermitReview run and answers its zoning task as `desk` (naming `agent`, when given), so that the
    /// step waits for its approval; returns the run id.
    private func awaitingApproval(_ system: System, desk: String, agent: String?) async throws -> String {
        let eventID = UUID().uuidString
        let run = System.runID(playbook: "PermitReview", eventID: eventID)
        try await system.emit("PermitFiled", id: eventID)
        try await system.tasks.wait("the zoning task") { $0.contains { $0.body["run_id"]?.stringValue == run } }
        let task = try #require(system.tasks.all.first { $0.body["run_id"]?.stringValue == run })
        var result: JSONValue = ["task_id": task.body["task_id"]!, "attempt": 1, "status": "completed", "output": [:]]
        if let agent, case .object(var members) = result {
            members["agent"] = .string(agent)
            result = .object(members)
        }
        try await publish(system, result, type: "hms.task.result", userID: desk)
        try await waitForTrail(system, run, "the task's result") { $0.contains { $0.entry.kind == "task.completed" } }
        return run
    }

    /// Publishes on the results exchange with `user_id` as given (the broker refuses one that is not the
    /// connection's user, so only that user or none can be sent).
    private func publish(_ system: System, _ body: JSONValue, type: String, userID: String?) async throws {
        let outcome = try await system.worker.publish(AMQPMessage(body: body.canonicalEncoding,
            exchange: system.configuration.amqp.exchanges.results, routingKey: "result.desk",
            properties: AMQPProperties(contentType: "application/json", messageID: UUID().uuidString, type: type,
                userID: userID)))
        #expect(outcome == .confirmed, "\(type) was not accepted by the broker: \(outcome)")
    }

    @discardableResult
    private func waitForTrail(_ system: System, _ run: String, _ what: String,
        until predicate: ([AuditChain.StoredEntry]) -> Bool) async throws -> [AuditChain.StoredEntry]
    {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            let trail = try await system.store.auditTrail(runID: run)
            if predicate(trail) { return trail }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what) in the audit trail of \(run)")
        throw CancellationError()
    }
}
