/// A clock that moves only when a test says so: the state machines take `now` as an input, so a test picks
/// every instant and no test waits for real time.
struct ManualClock {
    /// An instant on the manual clock: the time since its start.
    struct Instant: InstantProtocol, CustomStringConvertible {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }

        var description: String { "t+\(offset)" }
    }

    private(set) var now = Instant(offset: .zero)

    mutating func advance(by duration: Duration) {
        now = now.advanced(by: duration)
    }
}
