import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// PostgreSQL turned read-only while hms-act runs (a failover that lands on a standby, an operator's
/// `default_transaction_read_only`, a disk-full guard): every write fails with SQLSTATE 25006. Nothing may be
/// dead-lettered, lost or half-written: triggers wait unacknowledged, and once writes are allowed again every
/// run completes and the audit trail verifies.
@Suite(.serialized) struct ReadOnlyDatabaseTests {
    /// Sets the database's `default_transaction_read_only` and ends every other session of the test role, so
    /// the service's pooled connections come back under the new default.
    static func setReadOnly(_ readOnly: Bool) async throws {
        try await TestDatabase.withConnection { connection in
            // This session may write whatever the database's default says.
            try await connection.executeScript("SET default_transaction_read_only = off")
            try await connection.executeScript(readOnly
                ? "ALTER DATABASE \"\(TestEnvironment.postgres.database)\" SET default_transaction_read_only = on"
                : "ALTER DATABASE \"\(TestEnvironment.postgres.database)\" RESET default_transaction_read_only")
            _ = try await connection.query("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE usename = current_user AND datname = current_database() AND pid <> pg_backend_pid()
                """)
        }
    }

    @Test func runsWaitWhileTheDatabaseIsReadOnlyAndCompleteAfter() async throws {
        do {
            try await Self.readOnlyWhileRunsArrive()
        } catch {
            // Never leave the shared test database read-only for the tests after this one.
            try? await Self.setReadOnly(false)
            throw error
        }
    }

    static func readOnlyWhileRunsArrive() async throws {
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.noise]) { _ in .complete(["ok": true]) } _: { system in
            try await system.emit("noise.complaint.filed", id: "before-read-only")
            let before = System.runID(playbook: "NoiseComplaint.v1", eventID: "before-read-only")
            #expect(try await system.waitForEnd(of: before) == "run.completed")

            try await setReadOnly(true)
            let during = (1...5).map { "during-read-only-\($0)" }
            for id in during { try await system.emit("noise.complaint.filed", id: id) }
            // Long enough for several batch retries; reading still works, writing does not.
            try await Task.sleep(for: .seconds(3))
            for id in during {
                #expect(try await system.store.run(id: System.runID(playbook: "NoiseComplaint.v1", eventID: id)) == nil,
                    "a run was written while the database was read-only")
            }

            try await setReadOnly(false)
            for id in during {
                let run = System.runID(playbook: "NoiseComplaint.v1", eventID: id)
                #expect(try await system.waitForEnd(of: run, timeout: .seconds(60)) == "run.completed", "\(run)")
            }
            #expect(try await NothingWedgesTests.deadLetters(system, count: 1, timeout: .seconds(2)).isEmpty,
                "nothing is dead-lettered for a read-only database")
            let report = try await system.store.verifyAudit(trusted: [try system.configuration.audit.signingKey().publicKey])
            #expect(report.findings.isEmpty, "\(report.findings)")
        }
    }
}
