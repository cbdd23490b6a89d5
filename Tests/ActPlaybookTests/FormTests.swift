import ActPlaybook
import Foundation
import Testing

/// A task step's `form:`: the fields a person fills in at the console's desk (docs/playbooks.md, "Forms").
@Suite struct FormTests {
    @Test func fieldsReadWithTheirDefaults() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: inspect
                agent: human.field_inspector
                form:
                  - {name: noise_level_db, type: number, label: "Measured level (dB)", required: true}
                  - {name: verdict, type: choice, options: [confirmed, dismissed]}
                  - name: notes
                  - {name: photos_taken, type: boolean}

            """))
        guard case .task(let spec)? = loaded.playbook.steps.first?.kind else { throw CancellationError() }
        #expect(spec.form == [
            FormField(name: "noise_level_db", kind: .number, label: "Measured level (dB)", required: true),
            FormField(name: "verdict", kind: .choice, options: ["confirmed", "dismissed"]),
            FormField(name: "notes"),
            FormField(name: "photos_taken", kind: .boolean),
        ])
        // A model stored before `form:` existed still decodes (the key is optional).
        let old = #"{"assignee":{"kind":"human","name":"x","written":"human.x"},"skills":[],"mode":"single","requiresApproval":false}"#
        #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(old.utf8)).form == nil)
    }

    @Test(arguments: [
        ("form: {name: a}", "wrong-type"),
        ("form: [verdict]", "wrong-type"),
        ("form: [{type: text}]", "missing-key"),
        ("form: [{name: a b}]", "bad-value"),
        ("form: [{name: a}, {name: a}]", "duplicate-field"),
        ("form: [{name: a, type: nummber}]", "bad-value"),
        ("form: [{name: a, type: choice}]", "missing-key"),
        ("form: [{name: a, options: [x]}]", "bad-value"),
        ("form: [{name: a, requird: true}]", "unknown-key"),
        ("form: [{name: a, required: yes please}]", "wrong-type"),
    ])
    func mistakesAreReportedOnTheFormsLine(line: String, code: String) {
        let found = refusal(playbook("  - id: inspect\n    agent: human.x\n    \(line)\n"))
        let diagnostic = found.with(code: code).first
        #expect(diagnostic != nil, "expected \(code) for \(line), got \(found.codes)")
        #expect(diagnostic?.location?.line == 6)  // two header lines, `steps:`, the step's id and agent, then form
        #expect(diagnostic?.fix != nil)
    }

    @Test func aMistypedTypeGetsASuggestion() {
        let found = refusal(playbook("  - id: inspect\n    agent: human.x\n    form: [{name: a, type: nummber}]\n"))
        #expect(found.first?.fix?.contains("number") == true)
    }
}
