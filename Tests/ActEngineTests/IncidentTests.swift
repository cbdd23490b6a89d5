import ActEngine
import ActPlaybook
import Testing

/// Incidents (`on_failure: incident`) and rewinds: a failure waits for an operator instead of failing the
/// run, and an operator can run a run again from a step.
@Suite struct IncidentTests {
    /// charge (compensated by refund) → ship (input {"carrier": "dhl", "express": true}, one retry) → final.
    static let playbook: Playbook = {
        var ship = task("ship", retry: 1, backoff: .seconds(10), compensate: .ai("unship"))
        if case .task(var spec) = ship.kind {
            spec.input = ["carrier": "dhl", "express": true]
            ship.kind = .task(spec)
        }
        var playbook = Playbook(id: "inc", steps: [task("charge", compensate: .ai("refund")), ship, task("final")])
        playbook.onFailure = .incident
        return playbook
    }()

    /// The run after charge completed and both attempts of ship failed.
    static func failedShip(policy: FailurePolicy? = nil) -> (RunStateMachine, [RunCommand]) {
        var playbook = Self.playbook
        if let policy { playbook.onFailure = policy }
        var (machine, _) = RunStateMachine.start(runID: "r", playbook: playbook, payload: [:], now: t0)
        _ = machine.handle(.taskCompleted("r/charge/1", attempt: 1, output: ["charged": 75]), now: t0 + .seconds(1))
        _ = machine.handle(.taskFailed("r/ship/1", attempt: 1, reason: "carrier down", retryable: true), now: t0 + .seconds(2))
        _ = machine.handle(.timerFired(.retry("r/ship/1", attempt: 2)), now: t0 + .seconds(12))
        let commands = machine.handle(
            .taskFailed("r/ship/1", attempt: 2, reason: "carrier down", retryable: true), now: t0 + .seconds(13))
        return (machine, commands)
    }

    @Test func aStepThatExhaustsItsRetriesOpensAnIncidentAndTheRunWaits() {
        let (machine, commands) = Self.failedShip()
        #expect(summary(commands) == [
            "emit metrics.step_failed ship", "audit incident ship", "emit incident.opened ship",
            "incident step_failed ship holds",
        ])
        #expect(machine.state.status == .incident)
        #expect(machine.state.incident == RunIncident(kind: .stepFailed, step: "ship", visit: 1, reason: "carrier down",
            at: t0 + .seconds(13), task: "r/ship/1", attempt: 2))
        #expect(machine.state.timers.isEmpty && machine.state.compensation == nil && machine.state.failure == nil)
        // Under `fail` the same failure compensates the charge, as before.
        let (failing, _) = Self.failedShip(policy: .fail)
        #expect(failing.state.status == .compensating && failing.state.incident == nil)
    }

    /// A run paused by an operator stays paused through an incident and its answer: the retried step's task is
    /// held until resume, as any dispatch of a paused run is.
    @Test func aPausedRunStaysPausedThroughAnIncidentAndItsAnswer() {
        var playbook = Self.playbook
        playbook.onFailure = .incident
        var (machine, _) = RunStateMachine.start(runID: "r", playbook: playbook, payload: [:], now: t0)
        _ = machine.handle(.taskCompleted("r/charge/1", attempt: 1, output: ["charged": 75]), now: t0 + .seconds(1))
        _ = machine.handle(.pause, now: t0 + .seconds(2))
        _ = machine.handle(.taskFailed("r/ship/1", attempt: 1, reason: "carrier down", retryable: false), now: t0 + .seconds(3))
        #expect(machine.state.status == .incident)
        let retry = machine.handle(.incidentAction(.retry(input: nil), step: "ship", visit: 1, actor: "ops#1", reason: nil),
            now: t0 + .minutes(5))
        #expect(machine.state.status == .paused, "the operator's pause outlives the incident")
        #expect(retry.dispatches.isEmpty && machine.state.heldDispatches.map(\.task) == ["r/ship/2"])
        let resumed = machine.handle(.resume, now: t0 + .minutes(6))
        #expect(resumed.dispatches.map(\.task) == ["r/ship/2"] && machine.state.status == .running)
    }

    @Test func retryEntersTheStepAgainWithThePatchedInputForEveryAttempt() {
        var (machine, _) = Self.failedShip()
        let retry = RunEvent.incidentAction(.retry(input: ["express": nil, "note": "use ups"]), step: "ship", visit: 1,
            actor: "ops#1", reason: "carrier is back")
        let commands = machine.handle(retry, now: t0 + .minutes(5))
        #expect(summary(commands) == [
            "incident closed retry", "audit incident_answered ship", "dispatch r/ship/2#1 → task.ai.ship",
            "emit metrics.step_started ship",
        ])
        let patched: JSONValue = ["carrier": "dhl", "note": "use ups"]
        #expect(commands.dispatches.first?.input == patched)
        #expect(machine.state.status == .running && machine.state.incident == nil)
        // The step's own retry keeps the patched input.
        _ = machine.handle(.taskFailed("r/ship/2", attempt: 1, reason: "again", retryable: true), now: t0 + .minutes(6))
        let second = machine.handle(.timerFired(.retry("r/ship/2", attempt: 2)), now: t0 + .minutes(7))
        #expect(second.dispatches.first?.input == patched)
        _ = machine.handle(.taskCompleted("r/ship/2", attempt: 2, output: done), now: t0 + .minutes(8))
        _ = machine.handle(.taskCompleted("r/final/1", attempt: 1, output: done), now: t0 + .minutes(9))
        #expect(machine.state.status == .completed)
    }

    @Test func skipGoesOnWithTheGivenOutputAndTheSkippedStepIsNotCompensated() {
        var (machine, _) = Self.failedShip()
        let commands = machine.handle(
            .incidentAction(.skip(output: ["shipped_by_hand": true]), step: "ship", visit: 1, actor: "ops#1", reason: nil),
            now: t0 + .minutes(5))
        #expect(summary(commands) == [
            "incident closed skip", "audit incident_answered ship", "emit metrics.step_completed ship",
            "dispatch r/final/1#1 → task.ai.final", "emit metrics.step_started final",
        ])
        #expect(commands.dispatches.first?.context == [
            "steps": ["charge": ["charged": 75], "ship": ["shipped_by_hand": true]], "result": ["shipped_by_hand": true],
        ])
        // final fails, the operator gives up: only the charge is refunded (hms-act never shipped).
        _ = machine.handle(.taskFailed("r/final/1", attempt: 1, reason: "no", retryable: false), now: t0 + .minutes(6))
        let fail = machine.handle(.incidentAction(.fail, step: "final", visit: 1, actor: "ops#1", reason: "give up"),
            now: t0 + .minutes(7))
        #expect(fail.dispatches.map(\.idempotencyKey) == ["r/charge/1/compensate#1"])
        #expect(machine.state.status == .compensating && machine.state.failure?.step == "final")
    }

    @Test func failCompensatesAndEndsTheRunFailed() {
        var (machine, _) = Self.failedShip()
        let commands = machine.handle(
            .incidentAction(.fail, step: "ship", visit: 1, actor: "ops#1", reason: "order withdrawn"),
            now: t0 + .minutes(5))
        #expect(summary(commands) == [
            "incident closed fail", "audit incident_answered ship",
            "dispatch r/charge/1/compensate#1 → task.ai.refund (compensation)",
            "emit metrics.step_started charge (compensation)",
        ])
        _ = machine.handle(.taskCompleted("r/charge/1/compensate", attempt: 1, output: done), now: t0 + .minutes(6))
        #expect(machine.state.status == .failed && machine.state.failure?.reason == "carrier down")
    }

    @Test func anAnswerForAnotherIncidentOrAnotherStateIsIgnored() {
        var (machine, _) = Self.failedShip()
        let before = machine.state
        #expect(machine.handle(.incidentAction(.fail, step: "ship", visit: 2, actor: "o", reason: nil), now: t0 + .minutes(1)).isEmpty)
        #expect(machine.handle(.incidentAction(.fail, step: "charge", visit: 1, actor: "o", reason: nil), now: t0 + .minutes(1)).isEmpty)
        #expect(machine.handle(.pause, now: t0 + .minutes(1)).isEmpty)
        #expect(machine.handle(.taskCompleted("r/ship/1", attempt: 2, output: done), now: t0 + .minutes(1)).isEmpty)
        #expect(machine.state == before)
        #expect(RunStateMachine.incidentProblem(state: machine.state, playbook: Self.playbook, action: .fail,
            step: "ship", visit: 2)?.contains("another incident") == true)
        #expect(RunStateMachine.incidentProblem(state: machine.state, playbook: Self.playbook,
            action: .retry(input: ["x": 1]), step: "ship", visit: 1) == nil)
        // A running run waits on nothing.
        var running = drive(Self.playbook, [])
        #expect(running.handle(.incidentAction(.fail, step: "charge", visit: 1, actor: "o", reason: nil), now: t0).isEmpty)
        #expect(RunStateMachine.incidentProblem(state: running.state, playbook: Self.playbook, action: .fail,
            step: "charge", visit: 1)?.contains("waits on no incident") == true)
    }

    @Test func cancelWhileWaitingOnAnIncidentClosesItAndCompensates() {
        var (machine, _) = Self.failedShip()
        let commands = machine.handle(.cancel(reason: "withdrawn"), now: t0 + .minutes(5))
        #expect(summary(commands).prefix(3) == ["incident closed cancel", "audit cancelled -",
            "dispatch r/charge/1/compensate#1 → task.ai.refund (compensation)"])
        #expect(machine.state.status == .compensating && machine.state.incident == nil)
    }

    @Test func aFailedCompensationWaitsAndRetryingItSendsTheNextAttempt() {
        var (machine, _) = Self.failedShip()
        _ = machine.handle(.incidentAction(.fail, step: "ship", visit: 1, actor: "o", reason: nil), now: t0 + .minutes(5))
        let failed = machine.handle(
            .taskFailed("r/charge/1/compensate", attempt: 1, reason: "bank offline", retryable: true), now: t0 + .minutes(6))
        #expect(summary(failed) == [
            "emit metrics.step_failed charge (compensation)", "audit incident charge", "emit incident.opened charge (compensation)",
            "incident compensation_failed charge holds",
        ])
        #expect(machine.state.status == .incident && machine.state.incident?.kind == .compensationFailed)
        #expect(machine.handle(.cancel(reason: "x"), now: t0 + .minutes(7)).isEmpty)
        #expect(RunStateMachine.incidentProblem(state: machine.state, playbook: Self.playbook,
            action: .retry(input: ["x": 1]), step: "charge", visit: 1)?.contains("compensation's input") == true)

        var skipping = machine
        let retry = machine.handle(.incidentAction(.retry(input: nil), step: "charge", visit: 1, actor: "o", reason: nil),
            now: t0 + .minutes(8))
        #expect(retry.dispatches.map(\.idempotencyKey) == ["r/charge/1/compensate#2"])
        #expect(machine.state.status == .compensating)
        #expect(machine.handle(.taskCompleted("r/charge/1/compensate", attempt: 1, output: done), now: t0 + .minutes(9)).isEmpty)
        _ = machine.handle(.taskCompleted("r/charge/1/compensate", attempt: 2, output: done), now: t0 + .minutes(9))
        #expect(machine.state.status == .failed)
        #expect(machine.state.compensation?.done.map(\.outcome) == [.completed])

        // Skip: the operator refunded by hand; the run ends without sending it again.
        let skip = skipping.handle(.incidentAction(.skip(output: nil), step: "charge", visit: 1, actor: "o", reason: "refunded by hand"),
            now: t0 + .minutes(8))
        #expect(skip.dispatches.isEmpty)
        #expect(skipping.state.status == .failed && skipping.state.compensation?.done.map(\.outcome) == [.skipped])
        let statuses = skip.compactMap { if case .taskStatusChanged(let u) = $0 { u } else { nil } }
        #expect(statuses.isEmpty)  // attempt 1 stays failed in the tasks table
    }

    @Test func rewindRunsAFinishedRunAgainFromAStepKeepingWhatCameBefore() {
        var playbook = Self.playbook
        playbook.onFailure = nil
        var machine = drive(playbook, [
            (.taskCompleted("r/charge/1", attempt: 1, output: ["charged": 75]), .seconds(1)),
            (.taskCompleted("r/ship/1", attempt: 1, output: ["parcel": 1]), .seconds(2)),
            (.taskCompleted("r/final/1", attempt: 1, output: done), .seconds(3)),
        ])
        #expect(machine.state.status == .completed)
        let commands = machine.handle(.rewind(to: "ship", actor: "ops#1", reason: "parcel lost"), now: t0 + .hours(1))
        #expect(summary(commands) == [
            "audit rewound ship", "dispatch r/ship/2#1 → task.ai.ship", "emit metrics.step_started ship",
        ])
        #expect(commands.dispatches.first?.context == ["steps": ["charge": ["charged": 75]], "result": ["charged": 75]])
        #expect(machine.state.status == .running && machine.state.finishedAt == nil)
        #expect(machine.state.record("final")?.status == .cancelled)
        #expect(machine.state.completed.map(\.step) == ["charge"])
        _ = machine.handle(.taskCompleted("r/ship/2", attempt: 1, output: ["parcel": 2]), now: t0 + .hours(2))
        _ = machine.handle(.taskCompleted("r/final/2", attempt: 1, output: done), now: t0 + .hours(3))
        #expect(machine.state.status == .completed && machine.state.record("final")?.visit == 2)
    }

    @Test func rewindIsRefusedWhereItWouldKeepUndoneWorkOrUnreachedSteps() {
        var playbook = Self.playbook
        playbook.onFailure = nil
        // ship fails the run; charge is refunded; the run ends failed.
        let failed = drive(playbook, [
            (.taskCompleted("r/charge/1", attempt: 1, output: done), .seconds(1)),
            (.taskFailed("r/ship/1", attempt: 1, reason: "no", retryable: false), .seconds(2)),
            (.taskCompleted("r/charge/1/compensate", attempt: 1, output: done), .seconds(3)),
        ])
        #expect(failed.state.status == .failed)
        let problem = RunStateMachine.rewindProblem(state: failed.state, playbook: playbook, to: "ship")
        #expect(problem == "step charge was compensated when the run ended; rewind to charge or a step before it")
        #expect(RunStateMachine.rewindProblem(state: failed.state, playbook: playbook, to: "final")?
            .contains("never reached step final; rewind to a step it reached: charge, ship") == true)
        #expect(RunStateMachine.rewindProblem(state: failed.state, playbook: playbook, to: "nope")
            == "playbook inc has no step nope")
        #expect(RunStateMachine.rewindProblem(state: failed.state, playbook: playbook, to: "charge") == nil)
        var machine = failed
        #expect(machine.handle(.rewind(to: "ship", actor: "o", reason: nil), now: t0 + .hours(1)).isEmpty)
        let rewound = machine.handle(.rewind(to: "charge", actor: "o", reason: nil), now: t0 + .hours(1))
        #expect(rewound.dispatches.map(\.idempotencyKey) == ["r/charge/2#1"])
        #expect(machine.state.compensation == nil && machine.state.failure == nil)
        // A running run is not rewound.
        #expect(RunStateMachine.rewindProblem(state: machine.state, playbook: playbook, to: "charge")?
            .contains("is running") == true)
    }

    @Test func rewindAnswersAStepIncident() {
        var (machine, _) = Self.failedShip()
        let commands = machine.handle(.rewind(to: "charge", actor: "ops#1", reason: "recharge"), now: t0 + .hours(1))
        #expect(summary(commands) == [
            "incident closed rewind", "audit rewound charge", "dispatch r/charge/2#1 → task.ai.charge",
            "emit metrics.step_started charge",
        ])
        #expect(machine.state.status == .running && machine.state.incident == nil)
    }
}
