import ActPlaybook
import Testing

/// `schedules:` as written: every key, the defaults, and each mistake with its code and fix.
@Suite struct ScheduleReadingTests {
    @Test func readsEveryKeyAndTheDefaults() throws {
        let yaml = """
            id: Sweep.v1
            schedules:
              - id: weekly
                cron: "0 3 * * SUN"
                timezone: Europe/Berlin
                catch_up: all
                catch_up_window: 3d
                overlap: buffer_one
                jitter: 5m
                payload: {scope: open}
              - every: 30s
            steps:
              - id: a
                agent: ai.a
            """
        let loaded = try PlaybookLoader.load(yaml: yaml, file: "sweep.yaml")
        // A playbook with a schedule but no trigger does start by itself: no `no-trigger` warning.
        #expect(!loaded.warnings.contains { $0.code == "no-trigger" })
        let schedules = try #require(loaded.playbook.schedules)
        #expect(schedules.count == 2)
        let weekly = schedules[0]
        let cron = try CronExpression(parsing: "0 3 * * SUN")
        #expect(weekly.id == "weekly" && weekly.spec == .cron(cron))
        #expect(weekly.timeZone == "Europe/Berlin" && weekly.catchUp == .all && weekly.catchUpWindow == .hours(72))
        #expect(weekly.overlap == .bufferOne && weekly.jitter == .minutes(5) && weekly.payload == ["scope": "open"])
        let pulse = schedules[1]
        #expect(pulse.id == "schedule-2" && pulse.spec == .every(.seconds(30)) && pulse.timeZone == "UTC")
        #expect(pulse.catchUp == .one && pulse.overlap == .skip && pulse.catchUpWindow == .hours(24) && pulse.payload == [:])
    }

    @Test(arguments: [
        ("cron: \"0 25 * * *\"", "bad-cron", "is not a cron expression"),
        ("cron: \"0 2 * * *\"\n    every: 1h", "conflicting-keys", "has both 'cron:' and 'every:'"),
        ("timezone: UTC", "missing-key", "says neither 'cron:' nor 'every:'"),
        ("every: 500ms", "bad-duration", "is shorter than a second"),
        ("every: 1m\n    timezone: Mars/Olympus", "bad-value", "is not a time zone this system knows"),
        ("every: 1m\n    catch_up: sometimes", "bad-value", "unknown catch_up 'sometimes'"),
        ("every: 1m\n    overlap: queue", "bad-value", "unknown overlap 'queue'"),
        ("every: 1m\n    payload: [1]", "wrong-type", "expected the payload of schedule 'x' as a mapping"),
        ("every: 1m\n    cadence: 2", "unknown-key", "cadence"),
    ])
    func refusesMistakesWithTheirFix(schedule: String, code: String, message: String) throws {
        let yaml = "id: P.v1\nschedules:\n  - id: x\n    \(schedule)\nsteps:\n  - id: a\n    agent: ai.a\n"
        let diagnostics = diagnostics(loading: yaml)
        let found = diagnostics.first { $0.code == code }
        #expect(found?.message.contains(message) == true, "\(diagnostics.map(\.description))")
        #expect(found?.isError == true)
    }

    @Test func twoSchedulesWithOneIDAreRefused() {
        let yaml = "id: P.v1\nschedules:\n  - {id: x, every: 1m}\n  - {id: x, every: 2m}\nsteps:\n  - id: a\n    agent: ai.a\n"
        #expect(throws: PlaybookLoadError.self) { try PlaybookLoader.load(yaml: yaml) }
    }
}

/// `concurrency:` as written.
@Suite struct ConcurrencyReadingTests {
    @Test func readsTheKeyTheLimitAndThePolicy() throws {
        let yaml = "id: P.v1\ntrigger: p\nconcurrency: {key: \"${payload.address}\", limit: 2, on_limit: cancel_in_progress}\nsteps:\n  - id: a\n    agent: ai.a\n"
        let concurrency = try #require(try PlaybookLoader.load(yaml: yaml).playbook.concurrency)
        #expect(concurrency.keySource == "payload.address" && concurrency.limit == 2 && concurrency.onLimit == .cancelInProgress)
        let defaults = try #require(try PlaybookLoader.load(yaml: "id: P.v1\ntrigger: p\nconcurrency: {key: payload.address}\nsteps:\n  - id: a\n    agent: ai.a\n").playbook.concurrency)
        #expect(defaults.limit == 1 && defaults.onLimit == .queue)
    }

    @Test(arguments: [
        ("{limit: 1}", "missing-key", "'concurrency' has no 'key:'"),
        ("{key: \"${payload.}\"}", "bad-expression", "invalid expression in 'concurrency.key'"),
        ("{key: payload.a, on_limit: drop}", "bad-value", "unknown on_limit 'drop'"),
        ("{key: payload.a, limit: 0}", "wrong-type", "from 1 to 10000 for 'concurrency.limit'"),
    ])
    func refusesMistakes(value: String, code: String, message: String) throws {
        let yaml = "id: P.v1\ntrigger: p\nconcurrency: \(value)\nsteps:\n  - id: a\n    agent: ai.a\n"
        let diagnostics = diagnostics(loading: yaml)
        #expect(diagnostics.first { $0.code == code }?.message.contains(message) == true, "\(diagnostics.map(\.description))")
    }
}

/// `concurrency:` on a task step; refused on the other kinds of step.
@Suite struct StepConcurrencyReadingTests {
    @Test func readsItOnATaskStepAndDrawsIt() throws {
        let yaml = "id: P.v1\ntrigger: p\nsteps:\n  - id: pay\n    service: paymentSvc.pay\n    concurrency: {key: \"${payload.account}\", on_limit: cancel_newest}\n"
        let loaded = try PlaybookLoader.load(yaml: yaml).playbook
        guard case .task(let spec)? = loaded.step("pay")?.kind else {
            Issue.record("pay is not a task")
            return
        }
        let concurrency = try #require(spec.concurrency)
        #expect(concurrency.keySource == "payload.account" && concurrency.limit == 1 && concurrency.onLimit == .cancelNewest)
        #expect(loaded.concurrency == nil)
        #expect(concurrency.summary == "≤ 1 per payload.account (cancel_newest)")
    }

    @Test func isRefusedOnAWaitStep() {
        let yaml = "id: P.v1\ntrigger: p\nsteps:\n  - id: hold\n    type: wait\n    wait: 1h\n    concurrency: {key: payload.a}\n"
        let refused = diagnostics(loading: yaml)
        #expect(refused.first { $0.code == "key-not-allowed" }?.message == "'concurrency' does not belong on a wait step",
            "\(refused.map(\.description))")
        let missing = diagnostics(loading: "id: P.v1\ntrigger: p\nsteps:\n  - id: a\n    agent: ai.a\n    concurrency: {limit: 2}\n")
        #expect(missing.first { $0.code == "missing-key" }?.message == "'concurrency' has no 'key:' (what steps are limited per)")
    }
}

/// `priority:` as written: a number 0…9 or an expression.
@Suite struct PriorityReadingTests {
    @Test func readsANumberOrAnExpressionAndRefusesOutOfRange() throws {
        let number = try PlaybookLoader.load(yaml: "id: P.v1\ntrigger: p\npriority: 7\nsteps:\n  - id: a\n    agent: ai.a\n")
        #expect(number.playbook.priority == .literal(.int(7)))
        let expression = try PlaybookLoader.load(yaml: "id: P.v1\ntrigger: p\npriority: payload.urgency\nsteps:\n  - id: a\n    agent: ai.a\n")
        #expect(expression.playbook.priority == .path(["payload", "urgency"]))
        let refused = diagnostics(loading: "id: P.v1\ntrigger: p\npriority: 12\nsteps:\n  - id: a\n    agent: ai.a\n")
        #expect(refused.first { $0.code == "bad-value" }?.message == "priority 12 is out of range")
    }
}
