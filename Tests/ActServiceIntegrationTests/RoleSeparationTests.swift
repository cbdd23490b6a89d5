import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// An owner role migrates (`hms-act migrate` with `postgres.app_role`) and `serve` runs as a role that owns
/// nothing (the stack's `hms_serve`): a whole run completes, next months' audit partitions are still made,
/// and the serving role can neither disable the append-only triggers nor update, delete or truncate the trail.
@Suite struct RoleSeparationTests {
    static let serveURL = ProcessInfo.processInfo.environment["POSTGRES_SERVE_URL"]
    static let role = "hms_serve"

    /// A connection as the serving role, in `schema`.
    static func asServingRole<Result: Sendable>(schema: String,
        _ body: (PostgresConnection) async throws -> Result) async throws -> Result
    {
        var configuration = try PostgresConfiguration(url: try #require(serveURL))
        configuration.searchPath = schema
        return try await TestDatabase.withConnection(configuration, body)
    }

    /// The SQLSTATE `sql` fails with as the serving role, or nil when it succeeds.
    static func refusal(_ sql: String, schema: String) async throws -> String? {
        try await asServingRole(schema: schema) { connection in
            do {
                try await connection.executeScript(sql)
                return nil
            } catch let error as PostgresError {
                return error.sqlState ?? "\(error.code)"
            }
        }
    }

    @Test(.enabled(if: serveURL != nil, "POSTGRES_SERVE_URL is not set: run the tests after eval \"$(scripts/stack env)\""))
    func aServingRoleThatOwnsNothingRunsPlaybooksAndCannotTouchTheTrail() async throws {
        let schema = TestEnvironment.uniqueSchema("roles")
        defer { Task { try? await TestDatabase.drop(schema) } }

        // serve as the serving role refuses a schema nobody migrated, naming the command to run.
        var unmigrated = ServiceConfiguration()
        unmigrated.postgres.url = try #require(Self.serveURL)
        unmigrated.postgres.schema = schema
        unmigrated.postgres.migrateAtStart = false
        unmigrated.amqp.url = TestEnvironment.amqpURL
        unmigrated.audit.signingKeyText = AuditSigningKey.generate().base64
        await #expect { try await ServiceRuntime.make(configuration: unmigrated, agents: [], registerPlaybooksFrom: nil,
            logger: TestEnvironment.logger("test.roles")) } throws: { error in
            "\(error)".contains("run `hms-act migrate` as the schema's owner")
        }

        let migrated = try await CLIProcess.run(["migrate"], environment: [
            "POSTGRES_URL": TestEnvironment.postgresURL, "HMS_POSTGRES_SCHEMA": schema, "HMS_POSTGRES_APP_ROLE": Self.role,
        ])
        #expect(migrated.status == 0 && migrated.output.contains("granted role \(Self.role)"), "\(migrated.output)")

        let serveURL = try #require(Self.serveURL)
        // The harness drops the schema when it stops: everything is checked inside.
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.noise], configure: { configuration in
            configuration.postgres.url = serveURL
            configuration.postgres.schema = schema
            configuration.postgres.migrateAtStart = false
        }) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("noise.complaint.filed", id: "as-serving-role")
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "as-serving-role")
            #expect(try await system.waitForEnd(of: run) == "run.completed")

            // Housekeeping's partitions, through the owner's function.
            let created = try await Self.asServingRole(schema: schema) { connection in
                try await connection.query("SELECT hms_act_ensure_audit_partitions(now(), now() + interval '8 months')")
                    .first?.decode(Int.self, column: 0)
            }
            #expect((created ?? 0) > 0)

            let denied = "42501"  // insufficient_privilege: not granted, or not the owner
            for sql in [
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
                "ALTER TABLE audit_log_default DISABLE TRIGGER ALL",
                "UPDATE audit_log SET actor = 'forged'",
                "DELETE FROM audit_log",
                "DELETE FROM audit_log_default",
                "TRUNCATE audit_log",
                "DELETE FROM audit_checkpoints",
                "DROP TABLE runs",
                "CREATE TABLE smuggled (id int)",
            ] {
                #expect(try await Self.refusal(sql, schema: schema) == denied, "\(sql)")
            }
            // What it does need still works.
            #expect(try await Self.refusal("SELECT count(*) FROM audit_log; UPDATE runs SET updated_at = updated_at",
                schema: schema) == nil)
        }
    }
}
