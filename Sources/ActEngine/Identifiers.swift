public import ActPlaybook

/// The identifier of one run of a playbook (`wf_9123`).
///
/// The service derives it from the trigger's event id, so a redelivered trigger maps to the same run.
/// Every task and timer id of the run starts with it.
public struct RunID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// The identifier of one task: one step visit (and, for fan-out, one agent), across all its attempts.
///
/// Derived, never random: `<run>/<step>/<visit>` for a single task, `<run>/<step>/<visit>/<agent>` for a
/// fan-out task and `<run>/<step>/<visit>/compensate` for a compensation. Together with the attempt it is
/// the worker's idempotency key (``TaskDispatch/idempotencyKey``).
public struct TaskID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// The identifier of one timer: `<run>/<step>/<visit>/sla-warning`, `…/sla-breach`, `…/wait` or
/// `<task>/retry/<attempt>`.
///
/// Derived from the run, step and visit so that replicas and replays schedule the same rows.
public struct TimerID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
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

    public init(agents: [Agent] = [], slaWarningFraction: Double = 0.8, maxVisitsPerStep: Int = 100) {
        self.agents = agents
        self.slaWarningFraction = slaWarningFraction
        self.maxVisitsPerStep = maxVisitsPerStep
    }
}
