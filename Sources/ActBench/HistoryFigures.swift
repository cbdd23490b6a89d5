import ActStore
import Foundation

/// What PostgreSQL did during a stretch of a benchmark, from the differences between two readings of
/// `pg_stat_statements` and `pg_stat_user_tables` (issue 21: is the cost per transition flat as history grows,
/// and if not, which statement and which table make it grow).
enum HistoryFigures {
    /// One statement's share of a stretch.
    struct Statement: Codable, Sendable {
        var query: String
        var calls: Int64
        var milliseconds: Double
        var meanMilliseconds: Double
        var rows: Int64
        var blocksHit: Int64
        var blocksRead: Int64
        /// Execution time per step transition of the stretch, in microseconds.
        var microsecondsPerTransition: Double
    }

    /// The statements that took the most execution time between `before` and `after`, at most `top`.
    static func statements(before: [Int64: Store.StatementStatistics]?, after: [Int64: Store.StatementStatistics]?,
        transitions: Int, top: Int = 12) -> [Statement]
    {
        guard let after else { return [] }
        let before = before ?? [:]
        let deltas = after.compactMap { id, now -> Statement? in
            let then = before[id]
            let calls = now.calls - (then?.calls ?? 0)
            guard calls > 0 else { return nil }
            let milliseconds = now.milliseconds - (then?.milliseconds ?? 0)
            return Statement(
                query: now.query.split(whereSeparator: \.isWhitespace).joined(separator: " "),
                calls: calls, milliseconds: milliseconds, meanMilliseconds: milliseconds / Double(calls),
                rows: now.rows - (then?.rows ?? 0), blocksHit: now.blocksHit - (then?.blocksHit ?? 0),
                blocksRead: now.blocksRead - (then?.blocksRead ?? 0),
                microsecondsPerTransition: transitions > 0 ? milliseconds * 1_000 / Double(transitions) : 0)
        }
        return Array(deltas.sorted { $0.milliseconds > $1.milliseconds }.prefix(top))
    }

    /// One table after a stretch, and what the stretch added to it.
    struct Table: Codable, Sendable {
        var table: String
        var liveRows: Int64
        var deadRows: Int64
        /// Updates in the stretch, and how many of them were HOT (no index touched).
        var updated: Int64
        var hotUpdated: Int64
        var vacuums: Int64
        var analyzes: Int64
        var bytes: Int64
        /// The indexes' part of ``bytes``.
        var indexBytes: Int64
        /// Bytes the stretch added, per run completed in it.
        var bytesPerRun: Double
    }

    static func tables(before: [Store.TableStatistics], after: [Store.TableStatistics], runs: Int) -> [Table] {
        let earlier = Dictionary(before.map { ($0.table, $0) }, uniquingKeysWith: { first, _ in first })
        return after.map { now in
            let then = earlier[now.table]
            return Table(table: now.table, liveRows: now.liveRows, deadRows: now.deadRows,
                updated: now.updated - (then?.updated ?? 0), hotUpdated: now.hotUpdated - (then?.hotUpdated ?? 0),
                vacuums: now.vacuums - (then?.vacuums ?? 0), analyzes: now.analyzes - (then?.analyzes ?? 0),
                bytes: now.bytes, indexBytes: now.indexBytes, bytesPerRun: runs > 0 ? Double(now.bytes - (then?.bytes ?? 0)) / Double(runs) : 0)
        }
        .filter { $0.liveRows > 0 || $0.deadRows > 0 || $0.bytesPerRun != 0 }
    }

    /// A window of the throughput phase (`--window-runs`): its speed and its cost per transition.
    struct Window: Codable, Sendable {
        /// Runs completed when the window closed, counted from the start of the phase.
        var completedRuns: Int
        var seconds: Double
        var transitionsPerSecond: Double
        var cpuMicrosecondsPerTransition: [String: Double]
        var statements: [Statement]
    }
}

extension HistoryFigures.Statement {
    /// `  412.3 µs/tr  1.02 ms mean  5,000 calls  UPDATE tasks SET …` (the query cut to `width`).
    func line(width: Int = 110) -> String {
        let text = query.count > width ? String(query.prefix(width - 1)) + "…" : query
        return String(format: "%8.1f µs/tr %9.3f ms mean %9lld calls  ", microsecondsPerTransition, meanMilliseconds, calls) + text
    }
}

/// Closes a window of the throughput phase each time `every` more runs have completed: CPU per transition by
/// process and the statements of the window. Runs beside the phase, polling the ledger every 50 ms.
struct WindowRecorder: Sendable {
    let every: Int
    let stepsPerRun: Int
    let cpu: ProcessCPU
    let store: Store
    let ledger: BenchLedger
    let statements: [Int64: Store.StatementStatistics]?

    func run(until runs: Int) async throws -> [HistoryFigures.Window] {
        guard every > 0 else { return [] }
        var windows: [HistoryFigures.Window] = []
        var (closed, cpuThen, statementsThen) = (0, cpu.sample(), statements)
        var started = ContinuousClock.now
        while closed + every <= runs {
            try await Task.sleep(for: .milliseconds(50))
            let completed = ledger.completedCount
            guard completed >= closed + every else { continue }
            let now = ContinuousClock.now
            let (cpuNow, statementsNow) = (cpu.sample(), try await store.statementStatistics())
            let transitions = (completed - closed) * stepsPerRun
            let seconds = benchSeconds(now - started)
            let window = HistoryFigures.Window(
                completedRuns: completed, seconds: seconds, transitionsPerSecond: Double(transitions) / seconds,
                cpuMicrosecondsPerTransition: cpuNow.reduce(into: [:]) { result, entry in
                    result[entry.key] = (entry.value - (cpuThen[entry.key] ?? 0)) / Double(transitions) * 1e6
                },
                statements: HistoryFigures.statements(before: statementsThen, after: statementsNow, transitions: transitions, top: 8))
            windows.append(window)
            let line = String(format: "window to %d runs: %.0f transitions/s, PostgreSQL %.0f µs, serve %.0f µs per transition",
                completed, window.transitionsPerSecond, window.cpuMicrosecondsPerTransition["postgresql"] ?? 0,
                window.cpuMicrosecondsPerTransition["hms-act serve"] ?? 0)
            FileHandle.standardOutput.write(Data("· \(line)\n".utf8))
            (closed, cpuThen, statementsThen, started) = (completed, cpuNow, statementsNow, now)
        }
        return windows
    }
}
