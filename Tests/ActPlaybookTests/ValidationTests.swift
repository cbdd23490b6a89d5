import ActPlaybook
import Testing

/// Each validation error: its code, its message and where it points (line:column).
@Suite struct ValidationTests {
    func loc(_ line: Int, _ column: Int) -> ActPlaybook.SourceLocation {
        ActPlaybook.SourceLocation(file: "p.yaml", line: line, column: column)
    }

    @Test func everyProblemIsListedAtOnce() {
        let found = refusal("""
            id: Many.v1
            trigger: x
            stepz: []
            steps:
              - id: a
                agent: BOT:x
                sla: soon
              - id: a
                next: nowhere
            """, file: "p.yaml")
        #expect(Set(found.codes) == ["unknown-key", "unknown-actor-type", "bad-duration", "duplicate-id", "missing-step"])
        #expect(found.allSatisfy { $0.location?.file == "p.yaml" })
    }

    @Test func emptyPlaybook() {
        let found = refusal("id: Empty.v1\ntrigger: x\nsteps: []\n", file: "p.yaml")
        #expect(found.codes == ["empty-playbook"])
        #expect(found[0].message == "the playbook has no steps")
        #expect(found[0].location == loc(3, 1))
        #expect(refusal("id: Empty.v1\ntrigger: x\n").codes == ["empty-playbook"])
    }

    @Test func missingIds() {
        let found = refusal("description: no id\ntrigger: x\nsteps:\n  - agent: ai.x\n", file: "p.yaml")
        #expect(found.codes == ["missing-id", "missing-id"])
        #expect(found[0].message == "the playbook has no id")
        #expect(found[0].location == loc(1, 1))
        #expect(found[1].message == "a step has no id")
        #expect(found[1].location == loc(4, 5))
    }

    @Test func duplicateIdsIncludingParallelBranches() {
        let found = refusal(playbook("""
              - id: notify
                parallel:
                  - id: email
                    call: POST /notify/email
                  - id: notify
                    call: POST /notify/sms
              - id: email
                agent: ai.x

            """), file: "p.yaml")
        #expect(found.codes == ["duplicate-id", "duplicate-id"])
        #expect(found[0].message == "the step id 'notify' is used twice (first at line 4)")
        #expect(found[0].location == loc(8, 13))
        #expect(found[1].message == "the step id 'email' is used twice (first at line 6)")
        #expect(found[1].location == loc(10, 9))
    }

    @Test func missingStepReferencesSuggestTheClosestId() {
        let found = refusal(playbook("""
              - id: review
                actor: HUMAN:investigator
                on_timeout: escalte
                on_failure: zzz
              - id: escalate
                actor: HUMAN:supervisor
                when: step(reviw).timeout

            """), file: "p.yaml")
        #expect(found.codes == ["missing-step", "missing-step", "missing-step"])
        #expect(found[0].message == "on_timeout of step 'review' goes to 'escalte', which is not a step of this playbook")
        #expect(found[0].fix == "did you mean 'escalate'?")
        #expect(found[0].location == loc(6, 17))
        #expect(found[1].fix == "use one of: review, escalate")
        #expect(found[2].message
            == "'when' of step 'escalate' asks about step(reviw), which is not a step of this playbook")
        #expect(found[2].fix == "did you mean 'review'?")
        #expect(found[2].location == loc(10, 11))
    }

    @Test func switchCaseAndDefaultReferences() {
        let found = refusal(playbook("""
              - id: route
                type: switch
                expr: result.severity
                cases:
                  High: route
                  Low: lw
                default: route
              - id: low

            """), file: "p.yaml")
        #expect(found.codes == ["self-case", "missing-step", "self-case", "unreachable-step"])
        #expect(found[0].message
            == "case 'High' of switch 'route' goes back to the switch itself, which would loop forever")
        #expect(found[0].location == loc(8, 13))
        #expect(found[1].message == "case 'Low' of step 'route' goes to 'lw', which is not a step of this playbook")
        #expect(found[1].location == loc(9, 12))
        #expect(found[2].location == loc(10, 14))
    }

    @Test func unknownKeysSayWhatTheyMightBe() {
        let found = refusal(playbook("""
              - id: a
                agnet: ai.x
                retry: {max: 2, backof: fixed}
                sla: {duraton: 4h}

            """, header: "id: K.v1\ntrigers: x\n"), file: "p.yaml")
        #expect(found.with(code: "unknown-key").map(\.message) == [
            "unknown key 'trigers' at the top level of a playbook",
            "unknown key 'agnet' in a step",
            "unknown key 'backof' in 'retry'",
            "unknown key 'duraton' in 'sla'",
        ])
        #expect(found.with(code: "unknown-key").map(\.fix) == [
            "did you mean 'trigger'?", "did you mean 'agent'?", "did you mean 'backoff'?", "did you mean 'duration'?",
        ])
        #expect(found[0].location == loc(2, 1))
        #expect(found[1].location == loc(5, 5))
        #expect(found[2].location == loc(6, 21))
    }

    @Test func unknownAgentKeys() {
        do {
            _ = try PlaybookLoader.loadAgents(yaml: "{\"id\": \"ai.x\", \"skils\": [\"a\"]}", file: "a.json")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.codes == ["unknown-key"])
            #expect(error.diagnostics[0].fix == "did you mean 'skills'?")
            #expect(error.diagnostics[0].location == ActPlaybook.SourceLocation(file: "a.json", line: 1, column: 16))
        }
    }

    @Test func badDurationsSayTheAcceptedForms() {
        let found = refusal(playbook("""
              - id: a
                sla: 4 hours
              - id: b
                sla: 5
              - id: c
                sla: [4h]
              - id: d
                wait_days: soon

            """), file: "p.yaml")
        #expect(found.codes == ["bad-duration", "bad-duration", "wrong-type", "bad-duration"])
        #expect(found[0].message == "'4 hours' is not a duration (for 'sla')")
        #expect(found[0].fix == "write a number with a unit: 500ms, 30s, 5m, 4h, 48h, 5d, or combined like 1h30m")
        #expect(found[0].location == loc(5, 10))
        #expect(found[1].message == "'5' for 'sla' has no unit")
        #expect(found[2].message == "expected a duration like 4h for 'sla', got a list")
        #expect(found[3].message == "expected a positive number for 'wait_days', got a string")
    }

    /// A span the database cannot hold used to validate and then wedge every batch that scheduled it
    /// (SQLSTATE 22008): spans are refused past ten years, in every spelling.
    @Test func durationsLongerThanTenYearsAreRefused() {
        let found = refusal(playbook("""
              - id: a
                agent: ai.a
                sla: 300000000d
              - id: b
                wait: 3651d
              - id: c
                wait_days: 100000
              - id: d
                agent: ai.d
                sla: 3650d

            """), file: "p.yaml")
        #expect(found.codes == ["bad-duration", "bad-duration", "bad-duration"])
        #expect(found[0].message == "'300000000d' for 'sla' is longer than 3650d (10 years), the longest span a timer holds")
        #expect(found[0].fix == "write a duration of at most 3650d, e.g. `sla: 365d`")
        #expect(found[0].location == loc(6, 10))
        #expect(found[1].message.hasPrefix("'3651d' for 'wait'"))
        #expect(found[2].message == "expected a positive number for 'wait_days', got a number (100000)")
    }

    @Test func badExpressionsPointAtTheColumnInTheFile() {
        let found = refusal(playbook("""
              - id: a
                when: payload.amount >> 3
              - id: b
                expr: "result.severity == "
                cases: {x: a}
                default: c
              - id: c

            """), file: "p.yaml")
        #expect(found.codes == ["bad-expression", "bad-expression"])
        #expect(found[0].message.hasPrefix("invalid expression: expected a value"))
        #expect(found[0].message.hasSuffix("(column 17 of the expression)"))
        #expect(found[0].location == loc(5, 27))
        #expect(found[1].location == loc(7, 31))
    }

    @Test func unreachableSteps() {
        let found = refusal(playbook("""
              - id: a
                next: c
              - id: b
              - id: c

            """), file: "p.yaml")
        #expect(found.codes == ["unreachable-step"])
        #expect(found[0].message == "step 'b' can never run: no path from the first step 'a' leads to it")
        #expect(found[0].location == loc(6, 9))
    }

    @Test func onTimeoutAndOnFailureEdgesCountForReachability() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: a
                sla: 1h
                on_timeout: late
                on_failure: broken
                next: done
              - id: late
                next: done
              - id: broken
                next: done
              - id: done

            """))
        #expect(loaded.warnings.isEmpty)
    }

    @Test func cyclesWithoutExit() {
        let found = refusal(playbook("""
              - id: a
                next: b
              - id: b
                next: c
              - id: c
                next: b

            """), file: "p.yaml")
        #expect(found.codes == ["cycle-without-exit"])
        #expect(found[0].message == "steps 'b', 'c' form a cycle with no way out: a run entering it never ends")
        #expect(found[0].location == loc(6, 9))
    }

    @Test func cyclesWithAnExitAreFine() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: check
                agent: ai.checker
              - id: decide
                expr: result.ok
                cases:
                  "false": check
                default: done
              - id: done

            """))
        #expect(loaded.warnings.isEmpty)
    }

    @Test func switchWithoutDefaultIsAWarning() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: route
                expr: result.kind
                cases: {a: x}
              - id: x

            """), file: "p.yaml")
        #expect(loaded.warnings.codes == ["switch-without-default"])
        #expect(loaded.warnings[0].severity == .warning)
        #expect(loaded.warnings[0].fix == "add `default: <step id>` for values no case names")
        #expect(loaded.warnings[0].location == loc(4, 9))
    }

    @Test func wrongValueTypes() {
        let found = refusal(playbook("""
              - id: a
                agent: [ai.x]
                retry: lots
                pause: maybe
                skills: {a: b}
              - just a string

            """), file: "p.yaml")
        #expect(found.codes == ["wrong-type", "wrong-type", "wrong-type", "wrong-type", "wrong-type"])
        #expect(found[0].message == "expected a name for 'agent', got a list")
        #expect(found[1].message == "expected a whole number from 0 to 100 for 'retry', got a string")
        #expect(found[2].message == "expected true or false for 'pause', got a string")
        #expect(found[3].location == loc(8, 13))
        #expect(found[4].message
            == "expected a step (a mapping with id and what to do), got a string")
    }

    @Test func unknownActorTypeSaysWhichPrefixesExist() {
        let found = refusal(playbook("  - id: a\n    actor: BOT:helper\n"), file: "p.yaml")
        #expect(found.codes == ["unknown-actor-type"])
        #expect(found[0].message == "unknown actor type in 'BOT:helper'")
        #expect(found[0].fix?.hasPrefix("use AI:, HUMAN: or SVC: (or ai./human./svc.)") == true)
        #expect(found[0].location == loc(5, 12))
    }

    @Test func conflictingKeysAndKinds() {
        let found = refusal(playbook("""
              - id: a
                agent: ai.x
                service: s.y
                next: b
                on_complete: b
              - id: b
                wait: 5d
                agent: ai.x
              - id: c
                type: task
                expr: x

            """))
        #expect(found.codes == ["conflicting-keys", "conflicting-keys", "conflicting-step-kind", "key-not-allowed"])
    }

    @Test func badCallAndTimeZone() throws {
        #expect(refusal(playbook("  - id: a\n    call: /finance/freeze\n")).codes == ["bad-call"])
        do {
            _ = try PlaybookLoader.loadAgents(yaml: "id: human.x\nshift: 8:00-22:00\ntimezone: Mars/Olympus\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.codes == ["unknown-time-zone"])
            #expect(error.diagnostics[0].location?.line == 3)
        }
    }

    @Test func descriptionFormat() {
        let diagnostic = Diagnostic.error("missing-step", "x goes nowhere", fix: "did you mean 'y'?",
            at: ActPlaybook.SourceLocation(file: "a.yaml", line: 3, column: 7))
        #expect(diagnostic.description == "a.yaml:3:7: error: x goes nowhere\n  fix: did you mean 'y'?")
        #expect(Diagnostic.warning("w", "careful").description == "warning: careful")
    }

    @Test func validateFindsAgentsMissingFromTheRegistry() {
        let playbook = Playbook(id: "p", triggers: ["t"], steps: [
            Step(id: "a", kind: .task(TaskSpec(assignee: Assignee(kind: .ai, name: "clasifier"), skills: ["x"])))
        ])
        let agents = [Agent(id: "ai.classifier", skills: ["y"])]
        let found = playbook.validate(agents: agents)
        #expect(found.codes == ["unknown-agent", "no-agent-with-skills"])
        #expect(found[0].fix == "did you mean 'ai.classifier'?")
        #expect(found.allSatisfy { $0.severity == .warning })
    }
}
