import ActAMQP
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation
import Logging

/// `hms-act audit`: verify the tamper-evident audit trail, and make or show the key that signs its checkpoints.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify the tamper-evident audit trail; make and show its checkpoint signing key.",
        subcommands: [Verify.self, Keygen.self, PublicKey.self, ExportCheckpoints.self]
    )
}

extension AuditCommand {
    /// `hms-act audit keygen`: a new Ed25519 checkpoint signing key and its public key.
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new Ed25519 key for signing audit checkpoints; print it and its public key.",
            discussion: """
                Prints two lines in environment-file form: HMS_AUDIT_SIGNING_KEY (the private key: put it in the \
                service's Secret and nowhere else) and HMS_AUDIT_PUBLIC_KEY (give it to whoever verifies: \
                `hms-act audit verify --public-key KEY`). Nothing is stored.
                """
        )

        func run() throws {
            let key = AuditSigningKey.generate()
            print("HMS_AUDIT_SIGNING_KEY=\(key.base64)")
            print("HMS_AUDIT_PUBLIC_KEY=\(key.publicKey.base64)")
        }
    }

    /// `hms-act audit public-key`: the public half of the configured signing key.
    struct PublicKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "public-key",
            abstract: "Print the public key of the configured checkpoint signing key (audit.signing_key).",
            discussion: "Reads audit.signing_key (env HMS_AUDIT_SIGNING_KEY); prints the base64 public key verifiers trust."
        )

        @OptionGroup var configurationOptions: ConfigurationOptions

        func run() async throws {
            try await Console.reportingErrors {
                let configuration = try configurationOptions.load()
                do {
                    print(try configuration.audit.signingKey().publicKey.base64)
                } catch {
                    throw CLIError("\(error)")
                }
            }
        }
    }
}

extension AuditCommand {
    /// `hms-act audit verify [--postgres-url URL] [--public-key KEY]… [--checkpoints FILE] [--key ID=KEY]…`.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every run's hash chain and every signed checkpoint; list each finding.",
            discussion: """
                Connects to PostgreSQL directly (the configuration's postgres.url, env POSTGRES_URL, and \
                postgres.schema, env HMS_POSTGRES_SCHEMA). Checkpoints must be signed by a public key given with \
                --public-key (repeat for rotated keys); without one, the public half of audit.signing_key is \
                trusted. --checkpoints FILE compares the database with the published checkpoints: the \
                audit.checkpoint messages drained from a queue bound to the governance exchange, one message \
                body per line; this catches whoever rewrites the database and its stored checkpoints together. \
                Checkpoints written before Ed25519 (HMAC) verify with --key ID=KEY, repeated. \
                --archive FILE verifies an archive file of `hms-act retention run` instead, without the database: \
                every run's chain re-hashed, ending at its final head, which a checkpoint in the file signs.
                Exit status: 0 intact, 1 when anything was found (or the check could not run).
                """
        )

        @Option(name: .customLong("public-key"), help: ArgumentHelp("A trusted checkpoint public key (base64, as `hms-act audit keygen` prints it); repeat for several.", valueName: "key"))
        var publicKeys: [String] = []

        @Option(name: .customLong("checkpoints"), help: ArgumentHelp("The published audit.checkpoint messages, one JSON body per line, to compare the database with.", valueName: "file"))
        var checkpointsFile: String?

        @Option(name: .customLong("archive"), help: ArgumentHelp("An archive file of `hms-act retention run` to verify offline, instead of the database; repeat for several.", valueName: "file"))
        var archives: [String] = []

        @Option(name: .customLong("postgres-url"), help: ArgumentHelp("The database (default the configuration's postgres.url, env POSTGRES_URL).", valueName: "url"))
        var postgresURL: String?

        @Option(help: "The schema holding hms-act's tables (default the configuration's postgres.schema).")
        var schema: String?

        @Option(name: .customLong("key"), help: ArgumentHelp("An HMAC key of checkpoints written before Ed25519, as ID=KEY; repeat for several.", valueName: "id=key"))
        var keys: [KeyArgument] = []

        @Option(name: [.short, .customLong("output")], help: "Output format: table or json.")
        var output: OutputFormat = .table

        @OptionGroup var configurationOptions: ConfigurationOptions

        func run() async throws {
            var intact = true
            try await Console.reportingErrors {
                let configuration = try configurationOptions.load()
                var legacyKeys: [String: [UInt8]] = [:]
                for key in keys { legacyKeys[key.id] = Array(key.key.utf8) }
                let trusted = try AuditKeys.given(publicKeys, configuration: configuration)
                if trusted.isEmpty && legacyKeys.isEmpty {
                    throw CLIError("""
                        no key to verify checkpoints with: pass --public-key KEY (the HMS_AUDIT_PUBLIC_KEY that \
                        `hms-act audit keygen` printed, or `hms-act audit public-key` where the signing key is set)
                        """)
                }
                if !archives.isEmpty {
                    guard checkpointsFile == nil else {
                        throw CLIError("--archive and --checkpoints do not go together: an archive carries its own checkpoints")
                    }
                    intact = try verifyArchives(trusted: trusted, legacyKeys: legacyKeys)
                    return
                }
                let direct = try DirectStore(configuration: configuration, url: postgresURL, schema: schema,
                    name: "hms-act audit verify")
                let (store, postgres, schemaName) = (direct.store, direct.postgres, direct.schema)
                var published: [PublishedCheckpoint]?
                if let checkpointsFile {
                    guard let data = FileManager.default.contents(atPath: checkpointsFile) else {
                        throw CLIError("cannot read --checkpoints \(checkpointsFile): no such file, or not readable")
                    }
                    do {
                        published = try PublishedCheckpoint.readStream(Array(data))
                    } catch {
                        throw CLIError("--checkpoints \(checkpointsFile), \(error); each line must be one audit.checkpoint message body as published")
                    }
                }

                let report: AuditReport
                do {
                    report = try await store.verifyAudit(trusted: trusted, legacyKeys: legacyKeys, published: published)
                } catch let error as PostgresError {
                    if error.code == .connectionFailed {
                        throw CLIError("""
                            cannot connect to PostgreSQL at \(postgres) (\(error.reason ?? "connection failed"))
                              Start the local stack with `scripts/stack up`, or pass --postgres-url / POSTGRES_URL.
                            """)
                    }
                    if error.sqlState == "42P01" || error.sqlState == "3F000" {
                        throw CLIError("the schema '\(schemaName)' of \(postgres) has no hms-act tables: start hms-act once (`hms-act serve`) to migrate it, or name the right one with --schema")
                    }
                    throw CLIError("the audit check failed: \(error.reason ?? "\(error.code)") (SQLSTATE \(error.sqlState ?? "-"))")
                }
                intact = report.isIntact
                switch output {
                case .json:
                    let findings: [JSONValue] = report.findings.map(Self.json)
                    print(Console.pretty([
                        "intact": .bool(report.isIntact), "runs_checked": .int(report.runsChecked),
                        "archived_runs": .int(report.archivedRuns), "entries_checked": .int(report.entriesChecked),
                        "checkpoints_checked": .int(report.checkpointsChecked), "findings": .array(findings),
                    ]))
                case .table:
                    let against = published.map { " against \($0.count) published" } ?? ""
                    let keyNames = trusted.map(\.base64) + legacyKeys.keys.sorted().map { "HMAC \($0)" }
                    let archived = report.archivedRuns > 0 ? " (and the signed heads of \(report.archivedRuns) archived run\(report.archivedRuns == 1 ? "" : "s"))" : ""
                    print("checked \(report.runsChecked) run\(report.runsChecked == 1 ? "" : "s"), \(report.entriesChecked) entr\(report.entriesChecked == 1 ? "y" : "ies"), \(report.checkpointsChecked) checkpoint\(report.checkpointsChecked == 1 ? "" : "s")\(against)\(archived) (keys: \(keyNames.joined(separator: ", ")))")
                    Self.printFindings(report)
                    print(report.isIntact ? "✔ audit trail intact" : "✘ \(report.findings.count) finding\(report.findings.count == 1 ? "" : "s"): the audit trail was altered")
                }
            }
            if !intact { throw ExitCode.failure }
        }

        /// Verifies each `--archive` file and prints one report per file. - Returns: Whether all were intact.
        private func verifyArchives(trusted: [AuditPublicKey], legacyKeys: [String: [UInt8]]) throws -> Bool {
            var allIntact = true
            var reports: [JSONValue] = []
            for path in archives {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw CLIError("cannot read --archive \(path): no such file, or not readable")
                }
                let report = AuditArchive.verify(Array(data), trusted: trusted, legacyKeys: legacyKeys)
                allIntact = allIntact && report.isIntact
                switch output {
                case .json:
                    reports.append(.object([
                        "archive": .string(path), "intact": .bool(report.isIntact), "runs_checked": .int(report.runsChecked),
                        "entries_checked": .int(report.entriesChecked), "checkpoints_checked": .int(report.checkpointsChecked),
                        "findings": .array(report.findings.map(Self.json)),
                    ]))
                case .table:
                    print("\(path): checked \(report.runsChecked) run\(report.runsChecked == 1 ? "" : "s"), \(report.entriesChecked) entr\(report.entriesChecked == 1 ? "y" : "ies"), \(report.checkpointsChecked) checkpoint\(report.checkpointsChecked == 1 ? "" : "s")")
                    Self.printFindings(report)
                    print(report.isIntact ? "✔ archive intact" : "✘ \(report.findings.count) finding\(report.findings.count == 1 ? "" : "s"): the archive was altered or is incomplete")
                }
            }
            if output == .json { print(Console.pretty(.array(reports))) }
            return allIntact
        }

        static func json(_ finding: AuditChain.Finding) -> JSONValue {
            var entry: [String: JSONValue] = ["kind": .string(finding.kind.rawValue), "message": .string(finding.message)]
            if let run = finding.runID { entry["run_id"] = .string(run) }
            if let sequence = finding.sequence { entry["sequence"] = .int(sequence) }
            return .object(entry)
        }

        static func printFindings(_ report: AuditReport) {
            for finding in report.findings {
                let place = [finding.runID.map { "run \($0)" }, finding.sequence.map { "entry \($0)" }]
                    .compactMap { $0 }.joined(separator: " ")
                print("  ✖ \(finding.kind.rawValue)" + (place.isEmpty ? "" : " – \(place)") + ": \(finding.message)")
            }
        }
    }

    /// `--key ID=KEY`.
    struct KeyArgument: ExpressibleByArgument {
        var id: String
        var key: String

        init?(argument: String) {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
            let key = String(argument[argument.index(after: equals)...])
            guard !key.isEmpty else { return nil }
            self.id = String(argument[..<equals])
            self.key = key
        }
    }
}

extension AuditCommand {
    /// `hms-act audit export-checkpoints --queue Q --output FILE`: drains the published checkpoints to a file.
    struct ExportCheckpoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-checkpoints",
            abstract: "Append the published audit.checkpoint messages waiting in a queue to a file, one per line.",
            discussion: """
                Declares the queue (durable, classic) and binds it to the governance exchange with routing key \\
                audit.checkpoint, so the first run sets it up and every later checkpoint waits in it. Then \\
                appends every message waiting in it to FILE (one JSON body per line, the format of \\
                `audit verify --checkpoints`), flushes the file to disk, and only then acknowledges them. Run it on \\
                a schedule and keep FILE where the database's operators cannot rewrite it.
                """
        )

        @Option(help: "The queue to drain (bound to the governance exchange's audit.checkpoint key).")
        var queue = "hms-act.audit-checkpoints"

        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The file to append to.", valueName: "file"))
        var output: String

        @Option(name: .customLong("amqp-url"), help: ArgumentHelp("The broker (default the configuration's amqp.url, env AMQP_URL).", valueName: "url"))
        var amqpURL: String?

        @OptionGroup var configurationOptions: ConfigurationOptions

        func run() async throws {
            try await Console.reportingErrors {
                let configuration = try configurationOptions.load()
                let governance = configuration.amqp.exchanges.governance
                let amqp = try Broker.configuration(configuration, url: amqpURL, name: "hms-act audit export-checkpoints")
                let connection = try await Broker.connect(amqp, logger: Broker.quietLogger("hms-act.audit"))
                do {
                    // The frame pump reads the deliveries: without it a consumer waits for ever.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await connection.run() }
                        do {
                            try await drain(connection, governance: governance)
                        } catch {
                            group.cancelAll()
                            throw error
                        }
                        group.cancelAll()
                    }
                    await connection.close()
                } catch is CancellationError {
                    await connection.close()
                } catch {
                    await connection.close()
                    throw error
                }
            }
        }

        /// Binds the queue, appends what waits in it to the file, flushes, then acknowledges.
        private func drain(_ connection: AMQPConnection, governance: String) async throws {
            let waiting: UInt32
            do {
                try await connection.declare(AMQPTopology(exchanges: [AMQPTopology.Exchange(governance, kind: .topic, passive: true)]))
                waiting = try await connection.declareQueue(AMQPTopology.Queue(queue)).messageCount
                try await connection.declare(AMQPTopology(
                    bindings: [AMQPTopology.Binding(queue: queue, exchange: governance, routingKey: "audit.checkpoint")]))
            } catch let error as AMQPError {
                throw CLIError("declaring the checkpoint queue \(queue) failed: \(error); the exchange \(governance) must exist (start hms-act once) and the user needs configure and read rights on the queue")
            }
            guard FileManager.default.fileExists(atPath: output) || FileManager.default.createFile(atPath: output, contents: nil),
                let file = FileHandle(forWritingAtPath: output)
            else {
                throw CLIError("cannot write --output \(output): check the folder exists and is writable")
            }
            defer { try? file.close() }
            guard waiting > 0 else {
                print("no checkpoints waiting in \(queue)")
                return
            }
            let consumer = try await connection.consume(queue: queue, prefetch: UInt16(min(waiting, 1_000)))
            var written: UInt32 = 0
            var lastTag: AMQPDeliveryTag?
            _ = try file.seekToEnd()
            for try await delivery in consumer {
                try file.write(contentsOf: Data(delivery.body + [UInt8(ascii: "\n")]))
                lastTag = delivery.deliveryTag
                written += 1
                if written == waiting { break }
            }
            try file.synchronize()
            // Acknowledged only once on disk: a crash before this line re-delivers, and a repeated line is
            // harmless to `audit verify` (the same checkpoint twice).
            if let lastTag { try await connection.ack(lastTag, multiple: true) }
            print("appended \(written) checkpoint\(written == 1 ? "" : "s") from \(queue) to \(output)")
        }
    }
}
