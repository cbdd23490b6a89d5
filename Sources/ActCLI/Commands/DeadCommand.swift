import ActAMQP
import ActHTTP
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation
import Logging

/// `hms-act dead collect|list|show|replay|discard`: the dead-letter desk, over PostgreSQL and RabbitMQ directly,
/// under the operator's own users (the service may not read its dead-letter queue).
struct DeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead",
        abstract: "Collect dead-lettered messages into the database, then list, show, replay or discard them.",
        discussion: """
            Run under the operator's own users: the broker user needs read rights on the dead-letter queue and \
            write rights on the exchanges messages are replayed to (the service's user has neither, on purpose). \
            Connects to RabbitMQ (--amqp-url, AMQP_URL) and PostgreSQL (--postgres-url, POSTGRES_URL) directly.
            Examples:
              hms-act dead collect
              hms-act dead list
              hms-act dead show 12
              hms-act dead replay 12 --reason "playbook registered"
              hms-act dead discard 13 --reason "test message"
            """,
        subcommands: [Collect.self, List.self, Show.self, Replay.self, Discard.self]
    )
}

/// Where the desk connects, and who acts.
struct DeadDeskOptions: ParsableArguments {
    @Option(name: .customLong("postgres-url"), help: ArgumentHelp(
        "The database (default the configuration's postgres.url, env POSTGRES_URL).", valueName: "url"))
    var postgresURL: String?
    @Option(help: "The schema holding hms-act's tables (default the configuration's postgres.schema).")
    var schema: String?
    @Option(name: .customLong("amqp-url"), help: ArgumentHelp(
        "The broker (default the configuration's amqp.url, env AMQP_URL).", valueName: "url"))
    var amqpURL: String?
    @Option(help: "Who acts, for the record (default the login name).")
    var actor: String?
    @Option(name: [.short, .customLong("output")], help: "table or json.")
    var output: OutputFormat = .table
    @OptionGroup var configurationOptions: ConfigurationOptions

    var who: String { actor ?? ProcessInfo.processInfo.environment["USER"] ?? "operator" }

    /// A store over one connection.
    func store(_ configuration: ServiceConfiguration) throws -> Store {
        try DirectStore(configuration: configuration, url: postgresURL, schema: schema, name: "hms-act dead").store
    }

    /// Runs `body` with a connection to the broker, pumping its frames, and closes it after.
    func withBroker<Result: Sendable>(_ configuration: ServiceConfiguration,
        _ body: @Sendable (AMQPConnection) async throws -> Result) async throws -> Result
    {
        let amqp = try Broker.configuration(configuration, url: amqpURL, name: "hms-act dead")
        let connection = try await Broker.connect(amqp, logger: Broker.quietLogger("hms-act.dead"))
        do {
            // The frame pump reads the deliveries and confirms: without it a consumer or a publish waits for ever.
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await connection.run() }
                defer { group.cancelAll() }
                return try await body(connection)
            }
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Turns the errors of the store and the desk into messages that say what to do.
    func explaining<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let failure as DeadLetterDesk.Failure {
            throw CLIError(failure.description)
        } catch let error as PostgresError {
            if error.code == .connectionFailed {
                throw CLIError("cannot connect to PostgreSQL (\(error.reason ?? "connection failed")); start the local "
                    + "stack with `scripts/stack up`, or pass --postgres-url / POSTGRES_URL")
            }
            if error.sqlState == "42P01" || error.sqlState == "3F000" {
                throw CLIError("the schema has no dead_letters table: start this version of hms-act once to migrate "
                    + "it, or name the right schema with --schema")
            }
            throw CLIError("the database refused: \(error.reason ?? "\(error.code)") (SQLSTATE \(error.sqlState ?? "-"))")
        }
    }
}

/// The dead letter `replay` and `discard` act on, and why.
struct DeadLetterChoice: ParsableArguments {
    @Argument(help: "The dead letter's id.")
    var id: Int64
    @Option(help: "Why, for the record.")
    var reason: String?
    @OptionGroup var options: DeadDeskOptions
}

extension DeadCommand {
    struct Collect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the messages waiting in the dead-letter queue into the database (then acknowledge them).")

        @Option(help: "The dead-letter queue (default the configuration's amqp.queues.dead).")
        var queue: String?
        @Option(help: "At most this many messages.")
        var limit = 1_000
        @OptionGroup var options: DeadDeskOptions

        func run() async throws {
            try await Console.reportingErrors {
                let configuration = try options.configurationOptions.load()
                let store = try options.store(configuration)
                let queue = self.queue ?? configuration.amqp.queues.dead
                let limit = self.limit
                let ids = try await options.explaining {
                    try await options.withBroker(configuration) { connection in
                        try await DeadLetterDesk.collect(from: queue, on: connection, into: store, limit: limit,
                            now: { Int64(Date().timeIntervalSince1970 * 1_000) })
                    }
                }
                switch options.output {
                case .json: print(Console.pretty(["collected": .array(ids.map { .int($0) })]))
                case .table:
                    print(ids.isEmpty ? "no dead letters waiting in \(queue)"
                        : "collected \(ids.count) dead letter\(ids.count == 1 ? "" : "s") from \(queue) (ids \(ids.first!)…\(ids.last!)); see hms-act dead list")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List collected dead letters, newest first.")

        @Option(help: "dead (waiting, the default), replayed, discarded or all.")
        var status = "dead"
        @Option(help: "How many (1–1000).")
        var limit = 100
        @OptionGroup var options: DeadDeskOptions

        func validate() throws {
            guard status == "all" || DeadLetter.Status(rawValue: status) != nil else {
                throw ValidationError("--status must be dead, replayed, discarded or all")
            }
        }

        func run() async throws {
            try await Console.reportingErrors {
                let store = try options.store(try options.configurationOptions.load())
                let letters = try await options.explaining {
                    try await store.listDeadLetters(status: DeadLetter.Status(rawValue: status), limit: limit)
                }
                switch options.output {
                case .json: print(Console.pretty(.array(letters.map(DeadCommand.json))))
                case .table:
                    guard !letters.isEmpty else {
                        let which = ["all": "", "dead": "waiting "][status] ?? status + " "
                        print("no \(which)dead letters; collect them with hms-act dead collect")
                        return
                    }
                    print(Console.table(["ID", "STATUS", "EXCHANGE", "ROUTING KEY", "COLLECTED", "REASON"], letters.map {
                        [String($0.id), $0.status.rawValue, $0.exchange, $0.routingKey,
                         DeadCommand.timestamp($0.collectedAt), $0.reason.count > 70 ? String($0.reason.prefix(69)) + "…" : $0.reason]
                    }))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter: why it died, where it goes, its body.")

        @Argument(help: "The dead letter's id.")
        var id: Int64
        @OptionGroup var options: DeadDeskOptions

        func run() async throws {
            try await Console.reportingErrors {
                let store = try options.store(try options.configurationOptions.load())
                guard let letter = try await options.explaining({ try await store.deadLetter(id: id) }) else {
                    throw CLIError("no dead letter \(id); list them with hms-act dead list")
                }
                switch options.output {
                case .json: print(Console.pretty(DeadCommand.json(letter)))
                case .table:
                    var lines = [
                        "dead letter \(letter.id) (\(letter.status.rawValue))",
                        "reason      \(letter.reason)",
                        "replays to  \(letter.exchange) \(letter.routingKey)",
                        "died in     \(letter.queue ?? "-")",
                        "collected   \(DeadCommand.timestamp(letter.collectedAt))",
                        "message id  \(letter.messageID ?? "-")",
                        "properties  \(Console.compact(letter.properties))",
                        "body        \(DeadCommand.bodyText(letter.body))",
                    ]
                    if letter.status != .dead {
                        lines.append("\(letter.status.rawValue)    by \(letter.handledBy ?? "?") at "
                            + "\(letter.handledAt.map(DeadCommand.timestamp) ?? "-")" + (letter.note.map { " – \($0)" } ?? ""))
                    }
                    print(lines.joined(separator: "\n"))
                }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a dead letter again to the exchange and routing key it was first published to.",
            discussion: "Fix the cause first (register the playbook, fix the sender). Repeats are harmless: the inbox ignores what was applied.")

        @OptionGroup var letter: DeadLetterChoice

        func run() async throws {
            let options = letter.options
            try await Console.reportingErrors {
                let configuration = try options.configurationOptions.load()
                let store = try options.store(configuration)
                let (id, who, reason) = (letter.id, options.who, letter.reason)
                let replayed = try await options.explaining {
                    try await options.withBroker(configuration) { connection in
                        try await DeadLetterDesk.replay(id, on: connection, store: store, actor: who, note: reason)
                    }
                }
                let destination = "\(replayed.exchange) \(replayed.routingKey)"
                switch options.output {
                case .json: print(Console.pretty(["id": .int(id), "replayed_to": .string(destination)]))
                case .table: print("replayed dead letter \(id) to \(destination)")
                }
            }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a dead letter discarded: kept for the record, never replayed.")

        @OptionGroup var letter: DeadLetterChoice

        func run() async throws {
            let (options, id) = (letter.options, letter.id)
            try await Console.reportingErrors {
                let store = try options.store(try options.configurationOptions.load())
                try await options.explaining {
                    try await DeadLetterDesk.discard(id, store: store, actor: options.who, note: letter.reason)
                }
                print("discarded dead letter \(id)")
            }
        }
    }

    static func timestamp(_ milliseconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1_000))
    }

    /// The body as text when it is UTF-8 (shortened), else its size.
    static func bodyText(_ body: [UInt8]) -> String {
        guard let text = String(validating: body, as: UTF8.self) else { return "\(body.count) bytes (not UTF-8)" }
        return text.count > 2_000 ? String(text.prefix(2_000)) + "… (\(body.count) bytes)" : text
    }

    /// The dead letter as the API shows it.
    static func json(_ letter: DeadLetter) -> JSONValue {
        let encoder = JSONEncoder()
        guard let data = try? encoder.encode(API.DeadLetter(letter)), let value = try? JSONValue(parsing: Array(data))
        else { return .null }
        return value
    }
}
