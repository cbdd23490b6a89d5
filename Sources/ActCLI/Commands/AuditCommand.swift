import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation
import Logging

/// `hms-act audit verify`: checks every run's hash chain and every signed checkpoint, straight in
/// PostgreSQL. Operators run it with database access and the checkpoint key(s).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify the tamper-evident audit trail.",
        subcommands: [Verify.self]
    )
}

extension AuditCommand {
    /// `hms-act audit verify [--postgres-url URL] [--key ID=KEY]…`.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every run's hash chain and every keyed checkpoint; list each finding.",
            discussion: """
                Connects to PostgreSQL directly (the configuration's postgres.url, env POSTGRES_URL, and \
                postgres.schema, env HMS_POSTGRES_SCHEMA). The checkpoint key is audit.key_id/audit.key \
                (env HMS_AUDIT_KEY_ID/HMS_AUDIT_KEY); give older or other keys with --key ID=KEY, repeated.
                Exit status: 0 intact, 1 when anything was found (or the check could not run).
                """
        )

        @Option(name: .customLong("postgres-url"), help: ArgumentHelp("The database (default the configuration's postgres.url, env POSTGRES_URL).", valueName: "url"))
        var postgresURL: String?

        @Option(help: "The schema holding hms-act's tables (default the configuration's postgres.schema).")
        var schema: String?

        @Option(name: .customLong("key"), help: ArgumentHelp("A checkpoint key as ID=KEY; repeat for several.", valueName: "id=key"))
        var keys: [KeyArgument] = []

        @Option(name: [.short, .customLong("output")], help: "Output format: table or json.")
        var output: OutputFormat = .table

        @OptionGroup var configurationOptions: ConfigurationOptions

        func run() async throws {
            var intact = true
            try await Console.reportingErrors {
                let configuration = try configurationOptions.load()
                var postgres = try PostgresConfiguration.fromCLI(postgresURL ?? configuration.postgres.url)
                configuration.postgres.applySessionSettings(to: &postgres)
                postgres.applicationName = "hms-act audit verify"
                postgres.connectTimeout = .seconds(5)
                let schemaName = schema ?? configuration.postgres.schema
                postgres.searchPath = schemaName
                var keyring: [String: [UInt8]] = [configuration.audit.keyID: Array(configuration.audit.key.utf8)]
                for key in keys { keyring[key.id] = Array(key.key.utf8) }

                var logger = Logger(label: "hms-act.audit")
                logger.logLevel = .warning
                // The pool serves callers before run(); the process exits when done, which closes it.
                let client = PostgresClient(configuration: .init(connection: postgres, maxConnections: 1), logger: logger)
                let store = Store(client: client, schema: schemaName, logger: logger)
                let report: AuditReport
                do {
                    report = try await store.verifyAudit(keys: keyring)
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
                    let findings: [JSONValue] = report.findings.map { finding in
                        var entry: [String: JSONValue] = [
                            "kind": .string(finding.kind.rawValue), "message": .string(finding.message),
                        ]
                        if let run = finding.runID { entry["run_id"] = .string(run) }
                        if let sequence = finding.sequence { entry["sequence"] = .int(sequence) }
                        return .object(entry)
                    }
                    print(Console.pretty([
                        "intact": .bool(report.isIntact), "runs_checked": .int(report.runsChecked),
                        "entries_checked": .int(report.entriesChecked),
                        "checkpoints_checked": .int(report.checkpointsChecked), "findings": .array(findings),
                    ]))
                case .table:
                    print("checked \(report.runsChecked) run\(report.runsChecked == 1 ? "" : "s"), \(report.entriesChecked) entr\(report.entriesChecked == 1 ? "y" : "ies"), \(report.checkpointsChecked) checkpoint\(report.checkpointsChecked == 1 ? "" : "s") (keys: \(keyring.keys.sorted().joined(separator: ", ")))")
                    for finding in report.findings {
                        let place = [finding.runID.map { "run \($0)" }, finding.sequence.map { "entry \($0)" }]
                            .compactMap { $0 }.joined(separator: " ")
                        print("  ✖ \(finding.kind.rawValue)" + (place.isEmpty ? "" : " – \(place)") + ": \(finding.message)")
                    }
                    print(report.isIntact ? "✔ audit trail intact" : "✘ \(report.findings.count) finding\(report.findings.count == 1 ? "" : "s"): the audit trail was altered")
                }
            }
            if !intact { throw ExitCode.failure }
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
