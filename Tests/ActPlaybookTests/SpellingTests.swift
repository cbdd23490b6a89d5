import ActPlaybook
import Testing

/// Every spelling DESIGN.md §2 accepts, normalised into the one model.
@Suite struct SpellingTests {
    func task(_ yaml: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> (Step, TaskSpec) {
        let loaded = try PlaybookLoader.load(yaml: playbook(yaml))
        let step = try #require(loaded.playbook.steps.first, sourceLocation: sourceLocation)
        guard case .task(let spec) = step.kind else {
            Issue.record("not a task: \(step.kind)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return (step, spec)
    }

    @Test(arguments: [
        ("agent: ai.auto_intake", Assignee.Kind.ai, "auto_intake"),
        ("agent: human.dispatcher", .human, "dispatcher"),
        ("agent: svc.email-svc", .service, "email-svc"),
        ("actor: AI:fraud-labeler", .ai, "fraud-labeler"),
        ("actor: HUMAN:investigator", .human, "investigator"),
        ("actor: SVC:email-svc", .service, "email-svc"),
        ("agent: HUMAN:investigator", .human, "investigator"),
        ("actor: human.field_inspector", .human, "field_inspector"),
        ("service: achSvc.charge", .service, "achSvc.charge"),
    ])
    func assigneeSpellings(line: String, kind: Assignee.Kind, name: String) throws {
        let (_, spec) = try task("  - id: a\n    \(line)\n")
        #expect(spec.assignee.kind == kind)
        #expect(spec.assignee.name == name)
        #expect(spec.assignee.written == String(line.split(separator: " ", maxSplits: 1)[1]))
    }

    /// `on_failure:` at the top level is a policy; in a step it names a step.
    @Test func topLevelOnFailureIsAPolicy() throws {
        let steps = "steps:\n  - id: a\n    agent: ai.x\n    on_failure: b\n  - id: b\n    agent: ai.y\n"
        let held = try PlaybookLoader.load(yaml: "id: p\ntrigger: t\non_failure: incident\n" + steps).playbook
        #expect(held.onFailure == .incident && held.steps.first?.onFailure == "b")
        #expect(try PlaybookLoader.load(yaml: "id: p\ntrigger: t\non_failure: fail\n" + steps).playbook.onFailure == .fail)
        #expect(try PlaybookLoader.load(yaml: "id: p\ntrigger: t\n" + steps).playbook.onFailure == nil)
        let refused = refusal("id: p\ntrigger: t\non_failure: b\n" + steps)
        #expect(refused.codes == ["bad-value"])
        #expect(refused.first?.location?.line == 3 && refused.first?.fix?.contains("on_failure: incident") == true)
    }

    @Test func callSpelling() throws {
        let (_, spec) = try task("  - id: a\n    call: post /notify/email\n")
        #expect(spec.assignee.kind == .call)
        #expect(spec.assignee.method == "POST")
        #expect(spec.assignee.name == "/notify/email")
    }

    @Test func noAssigneeGoesToTheStepTopic() throws {
        let (_, spec) = try task("  - id: collect_form\n    sla: \"5m\"\n")
        #expect(spec.assignee == Assignee(kind: .topic, name: "collect_form"))
    }

    @Test func triggerAndStartAcceptOneOrAList() throws {
        let one = try PlaybookLoader.load(yaml: "id: p\nstart: a.b\nsteps:\n  - id: s\n")
        #expect(one.playbook.triggers == ["a.b"])
        let list = try PlaybookLoader.load(yaml: "id: p\ntrigger: [a.b, c.d]\nsteps:\n  - id: s\n")
        #expect(list.playbook.triggers == ["a.b", "c.d"])
        let none = try PlaybookLoader.load(yaml: "id: p\nsteps:\n  - id: s\n")
        #expect(none.playbook.triggers.isEmpty)
        #expect(none.warnings.codes == ["no-trigger"])
    }

    @Test func retryCountAndPolicy() throws {
        let (count, _) = try task("  - id: a\n    retry: 2\n")
        #expect(count.retry == RetryPolicy(maxRetries: 2))
        let (policy, _) = try task(
            "  - id: a\n    retry: {max: 4, backoff: fixed, initial: 10s, max_interval: 1m}\n")
        #expect(policy.retry == RetryPolicy(maxRetries: 4, backoff: .fixed, initial: .seconds(10), maxInterval: .minutes(1)))
    }

    @Test(arguments: [("5m", TimeSpan.minutes(5)), ("\"4h\"", .hours(4)), ("48h", .hours(48)), ("5d", .days(5)),
        ("'1h30m'", .minutes(90))])
    func slaSpellings(written: String, span: TimeSpan) throws {
        let (step, _) = try task("  - id: a\n    sla: \(written)\n")
        #expect(step.sla == SLA(duration: span))
        #expect(step.sla?.warning == nil)
    }

    @Test func slaWithWarning() throws {
        let (step, _) = try task("  - id: a\n    sla: {duration: 4h, warn_at: 3h}\n")
        #expect(step.sla == SLA(duration: .hours(4), warning: .hours(3)))
    }

    @Test func transitionsAndCompensation() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: a
                service: achSvc.charge
                next: c
                on_failure: b
                on_timeout: b
                sla: 1h
                compensate: achSvc.refund
                when: payload.amount > 0
              - id: b
                agent: human.clerk
                compensate: {call: POST /finance/unfreeze}
                on_complete: c
              - id: c
                agent: ai.bot

            """))
        let a = try #require(loaded.playbook.step("a"))
        #expect(a.next == "c")
        #expect(a.onFailure == "b")
        #expect(a.onTimeout == "b")
        #expect(a.compensate == Assignee(kind: .service, name: "achSvc.refund", written: "achSvc.refund"))
        #expect(a.when == .compare(.greater, .path(["payload", "amount"]), .literal(0)))
        #expect(loaded.playbook.step("b")?.compensate?.kind == .call)
        #expect(loaded.playbook.step("b")?.next == "c")
    }

    @Test func switchKeepsCaseOrderAndDefault() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: route
                expr: result.score
                cases:
                  "3": c
                  1: a
                  true: b
                default: a
              - id: a
              - id: b
              - id: c

            """))
        guard case .choice(let choice) = loaded.playbook.steps[0].kind else {
            Issue.record("not a switch")
            return
        }
        #expect(choice.cases.map(\.match) == ["3", "1", "true"])
        #expect(choice.defaultTarget == "a")
        #expect(loaded.warnings.isEmpty)
    }

    @Test func parallelWithIdsAndJoin() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: notify
                join: all_finished
                parallel:
                  - id: email
                    call: POST /notify/email
                  - call: POST /notify/sms
                    retry: 1

            """))
        guard case .parallel(let parallel) = loaded.playbook.steps[0].kind else { return }
        #expect(parallel.branches.map(\.id) == ["email", "notify.2"])
        #expect(parallel.join == .allMustFinish)
        #expect(parallel.branches[1].retry.maxRetries == 1)
    }

    @Test(arguments: [
        ("wait: 5d", TimeSpan.days(5)), ("wait_days: 5", .days(5)), ("wait_hours: 36", .hours(36)),
        ("wait_minutes: 90", .minutes(90)), ("wait_days: 1.5", .hours(36)),
    ])
    func waitSpellings(line: String, span: TimeSpan) throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("  - id: hold\n    \(line)\n"))
        #expect(loaded.playbook.steps[0].kind == .wait(Wait(duration: span, signal: "hold")))
    }

    @Test func waitWithNamedSignalAndExplicitType() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("  - id: hold\n    type: wait\n    until_signal: bank.updated\n"))
        #expect(loaded.playbook.steps[0].kind == .wait(Wait(duration: nil, signal: "bank.updated")))
    }

    @Test func fanOutPauseSkillsInputDescription() throws {
        let (step, spec) = try task("""
              - id: inspect
                description: Inspect on site
                type: task
                agent: human.field_inspector
                mode: fan-out
                pause: true
                skills: [noise-meter, photos]
                input: {max_db: 65, tags: [night], note: null, ok: true}

            """)
        #expect(step.description == "Inspect on site")
        #expect(spec.mode == .fanOut)
        #expect(spec.requiresApproval)
        #expect(spec.skills == ["noise-meter", "photos"])
        #expect(spec.input == ["max_db": 65, "tags": ["night"], "note": nil, "ok": true])
    }

    @Test func mergeKeysShareSettings() throws {
        let loaded = try PlaybookLoader.load(yaml: playbook("""
              - id: a
                <<: &common {retry: 3, sla: 1h}
                agent: ai.x
              - id: b
                <<: *common
                agent: ai.y
                sla: 2h

            """))
        #expect(loaded.playbook.steps.map(\.retry.maxRetries) == [3, 3])
        #expect(loaded.playbook.steps.map(\.sla?.duration) == [.hours(1), .hours(2)])
    }

    @Test func decodeUsesTheSameLimits() throws {
        struct Script: Decodable, Equatable {
            var name: String
            var steps: [String]
        }
        let script = try PlaybookLoader.decode(Script.self, yaml: "name: NO\nsteps: [a, b]\n")
        #expect(script == Script(name: "NO", steps: ["a", "b"]))
        do {
            _ = try PlaybookLoader.decode(Script.self, yaml: "name: x\nsteps: {a: 1}\n", file: "sim.yaml")
            Issue.record("expected a decoding error")
        } catch {
            #expect(error.diagnostics.first?.location == ActPlaybook.SourceLocation(file: "sim.yaml", line: 2, column: 8))
        }
        do {
            _ = try PlaybookLoader.decode(Script.self, yaml: "name: !foo x\nsteps: []\n")
            Issue.record("expected the tag to be refused")
        } catch {
            #expect(error.diagnostics.codes == ["unknown-tag"])
        }
    }
}
