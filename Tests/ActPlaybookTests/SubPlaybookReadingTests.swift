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
        let diagnostics = diagnostics(loading: yaml)
        let found = diagnostics.first { $0.code == code }
        #expect(found?.message.contains(message) == true, "\(diagnostics.map(\.description))")
        #expect(found?.fix?.isEmpty == false)
    }
}

/// `for_each:` as written: the list expression with or without `${…}`, the limit and the tolerance, and what is
/// refused.
@Suite struct ForEachReadingTests {
    @Test func readsTheListTheLimitAndTheTolerance() throws {
        for (written, tolerated) in [("${payload.attachments}", "10%"), ("steps.collect.output.files", "3")] {
            let yaml = """
                id: Scan.v1
                trigger: scan
                steps:
                  - id: scan
                    agent: ai.scanner
                    for_each: \(written)
                    max_concurrency: 20
                    tolerated_failures: \(tolerated)
                    input: {file: "${item.name}"}
                """
            let loaded = try PlaybookLoader.load(yaml: yaml, file: "scan.yaml")
            guard case .task(let spec) = try #require(loaded.playbook.steps.first).kind else { return }
            let forEach = try #require(spec.forEach)
            #expect(forEach.maxConcurrency == 20)
            #expect(forEach.tolerated == (tolerated == "3" ? .count(3) : .percent(10)))
            #expect(forEach.itemsSource == (written.hasPrefix("${") ? "payload.attachments" : written))
        }
    }

    @Test(arguments: [
        ("for_each: ${payload.}", "bad-expression", "invalid expression in 'for_each' of step 'scan'"),
        ("for_each: ${payload.files}\n    max_concurrency: 0", "wrong-type", "from 1 to 1000 for 'max_concurrency'"),
        ("for_each: ${payload.files}\n    tolerated_failures: lots", "bad-value", "a count like 3 or a percentage like 10%"),
        ("for_each: ${payload.files}\n    tolerated_failures: 120%", "bad-value", "a count like 3 or a percentage"),
        ("max_concurrency: 5", "key-not-allowed", "'max_concurrency' is for a step with 'for_each:'"),
        ("for_each: ${payload.files}\n    mode: fan-out", "key-not-allowed", "'mode' does not belong on a step with 'for_each:'"),
    ])
    func refusesWhatDoesNotBelong(step: String, code: String, message: String) throws {
        let yaml = "id: P.v1\ntrigger: p\nsteps:\n  - id: scan\n    agent: ai.scanner\n    \(step)\n"
        let diagnostics = diagnostics(loading: yaml)
        let found = diagnostics.first { $0.code == code }
        #expect(found?.message.contains(message) == true, "\(diagnostics.map(\.description))")
        #expect(found?.isError == true)
    }
}
