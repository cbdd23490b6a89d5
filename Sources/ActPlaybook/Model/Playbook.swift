/// One playbook, normalised: every spelling the chapters use (`agent:`/`actor:`/`service:`/`call:`,
/// `trigger:`/`start:`, `retry: 2`/`retry: {…}`, `wait: 5d`/`wait_days: 5`) loads into this one model.
///
/// A playbook is a value: registering one stores its source and checksum, and every run keeps the
/// version it started with.
public struct Playbook: Hashable, Sendable, Codable {
    public var id: PlaybookID
    public var description: String?
    /// The event types that start a run (`trigger:` or `start:`). Empty: started only explicitly.
    public var triggers: [String]
    /// The business key of a run (`key: payload.application_id`), evaluated on the trigger's payload when
    /// the run starts: what a signal may name instead of the run id. `nil`: the trigger event's id.
    public var key: Expression?
    /// What a failed step without its own `on_failure:` does (`on_failure: incident` at the top level);
    /// `nil`: the service's setting (`engine.on_failure`).
    public var onFailure: FailurePolicy?
    /// Top-level steps in written order. Without `next`/`on_*`, a step is followed by the one after it.
    public var steps: [Step]
    /// `schedules:`: when runs start by themselves (`nil` or empty: never; optional, so stored models from
    /// before it decode unchanged).
    public var schedules: [Schedule]?
    /// `concurrency:`: at most `limit` runs at once per value of a key (`nil`: no limit; optional, so stored
    /// models from before it decode unchanged).
    public var concurrency: Concurrency?
    /// `priority:` an expression on the trigger's payload (or a number) giving a run's priority, 0…9 (higher
    /// first); a trigger's `x-hms-priority` header wins. `nil`: no priority.
    public var priority: Expression?
    /// Where the playbook was read from, when it was read from a file.
    public var location: SourceLocation?

    public init(
        id: PlaybookID,
        description: String? = nil,
        triggers: [String] = [],
        steps: [Step],
        location: SourceLocation? = nil
    ) {
        self.id = id
        self.description = description
        self.triggers = triggers
        self.steps = steps
        self.location = location
    }

    /// The top-level step with this id.
    public func step(_ id: StepID) -> Step? {
        steps.first { $0.id == id }
    }

    /// The index of the top-level step with this id.
    public func index(of id: StepID) -> Int? {
        steps.firstIndex { $0.id == id }
    }
}

/// `concurrency: {key: ${payload.address}, limit: 1, on_limit: queue}`: at most `limit` runs of the playbook
/// (on the playbook) or visits of a step (on a task step) at once for each value of `key`.
public struct Concurrency: Hashable, Sendable, Codable {
    /// What a run that finds its key's slots taken does.
    public enum OnLimit: String, Hashable, Sendable, Codable, CaseIterable {
        /// It waits (status `queued`) and starts when a slot frees, by priority, then in the order they came.
        case queue
        /// It is cancelled at once (a step: it fails, without retry, and `on_failure` applies).
        case cancelNewest = "cancel_newest"
        /// The runs (steps) holding the key's slots are cancelled (fail); it starts once they have ended.
        case cancelInProgress = "cancel_in_progress"
    }

    /// Evaluated on the trigger's payload when the run starts (on a step: on the run when the step is
    /// entered); a missing or non-scalar value means no limit.
    public var key: Expression
    public var keySource: String
    public var limit: Int
    public var onLimit: OnLimit

    /// `≤ 1 per payload.address` (and the policy when it is not `queue`), for drawings.
    public var summary: String {
        "≤ \(limit) per \(keySource)" + (onLimit == .queue ? "" : " (\(onLimit.rawValue))")
    }

    public init(key: Expression, keySource: String, limit: Int = 1, onLimit: OnLimit = .queue) {
        self.key = key
        self.keySource = keySource
        self.limit = limit
        self.onLimit = onLimit
    }
}

/// What a step failure that nothing in the playbook handles does to the run.
public enum FailurePolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// The run fails: completed steps are compensated and the run ends `failed`.
    case fail
    /// The run waits in status `incident` for an operator to retry the step, skip it, or fail the run;
    /// a failed compensation waits the same way.
    case incident
}

/// One step of a playbook.
public struct Step: Hashable, Sendable, Codable {
    public var id: StepID
    public var kind: Kind
    public var description: String?
    /// Run the step only when this holds; otherwise it is skipped (`when: step(wait_for_fix).timeout`).
    public var when: Expression?
    /// The step after this one completes (`on_complete:` or `next:`); `nil` means the next in order.
    public var next: StepID?
    /// Where to go when the step fails after its retries (`on_failure:`); `nil` fails the run.
    public var onFailure: StepID?
    /// Where to go when the SLA is breached or a wait times out (`on_timeout:`).
    public var onTimeout: StepID?
    public var retry: RetryPolicy
    public var sla: SLA?
    /// The action that undoes this step when a later step fails the run (`compensate: achSvc.refund`).
    public var compensate: Assignee?
    public var location: SourceLocation?

    public init(
        id: StepID,
        kind: Kind,
        description: String? = nil,
        when: Expression? = nil,
        next: StepID? = nil,
        onFailure: StepID? = nil,
        onTimeout: StepID? = nil,
        retry: RetryPolicy = .none,
        sla: SLA? = nil,
        compensate: Assignee? = nil,
        location: SourceLocation? = nil
    ) {
        self.id = id
        self.kind = kind
        self.description = description
        self.when = when
        self.next = next
        self.onFailure = onFailure
        self.onTimeout = onTimeout
        self.retry = retry
        self.sla = sla
        self.compensate = compensate
        self.location = location
    }

    public enum Kind: Hashable, Sendable, Codable {
        /// Work done by an agent, a human desk or a service.
        case task(TaskSpec)
        /// `type: switch`: evaluate `expr` and go to the matching case.
        case choice(Choice)
        /// `parallel:` block: run every branch, then join.
        case parallel(Parallel)
        /// `wait: 5d` / `wait_days: 5`, ended early by a named signal.
        case wait(Wait)
    }
}

/// What a task step asks for.
public struct TaskSpec: Hashable, Sendable, Codable {
    public var assignee: Assignee
    /// Required agent skills; only agents having all of them, on shift, receive the task.
    public var skills: [String]
    public var mode: DispatchMode
    /// `pause: true`: the step waits for a human approval (callback) before it completes.
    public var requiresApproval: Bool
    /// Extra input sent with the task, as written under `input:`. For a sub-playbook it is the child run's
    /// payload, and a string that is exactly `${expression}` stands for the expression's value on the parent
    /// run (``JSONValue/resolvingTemplates(in:)``); without it the child gets the parent's payload.
    public var input: JSONValue?
    /// `form:`: the output fields a person fills in at the console's desk; `nil` without (a JSON object then).
    /// Optional, so stored models from before it decode unchanged.
    public var form: [FormField]?
    /// `for_each:`: one task per item of a list instead of one task; `nil` for a plain task.
    public var forEach: ForEach?
    /// `concurrency:` on the step: at most `limit` visits of this step at once, across all runs of the
    /// playbook, per value of the key (read on the run when the step is entered); `nil`: no limit.
    public var concurrency: Concurrency?
    /// `allowed:`: who may answer the step's tasks and approve or refuse it, as ``ActorPattern``s
    /// (`officer#*`, `supervisor#4`). A result or approval from anyone else is refused, recorded in the run's
    /// trail as `attempt.refused` and dead-lettered (403 over HTTP). `nil`: whoever the credentials allow.
    /// The actor is the authenticated one: the token's principal over HTTP, and over AMQP the body's name
    /// checked against the broker user by `amqp.actors` (taken on trust without that setting).
    public var allowed: [String]?

    public init(
        assignee: Assignee,
        skills: [String] = [],
        mode: DispatchMode = .single,
        requiresApproval: Bool = false,
        input: JSONValue? = nil,
        form: [FormField]? = nil,
        forEach: ForEach? = nil
    ) {
        self.forEach = forEach
        self.assignee = assignee
        self.skills = skills
        self.mode = mode
        self.requiresApproval = requiresApproval
        self.input = input
        self.form = form
    }
}

/// `for_each: ${payload.attachments}`: the step's task runs once per item of the list, at most
/// ``maxConcurrency`` at a time, and the step completes when every item has (its output keeps the items'
/// order), or fails once more items failed than ``tolerated``.
public struct ForEach: Hashable, Sendable, Codable {
    /// The list, evaluated once when the step starts.
    public var items: Expression
    /// The expression as written, for diagrams and errors.
    public var itemsSource: String
    /// Items in flight at once (`max_concurrency:`).
    public var maxConcurrency: Int
    /// How many items may fail (after their retries) before the step fails (`tolerated_failures:`).
    public var tolerated: FailureTolerance

    /// How diagrams show it: `for each payload.files (≤ 20 at once)`.
    public var summary: String { "for each \(itemsSource) (≤ \(maxConcurrency) at once)" }

    public init(items: Expression, itemsSource: String, maxConcurrency: Int = 10, tolerated: FailureTolerance = .count(0)) {
        self.items = items
        self.itemsSource = itemsSource
        self.maxConcurrency = maxConcurrency
        self.tolerated = tolerated
    }

    /// `tolerated_failures: 3` or `tolerated_failures: 10%`.
    public enum FailureTolerance: Hashable, Sendable, Codable, CustomStringConvertible {
        case count(Int)
        /// A percentage of the items, 0…100 (rounded down to whole items).
        case percent(Double)

        /// The most items of `total` that may fail.
        public func allowed(of total: Int) -> Int {
            switch self {
            case .count(let count): count
            case .percent(let percent): Int((Double(total) * percent / 100).rounded(.down))
            }
        }

        public var description: String {
            switch self {
            case .count(let count): "\(count)"
            case .percent(let percent): "\(percent.formatted())%"
            }
        }
    }
}

extension Double {
    /// `10` for 10.0, `12.5` for 12.5.
    fileprivate func formatted() -> String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}

/// One field of a task step's `form:`: what the console asks a person for, and the key of the task's output
/// it becomes.
public struct FormField: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// A line of text (the output holds a string).
        case text
        /// Several lines of text.
        case textarea
        /// A number (the output holds a number).
        case number
        /// A checkbox (the output holds true or false).
        case boolean
        /// One of `options` (the output holds the chosen string).
        case choice
    }

    /// The output key (`noise_level_db`).
    public var name: String
    public var kind: Kind
    /// What the person reads; the name when not written.
    public var label: String
    /// Whether a value must be given (a boolean is always given).
    public var required: Bool
    /// The values of a `choice`.
    public var options: [String]

    public init(name: String, kind: Kind = .text, label: String? = nil, required: Bool = false, options: [String] = []) {
        self.name = name
        self.kind = kind
        self.label = label ?? name
        self.required = required
        self.options = options
    }
}

/// How a task reaches agents.
public enum DispatchMode: String, Hashable, Sendable, Codable {
    /// One task to one agent.
    case single
    /// `mode: fan-out`: one task to every matching agent; the step completes when all answered.
    case fanOut = "fan-out"
}

/// Who performs a task, normalised from every spelling:
///
/// | written | kind | label | routing key |
/// |---|---|---|---|
/// | `agent: ai.auto_intake` | `.ai` | `ai.auto_intake` | `task.ai.auto_intake` |
/// | `actor: AI:fraud-labeler` | `.ai` | `ai.fraud-labeler` | `task.ai.fraud-labeler` |
/// | `actor: HUMAN:investigator` | `.human` | `human.investigator` | `task.human.investigator` |
/// | `actor: SVC:email-svc` | `.service` | `svc.email-svc` | `task.svc.email-svc` |
/// | `service: achSvc.charge` | `.service` | `svc.achSvc.charge` | `task.svc.achSvc.charge` |
/// | `call: POST /finance/freeze` | `.call` | `call.post.finance.freeze` | `task.call.post.finance.freeze` |
/// | (none, chapter 004) | `.topic` | `validate_tax_id` | `task.validate_tax_id` |
/// | `playbook: SiteInspection.v1` | `.playbook` | `playbook.SiteInspection.v1` | (none: a child run) |
public struct Assignee: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        case ai
        case human
        case service
        /// An HTTP call (`call: POST /path`), carried out by an HTTP bridge worker.
        case call
        /// No assignee written: the task goes to the topic named after the step (`fetch_task(topic=…)`).
        case topic
        /// A sub-playbook (`playbook: SiteInspection.v1`): hms-act itself starts a child run of that playbook
        /// and the child's end answers the task. `name` is the playbook id.
        case playbook
    }

    public var kind: Kind
    /// The name without its kind: `auto_intake`, `fraud-labeler`, `achSvc.charge`, `/finance/freeze`.
    public var name: String
    /// The HTTP method of a `.call`, upper-cased (`POST`); `nil` otherwise.
    public var method: String?
    /// Exactly as written in the playbook, for timelines and diagrams.
    public var written: String

    public init(kind: Kind, name: String, method: String? = nil, written: String? = nil) {
        self.kind = kind
        self.name = name
        self.method = method
        self.written = written ?? Self.canonicalLabel(kind: kind, name: name, method: method)
    }

    /// The canonical label, also the agent id it matches in the registry (`human.field_inspector`).
    public var label: String { Self.canonicalLabel(kind: kind, name: name, method: method) }

    /// The routing key on the tasks exchange: `task.` + label.
    public var routingKey: String { "task." + label }

    public var description: String { written }

    /// How diagrams name it: as written, and a sub-playbook as `playbook: SiteInspection.v1`.
    public var displayName: String { kind == .playbook ? "playbook: " + written : written }

    private static func canonicalLabel(kind: Kind, name: String, method: String?) -> String {
        switch kind {
        case .ai: "ai." + name
        case .human: "human." + name
        case .service: "svc." + name
        case .call:
            (["call", (method ?? "POST").lowercased()]
                + name.split(separator: "/").map { String($0) }).joined(separator: ".")
        case .topic: name
        case .playbook: "playbook." + name
        }
    }
}

/// How often a failed task is tried again, and how long to wait in between.
public struct RetryPolicy: Hashable, Sendable, Codable {
    public enum Backoff: String, Hashable, Sendable, Codable {
        case fixed
        case exponential
    }

    /// Retries after the first attempt: `retry: 2` allows three attempts in all.
    public var maxRetries: Int
    public var backoff: Backoff
    /// The delay before the first retry.
    public var initial: TimeSpan
    /// The longest delay between retries (exponential backoff stops growing here).
    public var maxInterval: TimeSpan

    public init(maxRetries: Int, backoff: Backoff = .exponential, initial: TimeSpan = .seconds(1),
        maxInterval: TimeSpan = .minutes(5))
    {
        self.maxRetries = maxRetries
        self.backoff = backoff
        self.initial = initial
        self.maxInterval = maxInterval
    }

    public static let none = RetryPolicy(maxRetries: 0)

    /// The delay before retry number `retry` (1 for the first retry).
    public func delay(beforeRetry retry: Int) -> TimeSpan {
        switch backoff {
        case .fixed:
            return min(initial, maxInterval)
        case .exponential:
            var delay = initial
            for _ in 1..<max(retry, 1) where delay < maxInterval {
                let (doubled, overflow) = delay.milliseconds.multipliedReportingOverflow(by: 2)
                delay = overflow ? maxInterval : TimeSpan(milliseconds: doubled)
            }
            return min(delay, maxInterval)
        }
    }
}

/// A service-level agreement on a step: a deadline, and a warning point before it.
public struct SLA: Hashable, Sendable, Codable {
    public var duration: TimeSpan
    /// When to warn, measured from the step's start; `nil` uses the configured fraction (default 80%).
    public var warning: TimeSpan?

    public init(duration: TimeSpan, warning: TimeSpan? = nil) {
        self.duration = duration
        self.warning = warning
    }

    /// The warning point, given the configured default fraction of the SLA.
    public func warningOffset(defaultFraction: Double) -> TimeSpan {
        warning ?? duration.scaled(by: defaultFraction)
    }
}

/// `type: switch`: the expression's value picks a case.
public struct Choice: Hashable, Sendable, Codable {
    public struct Case: Hashable, Sendable, Codable {
        /// The case key as written (`High`); matched against the value's text form.
        public var match: String
        public var target: StepID
        public var location: SourceLocation?

        public init(match: String, target: StepID, location: SourceLocation? = nil) {
            self.match = match
            self.target = target
            self.location = location
        }
    }

    public var expression: Expression
    /// The expression as written, for diagrams and errors.
    public var expressionSource: String
    public var cases: [Case]
    public var defaultTarget: StepID?

    public init(expression: Expression, expressionSource: String, cases: [Case], defaultTarget: StepID? = nil) {
        self.expression = expression
        self.expressionSource = expressionSource
        self.cases = cases
        self.defaultTarget = defaultTarget
    }
}

/// `parallel:` block: every branch runs at once; the block completes when they all have.
public struct Parallel: Hashable, Sendable, Codable {
    public enum JoinPolicy: String, Hashable, Sendable, Codable {
        /// A branch that fails (after its retries) fails the block; the others are left to finish.
        case allMustSucceed = "all"
        /// The block completes when every branch has finished, failed or not.
        case allMustFinish = "all_finished"
    }

    /// Branch steps; each is a task step (ids generated as `<block>.<n>` when not written).
    public var branches: [Step]
    public var join: JoinPolicy

    public init(branches: [Step], join: JoinPolicy = .allMustSucceed) {
        self.branches = branches
        self.join = join
    }
}

/// A wait: held for `duration`, or until the named signal arrives.
public struct Wait: Hashable, Sendable, Codable {
    /// How long to wait before timing out; `nil` waits for the signal alone.
    public var duration: TimeSpan?
    /// The signal that ends the wait early (`until_signal:`); defaults to the step id.
    public var signal: String

    public init(duration: TimeSpan?, signal: String) {
        self.duration = duration
        self.signal = signal
    }
}

/// A position in a source file: 1-based line and column.
public struct SourceLocation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String?
    public var line: Int
    public var column: Int

    public init(file: String? = nil, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        "\(file.map { $0 + ":" } ?? "")\(line):\(column)"
    }
}
