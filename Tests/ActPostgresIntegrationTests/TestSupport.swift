import ActPostgres
import Foundation
import Logging
import Testing

/// All suites of this target, run one at a time: the kill -9 test restarts the server under everyone's feet.
@Suite("ActPostgres integration", .serialized)
struct ActPostgresIntegration {}

/// The server under test, from `POSTGRES_*` (as `scripts/stack env` prints them), with the stack's defaults.
enum TestDatabase {
    static let environment = ProcessInfo.processInfo.environment

    static var configuration: PostgresConfiguration {
        PostgresConfiguration(
            host: environment["POSTGRES_HOSTNAME"] ?? "127.0.0.1",
            port: environment["POSTGRES_PORT"].flatMap(Int.init) ?? 55432,
            user: environment["POSTGRES_USER"] ?? "hms",
            password: environment["POSTGRES_PASSWORD"] ?? "hms-local-only",
            database: environment["POSTGRES_DB"] ?? "hms_act",
            connectTimeout: .seconds(5),
            applicationName: "hms-act-tests",
            tls: .disable
        )
    }

    static let logger = Logger(label: "hms-act.tests.postgres") { _ in SwiftLogNoOpLogHandler() }

    static func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration: configuration, logger: logger)
    }

    /// Runs `body` with a fresh connection and closes it afterwards.
    static func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await connect()
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Creates (or recreates) a schema of the suite's own, so suites never see each other's tables.
    static func recreateSchema(_ name: String, on connection: PostgresConnection) async throws {
        try await connection.executeScript("DROP SCHEMA IF EXISTS \(name) CASCADE; CREATE SCHEMA \(name);")
    }

    /// The package root, from this file's path.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
}
