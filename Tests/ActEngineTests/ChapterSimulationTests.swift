import ActEngine
import ActPlaybook
import Foundation
import Testing

private func render(_ report: SimulationReport) -> String { TimelineRenderer().render(report) }

private func steps(_ report: SimulationReport, _ kind: GovernanceEvent.Kind, compensation: Bool = false) -> [String] {
    report.governance.filter { $0.kind == kind && $0.isCompensation == compensation }.compactMap { $0.step?.rawValue }
}

@Suite struct ChapterSimulationTests {
    // MARK: Chapter 000 — NoiseComplaint.v1

    @Test func noiseComplaintHappyPathPrintsLikeWatch() throws {
        let json = """
            {
              "payload": {"address": "123 Oak St", "evidence": "phone_video.mp4"},
              "answers": {
                "intake": [{"after": "1.2s", "output": {"form": "parsed"}}],
                "triage": [{"after": 0.4, "output": {"kind": "loud party"}}],
                "assign_inspector": [{"after": "15s", "by": "clerk#7"}],
                "inspection": [{"after": "6m11s", "by": "inspector#3", "output": {"db": 78}}],
                "resolution": [{"after": "500ms"}]
              }
            }
            """
        let script = try JSONDecoder().decode(SimulationScript.self, from: Data(json.utf8))
        let report = Simulation(
            playbook: Chapters.noiseComplaint, script: script, runID: "wf_9123",
            configuration: EngineConfiguration(agents: [Chapters.fieldInspector])
        ).runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow wf_9123 started
                  ✔ intake               by ai.auto_intake   (1.2 s)
                  ✔ triage               by ai.classifier    (0.4 s)
                  ✔ assign_inspector     by clerk#7          (15 s)
                  ✔ inspection           by inspector#3      (6 m 11 s)
                  ✔ resolution           by ai.compose_response (0.5 s)
                🏁 COMPLETED in 6 m 28 s

                """
        )
        #expect(report.status == .completed)
        #expect(report.duration == .milliseconds(388_100))
        // The inspector's agent file has a queue: the task goes straight to it.
        #expect(report.dispatches.first { $0.step == "inspection" }?.target == .queue("inspection.queue"))
        #expect(report.dispatches.map(\.step) == ["intake", "triage", "assign_inspector", "inspection", "resolution"])
    }

    @Test func noiseComplaintInspectionRetriedTwiceThenFailsTheRun() {
        let script = SimulationScript(
            answers: ["inspection": [.fail(after: .seconds(30), "inspector unavailable")]]
        )
        let report = Simulation(playbook: Chapters.noiseComplaint, script: script, runID: "wf_9124").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow wf_9124 started
                  ✔ intake               by ai.auto_intake   (1 s)
                  ✔ triage               by ai.classifier    (1 s)
                  ✔ assign_inspector     by human.dispatcher (1 s)
                  ✖ inspection           by human.field_inspector (30 s) – inspector unavailable (retrying, attempt 2 next)
                  ✖ inspection           by human.field_inspector (30 s) – inspector unavailable (retrying, attempt 3 next)
                  ✖ inspection           by human.field_inspector (30 s) – inspector unavailable
                💥 FAILED in 1 m 36 s – inspector unavailable

                """
        )
        let inspection = report.dispatches.filter { $0.step == "inspection" }
        #expect(inspection.map(\.idempotencyKey) == ["wf_9124/inspection/1#1", "wf_9124/inspection/1#2", "wf_9124/inspection/1#3"])
        #expect(report.governance.filter { $0.kind == .stepFailed }.map(\.willRetry) == [true, true, false])
        #expect(!report.dispatches.contains { $0.step == "resolution" })
        #expect(steps(report, .runFailed) == ["inspection"])
    }

    @Test func noiseComplaintFanOutJoinsEveryInspector() {
        var playbook = Chapters.noiseComplaint
        playbook.steps[3] = task("inspection", .human("field_inspector"), fanOut: true)
        let agents = [Agent(id: "human.field_inspector#2"), Agent(id: "human.field_inspector#1", queue: "insp1")]
        let script = SimulationScript(
            answers: [
                "inspection@human.field_inspector#1": [.complete(after: .minutes(3), output: ["db": 71])],
                "inspection@human.field_inspector#2": [.complete(after: .minutes(10), output: ["db": 64])],
            ],
            agents: agents
        )
        let report = Simulation(playbook: playbook, script: script).runCheckingTaskStatuses()
        #expect(report.status == .completed)
        let fanned = report.dispatches.filter { $0.step == "inspection" }
        #expect(fanned.map(\.target) == [.queue("insp1"), .routingKey("task.human.field_inspector#2")])
        #expect(
            report.state.record("inspection")?.output
                == ["human.field_inspector#1": ["db": 71], "human.field_inspector#2": ["db": 64]]
        )
        // The step took as long as its slowest inspector; resolution starts only then.
        let completed = report.governance.first { $0.kind == .stepCompleted && $0.step == "inspection" }
        #expect(completed?.duration == .minutes(10))
        #expect(report.dispatches.last?.step == "resolution")
    }

    @Test func noiseComplaintPausedAndResumed() {
        let script = SimulationScript(
            controls: [ScriptedControl(at: .milliseconds(500), action: .pause), ScriptedControl(at: .hours(1), action: .resume)]
        )
        let report = Simulation(playbook: Chapters.noiseComplaint, script: script).runCheckingTaskStatuses()
        #expect(report.status == .completed)
        let triageStarted = report.governance.first { $0.kind == .stepStarted && $0.step == "triage" }
        #expect(triageStarted?.at == at(.hours(1)))  // held from 1 s to the resume
        #expect(report.duration == .hours(1) + .seconds(4))
        #expect(report.entries.map(\.kind).contains(.paused) && report.entries.map(\.kind).contains(.resumed))
    }

    // MARK: Chapter 001 — FTC-Complaint

    @Test func ftcHighSeverityBreachesTheFourHourSLAAndEscalates() {
        let script = SimulationScript(
            answers: [
                "classify": [.complete(after: .seconds(2), output: ["severity": "High"])],
                "human_review": [.noAnswer],
            ],
            payload: ["complaintId": "C-42", "text": "Spam calls"]
        )
        let report = Simulation(playbook: Chapters.ftcComplaint, script: script, runID: "7a1b").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow 7a1b started
                  ✔ classify             by ai.fraud-labeler (2 s)
                  ⑂ severity_branch      High → human_review
                  ⚠ human_review         SLA warning – SLA 4h (started 3h12m ago)
                  ⏰ human_review         SLA violation – SLA 4h (started 4h ago)
                  ⏰ human_review         SLA 4h breached
                  ✔ escalate             by human.supervisor (1 s)
                  ✔ notify_citizen       by svc.email-svc    (1 s)
                🏁 COMPLETED in 4 h 4 s

                """
        )
        #expect(steps(report, .slaViolation) == ["human_review"])
        #expect(steps(report, .slaWarning) == ["human_review"])
        #expect(report.governance.first { $0.kind == .slaViolation }?.at == at(.seconds(2) + .hours(4)))
        #expect(report.state.record("human_review")?.status == .timedOut)
        #expect(report.dispatches.map(\.step) == ["classify", "human_review", "escalate", "notify_citizen"])
    }

    @Test func ftcHighSeverityReviewedInTimeSkipsEscalation() {
        let script = SimulationScript(
            answers: [
                "classify": [.complete(after: .seconds(2), output: ["severity": "High"])],
                "human_review": [.complete(after: .hours(1), output: ["accepted": true], by: "investigator#4")],
            ]
        )
        let report = Simulation(playbook: Chapters.ftcComplaint, script: script).runCheckingTaskStatuses()
        #expect(report.dispatches.map(\.step) == ["classify", "human_review", "notify_citizen"])
        #expect(steps(report, .slaViolation).isEmpty)
        #expect(report.status == .completed)
    }

    @Test func ftcLowSeverityNotifiesTheCitizenDirectly() {
        let script = SimulationScript(answers: ["classify": [.complete(after: .seconds(2), output: ["severity": "Low"])]])
        let report = Simulation(playbook: Chapters.ftcComplaint, script: script, runID: "7a1c").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow 7a1c started
                  ✔ classify             by ai.fraud-labeler (2 s)
                  ⑂ severity_branch      Low → notify_citizen
                  ✔ notify_citizen       by svc.email-svc    (1 s)
                🏁 COMPLETED in 3 s

                """
        )
    }

    // MARK: Chapter 002 — payment_failed_flow

    @Test func paymentWaitEndedBySignalCompletesWithoutEscalation() {
        let script = SimulationScript(
            signals: [ScriptedSignal(at: .days(2), name: "wait_for_fix", payload: ["iban": "DE89 3704"])],
            payload: ["id": 987]
        )
        let report = Simulation(playbook: Chapters.paymentFailed, script: script, runID: "pay-987").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow pay-987 started
                  ✔ freeze_payments      by call.post.finance.freeze (1 s)
                  ✔ notify_citizen.1     by call.post.notify.email (1 s)
                  ✔ notify_citizen.2     by call.post.notify.sms (1 s)
                  ✔ notify_citizen       (1 s)
                  ✔ create_ticket        by call.post.helpdesk.ticket (1 s)
                  📨 wait_for_fix         signal wait_for_fix
                  ✔ wait_for_fix         (1 d 23 h 59 m 57 s)
                  ↷ escalate             skipped – when: false
                🏁 COMPLETED in 2 d

                """
        )
        #expect(!report.dispatches.contains { $0.step == "escalate" })
        #expect(report.state.record("wait_for_fix")?.output == ["iban": "DE89 3704"])
        // Both notifications went out together.
        let notified = report.governance.filter { $0.kind == .stepStarted && $0.step?.rawValue.hasPrefix("notify_citizen.") == true }
        #expect(notified.count == 2 && Set(notified.map(\.at)).count == 1)
    }

    @Test func paymentWaitTimesOutAfterFiveDaysAndEscalates() {
        let report = Simulation(playbook: Chapters.paymentFailed, script: SimulationScript(), runID: "pay-988").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow pay-988 started
                  ✔ freeze_payments      by call.post.finance.freeze (1 s)
                  ✔ notify_citizen.1     by call.post.notify.email (1 s)
                  ✔ notify_citizen.2     by call.post.notify.sms (1 s)
                  ✔ notify_citizen       (1 s)
                  ✔ create_ticket        by call.post.helpdesk.ticket (1 s)
                  ⏰ wait_for_fix         wait ran out after 5d
                  ✔ escalate             by call.post.hitl.escalate (1 s)
                🏁 COMPLETED in 5 d 4 s

                """
        )
        #expect(report.state.step("wait_for_fix", is: .timeout))
        #expect(report.dispatches.last?.assignee.routingKey == "task.call.post.hitl.escalate")
    }

    @Test func paymentSignalBeforeTheWaitIsKeptAndEndsItWhenItStarts() {
        let script = SimulationScript(signals: [ScriptedSignal(at: .milliseconds(500), name: "wait_for_fix")])
        let report = Simulation(playbook: Chapters.paymentFailed, script: script).runCheckingTaskStatuses()
        #expect(report.entries.contains { $0.kind == .signal && $0.detail?.contains("kept") == true })
        #expect(report.state.step("wait_for_fix", is: .completed))
        #expect(!report.dispatches.contains { $0.step == "escalate" })
    }

    // MARK: Chapter 003 — permit-renewal

    @Test func permitRenewalFailureRefundsTheCharge() {
        let script = SimulationScript(
            answers: [
                "chargeFee": [.complete(after: .seconds(2), output: ["ach": "TX-1", "amount": 75])],
                "updatePermitDB": [.fail(after: .seconds(3), "permit DB locked", retryable: false)],
            ]
        )
        let report = Simulation(playbook: Chapters.permitRenewal, script: script, runID: "1724491234-ab12c").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow 1724491234-ab12c started
                  ✔ uploadDocs           by svc.fileSvc.upload (1 s)
                  ✔ chargeFee            by svc.achSvc.charge (2 s)
                  ✖ updatePermitDB       by svc.permitSvc.update (3 s) – permit DB locked
                  ↩ chargeFee            by svc.achSvc.refund (1 s) compensated
                💥 FAILED in 7 s – permit DB locked

                """
        )
        let refund = report.dispatches.last
        #expect(refund?.isCompensation == true)
        #expect(refund?.target == .routingKey("task.svc.achSvc.refund"))
        #expect(refund?.input == ["ach": "TX-1", "amount": 75])
        #expect(report.status == .failed)
    }

    @Test func permitRenewalCancelledWhileUpdatingCompensates() {
        let script = SimulationScript(
            answers: ["updatePermitDB": [.noAnswer]],
            controls: [ScriptedControl(at: .minutes(10), action: .cancel, reason: "citizen withdrew")]
        )
        let report = Simulation(playbook: Chapters.permitRenewal, script: script, runID: "c-1").runCheckingTaskStatuses()
        #expect(
            render(report) == """
                🛫 Workflow c-1 started
                  ✔ uploadDocs           by svc.fileSvc.upload (1 s)
                  ✔ chargeFee            by svc.achSvc.charge (1 s)
                  🛑 cancel requested – citizen withdrew
                  ↩ chargeFee            by svc.achSvc.refund (1 s) compensated
                🛑 CANCELLED in 10 m 1 s – citizen withdrew

                """
        )
        #expect(report.state.record("updatePermitDB")?.status == .cancelled)
    }

    @Test(arguments: [true, false])
    func permitRenewalZoningApproval(approve: Bool) {
        let script = SimulationScript(
            approvals: [
                ScriptedApproval(at: .hours(2), step: "zoningApproval", approve: approve, actor: "officer#2", reason: approve ? nil : "zoning conflict")
            ]
        )
        let report = Simulation(playbook: Chapters.permitRenewalWithApproval, script: script).runCheckingTaskStatuses()
        if approve {
            #expect(report.status == .completed)
            #expect(report.state.record("zoningApproval")?.output?["actor"] == "officer#2")
            #expect(report.dispatches.last?.step == "updatePermitDB")
        } else {
            #expect(report.status == .failed)
            #expect(report.state.failure?.reason == "refused by officer#2: zoning conflict")
            #expect(steps(report, .stepCompleted, compensation: true) == ["chargeFee"])
        }
    }

    // MARK: Chapter 004 — epa_waste_reg

    @Test func epaWasteRegistrationReportsEachBreachOnce() {
        let script = SimulationScript(
            answers: [
                "collect_form": [.complete(after: .minutes(6))],
                "assign_inspector": [.complete(after: .hours(50), by: "inspector#12")],
            ],
            payload: ["form_id": "F8700-12-42"]
        )
        let report = Simulation(playbook: Chapters.epaWasteRegistration, script: script).runCheckingTaskStatuses()
        #expect(report.status == .completed)
        #expect(steps(report, .slaViolation) == ["collect_form", "assign_inspector"])
        #expect(steps(report, .slaWarning) == ["collect_form", "assign_inspector"])
        #expect(report.dispatches.map(\.target) == [
            .routingKey("task.collect_form"), .routingKey("task.validate_tax_id"), .routingKey("task.charge_fee"),
            .routingKey("task.assign_inspector"),
        ])
        #expect(report.duration == .minutes(6) + .seconds(2) + .hours(50))
        #expect(report.dispatches.allSatisfy { $0.payload == ["form_id": "F8700-12-42"] })
    }

    @Test func epaRunLeftWaitingWhenNobodyAnswers() {
        let script = SimulationScript(answers: ["assign_inspector": [.noAnswer]])
        let report = Simulation(playbook: Chapters.epaWasteRegistration, script: script).runCheckingTaskStatuses()
        #expect(report.status == .running)
        #expect(steps(report, .slaViolation) == ["assign_inspector"])
        #expect(render(report).hasSuffix("⏳ RUNNING – waiting, nothing more scripted\n"))
    }

    @Test func simulationIsDeterministic() {
        let script = SimulationScript(answers: ["classify": [.complete(after: .seconds(2), output: ["severity": "High"])]])
        let first = Simulation(playbook: Chapters.ftcComplaint, script: script).runCheckingTaskStatuses()
        let second = Simulation(playbook: Chapters.ftcComplaint, script: script).runCheckingTaskStatuses()
        #expect(first == second)
    }

    @Test(arguments: [("1.2s", 1_200), ("500ms", 500), ("4h", 14_400_000), ("1h30m", 5_400_000), ("0.5h", 1_800_000), ("2", 2_000)] as [(String, Int64)])
    func scriptDurations(text: String, milliseconds: Int64) throws {
        let json = #"{"answers": {"x": [{"after": "\#(text)"}]}, "signals": [{"at": 1.5, "name": "s"}]}"#
        let script = try JSONDecoder().decode(SimulationScript.self, from: Data(json.utf8))
        #expect(script.answers["x"]?.first?.after == .milliseconds(milliseconds))
        #expect(script.signals.first?.at == .milliseconds(1_500))
    }

    @Test func badScriptDurationIsADecodingError() {
        let json = #"{"answers": {"x": [{"after": "soon"}]}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SimulationScript.self, from: Data(json.utf8)) }
    }
}
