public import ActEngine
internal import ActStore
internal import Foundation
public import Logging
internal import Synchronization

/// The clock every deadline follows: this replica's wall clock, corrected by its offset from PostgreSQL's
/// clock. Timers are claimed by the database's `now()`, so deadlines must be computed on the same clock:
/// a replica whose own clock is two hours slow would otherwise schedule every SLA two hours in the past
/// and fire false `sla.violation`s at once (a fast one, two hours late).
///
/// The offset is measured against `clock_timestamp()` at the midpoint of the query's round trip, at
/// start and then by housekeeping every few seconds, so a clock that drifts or jumps is followed.
public final class DatabaseClock: Sendable {
    private let offset = Atomic<Int64>(0)
    private let wall: @Sendable () -> Instant

    public init(wall: @escaping @Sendable () -> Instant = Orchestrator.wallClock) {
        self.wall = wall
    }

    /// How far PostgreSQL's clock is ahead of this replica's (negative: behind), in milliseconds.
    public var offsetMilliseconds: Int64 { offset.load(ordering: .relaxed) }

    /// The database's time, as this replica best knows it.
    public func now() -> Instant {
        Instant(millisecondsSinceEpoch: wall().millisecondsSinceEpoch + offset.load(ordering: .relaxed))
    }

    /// Measures the offset again.
    ///
    /// - Returns: The new offset and the one before it, in milliseconds.
    @discardableResult
    public func synchronize(with store: any ServiceStore) async throws -> (offset: Int64, previous: Int64) {
        let before = wall().millisecondsSinceEpoch
        let database = try await store.databaseTimeMilliseconds()
        let after = wall().millisecondsSinceEpoch
        let measured = database - (before + (after - before) / 2)
        let previous = offset.exchange(measured, ordering: .relaxed)
        ServiceMetrics.clockOffset(milliseconds: measured)
        return (measured, previous)
    }

    /// Measures the offset and warns when it is larger than `threshold` milliseconds, at the first
    /// measurement and whenever it moved by more than `threshold` since the last (a clock that jumped):
    /// deadlines are safe either way, but this replica's logs and anything else on its own clock are off.
    public func synchronize(with store: any ServiceStore, warnAbove threshold: Int64, logger: Logger, first: Bool = true)
        async throws
    {
        let (measured, previous) = try await synchronize(with: store)
        if abs(measured) > threshold, first || abs(measured - previous) > threshold {
            logger.warning("this replica's clock differs from PostgreSQL's; deadlines follow PostgreSQL's clock",
                metadata: ["clock.offset_ms": "\(measured)", "clock.warning_threshold_ms": "\(threshold)",
                    "fix": "synchronize the node's clock (chrony/NTP)"])
        }
    }
}
