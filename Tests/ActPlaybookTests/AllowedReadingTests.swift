import ActPlaybook
import Foundation
import Testing

/// A task step's `allowed:`: who may answer or approve it (docs/playbooks.md, "Who may answer a step").
@Suite struct AllowedReadingTests {
    @Test func patternsReadAsWritten() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: zoningApproval
                service: zoningPortal.approve
                pause: true
                allowed: [officer#*, supervisor#4]
              - id: review
                agent: human.reviewer
                allowed: "*"

            """))
        let specs = loaded.playbook.steps.compactMap { step -> TaskSpec? in
            if case .task(let spec) = step.kind { return spec }
            return nil
        }
        #expect(specs.map(\.allowed) == [["officer#*", "supervisor#4"], ["*"]])
        // A model stored before `allowed:` existed still decodes (the key is optional).
        let old = #"{"assignee":{"kind":"human","name":"x","written":"human.x"},"skills":[],"mode":"single","requiresApproval":false}"#
        #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(old.utf8)).allowed == nil)
    }

    @Test(arguments: [
        ("allowed: []", "bad-value", "nobody"),
        ("allowed: [off*cer]", "bad-value", "trailing *"),
        ("allowed: [\"officer #4\"]", "bad-value", "space"),
        ("allowed: {officer: 4}", "wrong-type", "actor pattern"),
        ("alowed: [officer#*]", "unknown-key", "allowed"),
    ])
    func mistakesAreReportedOnTheirLine(line: String, code: String, says: String) {
        let found = refusal(playbook("  - id: approve\n    agent: human.x\n    \(line)\n"))
        let diagnostic = found.with(code: code).first
        #expect(diagnostic != nil, "expected \(code) for \(line), got \(found.codes)")
        #expect(diagnostic?.location?.line == 6)  // two header lines, `steps:`, the step's id and agent, then allowed
        let text = [diagnostic?.message, diagnostic?.fix].compactMap { $0 }.joined(separator: " ")
        #expect(text.contains(says), "\(text)")
    }

    /// Nobody outside answers a sub-playbook step (its child run does) or a `call:` step (the HTTP response does).
    @Test(arguments: ["playbook: SiteInspection.v1", "call: POST /finance/freeze"])
    func notOnStepsHmsActCompletesItself(assignee: String) {
        let found = refusal(playbook("  - id: work\n    \(assignee)\n    allowed: [officer#*]\n"))
        let diagnostic = found.with(code: "key-not-allowed").first
        #expect(diagnostic?.location?.line == 6, "\(found.codes)")
        #expect(diagnostic?.message.contains("completes it") == true)
    }

    /// A model built in code is checked as well.
    @Test func aModelBuiltInCodeIsChecked() {
        var spec = TaskSpec(assignee: Assignee(kind: .human, name: "desk"), requiresApproval: true)
        spec.allowed = ["off*cer"]
        let model = Playbook(id: "Permit", triggers: ["PermitFiled"], steps: [Step(id: "approve", kind: .task(spec))])
        #expect(model.validate().contains { $0.code == "bad-value" && $0.message.contains("off*cer") })
    }
}
