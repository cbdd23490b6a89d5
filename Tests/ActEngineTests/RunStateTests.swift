import ActEngine
import ActPlaybook
import Foundation
import Testing

@Suite struct RunStateTests {
    @Test func stateRoundTripsThroughJSON() throws {
        let machine = drive(
            Playbooks.compensating,
            [
                (.taskCompleted("r/charge/1", attempt: 1, output: ["amount": 75]), .seconds(1)),
                (.pause, .seconds(2)),
                (.taskCompleted("r/ship/1", attempt: 1, output: done), .seconds(3)),
            ]
        )
        let data = try JSONEncoder().encode(machine.state)
        let decoded = try JSONDecoder().decode(RunState.self, from: data)
        #expect(decoded == machine.state)
        #expect(decoded.heldDispatches.count == 1)

        // A machine resumed from the decoded state behaves like the original.
        var original = machine
        var resumed = RunStateMachine(state: decoded, playbook: Playbooks.compensating)
        #expect(original.handle(.resume, now: at(.seconds(4))) == resumed.handle(.resume, now: at(.seconds(4))))
    }

    @Test func commandsAndEventsAreCodable() throws {
        let (_, commands) = RunStateMachine.start(runID: "r", playbook: Playbooks.sla, payload: ["a": 1], now: t0)
        let data = try JSONEncoder().encode(commands)
        #expect(try JSONDecoder().decode([RunCommand].self, from: data) == commands)
        let events: [RunEvent] = [
            .taskCompleted("t", attempt: 1, output: done), .taskFailed("t", attempt: 2, reason: "x", retryable: true),
            .timerFired("x"), .signal(name: "s", payload: nil),
            .approval(step: "z", approved: false, actor: "o", reason: "no", payload: [1, 2]), .pause, .resume,
            .cancel(reason: "c"),
        ]
        #expect(try JSONDecoder().decode([RunEvent].self, from: JSONEncoder().encode(events)) == events)
    }

    @Test(arguments: [
        (["payload", "amount"], JSONValue.number(75)),
        (["result", "severity"], "High"),
        (["steps", "classify", "output", "severity"], "High"),
        (["steps", "classify", "status"], "completed"),
        (["steps", "route", "status"], "completed"),
        (["steps", "high", "status"], "running"),
        (["steps", "high", "attempt"], 1),
        (["steps", "classify", "visit"], 1),
        (["run", "id"], "r"),
    ] as [([String], JSONValue)])
    func expressionPaths(path: [String], value: JSONValue) {
        let machine = drive(
            Playbooks.switching, [(.taskCompleted("r/classify/1", attempt: 1, output: ["severity": "High"]), .seconds(1))]
        )
        #expect(machine.state.value(at: path) == value)
    }

    @Test func absentPathsAreNil() {
        let machine = drive(Playbooks.switching, [])
        #expect(machine.state.value(at: ["result", "severity"]) == nil)
        #expect(machine.state.value(at: ["steps", "nope", "status"]) == nil)
        #expect(machine.state.value(at: ["elsewhere"]) == nil)
        #expect(!machine.state.step("nope", is: .completed))
    }
}
