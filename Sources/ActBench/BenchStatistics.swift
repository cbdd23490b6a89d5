import Foundation

/// Monotonic nanoseconds, the one clock every benchmark timing is read from (same process, so
/// differences between readings taken on different tasks are meaningful).
func benchNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Percentiles of a set of durations, in milliseconds.
struct LatencySummary: Codable, Sendable, Hashable {
    var count: Int
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double

    /// Nearest-rank percentiles of `nanoseconds`; all zero when there are no samples.
    init(nanoseconds samples: [UInt64]) {
        let sorted = samples.sorted()
        func rank(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Swift.min(sorted.count - 1, Swift.max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))
            return Double(sorted[index]) / 1e6
        }
        count = sorted.count
        p50 = rank(0.50)
        p95 = rank(0.95)
        p99 = rank(0.99)
        max = sorted.last.map { Double($0) / 1e6 } ?? 0
    }

    /// `p50 1.2 / p95 3.4 / p99 5.6 ms (n=1000)`.
    var line: String {
        String(format: "p50 %.1f / p95 %.1f / p99 %.1f ms (max %.1f, n=%d)", p50, p95, p99, max, count)
    }
}

/// `count` per second of `duration` (0 for no time).
func benchRate(_ count: Int, _ duration: Duration) -> Double {
    let seconds = benchSeconds(duration)
    return seconds > 0 ? Double(count) / seconds : 0
}

/// Seconds in a `Duration`, as a `Double`.
func benchSeconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
