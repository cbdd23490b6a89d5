public import ActPlaybook

/// What the outside world does during a simulated run: how workers answer, which signals and approvals
/// arrive when, and when an operator pauses, resumes or cancels.
///
/// ```yaml
/// payload: {complaintId: C-42}
/// answers:
///   classify: [{after: 2s, output: {severity: High}}]
///   human_review: [{no_answer: true}]
///   inspection: [{after: 30s, fail: "inspector sick", retryable: true}, {after: 6m, output: {}}]
/// default: {after: 1s}
/// signals: [{at: 2d, name: wait_for_fix, payload: {iban: "…"}}]
/// approvals: [{at: 1h, step: zoningApproval, approve: true, actor: officer#2}]
/// controls: [{at: 10m, action: pause}, {at: 1h, action: resume}]
/// ```
///
/// Durations are playbook spans (`1s`, `4h`, `5d`), decimals with a unit (`1.2s`), or numbers of seconds
/// (`1.2`).
public struct SimulationScript: Hashable, Sendable, Codable {
    /// Answers by key, one per attempt (the last one repeats for further attempts). A task looks up, in
    /// order: `<step>@<agent>`, its step id, its agent id, its assignee label; a compensation looks up
    /// `compensate:<step>`, then the compensation's assignee label. Nothing found: ``defaultAnswer``.
    public var answers: [String: [ScriptedAnswer]]
    /// The answer of every task nobody scripted; completes after 1 s with `{}` unless changed.
    public var defaultAnswer: ScriptedAnswer
    public var signals: [ScriptedSignal]
    public var approvals: [ScriptedApproval]
    public var controls: [ScriptedControl]
    /// The agent registry for routing; `nil` keeps the configuration's.
    public var agents: [Agent]?
    /// The trigger payload.
    public var payload: JSONValue
    /// When the run starts (shifts are checked against it); default 2024-05-14T10:00:00Z.
    public var start: Instant

    public static let defaultStart = Instant(millisecondsSinceEpoch: 1_715_680_800_000)

    public init(
        answers: [String: [ScriptedAnswer]] = [:],
        defaultAnswer: ScriptedAnswer = .complete(after: .seconds(1)),
        signals: [ScriptedSignal] = [],
        approvals: [ScriptedApproval] = [],
        controls: [ScriptedControl] = [],
        agents: [Agent]? = nil,
        payload: JSONValue = [:],
        start: Instant = SimulationScript.defaultStart
    ) {
        self.answers = answers
        self.defaultAnswer = defaultAnswer
        self.signals = signals
        self.approvals = approvals
        self.controls = controls
        self.agents = agents
        self.payload = payload
        self.start = start
    }

    enum CodingKeys: String, CodingKey {
        case answers
        case defaultAnswer = "default"
        case signals, approvals, controls, agents, payload, start
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.answers = try container.decodeIfPresent([String: [ScriptedAnswer]].self, forKey: .answers) ?? [:]
        self.defaultAnswer =
            try container.decodeIfPresent(ScriptedAnswer.self, forKey: .defaultAnswer)
            ?? .complete(after: .seconds(1))
        self.signals = try container.decodeIfPresent([ScriptedSignal].self, forKey: .signals) ?? []
        self.approvals = try container.decodeIfPresent([ScriptedApproval].self, forKey: .approvals) ?? []
        self.controls = try container.decodeIfPresent([ScriptedControl].self, forKey: .controls) ?? []
        self.agents = try container.decodeIfPresent([Agent].self, forKey: .agents)
        self.payload = try container.decodeIfPresent(JSONValue.self, forKey: .payload) ?? [:]
        self.start = try container.decodeIfPresent(Instant.self, forKey: .start) ?? Self.defaultStart
    }

    /// The scripted answer to attempt `dispatch.attempt` of a task.
    public func answer(to dispatch: TaskDispatch) -> ScriptedAnswer {
        var keys: [String] = []
        if dispatch.isCompensation {
            keys = ["compensate:\(dispatch.step.rawValue)", dispatch.assignee.label]
        } else {
            if let agent = dispatch.agent { keys.append("\(dispatch.step.rawValue)@\(agent.rawValue)") }
            keys.append(dispatch.step.rawValue)
            if let agent = dispatch.agent { keys.append(agent.rawValue) }
            keys.append(dispatch.assignee.label)
        }
        for key in keys {
            guard let list = answers[key], let last = list.last else { continue }
            let position = dispatch.attempt - 1
            return list.indices.contains(position) ? list[position] : last
        }
        return defaultAnswer
    }
}

/// How a worker answers one attempt.
public struct ScriptedAnswer: Hashable, Sendable, Codable {
    /// How long after the dispatch the answer arrives.
    public var after: TimeSpan
    /// The output of a completion.
    public var output: JSONValue
    /// A failure reason; set, the attempt fails.
    public var fail: String?
    /// Whether a failure may be retried (default `true`).
    public var retryable: Bool
    /// The worker never answers (to exercise SLAs and timeouts).
    public var noAnswer: Bool
    /// Who answered, as shown in the timeline (`clerk#7`); default the agent or assignee.
    public var by: String?

    public init(
        after: TimeSpan = .seconds(1), output: JSONValue = [:], fail: String? = nil, retryable: Bool = true,
        noAnswer: Bool = false, by: String? = nil
    ) {
        self.after = after
        self.output = output
        self.fail = fail
        self.retryable = retryable
        self.noAnswer = noAnswer
        self.by = by
    }

    public static func complete(after: TimeSpan, output: JSONValue = [:], by: String? = nil) -> ScriptedAnswer {
        ScriptedAnswer(after: after, output: output, by: by)
    }

    public static func fail(after: TimeSpan, _ reason: String, retryable: Bool = true, by: String? = nil)
        -> ScriptedAnswer
    {
        ScriptedAnswer(after: after, fail: reason, retryable: retryable, by: by)
    }

    public static let noAnswer = ScriptedAnswer(noAnswer: true)

    enum CodingKeys: String, CodingKey {
        case after, output, fail, retryable, by
        case noAnswer = "no_answer"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.after = try container.decodeIfPresent(ScriptDuration.self, forKey: .after)?.span ?? .seconds(1)
        self.output = try container.decodeIfPresent(JSONValue.self, forKey: .output) ?? [:]
        self.fail = try container.decodeIfPresent(String.self, forKey: .fail)
        self.retryable = try container.decodeIfPresent(Bool.self, forKey: .retryable) ?? true
        self.noAnswer = try container.decodeIfPresent(Bool.self, forKey: .noAnswer) ?? false
        self.by = try container.decodeIfPresent(String.self, forKey: .by)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(after.description, forKey: .after)
        try container.encode(output, forKey: .output)
        try container.encodeIfPresent(fail, forKey: .fail)
        try container.encode(retryable, forKey: .retryable)
        try container.encode(noAnswer, forKey: .noAnswer)
        try container.encodeIfPresent(by, forKey: .by)
    }
}

/// A signal arriving `at` after the run started.
public struct ScriptedSignal: Hashable, Sendable, Codable {
    public var at: TimeSpan
    public var name: String
    public var payload: JSONValue

    public init(at: TimeSpan, name: String, payload: JSONValue = [:]) {
        self.at = at
        self.name = name
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey { case at, name, payload }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.at = try container.decode(ScriptDuration.self, forKey: .at).span
        self.name = try container.decode(String.self, forKey: .name)
        self.payload = try container.decodeIfPresent(JSONValue.self, forKey: .payload) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at.description, forKey: .at)
        try container.encode(name, forKey: .name)
        try container.encode(payload, forKey: .payload)
    }
}

/// A human decision on a `pause: true` step, arriving `at` after the run started.
public struct ScriptedApproval: Hashable, Sendable, Codable {
    public var at: TimeSpan
    public var step: StepID
    public var approve: Bool
    public var actor: String
    public var reason: String?
    public var payload: JSONValue

    public init(
        at: TimeSpan, step: StepID, approve: Bool = true, actor: String, reason: String? = nil,
        payload: JSONValue = .null
    ) {
        self.at = at
        self.step = step
        self.approve = approve
        self.actor = actor
        self.reason = reason
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey { case at, step, approve, actor, reason, payload }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.at = try container.decode(ScriptDuration.self, forKey: .at).span
        self.step = try container.decode(StepID.self, forKey: .step)
        self.approve = try container.decodeIfPresent(Bool.self, forKey: .approve) ?? true
        self.actor = try container.decodeIfPresent(String.self, forKey: .actor) ?? "simulated approver"
        self.reason = try container.decodeIfPresent(String.self, forKey: .reason)
        self.payload = try container.decodeIfPresent(JSONValue.self, forKey: .payload) ?? .null
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at.description, forKey: .at)
        try container.encode(step, forKey: .step)
        try container.encode(approve, forKey: .approve)
        try container.encode(actor, forKey: .actor)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encode(payload, forKey: .payload)
    }
}

/// An operator's command, `at` after the run started.
public struct ScriptedControl: Hashable, Sendable, Codable {
    public enum Action: String, Hashable, Sendable, Codable {
        case pause
        case resume
        case cancel
    }

    public var at: TimeSpan
    public var action: Action
    /// Why, for a cancel.
    public var reason: String?

    public init(at: TimeSpan, action: Action, reason: String? = nil) {
        self.at = at
        self.action = action
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case at, action, reason }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.at = try container.decode(ScriptDuration.self, forKey: .at).span
        self.action = try container.decode(Action.self, forKey: .action)
        self.reason = try container.decodeIfPresent(String.self, forKey: .reason)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at.description, forKey: .at)
        try container.encode(action, forKey: .action)
        try container.encodeIfPresent(reason, forKey: .reason)
    }
}

/// A duration in a script: a number of seconds (`1.2`), a playbook span (`4h`, `1h30m`) or a decimal with
/// one unit (`1.2s`, `0.5h`).
struct ScriptDuration: Decodable {
    var span: TimeSpan

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            guard let span = Self.span(seconds, unitMilliseconds: 1_000) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "duration \(seconds) s is negative or too large")
            }
            self.span = span
            return
        }
        let text = try container.decode(String.self)
        guard let span = Self.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "'\(text)' is not a duration; write e.g. 1.2s, 500ms, 4h, 5d or a number of seconds")
        }
        self.span = span
    }

    static func parse(_ text: String) -> TimeSpan? {
        if let span = TimeSpan(parsing: text) { return span }
        let trimmed = text.filter { !$0.isWhitespace }
        guard let unitStart = trimmed.firstIndex(where: \.isLetter) else {
            return Double(trimmed).flatMap { span($0, unitMilliseconds: 1_000) }
        }
        let units: [String: Double] = ["ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        guard let number = Double(trimmed[..<unitStart]), let unit = units[trimmed[unitStart...].lowercased()] else {
            return nil
        }
        return span(number, unitMilliseconds: unit)
    }

    private static func span(_ amount: Double, unitMilliseconds: Double) -> TimeSpan? {
        let milliseconds = (amount * unitMilliseconds).rounded()
        guard milliseconds.isFinite, milliseconds >= 0, milliseconds < 9.0e15 else { return nil }
        return TimeSpan(milliseconds: Int64(milliseconds))
    }
}
