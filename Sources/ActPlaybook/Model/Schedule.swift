import Foundation

/// One entry of a playbook's `schedules:`: when runs start by themselves, and what happens to fires that were
/// missed or that find the previous run still going.
public struct Schedule: Hashable, Sendable, Codable {
    /// When it fires.
    public enum Spec: Hashable, Sendable, Codable, CustomStringConvertible {
        /// `cron: "0 2 * * *"`: wall-clock times in ``Schedule/timeZone``.
        case cron(CronExpression)
        /// `every: 30s`: at every multiple of the span since the Unix epoch (so every replica agrees on them).
        case every(TimeSpan)

        public var description: String {
            switch self {
            case .cron(let cron): "cron \(cron.source)"
            case .every(let span): "every \(span)"
            }
        }
    }

    /// What happens to fires missed while no replica ran (or the database was away) for longer than
    /// ``Schedule/grace``.
    public enum CatchUp: String, Hashable, Sendable, Codable, CaseIterable {
        /// Missed fires are skipped; the schedule goes on from now.
        case none
        /// Only the latest missed fire within the window starts.
        case one
        /// Every missed fire within the window starts, oldest first (at most ``Schedule/maxCatchUpFires``).
        case all
    }

    /// What a fire does while the run of the previous fire is still going.
    public enum Overlap: String, Hashable, Sendable, Codable, CaseIterable {
        /// The fire is skipped.
        case skip
        /// The fire waits until the previous run ends; one waits at most (a later one is skipped).
        case bufferOne = "buffer_one"
        /// The fire starts another run beside it.
        case allow
        /// The previous run is cancelled and the fire starts.
        case cancelPrevious = "cancel_previous"
    }

    /// Unique within the playbook (`nightly`); `schedule-<n>` when not written.
    public var id: String
    public var spec: Spec
    /// The IANA time zone of a cron schedule (`Europe/Berlin`); `UTC` when not written.
    public var timeZone: String
    public var catchUp: CatchUp
    /// How far back missed fires count (`catch_up_window`, default one day).
    public var catchUpWindow: TimeSpan
    public var overlap: Overlap
    /// Each fire starts up to this much later, by an amount fixed per fire (the same on every replica).
    public var jitter: TimeSpan?
    /// The payload of the runs it starts (an object, to which `schedule: {id, fire_time}` is added).
    public var payload: JSONValue
    public var location: SourceLocation?

    /// A fire later than this is "missed" and follows ``catchUp``; a fire less late simply starts.
    public static let grace = TimeSpan.seconds(60)
    /// The most missed fires `catch_up: all` starts at once; older ones are skipped.
    public static let maxCatchUpFires = 1_000

    public init(
        id: String, spec: Spec, timeZone: String = "UTC", catchUp: CatchUp = .one, catchUpWindow: TimeSpan = .hours(24),
        overlap: Overlap = .skip, jitter: TimeSpan? = nil, payload: JSONValue = [:], location: SourceLocation? = nil
    ) {
        self.id = id
        self.spec = spec
        self.timeZone = timeZone
        self.catchUp = catchUp
        self.catchUpWindow = catchUpWindow
        self.overlap = overlap
        self.jitter = jitter
        self.payload = payload
        self.location = location
    }

    /// The first fire strictly after `milliseconds` since the epoch, or `nil` when it never fires again (a
    /// cron schedule naming a date that never comes, or an unknown time zone).
    public func nextFire(afterMilliseconds milliseconds: Int64) -> Int64? {
        switch spec {
        case .every(let span):
            let step = max(span.milliseconds, 1)
            let (quotient, _) = milliseconds.quotientAndRemainder(dividingBy: step)
            let floor = milliseconds >= 0 || milliseconds % step == 0 ? quotient * step : (quotient - 1) * step
            return floor + step
        case .cron(let cron):
            guard let zone = TimeZone(identifier: timeZone) else { return nil }
            let after = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
            guard let next = cron.nextFire(after: after, in: zone) else { return nil }
            return Int64((next.timeIntervalSince1970 * 1_000).rounded())
        }
    }
}
