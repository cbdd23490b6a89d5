import ActEngine
import ActPlaybook
import Testing

/// A row of a transition table: a run brought into a state by `given`, then `event` at `at`.
struct Transition: Sendable, CustomTestStringConvertible {
    var name: String
    var playbook: Playbook
    var agents: [Agent] = []
    var given: [(RunEvent, TimeSpan)] = []
    var event: RunEvent
    var at: TimeSpan
    var expected: [String]
    var check: (@Sendable (RunState) -> Bool)? = nil

    var testDescription: String { name }
}

func drive(_ playbook: Playbook, agents: [Agent] = [], start: Instant = t0, _ events: [(RunEvent, TimeSpan)])
    -> RunStateMachine
{
    var (machine, _) = RunStateMachine.start(
        runID: "r", playbook: playbook, payload: ["amount": 75], now: start,
        configuration: EngineConfiguration(agents: agents)
    )
    for (event, offset) in events { _ = machine.handle(event, now: start + offset) }
    return machine
}

enum Playbooks {
    static let sequence = Playbook(id: "seq", steps: [task("a"), task("b")])
    static let retrying = Playbook(id: "retrying", steps: [task("a", retry: 2, backoff: .seconds(10)), task("b")])
    static let onFailure = Playbook(
        id: "on-failure", steps: [task("a", onFailure: "fallback"), task("b"), task("fallback")]
    )
    static let loop = Playbook(id: "loop", steps: [task("a", onFailure: "a")])
    static let skipping = Playbook(
        id: "skip", steps: [task("a"), task("b", when: .stepCondition("a", .failed)), task("c")]
    )
    static let switching = Playbook(
        id: "switch",
        steps: [
            task("classify"),
            choice("route", ["result", "severity"], [("High", "high"), ("Low", "low")], default: "other"),
            task("high"), task("low"), task("other"),
        ]
    )
    static let switchWithoutDefault = Playbook(
        id: "switch-no-default",
        steps: [task("classify"), choice("route", ["result", "severity"], [("High", "high")]), task("high")]
    )
    static let sla = Playbook(
        id: "sla",
        steps: [task("review", sla: .hours(4), next: "notify", onTimeout: "escalate"), task("escalate"), task("notify")]
    )
    static let slaWithoutTimeout = Playbook(id: "sla-plain", steps: [task("review", sla: .hours(1))])
    static let waiting = Playbook(
        id: "wait", steps: [wait("w", .days(5)), task("after", when: .stepCondition("w", .timeout))]
    )
    static let parallelBlock = Playbook(id: "par", steps: [parallel("p", [task("p.1"), task("p.2")]), task("after")])
    static let parallelAllFinish = Playbook(
        id: "par-finish", steps: [parallel("p", [task("p.1"), task("p.2")], join: .allMustFinish), task("after")]
    )
    static let parallelRecover = Playbook(
        id: "par-recover",
        steps: [parallel("p", [task("p.1"), task("p.2")], onFailure: "recover"), task("after"), task("recover")]
    )
    static let approval = Playbook(id: "approval", steps: [task("zoning", approval: true), task("done")])
    static let compensating = Playbook(
        id: "comp",
        steps: [
            task("charge", compensate: .ai("refund")), task("ship", compensate: .ai("unship")), task("final"),
        ]
    )
    static let fanOut = Playbook(id: "fan", steps: [task("inspect", .human("inspector"), fanOut: true)])
    static let skilled = Playbook(id: "skilled", steps: [task("inspection", .human("inspector"), skills: ["noise-meter"])])
}

let inspectors = [
    Agent(id: "human.inspector#2"),
    Agent(id: "human.inspector#1", queue: "q1"),
    Agent(id: "human.dispatcher"),
]

let shiftAgents = [
    Agent(id: "night.inspector", skills: ["noise-meter"], shift: Shift(startMinute: 22 * 60, endMinute: 6 * 60)),
    Agent(
        id: "day.inspector", skills: ["noise-meter", "photos"], shift: Shift(startMinute: 8 * 60, endMinute: 22 * 60),
        queue: "inspection.queue"
    ),
]

let done: JSONValue = ["ok": true]

let transitions: [Transition] = [
    // Sequences
    Transition(
        name: "a task completes: the next step is dispatched", playbook: Playbooks.sequence,
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(2),
        expected: ["emit metrics.step_completed a", "dispatch r/b/1#1 → task.ai.b", "emit metrics.step_started b"],
        check: { $0.record("a")?.status == .completed && $0.result == done && $0.currentStep == "b" }
    ),
    Transition(
        name: "the last task completes: the run completes", playbook: Playbooks.sequence,
        given: [(.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(1))],
        event: .taskCompleted("r/b/1", attempt: 1, output: done), at: .seconds(2),
        expected: ["emit metrics.step_completed b", "emit run.completed -", "finished completed"],
        check: { $0.status == .completed && $0.finishedAt == at(.seconds(2)) }
    ),
    // Retries
    Transition(
        name: "retryable failure with retries left: backoff timer", playbook: Playbooks.retrying,
        event: .taskFailed("r/a/1", attempt: 1, reason: "timeout", retryable: true), at: .seconds(5),
        expected: ["emit metrics.step_failed a retry", "schedule r/a/1/retry/2 retry_backoff +15s"],
        check: { $0.record("a")?.tasks.first?.state == .retryScheduled }
    ),
    Transition(
        name: "backoff timer: the next attempt is dispatched under the same task id", playbook: Playbooks.retrying,
        given: [(.taskFailed("r/a/1", attempt: 1, reason: "timeout", retryable: true), .seconds(5))],
        event: .timerFired("r/a/1/retry/2"), at: .seconds(15),
        expected: ["dispatch r/a/1#2 → task.ai.a", "emit metrics.step_started a"]
    ),
    Transition(
        name: "exponential backoff doubles", playbook: Playbooks.retrying,
        given: [
            (.taskFailed("r/a/1", attempt: 1, reason: "timeout", retryable: true), .seconds(5)),
            (.timerFired("r/a/1/retry/2"), .seconds(15)),
        ],
        event: .taskFailed("r/a/1", attempt: 2, reason: "timeout", retryable: true), at: .seconds(20),
        expected: ["emit metrics.step_failed a retry", "schedule r/a/1/retry/3 retry_backoff +40s"]
    ),
    Transition(
        name: "retries exhausted without on_failure: the run fails", playbook: Playbooks.retrying,
        given: [
            (.taskFailed("r/a/1", attempt: 1, reason: "x", retryable: true), .seconds(5)),
            (.timerFired("r/a/1/retry/2"), .seconds(15)),
            (.taskFailed("r/a/1", attempt: 2, reason: "x", retryable: true), .seconds(20)),
            (.timerFired("r/a/1/retry/3"), .seconds(40)),
        ],
        event: .taskFailed("r/a/1", attempt: 3, reason: "x", retryable: true), at: .seconds(50),
        expected: ["emit metrics.step_failed a", "emit run.failed a", "finished failed"],
        check: { $0.status == .failed && $0.failure == RunFailure(step: "a", reason: "x") }
    ),
    Transition(
        name: "non-retryable failure goes to on_failure", playbook: Playbooks.onFailure,
        event: .taskFailed("r/a/1", attempt: 1, reason: "bad input", retryable: false), at: .seconds(1),
        expected: [
            "emit metrics.step_failed a", "dispatch r/fallback/1#1 → task.ai.fallback",
            "emit metrics.step_started fallback",
        ],
        check: { $0.record("a")?.status == .failed && $0.record("a")?.error == "bad input" }
    ),
    Transition(
        name: "on_failure back to the same step: a new visit, a new task id", playbook: Playbooks.loop,
        event: .taskFailed("r/a/1", attempt: 1, reason: "x", retryable: false), at: .seconds(1),
        expected: ["emit metrics.step_failed a", "dispatch r/a/2#1 → task.ai.a", "emit metrics.step_started a"],
        check: { $0.record("a")?.visit == 2 }
    ),
    // when / switch
    Transition(
        name: "when false: the step is skipped and the flow continues", playbook: Playbooks.skipping,
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(1),
        expected: [
            "emit metrics.step_completed a", "audit skipped b", "dispatch r/c/1#1 → task.ai.c",
            "emit metrics.step_started c",
        ],
        check: { $0.record("b")?.status == .skipped && $0.step("b", is: .skipped) }
    ),
    Transition(
        name: "switch: the case matching result.* wins", playbook: Playbooks.switching,
        event: .taskCompleted("r/classify/1", attempt: 1, output: ["severity": "High"]), at: .seconds(1),
        expected: [
            "emit metrics.step_completed classify", "audit decided route", "dispatch r/high/1#1 → task.ai.high",
            "emit metrics.step_started high",
        ],
        check: { $0.resultStep == "classify" && $0.record("route")?.output?["case"] == "High" }
    ),
    Transition(
        name: "switch: no case matches, default taken", playbook: Playbooks.switching,
        event: .taskCompleted("r/classify/1", attempt: 1, output: ["severity": "Medium"]), at: .seconds(1),
        expected: [
            "emit metrics.step_completed classify", "audit decided route", "dispatch r/other/1#1 → task.ai.other",
            "emit metrics.step_started other",
        ]
    ),
    Transition(
        name: "switch: no case and no default fails the step without retry", playbook: Playbooks.switchWithoutDefault,
        event: .taskCompleted("r/classify/1", attempt: 1, output: ["severity": "Low"]), at: .seconds(1),
        expected: [
            "emit metrics.step_completed classify", "emit metrics.step_failed route", "emit run.failed route",
            "finished failed",
        ],
        check: { $0.record("route")?.error == "no case matched result.severity = Low" }
    ),
    // SLA
    Transition(
        name: "SLA warning: reported once", playbook: Playbooks.sla,
        event: .timerFired("r/review/1/sla-warning"), at: .minutes(192),
        expected: ["emit sla.warning review"], check: { $0.record("review")?.slaWarned == true }
    ),
    Transition(
        name: "SLA breach with on_timeout: violation, timed out, on_timeout step", playbook: Playbooks.sla,
        given: [(.timerFired("r/review/1/sla-warning"), .minutes(192))],
        event: .timerFired("r/review/1/sla-breach"), at: .hours(4),
        expected: [
            "emit sla.violation review", "audit timed_out review", "dispatch r/escalate/1#1 → task.ai.escalate",
            "emit metrics.step_started escalate",
        ],
        check: { $0.record("review")?.status == .timedOut && $0.step("review", is: .timeout) }
    ),
    Transition(
        name: "SLA breach without on_timeout: violation only, the step keeps waiting",
        playbook: Playbooks.slaWithoutTimeout,
        event: .timerFired("r/review/1/sla-breach"), at: .hours(1),
        expected: ["emit sla.violation review"],
        check: { $0.record("review")?.status == .running && $0.record("review")?.slaBreached == true }
    ),
    Transition(
        name: "completing a step cancels its SLA timers", playbook: Playbooks.sla,
        event: .taskCompleted("r/review/1", attempt: 1, output: done), at: .hours(1),
        expected: [
            "cancel r/review/1/sla-warning", "cancel r/review/1/sla-breach", "emit metrics.step_completed review",
            "dispatch r/notify/1#1 → task.ai.notify", "emit metrics.step_started notify",
        ],
        check: { $0.timers.isEmpty }
    ),
    // Waits
    Transition(
        name: "wait ended by its signal: completed, later step skipped", playbook: Playbooks.waiting,
        event: .signal(name: "w", payload: ["iban": "DE00"]), at: .days(2),
        expected: [
            "audit signalled w", "cancel r/w/1/wait", "emit metrics.step_completed w", "audit skipped after",
            "emit run.completed -", "finished completed",
        ],
        check: { $0.record("w")?.output == ["iban": "DE00"] }
    ),
    Transition(
        name: "signal nobody waits for yet: kept for a later wait", playbook: Playbooks.sequence,
        event: .signal(name: "w", payload: ["iban": "DE00"]), at: .seconds(1),
        expected: ["audit signal_kept -"],
        check: { $0.pendingSignals == [.init(name: "w", payload: ["iban": "DE00"], at: t0 + .seconds(1))] }
    ),
    Transition(
        name: "signal after its wait ended: kept, in case the wait comes round again", playbook: Playbooks.waiting,
        given: [(.timerFired("r/w/1/wait"), .days(5))],
        event: .signal(name: "w", payload: nil), at: .days(6), expected: ["audit signal_kept -"]
    ),
    Transition(
        name: "wait runs out: timeout, then the next step whose when holds", playbook: Playbooks.waiting,
        event: .timerFired("r/w/1/wait"), at: .days(5),
        expected: [
            "audit timed_out w", "emit metrics.step_completed w", "dispatch r/after/1#1 → task.ai.after",
            "emit metrics.step_started after",
        ],
        check: { $0.record("w")?.status == .timedOut }
    ),
    // Parallel
    Transition(
        name: "parallel: one branch done, the block waits", playbook: Playbooks.parallelBlock,
        event: .taskCompleted("r/p.1/1", attempt: 1, output: done), at: .seconds(1),
        expected: ["emit metrics.step_completed p.1"]
    ),
    Transition(
        name: "parallel: the last branch joins the block", playbook: Playbooks.parallelBlock,
        given: [(.taskCompleted("r/p.1/1", attempt: 1, output: done), .seconds(1))],
        event: .taskCompleted("r/p.2/1", attempt: 1, output: ["sms": "sent"]), at: .seconds(2),
        expected: [
            "emit metrics.step_completed p.2", "emit metrics.step_completed p", "dispatch r/after/1#1 → task.ai.after",
            "emit metrics.step_started after",
        ],
        check: { $0.record("p")?.output == ["p.1": done, "p.2": ["sms": "sent"]] }
    ),
    Transition(
        name: "parallel, all must succeed: a failed branch fails the block at once", playbook: Playbooks.parallelBlock,
        event: .taskFailed("r/p.1/1", attempt: 1, reason: "smtp down", retryable: false), at: .seconds(1),
        expected: ["emit metrics.step_failed p.1", "emit metrics.step_failed p", "emit run.failed p", "finished failed"],
        check: { $0.record("p.2")?.status == .cancelled }
    ),
    Transition(
        name: "parallel, all must finish: a failed branch waits for the others", playbook: Playbooks.parallelAllFinish,
        given: [(.taskFailed("r/p.1/1", attempt: 1, reason: "smtp down", retryable: false), .seconds(1))],
        event: .taskCompleted("r/p.2/1", attempt: 1, output: done), at: .seconds(2),
        expected: [
            "emit metrics.step_completed p.2", "emit metrics.step_completed p", "dispatch r/after/1#1 → task.ai.after",
            "emit metrics.step_started after",
        ]
    ),
    // Fan-out
    Transition(
        name: "fan-out: the step completes when every agent answered, output keyed by agent",
        playbook: Playbooks.fanOut, agents: inspectors,
        given: [(.taskCompleted("r/inspect/1/human.inspector#1", attempt: 1, output: ["db": 71]), .seconds(1))],
        event: .taskCompleted("r/inspect/1/human.inspector#2", attempt: 1, output: ["db": 64]), at: .seconds(2),
        expected: ["emit metrics.step_completed inspect", "emit run.completed -", "finished completed"],
        check: { $0.record("inspect")?.output == ["human.inspector#1": ["db": 71], "human.inspector#2": ["db": 64]] }
    ),
    // Approval
    Transition(
        name: "pause: true — the task answered, the step waits for approval", playbook: Playbooks.approval,
        event: .taskCompleted("r/zoning/1", attempt: 1, output: done), at: .minutes(1),
        expected: [], check: { $0.record("zoning")?.status == .awaitingApproval }
    ),
    Transition(
        name: "approval approved: completed with the approval as output", playbook: Playbooks.approval,
        given: [(.taskCompleted("r/zoning/1", attempt: 1, output: done), .minutes(1))],
        event: .approval(step: "zoning", approved: true, actor: "officer#2", reason: nil, payload: ["zone": "R1"]),
        at: .hours(2),
        expected: [
            "audit approved zoning", "emit metrics.step_completed zoning", "dispatch r/done/1#1 → task.ai.done",
            "emit metrics.step_started done",
        ],
        check: { $0.record("zoning")?.output == ["zone": "R1", "actor": "officer#2", "approved": true] }
    ),
    Transition(
        name: "approval refused: the step fails without retry", playbook: Playbooks.approval,
        given: [(.taskCompleted("r/zoning/1", attempt: 1, output: done), .minutes(1))],
        event: .approval(step: "zoning", approved: false, actor: "officer#2", reason: "zoning conflict", payload: nil),
        at: .hours(2),
        expected: ["audit refused zoning", "emit metrics.step_failed zoning", "emit run.failed zoning", "finished failed"],
        check: { $0.failure?.reason == "refused by officer#2: zoning conflict" }
    ),
    Transition(
        name: "approval before the task answered is accepted", playbook: Playbooks.approval,
        event: .approval(step: "zoning", approved: true, actor: "officer#2", reason: nil, payload: nil), at: .hours(2),
        expected: [
            "audit approved zoning", "emit metrics.step_completed zoning", "dispatch r/done/1#1 → task.ai.done",
            "emit metrics.step_started done",
        ]
    ),
    // Pause / resume
    Transition(
        name: "pause", playbook: Playbooks.sequence, event: .pause, at: .seconds(1),
        expected: ["audit paused -"], check: { $0.status == .paused }
    ),
    Transition(
        name: "paused: results apply, new dispatches are held", playbook: Playbooks.sequence,
        given: [(.pause, .seconds(1))],
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(2),
        expected: ["emit metrics.step_completed a"],
        check: { $0.heldDispatches.map(\.idempotencyKey) == ["r/b/1#1"] }
    ),
    Transition(
        name: "resume releases the held dispatches", playbook: Playbooks.sequence,
        given: [(.pause, .seconds(1)), (.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(2))],
        event: .resume, at: .hours(1),
        expected: ["audit resumed -", "dispatch r/b/1#1 → task.ai.b", "emit metrics.step_started b"],
        check: { $0.status == .running && $0.heldDispatches.isEmpty }
    ),
    // Cancel and compensation
    Transition(
        name: "cancel: undo the newest completion first", playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: ["amount": 75]), .seconds(1)),
            (.taskCompleted("r/ship/1", attempt: 1, output: done), .seconds(2)),
        ],
        event: .cancel(reason: "citizen withdrew"), at: .seconds(10),
        expected: [
            "audit cancelled -", "dispatch r/ship/1/compensate#1 → task.ai.unship (compensation)",
            "emit metrics.step_started ship (compensation)",
        ],
        check: { $0.status == .compensating && $0.record("final")?.status == .cancelled }
    ),
    Transition(
        name: "a compensation done: the next one", playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: ["amount": 75]), .seconds(1)),
            (.taskCompleted("r/ship/1", attempt: 1, output: done), .seconds(2)),
            (.cancel(reason: "citizen withdrew"), .seconds(10)),
        ],
        event: .taskCompleted("r/ship/1/compensate", attempt: 1, output: done), at: .seconds(11),
        expected: [
            "emit metrics.step_completed ship (compensation)",
            "dispatch r/charge/1/compensate#1 → task.ai.refund (compensation)",
            "emit metrics.step_started charge (compensation)",
        ]
    ),
    Transition(
        name: "a failed compensation is reported, recorded as an incident, and the run still ends",
        playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: ["amount": 75]), .seconds(1)),
            (.taskCompleted("r/ship/1", attempt: 1, output: done), .seconds(2)),
            (.cancel(reason: "citizen withdrew"), .seconds(10)),
            (.taskCompleted("r/ship/1/compensate", attempt: 1, output: done), .seconds(11)),
        ],
        event: .taskFailed("r/charge/1/compensate", attempt: 1, reason: "bank offline", retryable: true),
        at: .seconds(12),
        expected: [
            "emit metrics.step_failed charge (compensation)", "incident compensation_failed charge",
            "emit run.cancelled -", "finished cancelled",
        ],
        check: { $0.status == .cancelled && $0.compensation?.done.map(\.outcome) == [.completed, .failed] }
    ),
    Transition(
        name: "a failing step triggers compensation", playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: ["amount": 75]), .seconds(1)),
            (.taskCompleted("r/ship/1", attempt: 1, output: done), .seconds(2)),
        ],
        event: .taskFailed("r/final/1", attempt: 1, reason: "db down", retryable: false), at: .seconds(3),
        expected: [
            "emit metrics.step_failed final", "dispatch r/ship/1/compensate#1 → task.ai.unship (compensation)",
            "emit metrics.step_started ship (compensation)",
        ]
    ),
    Transition(
        name: "cancel cancels pending timers; nothing to undo ends at once", playbook: Playbooks.sla,
        event: .cancel(reason: "duplicate complaint"), at: .hours(1),
        expected: [
            "audit cancelled -", "cancel r/review/1/sla-warning", "cancel r/review/1/sla-breach",
            "emit run.cancelled -", "finished cancelled",
        ],
        check: { $0.timers.isEmpty && $0.failure?.reason == "duplicate complaint" }
    ),
]

/// Events that do not apply: no commands, state unchanged.
let ignored: [Transition] = [
    Transition(
        name: "duplicate completion", playbook: Playbooks.sequence,
        given: [(.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(1))],
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(2), expected: []
    ),
    Transition(
        name: "completion of an attempt never dispatched", playbook: Playbooks.sequence,
        event: .taskCompleted("r/a/1", attempt: 2, output: done), at: .seconds(1), expected: []
    ),
    Transition(
        name: "unknown task", playbook: Playbooks.sequence,
        event: .taskCompleted("elsewhere/x/1", attempt: 1, output: done), at: .seconds(1), expected: []
    ),
    Transition(
        name: "failure of a completed task", playbook: Playbooks.sequence,
        given: [(.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(1))],
        event: .taskFailed("r/a/1", attempt: 1, reason: "late", retryable: true), at: .seconds(2), expected: []
    ),
    Transition(
        name: "answer for the previous attempt during backoff", playbook: Playbooks.retrying,
        given: [(.taskFailed("r/a/1", attempt: 1, reason: "x", retryable: true), .seconds(1))],
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(2), expected: []
    ),
    Transition(
        name: "answer of an earlier visit", playbook: Playbooks.loop,
        given: [(.taskFailed("r/a/1", attempt: 1, reason: "x", retryable: false), .seconds(1))],
        event: .taskCompleted("r/a/1", attempt: 1, output: done), at: .seconds(2), expected: []
    ),
    Transition(
        name: "unknown timer", playbook: Playbooks.sequence,
        event: .timerFired("r/a/1/sla-breach"), at: .seconds(1), expected: []
    ),
    Transition(
        name: "a cancelled SLA timer fires anyway", playbook: Playbooks.sla,
        given: [(.taskCompleted("r/review/1", attempt: 1, output: done), .hours(1))],
        event: .timerFired("r/review/1/sla-breach"), at: .hours(4), expected: []
    ),
    Transition(
        name: "a fired SLA timer fires twice", playbook: Playbooks.slaWithoutTimeout,
        given: [(.timerFired("r/review/1/sla-breach"), .hours(1))],
        event: .timerFired("r/review/1/sla-breach"), at: .hours(1), expected: []
    ),
    Transition(
        name: "late answer of a timed-out step", playbook: Playbooks.sla,
        given: [(.timerFired("r/review/1/sla-breach"), .hours(4))],
        event: .taskCompleted("r/review/1", attempt: 1, output: done), at: .hours(5), expected: []
    ),
    Transition(
        name: "late answer of a branch abandoned by its failed block", playbook: Playbooks.parallelRecover,
        given: [(.taskFailed("r/p.1/1", attempt: 1, reason: "x", retryable: false), .seconds(1))],
        event: .taskCompleted("r/p.2/1", attempt: 1, output: done), at: .seconds(2), expected: []
    ),
    Transition(
        name: "approval for a step without pause", playbook: Playbooks.sequence,
        event: .approval(step: "a", approved: true, actor: "x", reason: nil, payload: nil), at: .seconds(1),
        expected: []
    ),
    Transition(
        name: "approval for a step not reached", playbook: Playbooks.approval,
        event: .approval(step: "done", approved: true, actor: "x", reason: nil, payload: nil), at: .seconds(1),
        expected: []
    ),
    Transition(
        name: "duplicate approval", playbook: Playbooks.approval,
        given: [(.approval(step: "zoning", approved: true, actor: "x", reason: nil, payload: nil), .seconds(1))],
        event: .approval(step: "zoning", approved: false, actor: "y", reason: "late", payload: nil), at: .seconds(2),
        expected: []
    ),
    Transition(name: "resume while running", playbook: Playbooks.sequence, event: .resume, at: .seconds(1), expected: []),
    Transition(
        name: "pause while paused", playbook: Playbooks.sequence, given: [(.pause, .seconds(1))],
        event: .pause, at: .seconds(2), expected: []
    ),
    Transition(
        name: "answer of a dispatch held while paused", playbook: Playbooks.sequence,
        given: [(.pause, .seconds(1)), (.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(2))],
        event: .taskCompleted("r/b/1", attempt: 1, output: done), at: .seconds(3), expected: []
    ),
    Transition(
        name: "cancel while compensating", playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: done), .seconds(1)),
            (.cancel(reason: "first"), .seconds(2)),
        ],
        event: .cancel(reason: "second"), at: .seconds(3), expected: []
    ),
    Transition(
        name: "a step's answer while compensating", playbook: Playbooks.compensating,
        given: [
            (.taskCompleted("r/charge/1", attempt: 1, output: done), .seconds(1)),
            (.cancel(reason: "first"), .seconds(2)),
        ],
        event: .taskCompleted("r/ship/1", attempt: 1, output: done), at: .seconds(3), expected: []
    ),
    Transition(
        name: "anything after the run completed", playbook: Playbooks.sequence,
        given: [
            (.taskCompleted("r/a/1", attempt: 1, output: done), .seconds(1)),
            (.taskCompleted("r/b/1", attempt: 1, output: done), .seconds(2)),
        ],
        event: .cancel(reason: "too late"), at: .seconds(3), expected: []
    ),
    Transition(
        name: "anything after the run was cancelled", playbook: Playbooks.sequence,
        given: [(.cancel(reason: "stop"), .seconds(1))],
        event: .resume, at: .seconds(3), expected: []
    ),
]

@Suite struct RunStateMachineTests {
    @Test(arguments: transitions)
    func transition(_ row: Transition) {
        var machine = drive(row.playbook, agents: row.agents, row.given)
        let commands = machine.handle(row.event, now: t0 + row.at)
        #expect(summary(commands) == row.expected)
        if let check = row.check { #expect(check(machine.state), "state after: \(machine.state)") }
    }

    @Test(arguments: ignored)
    func ignoredEventLeavesStateUnchanged(_ row: Transition) {
        var machine = drive(row.playbook, agents: row.agents, row.given)
        let before = machine.state
        let commands = machine.handle(row.event, now: t0 + row.at)
        #expect(commands.isEmpty)
        #expect(machine.state == before)
    }

    /// A signal that comes before its wait (chapter 002: new bank details before the ticket is open) ends
    /// the wait as soon as it starts, once; one older than the retention, or with retention zero, does not.
    @Test func aSignalKeptBeforeItsWaitEndsItWhenItStarts() {
        let playbook = Playbook(id: "early", steps: [task("ticket"), wait("w", .days(5)), task("after", when: .stepCondition("w", .timeout))])
        func run(retention: TimeSpan, signalAt: TimeSpan, ticketDoneAt: TimeSpan) -> (RunStateMachine, [String]) {
            var (machine, _) = RunStateMachine.start(runID: "r", playbook: playbook, payload: [:], now: t0,
                configuration: EngineConfiguration(signalRetention: retention))
            _ = machine.handle(.signal(name: "w", payload: ["iban": "DE00"]), now: t0 + signalAt)
            let commands = machine.handle(.taskCompleted("r/ticket/1", attempt: 1, output: [:]), now: t0 + ticketDoneAt)
            return (machine, summary(commands))
        }
        let (kept, commands) = run(retention: .days(7), signalAt: .seconds(1), ticketDoneAt: .hours(1))
        #expect(commands.contains("audit signalled w") && commands.contains("finished completed"), "\(commands)")
        #expect(kept.state.record("w")?.status == .completed && kept.state.record("w")?.output == ["iban": "DE00"])
        #expect(kept.state.pendingSignals == nil)  // used once
        for (retention, ticketDoneAt) in [(TimeSpan.zero, TimeSpan.hours(1)), (.days(7), .days(8))] {
            let (machine, _) = run(retention: retention, signalAt: .seconds(1), ticketDoneAt: ticketDoneAt)
            #expect(machine.state.record("w")?.status == .waiting, "retention \(retention), ticket at \(ticketDoneAt)")
        }
    }

    /// A run keeps at most ``EngineConfiguration/maxPendingSignals``: the oldest goes first, audited.
    @Test func keptSignalsAreBounded() {
        var machine = drive(Playbooks.sequence, [])
        for index in 0..<(EngineConfiguration.maxPendingSignals + 1) {
            _ = machine.handle(.signal(name: "s\(index)", payload: nil), now: t0 + .seconds(Int64(index)))
        }
        #expect(machine.state.pendingSignals?.count == EngineConfiguration.maxPendingSignals)
        #expect(machine.state.pendingSignals?.first?.name == "s1")
    }

    @Test func startDispatchesTheFirstStep() {
        let (machine, commands) = RunStateMachine.start(
            runID: "r", playbook: Playbooks.sequence, payload: ["amount": 75], now: t0
        )
        #expect(summary(commands) == ["dispatch r/a/1#1 → task.ai.a", "emit metrics.step_started a"])
        #expect(machine.state.status == .running)
        let dispatch = commands.dispatches[0]
        #expect(dispatch.payload == ["amount": 75])
        #expect(dispatch.deadline == nil && dispatch.visit == 1 && !dispatch.isCompensation)
    }

    @Test func startSchedulesTheSLABeforeDispatching() {
        let (_, commands) = RunStateMachine.start(runID: "r", playbook: Playbooks.sla, payload: nil, now: t0)
        #expect(
            summary(commands) == [
                "schedule r/review/1/sla-warning sla_warning +3h12m", "schedule r/review/1/sla-breach sla_breach +4h",
                "dispatch r/review/1#1 → task.ai.review", "emit metrics.step_started review",
            ]
        )
        #expect(commands.dispatches.first?.deadline == at(.hours(4)))
    }

    @Test func emptyPlaybookCompletesAtOnce() {
        let (machine, commands) = RunStateMachine.start(
            runID: "r", playbook: Playbook(id: "empty", steps: []), payload: nil, now: t0
        )
        #expect(summary(commands) == ["emit run.completed -", "finished completed"])
        #expect(machine.state.status == .completed)
    }

    @Test func unknownNextStepFailsTheRun() {
        let playbook = Playbook(id: "broken", steps: [task("a", next: "nowhere")])
        var machine = drive(playbook, [])
        let commands = machine.handle(.taskCompleted("r/a/1", attempt: 1, output: done), now: at(.seconds(1)))
        #expect(summary(commands) == ["emit metrics.step_completed a", "emit run.failed a", "finished failed"])
        #expect(machine.state.failure?.reason == "unknown step nowhere")
    }

    @Test func switchCycleHitsTheLoopLimit() {
        let playbook = Playbook(id: "cycle", steps: [choice("s", ["payload", "x"], [], default: "s")])
        let (machine, commands) = RunStateMachine.start(
            runID: "r", playbook: playbook, payload: nil, now: t0,
            configuration: EngineConfiguration(maxVisitsPerStep: 5)
        )
        #expect(machine.state.status == .failed)
        #expect(machine.state.failure?.reason == "loop limit: step s entered more than 5 times")
        #expect(commands.last == .runFinished(.failed))
    }

    @Test func loopLimitThroughAParallelBlockFailsTheRunWithOneRecordPerStep() {
        let playbook = Playbook(id: "par-loop", steps: [parallel("p", [task("p.1")], onFailure: "p")])
        var (machine, _) = RunStateMachine.start(
            runID: "r", playbook: playbook, payload: nil, now: t0, configuration: EngineConfiguration(maxVisitsPerStep: 3)
        )
        var last: [RunCommand] = []
        for visit in 1...3 {
            last = machine.handle(
                .taskFailed(TaskID("r/p.1/\(visit)"), attempt: 1, reason: "x", retryable: false),
                now: at(.seconds(Int64(visit)))
            )
        }
        #expect(machine.state.steps.map(\.step) == ["p", "p.1"])
        #expect(machine.state.status == .failed)
        #expect(machine.state.failure?.reason == "loop limit: step p entered more than 3 times")
        #expect(summary(last).last == "finished failed")
        // The task status of the failed attempt trails the flow's commands.
        #expect(summary(last, taskStatuses: true).suffix(1) == ["task r/p.1/3#1 failed"])
    }

    @Test func fanOutDispatchesOneTaskPerMatchingAgentInIdOrder() {
        let (_, commands) = RunStateMachine.start(
            runID: "r", playbook: Playbooks.fanOut, payload: nil, now: t0,
            configuration: EngineConfiguration(agents: inspectors)
        )
        #expect(
            summary(commands) == [
                "dispatch r/inspect/1/human.inspector#1#1 → queue:q1", "emit metrics.step_started inspect",
                "dispatch r/inspect/1/human.inspector#2#1 → task.human.inspector#2", "emit metrics.step_started inspect",
            ]
        )
        #expect(commands.dispatches.map(\.agent) == ["human.inspector#1", "human.inspector#2"])
    }

    @Test func fanOutWithoutMatchingAgentsSendsOneTaskToTheRoutingKey() {
        let (_, commands) = RunStateMachine.start(runID: "r", playbook: Playbooks.fanOut, payload: nil, now: t0)
        #expect(summary(commands) == ["dispatch r/inspect/1#1 → task.human.inspector", "emit metrics.step_started inspect"])
    }

    @Test(arguments: [
        (10, "queue:inspection.queue", "day.inspector"),  // 10:00 UTC: the day shift, through its queue
        (23, "task.night.inspector", "night.inspector"),  // 23:00 UTC: the night shift, no queue
    ])
    func skillsRouteToTheFirstAgentOnShift(hour: Int64, target: String, agent: String) {
        let start = Instant(millisecondsSinceEpoch: 1_715_644_800_000) + .hours(hour)  // 2024-05-14T00:00Z
        let (_, commands) = RunStateMachine.start(
            runID: "r", playbook: Playbooks.skilled, payload: nil, now: start,
            configuration: EngineConfiguration(agents: shiftAgents)
        )
        #expect(summary(commands).first == "dispatch r/inspection/1#1 → \(target)")
        #expect(commands.dispatches.first?.agent == AgentID(agent))
    }

    @Test func skillsWithNobodyOnShiftFallBackToTheRoutingKey() {
        let start = Instant(millisecondsSinceEpoch: 1_715_644_800_000) + .hours(7)
        let agents = [shiftAgents[1]]
        let (_, commands) = RunStateMachine.start(
            runID: "r", playbook: Playbooks.skilled, payload: nil, now: start,
            configuration: EngineConfiguration(agents: agents)
        )
        #expect(summary(commands).first == "dispatch r/inspection/1#1 → task.human.inspector")
        #expect(commands.dispatches.first?.agent == nil)
    }

    @Test func withoutSkillsTheAgentNamedByTheLabelGetsItThroughItsQueue() {
        let playbook = Playbook(id: "p", steps: [task("inspection", .human("field_inspector"))])
        let (_, commands) = RunStateMachine.start(
            runID: "r", playbook: playbook, payload: nil, now: t0 + .hours(15),  // off shift: not checked
            configuration: EngineConfiguration(agents: [Chapters.fieldInspector])
        )
        #expect(summary(commands).first == "dispatch r/inspection/1#1 → queue:inspection.queue")
    }

    @Test func slaViolationIsReportedOncePerVisit() {
        var machine = drive(Playbooks.slaWithoutTimeout, [])
        let first = machine.handle(.timerFired("r/review/1/sla-breach"), now: at(.hours(1)))
        let second = machine.handle(.timerFired("r/review/1/sla-breach"), now: at(.hours(1)))
        #expect(first.governance.filter { $0.kind == .slaViolation }.count == 1)
        #expect(second.isEmpty)
        let end = machine.handle(.taskCompleted("r/review/1", attempt: 1, output: done), now: at(.hours(2)))
        #expect(
            summary(end) == [
                "cancel r/review/1/sla-warning", "emit metrics.step_completed review", "emit run.completed -",
                "finished completed",
            ]
        )
        #expect(machine.state.step("review", is: .timeout) && machine.state.step("review", is: .completed))
    }
}
