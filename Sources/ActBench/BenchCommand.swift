import ActAMQP
import ActPostgres
import ArgumentParser
import Foundation
import Logging

/// `hms-act-bench`: measurements against real servers (never run as tests: these machines are shared).
///
/// An executable of its own, apart from `hms-act`: the product and its release image carry no benchmark
/// code. It drives a real `hms-act serve` from outside (``OrchestratorBenchmark``) and reaches hms-act's
/// schema only through `Store` methods; the PostgreSQL layer benchmark keeps a scratch table of its own.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hms-act-bench",
        abstract: "Measure hms-act and its layers against real servers.",
        subcommands: [RunCommand.self, LayersCommand.self, HistoryCommand.self, FlatCommand.self])

    /// `hms-act-bench history`: search and the inbox with a long history (see ``HistoryBenchmark``).
    struct HistoryCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Search and the inbox with a long history: runs by payload, key, time and status; the inbox by age and deadline.",
            discussion: """
                Writes --runs runs (default 1,000,000) through the store's batch path into a throwaway schema, then \
                times each query of GET /v1/runs and GET /v1/tasks --queries times through the same Store methods, \
                and drops the schema. Needs only PostgreSQL (POSTGRES_URL); use durable servers for figures.
                """)

        @Option(help: "PostgreSQL URL (default: $POSTGRES_URL).")
        var postgresURL: String?

        @Option(help: "Runs of history.")
        var runs = 1_000_000

        @Option(help: "The fraction of runs whose task is still open.")
        var openFraction = 0.05

        @Option(help: "Timings per query.")
        var queries = 200

        @Flag(help: "20,000 runs and 20 timings per query: checks the harness, measures nothing worth quoting.")
        var smoke = false

        @Flag(help: "Also start hms-act serve on the history and time the console's runs page over HTTP (needs $AMQP_URL).")
        var console = false

        @Option(help: "The hms-act executable for --console (default: hms-act in this executable's folder).")
        var binary: String?

        @Option(help: "The HTTP port of that server.")
        var port = 18_310

        @Option(help: "Write the report as JSON to this file.")
        var json: String?

        func run() async throws {
            guard let postgres = postgresURL ?? ProcessInfo.processInfo.environment["POSTGRES_URL"] else {
                throw ValidationError("give --postgres-url, or run eval \"$(scripts/stack env)\" first")
            }
            var logger = Logger(label: "hms-act.bench")
            logger.logLevel = .warning
            var settings = HistoryBenchmark.Settings(runs: smoke ? 20_000 : runs, openFraction: openFraction,
                queries: smoke ? 20 : queries, batch: 5_000)
            if console {
                guard let amqp = ProcessInfo.processInfo.environment["AMQP_URL"] else {
                    throw ValidationError("--console starts hms-act serve, which needs the broker: run eval \"$(scripts/stack env)\" first")
                }
                settings.serve = (binary ?? RunCommand.servingExecutable(), amqp, port)
            }
            let benchmark = HistoryBenchmark(settings: settings, postgresURL: postgres, logger: logger)
            let report = try await benchmark.run { FileHandle.standardOutput.write(Data("· \($0)\n".utf8)) }
            print(report.table)
            if let json { try writeReport(report, to: json) }
        }
    }

    /// `hms-act-bench run`: hms-act end to end (see ``OrchestratorBenchmark``).
    struct RunCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "hms-act end to end: runs/s and transitions/s, latency, SLA timer lag with many pending timers, RSS.",
            discussion: """
                Starts its own `hms-act serve` (the hms-act beside this executable unless --binary) with a throwaway schema, exchanges \
                and queues, drives it with triggers and an echo worker, and prints a table; --json also writes the \
                figures. Use scripts/bench, which builds a release binary and starts durable servers; --smoke is the \
                few-hundred-run version the test command runs so the harness never rots.
                """)

        @OptionGroup var servers: BenchServerOptions

        @Option(help: "The hms-act executable to serve with (default: hms-act in this executable's folder).")
        var binary: String?

        @Option(help: "Five-step runs in the throughput phase.")
        var runs = 20_000

        @Option(help: "Runs in flight in the throughput phase (closed loop).")
        var concurrency = 1_000

        @Option(help: "Seconds of each open-loop latency level.")
        var latencySeconds = 10

        @Option(help: "Open-loop levels as fractions of the measured maximum, comma-separated (empty: skip).")
        var latencyFractions = "0.25,0.5,0.75"

        @Option(help: "Runs left waiting on a task for the memory phase (0: skip the memory and timer phases).")
        var openRuns = 100_000

        @Option(help: "Pending SLA timers when the burst of breaches comes.")
        var timers = 1_000_000

        @Option(help: "Runs whose SLA expires in the timer phase.")
        var breaches = 2_000

        @Option(help: "The SLA of those runs, in seconds.")
        var breachSLA = 5

        @Option(help: "Runs queued behind one concurrency key while the latency levels are measured again (0: skip).")
        var queuedRuns = 10_000

        @Option(help: "Completed runs copied into the schema by SQL before the throughput phase (a history; 0: fresh).")
        var prefillRuns = 0

        @Option(help: "Report the throughput phase every this many completed runs (0: as a whole); the long form of `flat`.")
        var windowRuns = 0

        @Option(help: "Events in the burst of large events (0: skip).")
        var burstEvents = 300

        @Option(help: "Payload bytes of each event in the burst.")
        var burstBytes = 921_600

        @Option(help: "Messages in the broker's ceiling measurement.")
        var ceilingMessages = 30_000

        @Option(help: "HTTP port of the server under test.")
        var port = 58_200

        @Option(help: "Queue type of hms-act's queues and the workers': quorum or classic.")
        var queueType = "quorum"

        @Flag(help: "A few hundred runs and small phases: checks the harness, measures nothing worth quoting.")
        var smoke = false

        @Option(help: "Write the report as JSON to this file.")
        var json: String?

        func run() async throws {
            let (postgres, amqp) = try servers.urls()
            guard ["quorum", "classic"].contains(queueType) else {
                throw ValidationError("--queue-type must be quorum or classic, not \(queueType)")
            }
            let fractions = try latencyFractions.split(separator: ",").map { text in
                guard let fraction = Double(text.trimmingCharacters(in: .whitespaces)), fraction > 0, fraction <= 1 else {
                    throw ValidationError("--latency-fractions takes numbers in (0, 1], like 0.25,0.5,0.75; not '\(text)'")
                }
                return fraction
            }
            let settings = OrchestratorBenchmark.Settings(
                binary: binary ?? Self.servingExecutable(),
                runs: smoke ? 300 : runs, concurrency: smoke ? 100 : concurrency,
                latencySeconds: smoke ? 2 : latencySeconds, latencyFractions: fractions,
                openRuns: smoke ? 2_000 : openRuns, timers: smoke ? 20_000 : timers,
                breaches: smoke ? 50 : breaches, breachSLASeconds: smoke ? 2 : breachSLA,
                ceilingMessages: smoke ? 2_000 : ceilingMessages, port: port, queueType: queueType,
                burstEvents: smoke ? 20 : burstEvents, burstBytes: burstBytes, queuedRuns: smoke ? 200 : queuedRuns,
                prefillRuns: prefillRuns, windowRuns: windowRuns)
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("hms-act-bench-\(UUID().uuidString.prefix(8))").path
            var logger = Logger(label: "hms-act.bench")
            logger.logLevel = .warning
            let benchmark = OrchestratorBenchmark(settings: settings, amqpURL: amqp, postgresURL: postgres, workDirectory: work,
                logger: logger)
            // Progress goes out unbuffered, so a log file shows it as it happens.
            let report = try await benchmark.run { FileHandle.standardOutput.write(Data("· \($0)\n".utf8)) }
            print(report.table)
            if let json {
                try writeReport(report, to: json)
                print("report written to \(json)")
            }
            try? FileManager.default.removeItem(atPath: work)
            try report.requireCleanExit()
        }

        /// `hms-act` in the folder of this executable: SwiftPM builds both products into the same one.
        static func servingExecutable() -> String {
            let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            return URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("hms-act").path
        }
    }

    /// `hms-act-bench layers`: the raw rates of the two client layers with no orchestration on top.
    struct LayersCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "layers",
            abstract: "Raw rates of the PostgreSQL and AMQP layers: commits/s, pipelined rows/s, confirmed publishes/s, consumed+acked/s.",
            discussion: """
                Start durable servers first (scripts/stack up without HMS_STACK_FAST), then \
                eval "$(scripts/stack env)". Use a release build for figures worth quoting.
                """)

        @OptionGroup var servers: BenchServerOptions

        @Option(help: "Rows per PostgreSQL measurement.")
        var rows = 5_000

        @Option(help: "Messages per AMQP publish phase.")
        var messages = 5_000

        @Option(help: "AMQP message body size in bytes.")
        var messageSize = 512

        @Option(name: .shortAndLong, help: "Output: table or json.")
        var output = "table"

        func run() async throws {
            let (postgres, amqp) = try servers.urls()
            let logger = Logger(label: "hms-act.bench")
            var figures = try await runPostgresLayerBenchmark(
                configuration: try PostgresConfiguration(url: postgres), rows: rows, logger: logger)
            figures += try await runAMQPLayerBenchmark(
                configuration: try AMQPConfiguration(url: amqp), messages: messages, messageSize: messageSize,
                logger: logger)
            if output == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(figures), as: UTF8.self))
            } else {
                for figure in figures {
                    let name = figure.name.padding(toLength: 44, withPad: " ", startingAt: 0)
                    print("\(name) \(String(format: "%10.0f", figure.value)) \(figure.unit)")
                }
            }
        }
    }
}

/// Writes a report as indented JSON with sorted keys (`--json`).
func writeReport<Report: Encodable>(_ report: Report, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: path))
}

extension OrchestratorBenchmark.Report {
    /// A server that does not drain and exit 0 on SIGTERM fails the benchmark, whatever its figures.
    func requireCleanExit() throws {
        guard serverExitStatus == 0 else {
            throw BenchError("hms-act serve exited with status \(serverExitStatus) on SIGTERM instead of draining and exiting 0")
        }
    }
}

/// The servers a benchmark measures.
struct BenchServerOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL (default: $POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "AMQP URL (default: $AMQP_URL).")
    var amqpURL: String?

    /// The URLs from the options, else from the environment.
    func urls() throws -> (postgres: String, amqp: String) {
        let environment = ProcessInfo.processInfo.environment
        guard let postgres = postgresURL ?? environment["POSTGRES_URL"], let amqp = amqpURL ?? environment["AMQP_URL"] else {
            throw ValidationError("give --postgres-url and --amqp-url, or run eval \"$(scripts/stack env)\" first")
        }
        return (postgres, amqp)
    }
}
