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
/// PostgreSQL's `clock_timestamp()` is read at the midpoint of the query's round trip, at start and then by
/// housekeeping every few seconds, and between two readings the time runs on the *monotonic* clock: a wall
/// clock that jumps (an NTP step, a VM resumed, an operator's `date -s`) moves no deadline, even for the
/// seconds before the next reading (the fault suite's `replica-clock-jump` found runs stalled for the jump's
/// length when deadlines followed the wall clock plus the last offset).
public final class DatabaseClock: Sendable {
    /// How far PostgreSQL's clock was ahead of this replica's wall clock at the last reading.
    private let offset = Atomic<Int64>(0)
    /// PostgreSQL's time minus the monotonic clock's reading at the last reading: ``now()`` is the monotonic
    /// clock plus this. Until the first reading, the wall clock's.
    private let anchor: Atomic<Int64>
    private let wall: @Sendable () -> Instant
    private let monotonic: @Sendable () -> Int64

    /// - Parameters:
    ///   - wall: The replica's own clock (tests skew it); only the offset it reports and the time before the
    ///     first reading come from it.
    ///   - monotonic: Milliseconds on a clock that never jumps (tests drive it by hand).
    public init(wall: @escaping @Sendable () -> Instant = Orchestrator.wallClock,
        monotonic: @escaping @Sendable () -> Int64 = DatabaseClock.monotonicMilliseconds)
    {
        self.wall = wall
        self.monotonic = monotonic
        anchor = Atomic(wall().millisecondsSinceEpoch - monotonic())
    }

    private static let origin = ContinuousClock.now

    /// Milliseconds since this process first asked, on the continuous (monotonic) clock.
    public static let monotonicMilliseconds: @Sendable () -> Int64 = {
        let elapsed = (ContinuousClock.now - origin).components
        return elapsed.seconds * 1_000 + elapsed.attoseconds / 1_000_000_000_000_000
    }

    /// How far PostgreSQL's clock is ahead of this replica's wall clock (negative: behind), in milliseconds,
    /// at the last reading.
    public var offsetMilliseconds: Int64 { offset.load(ordering: .relaxed) }

    /// The database's time, as this replica best knows it.
    public func now() -> Instant {
        Instant(millisecondsSinceEpoch: monotonic() + anchor.load(ordering: .relaxed))
    }

    /// Measures the offset again.
    ///
    /// - Returns: The new offset and the one before it, in milliseconds.
    @discardableResult
    public func synchronize(with store: any ServiceStore) async throws -> (offset: Int64, previous: Int64) {
        let before = wall().millisecondsSinceEpoch
        let start = monotonic()
        let database = try await store.databaseTimeMilliseconds()
        let end = monotonic()
        let after = wall().millisecondsSinceEpoch
        let measured = database - (before + (after - before) / 2)
        anchor.store(database - (start + (end - start) / 2), ordering: .relaxed)
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
