import ActAMQP
import ActPostgres
import ArgumentParser
import Foundation
import Logging

/// `hms-act bench`: measurements against real servers (never run as tests: these machines are shared).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure hms-act and its layers against real servers.",
        subcommands: [LayersCommand.self])

    /// `hms-act bench layers`: the raw rates of the two client layers with no orchestration on top.
    struct LayersCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "layers",
            abstract: "Raw rates of the PostgreSQL and AMQP layers: commits/s, pipelined rows/s, confirmed publishes/s, consumed+acked/s.",
            discussion: """
                Start durable servers first (scripts/stack up without HMS_STACK_FAST), then \
                eval "$(scripts/stack env)". Use a release build for figures worth quoting.
                """)

        @Option(help: "PostgreSQL URL (default: $POSTGRES_URL).")
        var postgresURL: String?

        @Option(help: "AMQP URL (default: $AMQP_URL).")
        var amqpURL: String?

        @Option(help: "Rows per PostgreSQL measurement.")
        var rows = 5_000

        @Option(help: "Messages per AMQP publish phase.")
        var messages = 5_000

        @Option(help: "AMQP message body size in bytes.")
        var messageSize = 512

        @Option(name: .shortAndLong, help: "Output: table or json.")
        var output = "table"

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let postgres = postgresURL ?? environment["POSTGRES_URL"], let amqp = amqpURL ?? environment["AMQP_URL"]
            else {
                throw ValidationError("give --postgres-url and --amqp-url, or run eval \"$(scripts/stack env)\" first")
            }
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
