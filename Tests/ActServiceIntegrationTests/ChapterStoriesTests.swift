import ActAMQP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// The five chapters' stories end to end over AMQP and PostgreSQL, with short SLAs and waits.
@Suite struct ChapterStoriesTests {
    static let ftc = """
        id: FTC-Complaint
        start: ComplaintLogged
        steps:
          - id: classify
            actor: AI:fraud-labeler
            on_complete: severity_branch
          - id: severity_branch
            type: switch
            expr: "result.severity"
            cases:
              High: human_review
              Low: notify_citizen
          - id: human_review
            actor: HUMAN:investigator
            sla: 2s
            on_timeout: escalate
            on_complete: notify_citizen
          - id: escalate
            actor: HUMAN:supervisor
          - id: notify_citizen
            actor: SVC:email-svc
        """

    @Test func ftcHighSeverityBreachesTheSLAOnceAndEscalatesToTheSupervisor() async throws {
        try await SystemHarness.run(playbooks: [Self.ftc]) { task in
            switch task.assignee {
            case "ai.fraud-labeler": .complete(["severity": "High"])
            case "human.investigator": .ignore  // misses the SLA
            default: .complete(["ok": true])
            }
        } _: { system in
            try await system.emit("ComplaintLogged", id: "c-42", payload: ["complaintId": "C-42", "text": "Spam calls"])
            let run = System.runID(playbook: "FTC-Complaint", eventID: "c-42")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(system.governance.count("sla.violation", run: run) == 1)
            #expect(system.governance.count("sla.warning", run: run) == 1)
            let dispatched = system.tasks.all.filter { $0.body["run_id"]?.stringValue == run }.compactMap {
                $0.body["assignee"]?.stringValue
            }
            #expect(dispatched == ["ai.fraud-labeler", "human.investigator", "human.supervisor", "svc.email-svc"])
            let violation = try #require(system.governance.all.first { $0.routingKey == "sla.violation" })
            #expect(violation.body["step_id"] == "human_review")
            #expect(violation.headers["traceparent"]?.stringValue?.hasPrefix("00-") == true)
        }
    }

    @Test func ftcLowSeverityGoesStraightToTheCitizen() async throws {
        try await SystemHarness.run(playbooks: [Self.ftc]) { task in
            task.assignee == "ai.fraud-labeler" ? .complete(["severity": "Low"]) : .complete([:])
        } _: { system in
            try await system.emit("ComplaintLogged", id: "c-43")
            let run = System.runID(playbook: "FTC-Complaint", eventID: "c-43")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(system.governance.count("sla.violation", run: run) == 0)
            #expect(!system.tasks.all.contains { $0.body["assignee"] == "human.investigator" })
        }
    }

    static let payment = """
        id: payment_failed_flow
        trigger: payment_failed
        steps:
          - id: freeze_payments
            call: POST /finance/freeze
          - id: notify_citizen
            parallel:
              - call: POST /notify/email
              - call: POST /notify/sms
          - id: create_ticket
            call: POST /helpdesk/ticket
          - id: wait_for_fix
            wait: 3s
          - id: escalate
            call: POST /hitl/escalate
            when: step(wait_for_fix).timeout
        """

    @Test func paymentWaitEndedBySignalCompletesWithoutEscalation() async throws {
        try await SystemHarness.run(playbooks: [Self.payment]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("payment_failed", id: "p-987")
            let run = System.runID(playbook: "payment_failed_flow", eventID: "p-987")
            try await system.tasks.wait("the ticket") { $0.contains { $0.body["step_id"] == "create_ticket" } }
            // Signal while the wait runs (a signal before it would be kept: paymentSignalBeforeTheWaitIsKeptForIt).
            try await system.waitUntilWaiting(run)
            try await system.reply(["run_id": .string(run), "signal": "wait_for_fix", "payload": ["iban": "DE89"]])
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(!system.tasks.all.contains { $0.body["step_id"] == "escalate" })
            let emails = system.tasks.all.filter { $0.routingKey == "task.call.post.notify.email" }
            #expect(emails.count == 1)
        }
    }

    /// The citizen's new bank details arrive before the ticket is open: the signal is kept and ends the wait
    /// the moment it starts, so nobody is escalated.
    @Test func paymentSignalBeforeTheWaitIsKeptForIt() async throws {
        try await SystemHarness.run(playbooks: [Self.payment]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("payment_failed", id: "p-989")
            let run = System.runID(playbook: "payment_failed_flow", eventID: "p-989")
            try await system.tasks.wait("the freeze") { $0.contains { $0.body["step_id"] == "freeze_payments" } }
            try await system.reply(["run_id": .string(run), "signal": "wait_for_fix", "payload": ["iban": "DE89"]])
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(!system.tasks.all.contains { $0.body["step_id"] == "escalate" })
            let trail = try await system.store.auditTrail(runID: run)
                .map { String(decoding: $0.entry.data.canonicalEncoding, as: UTF8.self) }.joined(separator: "\n")
            #expect(trail.contains("signal_kept"), "\(trail)")
        }
    }

    @Test func paymentWaitTimingOutEscalates() async throws {
        try await SystemHarness.run(playbooks: [Self.payment]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("payment_failed", id: "p-988")
            let run = System.runID(playbook: "payment_failed_flow", eventID: "p-988")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(system.tasks.all.contains { $0.body["step_id"] == "escalate" && $0.routingKey == "task.call.post.hitl.escalate" })
        }
    }

    static let permit = """
        id: permit-renewal
        trigger: permit.renewal.requested
        steps:
          - id: uploadDocs
            service: fileSvc.upload
          - id: chargeFee
            service: achSvc.charge
            compensate: achSvc.refund
          - id: updatePermitDB
            service: permitSvc.update
        """

    @Test func permitRenewalRefundsTheFeeWhenALaterStepFails() async throws {
        try await SystemHarness.run(playbooks: [Self.permit]) { task in
            task.assignee == "svc.permitSvc.update" ? .fail("permit database is read-only", retryable: false)
                : .complete(["charged": 75])
        } _: { system in
            try await system.emit("permit.renewal.requested", id: "maria-1", payload: ["permit": "STR-1"])
            let run = System.runID(playbook: "permit-renewal", eventID: "maria-1")
            #expect(try await system.waitForEnd(of: run) == "run.failed")
            let refund = try #require(system.tasks.all.first { $0.routingKey == "task.svc.achSvc.refund" })
            #expect(refund.body["compensation"] == true)
            #expect(refund.body["input"] == ["charged": 75])
        }
    }

    static let noise = """
        id: NoiseComplaint.v1
        trigger: noise.complaint.filed
        steps:
          - id: intake
            agent: ai.auto_intake
          - id: inspection
            agent: human.field_inspector
            retry: {max: 2, backoff: fixed, initial: 100ms}
          - id: resolution
            agent: ai.compose_response
        """

    @Test func noiseInspectionIsRetriedTwiceThenTheRunFails() async throws {
        try await SystemHarness.run(playbooks: [Self.noise]) { task in
            task.assignee == "human.field_inspector" ? .fail("meter broken", retryable: true) : .complete([:])
        } _: { system in
            try await system.emit("noise.complaint.filed", id: "n-1", payload: ["address": "123 Oak St"])
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "n-1")
            #expect(try await system.waitForEnd(of: run) == "run.failed")
            let attempts = system.tasks.all.filter { $0.body["step_id"] == "inspection" }.compactMap { $0.body["attempt"] }
            #expect(attempts == [1, 2, 3])
            #expect(system.governance.count("metrics.step_failed", run: run) == 3)
            #expect(!system.tasks.all.contains { $0.body["step_id"] == "resolution" })
        }
    }

    @Test func fanOutSendsOneTaskPerMatchingAgentAndJoins() async throws {
        let playbook = """
            id: Inspect.v1
            trigger: inspect
            steps:
              - id: inspection
                agent: human.field_inspector
                skills: [noise-meter]
                mode: fan-out
              - id: report
                agent: ai.compose_response
            """
        let agents = [
            Agent(id: "inspector#1", skills: ["noise-meter"], routingKey: "task.human.inspector-1"),
            Agent(id: "inspector#2", skills: ["noise-meter", "photos"], routingKey: "task.human.inspector-2"),
            Agent(id: "clerk#7", skills: ["forms"]),
        ]
        try await SystemHarness.run(playbooks: [playbook], agents: agents) { task in
            .complete(["decibels": .number(task.routingKey.hasSuffix("1") ? 71 : 64)])
        } _: { system in
            try await system.emit("inspect", id: "i-1")
            let run = System.runID(playbook: "Inspect.v1", eventID: "i-1")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            let inspections = system.tasks.all.filter { $0.body["step_id"] == "inspection" }.map(\.routingKey).sorted()
            #expect(inspections == ["task.human.inspector-1", "task.human.inspector-2"])
            let report = try #require(system.tasks.all.first { $0.body["step_id"] == "report" })
            #expect(report.body["context"]?["steps"]?["inspection"]?["inspector#1"] == ["decibels": 71])
        }
    }

    @Test func epaRegistrationReportsALateInspectorAssignmentToGovernanceOnce() async throws {
        // Chapter 004: steps with SLAs only (tasks go to the topic named after the step); the inspector
        // assignment answers late, after its SLA: one sla.violation, and the run still completes.
        let playbook = """
            id: epa_waste_reg
            trigger: epa.waste_registration.submitted
            steps:
              - {id: collect_form,     sla: "5m"}
              - {id: validate_tax_id,  sla: "2m"}
              - {id: charge_fee,       sla: "1m"}
              - {id: assign_inspector, sla: "1s"}
            """
        try await SystemHarness.run(playbooks: [playbook]) { task in
            task.stepID == "assign_inspector" ? .ignore : .complete(["ok": true])
        } _: { system in
            try await system.emit("epa.waste_registration.submitted", id: "F8700-12-42", payload: ["form_id": "F8700-12-42"])
            let run = System.runID(playbook: "epa_waste_reg", eventID: "F8700-12-42")
            try await system.governance.wait("the assignment SLA breach") {
                $0.contains { $0.routingKey == "sla.violation" && $0.body["run_id"]?.stringValue == run }
            }
            let assignment = try #require(system.tasks.all.first { $0.routingKey == "task.assign_inspector" })
            try await system.reply(["task_id": assignment.body["task_id"]!, "attempt": 1, "status": "completed",
                "output": ["inspector": "inspector#3"]])
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            #expect(system.governance.count("sla.violation", run: run) == 1)
            let topics = system.tasks.all.filter { $0.body["run_id"]?.stringValue == run }.map(\.routingKey)
            #expect(topics == ["task.collect_form", "task.validate_tax_id", "task.charge_fee", "task.assign_inspector"])
        }
    }
}

