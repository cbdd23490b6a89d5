import ActPlaybook
import Testing

/// `playbook:` steps as written: the assignee, `${…}` input, and the keys that do not belong.
@Suite struct SubPlaybookReadingTests {
    @Test func readsAPlaybookStepWithItsInputMapping() throws {
        let yaml = """
            id: PermitSweep.v1
            trigger: permit.sweep
            steps:
              - id: inspect
                playbook: SiteInspection.v1
                input:
                  address: ${payload.address}
                  priority: high
                retry: 2
            """
        let loaded = try PlaybookLoader.load(yaml: yaml, file: "sweep.yaml")
        guard case .task(let spec) = try #require(loaded.playbook.steps.first).kind else {
            Issue.record("not a task step")
            return
        }
        #expect(spec.assignee == Assignee(kind: .playbook, name: "SiteInspection.v1", written: "SiteInspection.v1"))
        #expect(spec.input == ["address": "${payload.address}", "priority": "high"])
        #expect(loaded.warnings.allSatisfy { !$0.isError })
    }

    @Test(arguments: [
        ("playbook: SiteInspection.v1\n    agent: ai.x", "conflicting-keys", "names its assignee twice"),
        ("playbook: SiteInspection.v1\n    mode: fan-out", "key-not-allowed", "does not belong on a sub-playbook step"),
        ("playbook: SiteInspection.v1\n    pause: true", "key-not-allowed", "the child run does the work"),
        ("playbook: Site Inspection", "bad-playbook-reference", "is not a playbook id"),
        ("playbook: SiteInspection.v1\n    input: {address: '${payload.}'}", "bad-expression", "in input.address of step 'inspect'"),
    ])
    func refusesWhatDoesNotBelong(step: String, code: String, message: String) throws {
        let yaml = "id: P.v1\ntrigger: p\nsteps:\n  - id: inspect\n    \(step)\n"
        let diagnostics: [Diagnostic]
        do {
            diagnostics = try PlaybookLoader.load(yaml: yaml, file: "p.yaml").warnings
        } catch {
            diagnostics = error.diagnostics
        }
        let found = diagnostics.first { $0.code == code }
        #expect(found?.message.contains(message) == true, "\(diagnostics.map(\.description))")
        #expect(found?.fix?.isEmpty == false)
    }
}
