public import ActPostgres
public import ActStore
internal import Foundation
public import Logging

/// Where the integration tests find the servers that `scripts/stack up` started: the same variables the
/// stack prints (`POSTGRES_*`, `AMQP_URL`), with the stack's loopback defaults.
public enum TestEnvironment {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    public static var postgres: PostgresConfiguration {
        PostgresConfiguration(
            host: environment["POSTGRES_HOSTNAME"] ?? "127.0.0.1",
            port: Int(environment["POSTGRES_PORT"] ?? "") ?? 55432,
            user: environment["POSTGRES_USER"] ?? "hms",
            password: environment["POSTGRES_PASSWORD"] ?? "hms-local-only",
            database: environment["POSTGRES_DB"] ?? "hms_act")
    }

    public static var postgresURL: String {
        let c = postgres
        return "postgresql://\(c.user):\(c.password ?? "")@\(c.host):\(c.port)/\(c.database)"
    }

    public static var amqpURL: String {
        environment["AMQP_URL"] ?? "amqp://hms:hms-local@127.0.0.1:55672/%2f"
    }

    /// The least-privilege users that `scripts/stack up` creates (deploy/rabbitmq/create-users.sh).
    public enum AMQPUser: String, Sendable, CaseIterable {
        /// hms-act itself: `HMS_ACT_AMQP_URL`.
        case service = "HMS_ACT_AMQP_URL"
        /// The demo worker (queues demo-worker and the agents' own): `HMS_WORKER_AMQP_URL`.
        case worker = "HMS_WORKER_AMQP_URL"
        /// A trigger emitter, hms.events only: `HMS_PUBLISHER_AMQP_URL`.
        case publisher = "HMS_PUBLISHER_AMQP_URL"
    }

    /// Why a least-privilege URL is missing, and how to get it.
    public struct MissingVariable: Error, CustomStringConvertible {
        public var variable: String
        public var description: String {
            "\(variable) is not set: run the tests in a shell that did `eval \"$(scripts/stack up)\"` (the stack creates "
                + "the least-privilege users of deploy/rabbitmq/create-users.sh and prints their URLs)"
        }
    }

    /// The URL of one of the stack's least-privilege users.
    ///
    /// - Throws: ``MissingVariable`` when the variable is not set (unlike `AMQP_URL` there is no default:
    ///   a broker that is not the stack's has no such users).
    public static func amqpURL(_ user: AMQPUser) throws -> String {
        guard let url = environment[user.rawValue], !url.isEmpty else { throw MissingVariable(variable: user.rawValue) }
        return url
    }

    /// The package root (for `playbooks/`, `agents/`), from this file's location.
    public static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    /// A logger that prints warnings and above (set `HMS_TEST_LOG=debug` for more).
    public static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: environment["HMS_TEST_LOG"] ?? "") ?? .warning
        return logger
    }

    /// A fresh schema name for one suite or test.
    public static func uniqueSchema(_ prefix: String = "t") -> String {
        prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }
}

/// A store in a schema of its own, migrated, and dropped afterwards.
public enum TestDatabase {
    /// Runs `body` with a migrated store in a new schema; drops the schema at the end, pass or fail.
    public static func withStore<Result: Sendable>(
        schema: String = TestEnvironment.uniqueSchema(),
        maxConnections: Int = 4,
        _ body: (Store) async throws -> Result
    ) async throws -> Result {
        var configuration = TestEnvironment.postgres
        configuration.searchPath = schema
        let client = PostgresClient(configuration: .init(connection: configuration, maxConnections: maxConnections),
            logger: TestEnvironment.logger("test.postgres"))
        let store = Store(client: client, schema: schema, logger: TestEnvironment.logger("test.store"))
        try await store.migrate()
        do {
            let result = try await body(store)
            try await drop(schema)
            return result
        } catch {
            try? await drop(schema)
            throw error
        }
    }

    /// Runs `body` on a connection of its own (the stack's test role unless `configuration` names another) and
    /// closes it afterwards, also when `body` throws.
    public static func withConnection<Result: Sendable>(_ configuration: PostgresConfiguration = TestEnvironment.postgres,
        _ body: (PostgresConnection) async throws -> Result) async throws -> Result
    {
        let connection = try await PostgresConnection.connect(configuration: configuration,
            logger: TestEnvironment.logger("test.postgres"))
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Runs SQL in a test schema on a connection of its own: how a test injects a fault (renames a table,
    /// adds a constraint) under a running service.
    public static func execute(_ sql: String, schema: String) async throws {
        var configuration = TestEnvironment.postgres
        configuration.searchPath = schema
        let connection = try await PostgresConnection.connect(configuration: configuration,
            logger: TestEnvironment.logger("test.postgres"))
        defer { Task { await connection.close() } }
        try await connection.executeScript(sql)
    }

    /// Drops a test schema and everything in it.
    public static func drop(_ schema: String) async throws {
        let connection = try await PostgresConnection.connect(configuration: TestEnvironment.postgres,
            logger: TestEnvironment.logger("test.postgres"))
        // The name comes from uniqueSchema (letters, digits, underscore); identifiers cannot be parameters.
        try await connection.executeScript("DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE")
        await connection.close()
    }
}
