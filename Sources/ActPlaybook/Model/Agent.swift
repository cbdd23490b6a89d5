import Foundation

/// An agent (AI model, human desk, service instance) from the registry (`agents/*.json` or `.yaml`).
///
/// ```json
/// { "id": "human.field_inspector", "skills": ["noise-meter","photos"],
///   "shift": "8:00-22:00", "queue": "inspection.queue" }
/// ```
public struct Agent: Hashable, Sendable, Codable {
    public var id: AgentID
    public var description: String?
    public var skills: [String]
    /// When the agent works; `nil` means always.
    public var shift: Shift?
    /// The agent's own queue: tasks go there directly (default exchange) instead of `hms.tasks`.
    public var queue: String?
    /// A routing key on `hms.tasks` overriding `task.<id>`.
    public var routingKey: String?
    /// How the agent receives its tasks: pushed over AMQP (the default) or pulled over HTTP.
    public var delivery: Delivery
    /// `rate_limit: 50/min`: at most this many of its tasks are published per span, across every replica.
    public var rateLimit: RateLimit?
    public var location: SourceLocation?

    /// How an agent receives its tasks (`delivery:` in the agent file).
    public enum Delivery: String, Hashable, Sendable, Codable, CaseIterable {
        /// Published on `hms.tasks` (or the agent's queue); answered on `hms.results`.
        case push
        /// Never published: the agent claims tasks with a lease over HTTP (`POST /v1/tasks/claim`,
        /// `GET /act/tasks?actor=`) and answers with `POST /v1/tasks/{id}/complete|fail`.
        case pull
    }

    public init(
        id: AgentID,
        description: String? = nil,
        skills: [String] = [],
        shift: Shift? = nil,
        queue: String? = nil,
        routingKey: String? = nil,
        delivery: Delivery = .push,
        rateLimit: RateLimit? = nil,
        location: SourceLocation? = nil
    ) {
        self.rateLimit = rateLimit
        self.id = id
        self.description = description
        self.skills = skills
        self.shift = shift
        self.queue = queue
        self.routingKey = routingKey
        self.delivery = delivery
        self.location = location
    }
}

/// `rate_limit: 50/min` (or `{rate: 50/min, burst: 5}`): a token bucket shared by every replica. Tokens come
/// back one per `span / count`; at most `burst` are saved up while the agent is idle.
public struct RateLimit: Hashable, Sendable, Codable, CustomStringConvertible {
    public var count: Int
    public var span: TimeSpan
    public var burst: Int

    public init(count: Int, span: TimeSpan, burst: Int = 1) {
        self.count = count
        self.span = span
        self.burst = burst
    }

    /// Milliseconds between two tokens.
    public var interval: Double { Double(span.milliseconds) / Double(count) }

    public var description: String {
        let unit: String =
            switch span {
            case .seconds(1): "s"
            case .minutes(1): "min"
            case .hours(1): "h"
            case .hours(24): "d"
            default: span.description
            }
        return "\(count)/\(unit)" + (burst > 1 ? " (burst \(burst))" : "")
    }

    /// Reads `50/min`, `5/s`, `1000/h`, `20000/d` (also `/sec`, `/second`, `/minute`, `/hour`, `/day`).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0].trimmingCharacters(in: .whitespaces)), count > 0 else { return nil }
        let span: TimeSpan
        switch parts[1].trimmingCharacters(in: .whitespaces).lowercased() {
        case "s", "sec", "second": span = .seconds(1)
        case "m", "min", "minute": span = .minutes(1)
        case "h", "hour": span = .hours(1)
        case "d", "day": span = .hours(24)
        default: return nil
        }
        self.init(count: count, span: span)
    }
}

/// Working hours in a time zone: `8:00-22:00` (zone from the agent file, default UTC). A shift whose
/// end is before its start runs over midnight (`22:00-6:00`).
public struct Shift: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Minutes after local midnight, 0..<1440.
    public var startMinute: Int
    /// Minutes after local midnight, 0...1440.
    public var endMinute: Int
    /// An IANA time-zone identifier (`America/New_York`) or `UTC`.
    public var timeZone: String

    public init(startMinute: Int, endMinute: Int, timeZone: String = "UTC") {
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.timeZone = timeZone
    }

    public var description: String {
        func clock(_ minute: Int) -> String {
            let m = minute % 60
            return "\(minute / 60):" + (m < 10 ? "0\(m)" : "\(m)")
        }
        return "\(clock(startMinute))-\(clock(endMinute)) \(timeZone)"
    }
}

extension Shift {
    /// Whether the shift covers the instant, given as milliseconds since 1970-01-01 UTC.
    ///
    /// An unknown time-zone identifier is refused when the agent file is loaded, so here it can only
    /// come from code; it is then read as UTC rather than trapping.
    public func contains(epochMilliseconds: Int64) -> Bool {
        let zone = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0)!
        let date = Date(timeIntervalSince1970: Double(epochMilliseconds) / 1_000)
        let offsetSeconds = Int64(zone.secondsFromGMT(for: date))
        let localSeconds = epochMilliseconds / 1_000 + offsetSeconds
        let minuteOfDay = Int(((localSeconds % 86_400) + 86_400) % 86_400 / 60)
        if startMinute == endMinute { return true }
        if startMinute < endMinute {
            return minuteOfDay >= startMinute && minuteOfDay < endMinute
        }
        return minuteOfDay >= startMinute || minuteOfDay < endMinute
    }
}
