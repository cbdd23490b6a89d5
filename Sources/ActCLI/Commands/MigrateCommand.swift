import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation
import Logging

/// `hms-act migrate`: applies the database migrations this build ships, and nothing else. `serve` migrates
/// at start too; a deployment runs this first (a Kubernetes Job before the rollout) so that a bad migration
/// stops the rollout instead of crash-looping every new replica. Concurrent runs are safe: the migrator
/// serialises on an advisory lock, so each migration is applied once.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations and print what was applied.",
        discussion: """
            Connects to PostgreSQL directly (the configuration's postgres.url, env POSTGRES_URL) and creates \
            the schema (postgres.schema, env HMS_POSTGRES_SCHEMA) if needed. Safe to run while replicas run \
            or start: migrations are serialised by an advisory lock and each is applied once.
            With postgres.app_role (env HMS_POSTGRES_APP_ROLE) it then grants that role what `hms-act serve` \
            needs and nothing more (docs/security.md, "Database roles").
            Exit status: 0 when the schema is up to date, 1 when it could not be migrated.
            """
    )

    @Option(name: .customLong("postgres-url"), help: ArgumentHelp(
        "The database (default the configuration's postgres.url, env POSTGRES_URL).", valueName: "url"))
    var postgresURL: String?

    @Option(help: "The schema holding hms-act's tables (default the configuration's postgres.schema).")
    var schema: String?

    @Option(help: ArgumentHelp(
        "Keep retrying for this many seconds while PostgreSQL cannot be reached (0: fail at once).",
        valueName: "seconds"))
    var wait: Int = 0

    @OptionGroup var configurationOptions: ConfigurationOptions

    func validate() throws {
        guard wait >= 0 else { throw ValidationError("--wait must be 0 or more seconds") }
    }

    func run() async throws {
        try await Console.reportingErrors {
            let configuration = try configurationOptions.load()
            var postgres = try PostgresConfiguration.fromCLI(postgresURL ?? configuration.postgres.url)
            try DirectStore.checkTransport(configuration, url: postgresURL)
            let schemaName = schema ?? configuration.postgres.schema
            guard !schemaName.isEmpty, schemaName.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw CLIError("the schema name \(schemaName) must be letters, digits and underscores")
            }
            configuration.postgres.applySessionSettings(to: &postgres)
            postgres.applicationName = "hms-act migrate"
            postgres.connectTimeout = .seconds(5)
            postgres.searchPath = schemaName

            let shipped: [(version: Int, name: String)]
            do {
                shipped = try Store.bundledMigrations()
            } catch {
                throw CLIError("this build's migrations cannot be read: \(error)")
            }
            let names = Dictionary(shipped.map { ($0.version, $0.name) }, uniquingKeysWith: { first, _ in first })

            var logger = Logger(label: "hms-act.migrate")
            logger.logLevel = .warning
            // The pool serves callers before run(); the process exits when done, which closes it.
            let client = PostgresClient(configuration: .init(connection: postgres, maxConnections: 1), logger: logger)
            let store = Store(client: client, schema: schemaName, logger: logger)
            let deadline = ContinuousClock.now + .seconds(wait)
            var applied: [Int] = []
            while true {
                do {
                    applied = try await store.migrate()
                    break
                } catch let error as PostgresError where error.code == .connectionFailed {
                    if ContinuousClock.now < deadline {
                        Console.error("waiting for PostgreSQL at \(postgres) (\(error.reason ?? "connection failed"))")
                        try await Task.sleep(for: .seconds(2))
                        continue
                    }
                    throw CLIError("""
                        cannot connect to PostgreSQL at \(postgres) (\(error.reason ?? "connection failed"))
                          Start the local stack with `scripts/stack up`, or pass --postgres-url / POSTGRES_URL\
                        \(wait == 0 ? " (--wait SECONDS retries while the server starts)" : "").
                        """)
                } catch let error as PostgresError {
                    throw CLIError("migrating schema '\(schemaName)' failed, nothing of the failed migration was kept: "
                        + "\(error.reason ?? "\(error.code)") (SQLSTATE \(error.sqlState ?? "-"))")
                } catch is CancellationError {
                    throw ExitCode(130)
                } catch {
                    throw CLIError("migrating schema '\(schemaName)' failed: \(error)")
                }
            }

            for version in applied {
                print("applied \(names[version] ?? "migration \(version)")")
            }
            let latest = shipped.map(\.version).max() ?? 0
            if applied.isEmpty {
                print("✔ schema \(schemaName) is up to date at version \(latest); nothing to apply")
            } else {
                print("✔ schema \(schemaName) is at version \(latest); applied \(applied.count) migration\(applied.count == 1 ? "" : "s")")
            }
            let role = configuration.postgres.appRole
            if !role.isEmpty {
                do {
                    if try await store.grantServingRights(to: role) {
                        print("✔ granted role \(role) what hms-act serve needs in \(schemaName) (no audit update or delete, "
                            + "no ownership)")
                    } else {
                        print("postgres.app_role \(role) is the role migrating: nothing to grant")
                    }
                } catch let error as PostgresError {
                    throw CLIError("granting role \(role) its rights in '\(schemaName)' failed: "
                        + "\(error.reason ?? "\(error.code)") (SQLSTATE \(error.sqlState ?? "-")); create the role first "
                        + "(CREATE ROLE \(role) LOGIN PASSWORD '…'), or unset postgres.app_role (HMS_POSTGRES_APP_ROLE)")
                }
            }
        }
    }
}
