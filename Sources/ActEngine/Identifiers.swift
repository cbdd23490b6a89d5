public import ActPlaybook

/// The identifier of one run of a playbook (`wf_9123`).
///
/// A run started by a trigger gets ``forTrigger(playbook:eventID:)``, so a redelivered trigger maps to the
/// same run. Every task and timer id of the run starts with it and a `/`, so a run id never contains `/`
/// (``TaskID/runID``).
public struct RunID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The run a trigger starts: `wf_` + the first 24 hex digits of SHA-256(playbook + NUL + event id).
    ///
    /// The same event never starts a second run of the same playbook, on any replica. The ids are persisted
    /// and part of the AMQP contract (`correlation_id`), so this formula never changes.
    public static func forTrigger(playbook: String, eventID: String) -> RunID {
        RunID("wf_" + SHA256Digest.hex(playbook + "\u{0}" + eventID, length: 24))
    }
}

/// The identifier of one task: one step visit (and, for fan-out, one agent), across all its attempts.
///
/// Derived, never random: `<run>/<step>/<visit>` for a single task, `<run>/<step>/<visit>/<agent>` for a
/// fan-out task and `<run>/<step>/<visit>/compensate` for a compensation. Together with the attempt it is
/// the worker's idempotency key (``TaskDispatch/idempotencyKey``).
public struct TaskID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The task of one visit of a step: `<run>/<step>/<visit>`, or `<run>/<step>/<visit>/<agent>` for one
    /// agent of a fan-out.
    public init(run: RunID, step: StepID, visit: Int, agent: AgentID? = nil) {
        let base = "\(run.rawValue)/\(step.rawValue)/\(visit)"
        self.init(rawValue: agent.map { "\(base)/\($0.rawValue)" } ?? base)
    }

    /// The task of item `index` (from 0) of a `for_each:` step visit: `<run>/<step>/<visit>/items/<index>`.
    public static func item(run: RunID, step: StepID, visit: Int, index: Int) -> TaskID {
        TaskID(rawValue: "\(run.rawValue)/\(step.rawValue)/\(visit)/items/\(index)")
    }

    /// The task that undoes one visit of a completed step: `<run>/<step>/<visit>/compensate`.
    public static func compensation(run: RunID, step: StepID, visit: Int) -> TaskID {
        TaskID(rawValue: "\(run.rawValue)/\(step.rawValue)/\(visit)/compensate")
    }

    /// The run the task belongs to: everything before the first `/`.
    ///
    /// Run ids never contain `/`, so this holds for every id the engine makes. A task id from outside (a
    /// worker's result) that has no `/` names itself as a run, which then does not exist.
    public var runID: RunID {
        RunID(rawValue: String(rawValue.prefix { $0 != "/" }))
    }
}

/// The identifier of one timer: `<run>/<step>/<visit>/sla-warning`, `…/sla-breach`, `…/wait` or
/// `<task>/retry/<attempt>`.
///
/// Derived from the run, step and visit so that replicas and replays schedule the same rows.
public struct TimerID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The SLA warning of one step visit: `<run>/<step>/<visit>/sla-warning`.
    public static func slaWarning(run: RunID, step: StepID, visit: Int) -> TimerID {
        TimerID(rawValue: "\(run.rawValue)/\(step.rawValue)/\(visit)/sla-warning")
    }

    /// The SLA breach of one step visit: `<run>/<step>/<visit>/sla-breach`.
    public static func slaBreach(run: RunID, step: StepID, visit: Int) -> TimerID {
        TimerID(rawValue: "\(run.rawValue)/\(step.rawValue)/\(visit)/sla-breach")
    }

    /// The end of a wait step's duration: `<run>/<step>/<visit>/wait`.
    public static func waitOver(run: RunID, step: StepID, visit: Int) -> TimerID {
        TimerID(rawValue: "\(run.rawValue)/\(step.rawValue)/\(visit)/wait")
    }

    /// The backoff before attempt `attempt` of `task`: `<task>/retry/<attempt>`.
    public static func retry(_ task: TaskID, attempt: Int) -> TimerID {
        TimerID(rawValue: "\(task.rawValue)/retry/\(attempt)")
    }

    /// The run the timer belongs to: everything before the first `/` (see ``TaskID/runID``).
    public var runID: RunID {
        RunID(rawValue: String(rawValue.prefix { $0 != "/" }))
    }
}

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
///
/// The engine never reads a clock; the caller passes `now` with every event, so a replay with the same
/// instants produces the same commands, and a simulation can jump five days in one step.
public struct Instant: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public static func < (lhs: Instant, rhs: Instant) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// The instant `span` later.
    public static func + (lhs: Instant, rhs: TimeSpan) -> Instant {
        Instant(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch &+ rhs.milliseconds)
    }

    /// The span from `rhs` to `lhs` (negative when `lhs` is earlier).
    public static func - (lhs: Instant, rhs: Instant) -> TimeSpan {
        TimeSpan(milliseconds: lhs.millisecondsSinceEpoch &- rhs.millisecondsSinceEpoch)
    }

    public init(from decoder: any Decoder) throws {
        self.millisecondsSinceEpoch = try decoder.singleValueContainer().decode(Int64.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(millisecondsSinceEpoch)
    }

    public var description: String { "@\(millisecondsSinceEpoch)ms" }
}

/// Settings of the engine, shared by every run of one service.
public struct EngineConfiguration: Hashable, Sendable, Codable {
    /// The agent registry used to route tasks (skills, shifts, queues).
    public var agents: [Agent]
    /// Where an SLA warning falls when a step does not say: this fraction of the SLA (0.8 = 80%).
    public var slaWarningFraction: Double
    /// How often one run may enter the same step (loops through `on_failure`, switches, `next`).
    ///
    /// Entering it once more fails the run with a "loop limit" reason, so a cycle without an exit can never
    /// spin forever, even one made only of switches and skipped steps.
    public var maxVisitsPerStep: Int
    /// Which `call:` steps hms-act performs itself over HTTP (``DispatchTarget/http``); the others are
    /// published for an HTTP bridge worker, as any task.
    public var calls: CallScope
    /// How long a signal that no wait listens for is kept for a wait that starts later (zero: not kept).
    public var signalRetention: TimeSpan
    /// The most signals one run keeps waiting for their wait; past it the oldest is dropped (audited).
    public static let maxPendingSignals = 64
    /// What an unhandled step failure does in a playbook that does not say (`on_failure:` at its top level).
    public var onFailure: FailurePolicy
    /// How deep child runs (`playbook:` steps) may nest: the service does not start a child deeper than this,
    /// and its step fails.
    public var maxPlaybookDepth: Int
    /// The longest list a `for_each:` step takes; a longer one fails the step.
    public var maxForEachItems: Int

    public init(agents: [Agent] = [], slaWarningFraction: Double = 0.8, maxVisitsPerStep: Int = 100,
        calls: CallScope = .none, signalRetention: TimeSpan = .hours(168), onFailure: FailurePolicy = .fail,
        maxPlaybookDepth: Int = 5, maxForEachItems: Int = 10_000)
    {
        self.maxForEachItems = maxForEachItems
        self.onFailure = onFailure
        self.maxPlaybookDepth = maxPlaybookDepth
        self.agents = agents
        self.slaWarningFraction = slaWarningFraction
        self.maxVisitsPerStep = maxVisitsPerStep
        self.calls = calls
        self.signalRetention = signalRetention
    }
}

/// The `call:` steps hms-act performs over HTTP: those whose service (the first segment of the path,
/// `finance` in `POST /finance/freeze`) has a base URL, or every one when a default base URL is set.
public struct CallScope: Hashable, Sendable, Codable {
    /// A default base URL is configured: every call is performed.
    public var all: Bool
    /// Services with a base URL of their own.
    public var services: Set<String>

    public init(all: Bool, services: Set<String>) {
        self.all = all
        self.services = services
    }

    /// No call is performed by hms-act (none configured).
    public static let none = CallScope(all: false, services: [])

    /// Whether hms-act performs this call itself.
    public func performs(_ assignee: Assignee) -> Bool {
        guard assignee.kind == .call else { return false }
        return all || services.contains(Self.service(ofPath: assignee.name))
    }

    /// The service a call path names: its first segment (`/finance/freeze` → `finance`).
    public static func service(ofPath path: String) -> String {
        String(path.split(separator: "/", omittingEmptySubsequences: true).first ?? "")
    }
}
