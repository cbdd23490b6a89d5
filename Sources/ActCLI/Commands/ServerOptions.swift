import ActAMQP
import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation
import Logging

/// `--config FILE`, for the commands that talk to RabbitMQ or PostgreSQL directly (`emit`, `worker`,
/// `audit verify`) and so need hms-act's configuration: `config/hms-act.yaml` (or `HMS_CONFIG`, or this
/// file), then the environment (`AMQP_URL`, `POSTGRES_URL`, `HMS_EXCHANGE_*`, `HMS_AUDIT_SIGNING_KEY`, …).
struct ConfigurationOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp(
        "hms-act's configuration file (default HMS_CONFIG or config/hms-act.yaml when present).", valueName: "file"))
    var file: String?

    /// The configuration with environment overrides.
    ///
    /// - Throws: ``CLIError`` saying which file or setting is wrong.
    func load() throws(CLIError) -> ServiceConfiguration {
        do {
            return try ConfigurationLoader.load(file: file)
        } catch {
            throw CLIError(error.description)
        }
    }
}

/// Opening a short-lived AMQP connection for a CLI command, with errors that say what to do.
enum Broker {
    /// A logger for the AMQP layer that stays quiet unless something goes wrong.
    static func quietLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        return logger
    }

    /// The broker connection of a CLI command: `url` (an `--amqp-url`) or the configuration's `amqp.url`, with
    /// the configuration's TLS files (`amqp.tls.ca_file`, `cert_file`, `key_file`) as `hms-act serve` uses them.
    ///
    /// - Throws: ``CLIError`` naming the problem (never the password).
    static func configuration(_ service: ServiceConfiguration, url: String?, name: String) throws(CLIError)
        -> AMQPConfiguration
    {
        var service = service
        if let url { service.amqp.url = url }
        do {
            // amqp.require_tls holds here as in serve: a refused URL never carries the password.
            var configuration = try service.checkBrokerTransport()
            configuration.connectionName = name
            configuration.connectTimeout = .seconds(5)
            return configuration
        } catch {
            // An unparsable URL gets an example; a refused transport's message already says what to change.
            let unusable = "amqp.url (AMQP_URL) is not usable"
            guard error.description.hasPrefix(unusable) else { throw CLIError(error.description) }
            let problem = url == nil ? error.description
                : error.description.replacingOccurrences(of: unusable, with: "--amqp-url is not usable")
            throw CLIError("\(problem); write e.g. amqp://guest:guest@127.0.0.1:5672/%2f, or "
                + "amqps://user:password@host:5671/%2f with amqp.tls.ca_file (HMS_AMQP_TLS_CA_FILE)")
        }
    }

    /// Connects, turning failures into a message that names the broker and how to start one.
    static func connect(_ configuration: AMQPConfiguration, logger: Logger) async throws(CLIError) -> AMQPConnection {
        do {
            return try await AMQPConnection.connect(configuration: configuration, logger: logger)
        } catch let error as AMQPError where error.code == .authenticationFailed {
            throw CLIError("RabbitMQ at \(configuration) refused the login (\(error.replyText ?? "access refused")); check the user and password in --amqp-url or AMQP_URL")
        } catch {
            let reason = (error as? AMQPError)?.replyText ?? "\(error)"
            throw CLIError("""
                cannot connect to RabbitMQ at \(configuration) (\(reason))
                  Start the local stack with `scripts/stack up` (or `scripts/demo`), or pass --amqp-url / AMQP_URL.
                """)
        }
    }
}

extension PostgresConfiguration {
    /// A configuration from a URL given on the command line or in the configuration, with an error that
    /// shows the form to write.
    static func fromCLI(_ url: String) throws -> PostgresConfiguration {
        do {
            return try PostgresConfiguration(url: url)
        } catch {
            throw CLIError("the PostgreSQL URL is not usable (\(error.reason ?? "\(error.code)")); write e.g. postgresql://hms@127.0.0.1:5432/hms_act")
        }
    }
}

/// A store over one connection, for the commands that reach PostgreSQL directly (`audit verify`, `dead`).
struct DirectStore {
    let store: Store
    /// Where it connects (printed in errors; never the password).
    let postgres: PostgresConfiguration
    let schema: String

    /// The configuration's database and schema unless `url`/`schema` name others, named `name` in
    /// `pg_stat_activity`. The pool serves callers before run(); the process exits when done, which closes it.
    init(configuration: ServiceConfiguration, url: String?, schema: String?, name: String) throws {
        var postgres = try PostgresConfiguration.fromCLI(url ?? configuration.postgres.url)
        try Self.checkTransport(configuration, url: url)
        configuration.postgres.applySessionSettings(to: &postgres)
        postgres.applicationName = name
        postgres.connectTimeout = .seconds(5)
        let schema = schema ?? configuration.postgres.schema
        postgres.searchPath = schema
        let logger = Broker.quietLogger(name)
        self.store = Store(client: PostgresClient(configuration: .init(connection: postgres, maxConnections: 1),
            logger: logger), schema: schema, logger: logger)
        self.postgres = postgres
        self.schema = schema
    }

    /// Refuses what `postgres.require_tls` forbids (as `serve` does), before connecting: a refused URL never
    /// carries the password.
    static func checkTransport(_ configuration: ServiceConfiguration, url: String?) throws(CLIError) {
        var configuration = configuration
        if let url { configuration.postgres.url = url }
        do {
            try configuration.checkDatabaseTransport()
        } catch {
            throw CLIError(url == nil ? error.description
                : error.description.replacingOccurrences(of: "postgres.url (POSTGRES_URL) is not usable",
                    with: "--postgres-url is not usable"))
        }
    }

    /// Runs `body`, turning PostgreSQL's errors into messages that say what to do; `missing` names a table
    /// this version's migrations create, for the error when the schema predates them.
    static func explaining<Result>(_ direct: DirectStore, missing: String, _ body: () async throws -> Result)
        async throws -> Result
    {
        do {
            return try await body()
        } catch let error as PostgresError {
            if error.code == .connectionFailed {
                throw CLIError("""
                    cannot connect to PostgreSQL at \(direct.postgres) (\(error.reason ?? "connection failed"))
                      Start the local stack with `scripts/stack up`, or pass --postgres-url / POSTGRES_URL.
                    """)
            }
            if error.sqlState == "42P01" || error.sqlState == "3F000" || error.sqlState == "42883" {
                throw CLIError("the schema '\(direct.schema)' has no \(missing) table: start this version of hms-act once "
                    + "(`hms-act migrate`) to migrate it, or name the right schema with --schema")
            }
            throw CLIError("the database refused: \(error.reason ?? "\(error.code)") (SQLSTATE \(error.sqlState ?? "-"))")
        }
    }
}
