import ActPostgres
@testable import ActService
import Foundation
import Testing

/// The `postgres.*` settings reach every connection and the pool, and the settings table, the defaults file
/// and the configuration reference agree.
@Suite struct PostgresSettingsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theDefaultsGiveEveryConnectionTimeoutsKeepalivesAndAPoolDeadline() throws {
        let configuration = ServiceConfiguration()
        try configuration.validate()
        let client = try configuration.postgres.clientConfiguration()
        #expect(client.maxConnections == 6)
        #expect(client.acquireTimeout == .seconds(10))
        #expect(client.settingNames.maxConnections.contains("postgres.pool_size"))
        #expect(client.settingNames.acquireTimeout.contains("postgres.pool_acquire_timeout_ms"))
        let connection = client.connection
        #expect(connection.searchPath == "hms_act")
        #expect(connection.statementTimeout == .seconds(30))
        #expect(connection.lockTimeout == .seconds(10))
        #expect(connection.idleInTransactionSessionTimeout == .seconds(60))
        #expect(connection.answerTimeout == .seconds(35))
        #expect(connection.connectTimeout == .seconds(10))
        #expect(connection.keepalives == .init(idle: .seconds(10), interval: .seconds(5), count: 3))
        #expect(connection.tcpUserTimeout == .seconds(30))
    }

    @Test func environmentVariablesSetTheTimeouts() throws {
        var configuration = ServiceConfiguration()
        try configuration.applyEnvironment([
            "HMS_POSTGRES_STATEMENT_TIMEOUT_MS": "1500",
            "HMS_POSTGRES_LOCK_TIMEOUT_MS": "250",
            "HMS_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS": "0",
            "HMS_POSTGRES_ANSWER_GRACE_MS": "500",
            "HMS_POSTGRES_POOL_ACQUIRE_TIMEOUT_MS": "2500",
            "HMS_POSTGRES_CONNECT_TIMEOUT_SECONDS": "3",
            "HMS_POSTGRES_KEEPALIVES_IDLE_SECONDS": "0",
            "HMS_POSTGRES_TCP_USER_TIMEOUT_MS": "9000",
        ])
        try configuration.validate()
        let client = try configuration.postgres.clientConfiguration()
        #expect(client.acquireTimeout == .milliseconds(2500))
        #expect(client.connection.statementTimeout == .milliseconds(1500))
        #expect(client.connection.lockTimeout == .milliseconds(250))
        #expect(client.connection.idleInTransactionSessionTimeout == .zero)
        #expect(client.connection.answerTimeout == .seconds(2))
        #expect(client.connection.connectTimeout == .seconds(3))
        #expect(client.connection.keepalives == nil)
        #expect(client.connection.tcpUserTimeout == .seconds(9))
    }

    @Test(arguments: [
        ("HMS_POSTGRES_STATEMENT_TIMEOUT_MS", "-1", "postgres.statement_timeout_ms"),
        ("HMS_POSTGRES_LOCK_TIMEOUT_MS", "2147483648", "postgres.lock_timeout_ms"),
        ("HMS_POSTGRES_POOL_ACQUIRE_TIMEOUT_MS", "0", "postgres.pool_acquire_timeout_ms"),
        ("HMS_POSTGRES_CONNECT_TIMEOUT_SECONDS", "0", "postgres.connect_timeout_seconds"),
        ("HMS_POSTGRES_KEEPALIVES_COUNT", "0", "postgres.keepalives_count"),
        ("HMS_POSTGRES_KEEPALIVES_INTERVAL_SECONDS", "0", "postgres.keepalives_interval_seconds"),
    ])
    func valuesOutOfRangeAreRefusedNamingTheKey(variable: String, value: String, key: String) throws {
        var configuration = ServiceConfiguration()
        try configuration.applyEnvironment([variable: value])
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains(key) == true)
    }

    /// The default of a setting as `docs/configuration.md` and `config/hms-act.yaml` write it.
    static func defaultText(_ setting: ServiceConfiguration.Setting) -> String {
        let defaults = ServiceConfiguration()
        switch setting.target {
        case .string(let path): return defaults[keyPath: path]
        case .int(let path): return String(defaults[keyPath: path])
        case .double(let path): return String(defaults[keyPath: path])
        case .bool(let path): return String(defaults[keyPath: path])
        case .strings(let path):
            let list = defaults[keyPath: path]
            return list.isEmpty ? "[]" : list.joined(separator: ",")
        }
    }

    @Test func theConfigurationReferenceListsEverySettingWithItsVariableAndDefault() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| `") }
        #expect(rows.count == ServiceConfiguration.settings.count, "one row per setting, no more")
        for setting in ServiceConfiguration.settings {
            let row = "| `\(setting.key)` | `\(setting.environment)` | `\(Self.defaultText(setting))` | \(setting.summary) |"
            #expect(rows.contains { $0 == row }, "docs/configuration.md needs the row: \(row)")
        }
    }

    @Test func theDefaultsFileSetsEverySettingToItsDefault() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("config/hms-act.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        for setting in ServiceConfiguration.settings {
            let leaf = setting.key.split(separator: ".").last.map(String.init) ?? setting.key
            let line = lines.first { line in
                guard let range = line.range(of: "# \(setting.environment)") else { return false }
                let after = line[range.upperBound...]
                return after.isEmpty || after.hasPrefix(" ")
            }
            let expected = "\(leaf): \(Self.defaultText(setting))"
            #expect(
                line?.trimmingCharacters(in: .whitespaces).hasPrefix(expected) == true,
                "config/hms-act.yaml needs `\(expected)  # \(setting.environment)`"
            )
        }
    }

    /// A server that acknowledges commits before writing them can lose a result whose message hms-act already
    /// acknowledged; the service says so at start and how to fix it. Every durable setting is quiet.
    @Test func aServerThatCanLoseAcknowledgedCommitsIsNamedAtStart() throws {
        let warning = try #require(ServiceRuntime.durabilityWarning(synchronousCommit: "off"))
        #expect(warning.contains("synchronous_commit = off"))
        #expect(warning.contains("ALTER ROLE"))
        for durable in ["on", "local", "remote_write", "remote_apply"] {
            #expect(ServiceRuntime.durabilityWarning(synchronousCommit: durable) == nil)
        }
    }
}
