public import ActPlaybook

/// A seeded random number generator (SplitMix64): the same seed gives the same workload, faults and
/// answers, so a failing seed reproduces.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool {
        Double.random(in: 0..<1, using: &self) < p
    }
}

/// The fault suite's workload: runs of mixed playbooks, each with a script that says how its workers
/// answer and so what its outcome must be. The playbooks cover sequential steps, a retry, a switch, a
/// parallel join, compensation on failure, an SLA that breaches and escalates, a wait ended by a signal (sent
/// with the first step's result, so before or after the wait starts, by run id or by business key) and a wait
/// that runs out.
public struct Workload: Sendable {
    /// The kinds of run, one playbook each.
    public enum Kind: String, CaseIterable, Sendable {
        case sequential, retry, branch, parallel, compensation, breach, signal, wait

        public var playbookID: String { "Fault.\(rawValue).v1" }
        public var trigger: String { "fault.\(rawValue)" }
    }

    /// How the workers treat one run, and the outcome that implies.
    public struct Script: Sendable, Hashable {
        public var eventID: String
        public var kind: Kind
        /// `retry`: how many attempts of step `flaky` fail (retryable) before one completes (at most 2).
        public var failures: Int = 0
        /// `branch`: the severity `classify` answers (High goes to `review`, anything else to `notify`).
        public var severity: String = "Low"
        /// `compensation`: whether `approve` is refused (the run then fails and compensates).
        public var refused: Bool = false
        /// `signal`: whether the signal names the run's business key (the trigger's id) instead of its run id.
        public var signalByKey: Bool = false

        /// The status the run must end in.
        public var expectedStatus: String {
            kind == .compensation && refused ? "failed" : "completed"
        }

        /// The steps whose tasks the run must have completed, in order of their first dispatch.
        public var expectedSteps: [String] {
            switch kind {
            case .sequential: ["a", "b", "c"]
            case .retry: ["first", "flaky", "last"]
            case .branch: ["classify", severity == "High" ? "review" : "notify", "done"]
            case .parallel: ["split.1", "split.2", "after"]
            case .compensation: refused ? ["charge", "book"] : ["charge", "book", "approve"]
            case .breach: ["escalate"]  // `answer` is never answered: it times out
            case .signal: ["prepare", "close"]  // `hold` (no task) ends with the signal
            case .wait: ["prepare", "after"]  // `hold` runs out
            }
        }

        /// `compensation`: the undo tasks' assignees, in the order they must run.
        public var expectedCompensations: [String] {
            kind == .compensation && refused ? ["ai.fault_unbook", "ai.fault_refund"] : []
        }
    }

    public var scripts: [Script]

    /// `runs` scripts drawn from `random`.
    public init(runs: Int, random: inout SeededRandom, prefix: String = "f") {
        scripts = (0..<runs).map { index in
            let kind = Kind.allCases.randomElement(using: &random)!
            var script = Script(eventID: "\(prefix)-\(index)", kind: kind)
            switch kind {
            case .retry: script.failures = Int.random(in: 0...2, using: &random)
            case .branch: script.severity = random.chance(0.5) ? "High" : "Low"
            case .compensation: script.refused = random.chance(0.5)
            case .signal: script.signalByKey = random.chance(0.5)
            default: break
            }
            return script
        }
    }

    /// The script of the run a task belongs to.
    public func script(forEvent id: String) -> Script? {
        scripts.first { $0.eventID == id }
    }

    /// The playbooks, as YAML.
    public static let playbooks: [String] = [
        """
        id: Fault.sequential.v1
        trigger: fault.sequential
        steps:
          - {id: a, agent: ai.fault_a}
          - {id: b, agent: ai.fault_b}
          - {id: c, agent: ai.fault_c}
        """,
        """
        id: Fault.retry.v1
        trigger: fault.retry
        steps:
          - {id: first, agent: ai.fault_first}
          - id: flaky
            agent: ai.fault_flaky
            retry: {max: 2, backoff: fixed, initial: 1s}
          - {id: last, agent: ai.fault_last}
        """,
        """
        id: Fault.branch.v1
        trigger: fault.branch
        steps:
          - {id: classify, agent: ai.fault_classify}
          - id: route
            type: switch
            expr: "result.severity"
            cases: {High: review}
            default: notify
          - {id: review, agent: ai.fault_review, next: done}
          - {id: notify, agent: ai.fault_notify}
          - {id: done, agent: ai.fault_done}
        """,
        """
        id: Fault.parallel.v1
        trigger: fault.parallel
        steps:
          - id: split
            parallel:
              - {agent: ai.fault_p1}
              - {agent: ai.fault_p2}
          - {id: after, agent: ai.fault_after}
        """,
        """
        id: Fault.compensation.v1
        trigger: fault.compensation
        steps:
          - {id: charge, agent: ai.fault_charge, compensate: {agent: ai.fault_refund}}
          - {id: book, agent: ai.fault_book, compensate: {agent: ai.fault_unbook}}
          - {id: approve, agent: ai.fault_approve}
        """,
        """
        id: Fault.breach.v1
        trigger: fault.breach
        steps:
          - {id: answer, agent: ai.fault_desk, sla: 1m, on_timeout: escalate}
          - {id: escalate, agent: ai.fault_supervisor}
        """,
        """
        id: Fault.signal.v1
        trigger: fault.signal
        steps:
          - {id: prepare, agent: ai.fault_prepare}
          - {id: hold, wait: signal, until_signal: fixed}
          - {id: close, agent: ai.fault_close}
        """,
        """
        id: Fault.wait.v1
        trigger: fault.wait
        steps:
          - {id: prepare, agent: ai.fault_prepare}
          - {id: hold, wait: 1m, until_signal: never_sent}
          - {id: after, agent: ai.fault_after}
        """,
    ]

    /// The messages a worker sends for `task` (a task message's body), one to three copies each: the answer
    /// ``answer(_:step:attempt:compensation:)`` gives, and with the first step of a `signal` run the signal its
    /// wait listens for. Nothing for a task that is never answered or that no script knows.
    public static func replies(to task: JSONValue, script: Script) -> [JSONValue] {
        guard let run = task["run_id"]?.stringValue, let step = task["step_id"]?.stringValue,
            let taskID = task["task_id"]?.stringValue, let attempt = task["attempt"]?.numberValue?.intValue
        else { return [] }
        var replies: [JSONValue] = []
        switch answer(script, step: step, attempt: attempt, compensation: task["compensation"] == .bool(true)) {
        case nil: break
        case .completed(let output):
            replies.append(["task_id": .string(taskID), "attempt": .int(Int64(attempt)), "status": "completed", "output": output])
        case .failed(let reason, let retryable):
            replies.append(["task_id": .string(taskID), "attempt": .int(Int64(attempt)), "status": "failed",
                "reason": .string(reason), "retryable": .bool(retryable)])
        }
        if script.kind == .signal, step == "prepare" {
            replies.append(script.signalByKey
                ? ["signal": "fixed", "key": .string(script.eventID), "playbook": .string(script.kind.playbookID),
                    "payload": ["fixed": true]]
                : ["signal": "fixed", "run_id": .string(run), "payload": ["fixed": true]])
        }
        return replies
    }

    /// What a worker answers to a task of `script`: completed with an output, or failed.
    public static func answer(_ script: Script, step: String, attempt: Int, compensation: Bool) -> Answer? {
        if compensation { return .completed([:]) }
        switch (script.kind, step) {
        case (.retry, "flaky") where attempt <= script.failures:
            return .failed(reason: "flaky attempt \(attempt)", retryable: true)
        case (.branch, "classify"):
            return .completed(["severity": .string(script.severity)])
        case (.compensation, "approve") where script.refused:
            return .failed(reason: "refused", retryable: false)
        case (.breach, "answer"):
            return nil  // never answered: the SLA breaches and the run escalates
        default:
            return .completed(["step": .string(step)])
        }
    }

    public enum Answer: Sendable, Hashable {
        case completed(JSONValue)
        case failed(reason: String, retryable: Bool)
    }
}
