import ActPlaybook
import Foundation
import Testing

/// Every example of the five chapters, copied verbatim into Fixtures/, loads unchanged (or, for the
/// one that is not valid YAML as printed, is refused with a message that shows the fix).
@Suite struct ChapterExampleTests {
    @Test func noiseComplaintFromChapter000Loads() throws {
        let loaded = try PlaybookLoader.load(yaml: try Fixture.text("chapter000.noise_complaint.yaml"), file: "nc.yaml")
        let playbook = loaded.playbook
        #expect(playbook.id == "NoiseComplaint.v1")
        #expect(playbook.description == "Handle citizen noise complaints")
        #expect(playbook.steps.map(\.id) == ["intake", "triage", "assign_inspector", "inspection", "resolution"])
        #expect(loaded.warnings.codes == ["no-trigger"])
        let inspection = try #require(playbook.step("inspection"))
        #expect(inspection.retry.maxRetries == 2)
        guard case .task(let spec) = inspection.kind else {
            Issue.record("inspection is not a task")
            return
        }
        #expect(spec.assignee == Assignee(kind: .human, name: "field_inspector", written: "human.field_inspector"))
        #expect(spec.assignee.routingKey == "task.human.field_inspector")
        #expect(inspection.location == ActPlaybook.SourceLocation(file: "nc.yaml", line: 10, column: 9))
    }

    @Test func fieldInspectorAgentFromChapter000LoadsWithItsCommentLine() throws {
        let agents = try PlaybookLoader.loadAgents(yaml: try Fixture.text("chapter000.human.field_inspector.json"))
        #expect(agents.count == 1)
        let agent = try #require(agents.first)
        #expect(agent.id == "human.field_inspector")
        #expect(agent.skills == ["noise-meter", "photos"])
        #expect(agent.shift == Shift(startMinute: 8 * 60, endMinute: 22 * 60, timeZone: "UTC"))
        #expect(agent.queue == "inspection.queue")
    }

    @Test func ftcComplaintFromChapter001LoadsWithAWarningForTheMissingDefault() throws {
        let loaded = try PlaybookLoader.load(yaml: try Fixture.text("chapter001.ftc_complaint.yaml"), file: "ftc.yml")
        let playbook = loaded.playbook
        #expect(playbook.id == "FTC-Complaint")
        #expect(playbook.triggers == ["ComplaintLogged"])
        #expect(loaded.warnings.codes == ["switch-without-default"])
        #expect(loaded.warnings.first?.location?.line == 8)
        #expect(loaded.warnings.first?.message == "switch 'severity_branch' has no default: the run fails when no case matches")

        #expect(playbook.step("classify")?.next == "severity_branch")
        guard case .choice(let choice) = playbook.step("severity_branch")?.kind else {
            Issue.record("severity_branch is not a switch")
            return
        }
        #expect(choice.expression == .path(["result", "severity"]))
        #expect(choice.expressionSource == "result.severity")
        #expect(choice.cases.map(\.match) == ["High", "Low"])
        #expect(choice.cases.map(\.target) == ["human_review", "notify_citizen"])
        #expect(choice.defaultTarget == nil)

        let review = try #require(playbook.step("human_review"))
        #expect(review.sla == SLA(duration: .hours(4)))
        #expect(review.onTimeout == "escalate")
        #expect(review.next == "notify_citizen")
        guard case .task(let spec) = review.kind else { return }
        #expect(spec.assignee.kind == .human)
        #expect(spec.assignee.name == "investigator")
        #expect(spec.assignee.written == "HUMAN:investigator")
        guard case .task(let notify) = playbook.step("notify_citizen")?.kind else { return }
        #expect(notify.assignee.kind == .service)
        #expect(notify.assignee.label == "svc.email-svc")
    }

    @Test func paymentFailedFromChapter002Loads() throws {
        let loaded = try PlaybookLoader.load(yaml: try Fixture.text("chapter002.payment_failed.yaml"))
        let playbook = loaded.playbook
        #expect(loaded.warnings.isEmpty)
        #expect(playbook.triggers == ["payment_failed"])
        guard case .task(let freeze) = playbook.step("freeze_payments")?.kind else { return }
        #expect(freeze.assignee == Assignee(kind: .call, name: "/finance/freeze", method: "POST",
            written: "POST /finance/freeze"))
        #expect(freeze.assignee.routingKey == "task.call.post.finance.freeze")
        guard case .parallel(let parallel) = playbook.step("notify_citizen")?.kind else {
            Issue.record("notify_citizen is not a parallel block")
            return
        }
        #expect(parallel.branches.map(\.id) == ["notify_citizen.1", "notify_citizen.2"])
        #expect(parallel.join == .allMustSucceed)
        guard case .wait(let wait) = playbook.step("wait_for_fix")?.kind else { return }
        #expect(wait == Wait(duration: .days(5), signal: "wait_for_fix"))
        #expect(playbook.step("escalate")?.when == .stepCondition("wait_for_fix", .timeout))
    }

    @Test func zoningApprovalStepFromChapter003LoadsUnderSteps() throws {
        let snippet = try Fixture.text("chapter003.zoning_approval.yaml")
        let loaded = try PlaybookLoader.load(yaml: "id: zoning\ntrigger: permit.renewal.requested\nsteps:\n" + snippet)
        guard case .task(let spec) = loaded.playbook.steps.first?.kind else { return }
        #expect(spec.requiresApproval)
        #expect(spec.assignee == Assignee(kind: .service, name: "zoningPortal.approve", written: "zoningPortal.approve"))
    }

    @Test func epaWasteRegistrationFromChapter004LoadsFromJSON() throws {
        let loaded = try PlaybookLoader.load(yaml: try Fixture.text("chapter004.epa_waste_reg.json"))
        let steps = loaded.playbook.steps
        #expect(steps.map(\.id) == ["collect_form", "validate_tax_id", "charge_fee", "assign_inspector"])
        #expect(steps.map(\.sla) == [.minutes(5), .minutes(2), .minutes(1), .hours(48)].map { SLA(duration: $0) })
        guard case .task(let spec) = steps[1].kind else { return }
        #expect(spec.assignee == Assignee(kind: .topic, name: "validate_tax_id"))
        #expect(spec.assignee.routingKey == "task.validate_tax_id")
    }

    @Test func epaWasteRegistrationBuiltFromCodeValidates() {
        let steps: [Step] = [("collect_form", 5), ("validate_tax_id", 2), ("charge_fee", 1)].map { id, minutes in
            Step(id: StepID(id), kind: .task(TaskSpec(assignee: Assignee(kind: .topic, name: id))),
                sla: SLA(duration: .minutes(Int64(minutes))))
        }
        let playbook = Playbook(id: "epa_waste_reg", triggers: ["epa.waste_registration.submitted"], steps: steps)
        #expect(playbook.validate().isEmpty)
        var broken = playbook
        broken.steps[0].next = "charge_fe"
        let found = broken.validate()
        #expect(found.codes == ["missing-step", "unreachable-step", "unreachable-step"])
        #expect(found.first?.fix == "did you mean 'charge_fee'?")
    }

    @Test func permitRenewalAsPrintedInChapter003IsRefusedWithTheCorrectedForm() throws {
        let found = refusal(try Fixture.text("permit-renewal.printed.yaml"), file: "permit-renewal.yaml")
        #expect(found.codes == ["several-keys-on-one-line", "several-keys-on-one-line", "several-keys-on-one-line"])
        let first = try #require(found.first)
        #expect(first.location == ActPlaybook.SourceLocation(file: "permit-renewal.yaml", line: 3, column: 24))
        #expect(first.message == "'service:' follows 'id:' on the same line; in YAML each key of a mapping starts a line of its own")
        #expect(first.fix == """
            put each key on its own line, indented under '- ':
              - id: uploadDocs
                service: fileSvc.upload
            """)
        #expect(found[1].location?.line == 4)
        #expect(found[1].fix?.hasSuffix("""
              - id: chargeFee
                service: achSvc.charge
                compensate: achSvc.refund
            """) == true)
        #expect(first.description.hasPrefix("permit-renewal.yaml:3:24: error: 'service:' follows 'id:'"))
    }

    @Test(arguments: ["noise_complaint", "ftc_complaint", "payment_failed", "permit_renewal", "epa_waste_reg"])
    func projectPlaybookLoadsWithTheProjectAgents(name: String) throws {
        let root = Fixture.packageRoot
        let path = root.appendingPathComponent("playbooks/\(name).yaml").path
        let loaded = try PlaybookLoader.load(contentsOf: path)
        let agents = try PlaybookLoader.loadAgentDirectory(root.appendingPathComponent("agents").path)
        let warnings = loaded.playbook.validate(agents: agents)
        #expect(!loaded.playbook.triggers.isEmpty)
        #expect(warnings.filter { $0.code != "switch-without-default" }.isEmpty, "\(warnings)")
    }
}
