import ActStore
import ArgumentParser
import Foundation
import Logging

extension BenchCommand {
    /// `hms-act-bench flat`: the same workload on a fresh schema and on one with a history (issue 21).
    struct FlatCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "flat",
            abstract: "Flat with history: the throughput phase and half-load latency on a fresh schema, then on one holding --history completed runs.",
            discussion: """
                Each pair starts hms-act serve twice, each time on a throwaway schema: once empty, once after --history \
                completed five-step runs were copied in by SQL (runs, payloads, tasks, audit entries, checkpoint marks, \
                inbox ids; then VACUUM ANALYZE). Both run --runs runs closed loop, then an open loop at --fraction of the \
                fresh schema's rate, so both see the same offered load. Prints transitions/s, CPU per transition by \
                process and trigger → first dispatch p99 side by side with their ratio, the statements that cost \
                PostgreSQL most (from pg_stat_statements, which scripts/stack loads) and the bytes each run adds to \
                each table. The long form is `hms-act-bench run --runs 1000000 --window-runs 10000 …` (bench/README.md).
                """)

        @OptionGroup var servers: BenchServerOptions

        @Option(help: "The hms-act executable to serve with (default: hms-act in this executable's folder).")
        var binary: String?

        @Option(help: "Five-step runs in each throughput phase.")
        var runs = 5_000

        @Option(help: "Completed runs copied into the second schema.")
        var history = 200_000

        @Option(help: "Runs in flight in the throughput phases.")
        var concurrency = 1_000

        @Option(help: "The open-loop level, as a fraction of the fresh schema's rate.")
        var fraction = 0.5

        @Option(help: "Seconds of the open-loop level.")
        var latencySeconds = 10

        @Option(help: "Fresh/history pairs, one after the other (the table shows medians).")
        var pairs = 1

        @Option(help: "HTTP port of the server under test.")
        var port = 58_210

        @Flag(help: "300 runs against 5,000 of history, 2 s of latency: checks the harness, measures nothing worth quoting.")
        var smoke = false

        @Option(help: "Write both sides' reports as JSON to this file.")
        var json: String?

        struct Report: Codable {
            var fresh: [OrchestratorBenchmark.Report]
            var history: [OrchestratorBenchmark.Report]
        }

        func run() async throws {
            let (postgres, amqp) = try servers.urls()
            guard fraction > 0, fraction <= 1 else { throw ValidationError("--fraction takes a number in (0, 1], not \(fraction)") }
            guard pairs > 0, runs > 0, history > 0 else { throw ValidationError("--pairs, --runs and --history must be positive") }
            var logger = Logger(label: "hms-act.bench")
            logger.logLevel = .warning
            let progress: (String) -> Void = { FileHandle.standardOutput.write(Data("· \($0)\n".utf8)) }
            var report = Report(fresh: [], history: [])
            for pair in 1...pairs {
                for prefill in [0, smoke ? 5_000 : history] {
                    let base = prefill == 0 ? nil : report.fresh.last?.runsPerSecond
                    let settings = OrchestratorBenchmark.Settings(
                        binary: binary ?? RunCommand.servingExecutable(), runs: smoke ? 300 : runs,
                        concurrency: smoke ? 100 : concurrency, latencySeconds: smoke ? 2 : latencySeconds,
                        latencyFractions: [fraction], openRuns: 0, timers: 0, breaches: 0, breachSLASeconds: 5,
                        ceilingMessages: smoke ? 500 : 2_000, port: port, queueType: "quorum", burstEvents: 0, burstBytes: 0,
                        queuedRuns: 0, prefillRuns: prefill, latencyBaseRunsPerSecond: base)
                    progress("pair \(pair) of \(pairs): " + (prefill == 0 ? "fresh schema" : "\(prefill) completed runs of history"))
                    let work = FileManager.default.temporaryDirectory.appendingPathComponent("hms-act-bench-\(UUID().uuidString.prefix(8))").path
                    let one = try await OrchestratorBenchmark(settings: settings, amqpURL: amqp, postgresURL: postgres,
                        workDirectory: work, logger: logger).run(progress: progress)
                    try? FileManager.default.removeItem(atPath: work)
                    try one.requireCleanExit()
                    if prefill == 0 { report.fresh.append(one) } else { report.history.append(one) }
                }
            }
            print(report.table)
            if let json {
                try writeReport(report, to: json)
                print("report written to \(json)")
            }
        }
    }
}

extension BenchCommand.FlatCommand.Report {
    /// Medians of both sides and their ratio, then where PostgreSQL's time went and what each run stores.
    var table: String {
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let prefilled = history.first?.settings.prefillRuns ?? 0
        var lines = [
            "figure (median of \(fresh.count))".padding(toLength: 44, withPad: " ", startingAt: 0)
                + "       fresh " + "\(prefilled) runs before".leftPadded(16) + "    ratio",
        ]
        func row(_ name: String, _ figure: (OrchestratorBenchmark.Report) -> Double, format: String = "%12.0f %16.0f %8.2f") {
            let (a, b) = (median(fresh.map(figure)), median(history.map(figure)))
            lines.append(name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: format, a, b, a > 0 ? b / a : 0))
        }
        row("step transitions/s", \.transitionsPerSecond)
        for process in ["postgresql", "hms-act serve", "rabbitmq"] {
            row("CPU µs per transition, \(process)", { $0.cpuMicrosecondsPerTransition[process] ?? 0 })
        }
        if let level = fresh.first?.latency.first {
            row(String(format: "first dispatch p99 ms at %.0f%% (%.0f runs/s)", level.fraction * 100, level.targetRunsPerSecond),
                { $0.latency.first?.triggerToFirstDispatch.p99 ?? 0 }, format: "%12.1f %16.1f %8.2f")
            row("run p50 ms at that load", { $0.latency.first?.run.p50 ?? 0 }, format: "%12.1f %16.1f %8.2f")
        }
        if let last = history.last, !last.statements.isEmpty {
            lines.append("")
            lines.append("statements by PostgreSQL time per transition, with history (last pair):")
            lines += last.statements.prefix(10).map { $0.line() }
            if let base = fresh.last {
                lines.append("the same on the fresh schema:")
                lines += base.statements.prefix(10).map { $0.line() }
            }
        } else {
            lines.append("(no statement figures: PostgreSQL does not load pg_stat_statements; restart the stack)")
        }
        if let base = fresh.last, let last = history.last {
            lines.append("")
            lines.append("periodic reads under EXPLAIN (ANALYZE, BUFFERS) after the throughput phase: buffers, ms (fresh → history)")
            for (a, b) in zip(base.periodicReads, last.periodicReads) {
                lines.append(a.name.padding(toLength: 36, withPad: " ", startingAt: 0)
                    + String(format: "%7d → %7d buffers %9.2f → %9.2f ms", a.buffers, b.buffers, a.milliseconds, b.milliseconds))
            }
        }
        if let base = fresh.last {
            lines.append("")
            lines.append("tables after the fresh run: rows, dead rows, HOT share of updates, bytes added per run")
            for table in base.tables.sorted(by: { $0.bytesPerRun > $1.bytesPerRun }) {
                let hot = table.updated > 0 ? String(format: "%3.0f%%", Double(table.hotUpdated) / Double(table.updated) * 100) : "   -"
                lines.append(table.table.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + String(format: "%10lld %9lld  HOT %@ %9.0f B/run", table.liveRows, table.deadRows, hot, table.bytesPerRun))
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
