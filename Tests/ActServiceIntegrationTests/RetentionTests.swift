import ActEngine
import ActPlaybook
import ActPostgres
import ActStore
import ActTesting
import Foundation
import Testing

/// `hms-act retention run` against the real PostgreSQL, with a history that spans months: old finished runs
/// are archived to a file that verifies offline and then removed; the audit partition of a month with no run
/// left is dropped, the others are held; `audit verify` still passes on what remains; an edited archive is
/// caught.
@Suite struct RetentionTests {
    static let key = AuditSigningKey.generate()
    static let day: Int64 = 86_400_000

    /// Runs the CLI against `schema` of the stack's database.
    static func cli(_ arguments: [String], schema: String) async throws -> CLIProcess.Finished {
        try await CLIProcess.run(arguments, environment: [
            "HMS_AUDIT_SIGNING_KEY": nil, "HMS_RETENTION_KEEP_FINISHED_DAYS": nil,
            "POSTGRES_URL": TestEnvironment.postgresURL, "HMS_POSTGRES_SCHEMA": schema,
        ])
    }

    /// Milliseconds of a UTC date.
    static func ms(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return Int64(calendar.date(from: components)!.timeIntervalSince1970 * 1000)
    }

    /// A run started at `started` with a chain of `length` entries, finished at `finished` (nil: still running),
    /// and one task, written as the service writes them.
    static func seed(_ store: Store, version: Int64, run: String, started: Int64, finished: Int64?, length: Int = 4)
        async throws
    {
        var previous: [UInt8] = []
        var batch = StoreBatch()
        for sequence in 1...length {
            let at = sequence == length ? (finished ?? started + Int64(sequence)) : started + Int64(sequence)
            let entry = AuditEntry(runID: run, sequence: Int64(sequence), at: at,
                kind: sequence == length && finished != nil ? "run.completed" : "task.completed", actor: "ai.classifier",
                data: ["step": .string("s\(sequence)")])
            let hash = AuditChain.hash(previous: previous, entry: entry)
            batch.audit.append(.init(entry: entry, previousHash: previous, hash: hash))
            previous = hash
        }
        batch.runs = [RunRow(runID: run, playbookID: "Retained.v1", versionID: version,
            status: finished == nil ? "running" : "completed", state: Array(#"{"payload": {"address": "1 Old St"}}"#.utf8),
            traceID: "t-\(run)", triggerEventID: "e-\(run)", triggerType: "test.event", auditSequence: Int64(length),
            auditHead: previous, createdAt: started, updatedAt: finished ?? started, finishedAt: finished)]
        batch.dispatchedTasks = [TaskRow(taskID: "\(run):intake:1", attempt: 1, runID: run, stepID: "intake",
            assignee: "ai.classifier", agentID: nil, target: "ai.classifier", status: .dispatched, deadline: nil,
            warnAt: nil, isCompensation: false, output: nil, error: nil, createdAt: started, updatedAt: started)]
        try await store.withTransaction { try await $0.write(batch) }
    }

    static func checkpoint(_ store: Store) async throws {
        _ = try await store.writeCheckpoint(signingKey: key, now: ms(2026, 1, 1)) { written in
            OutboxMessage(exchange: "hms.governance", routingKey: "audit.checkpoint",
                messageID: "audit.checkpoint:\(written.id)", correlationID: nil, type: "audit.checkpoint", headers: [:],
                body: Array("{}".utf8), createdAt: ms(2026, 1, 1))
        }
    }

    static func count(_ store: Store, _ sql: String) async throws -> Int {
        try await store.client.withConnection { try await $0.query(sql).first?.decode(Int.self, column: 0) ?? -1 }
    }

    @Test func oldRunsAreArchivedVerifiablyRemovedAndTheirMonthDropped() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await TestDatabase.withStore { store in
            // A deployment that has run since January 2025: its monthly partitions exist.
            try await store.client.withConnection {
                try await $0.executeScript("SELECT hms_act_ensure_audit_partitions('2025-01-01', now())")
            }
            let (version, _) = try await store.registerPlaybook(id: "Retained.v1", checksum: "r1", source: "id: Retained.v1",
                model: Array("{}".utf8), triggers: ["test.event"])
            let now = try await store.databaseTimeMilliseconds()
            // January: one run, long finished: archived, and its month dropped.
            try await Self.seed(store, version: version.versionID, run: "wf_jan", started: Self.ms(2025, 1, 10),
                finished: Self.ms(2025, 1, 11))
            // February: one finished run (archived) and one still running, which holds the month.
            try await Self.seed(store, version: version.versionID, run: "wf_feb_done", started: Self.ms(2025, 2, 10),
                finished: Self.ms(2025, 2, 12))
            try await Self.seed(store, version: version.versionID, run: "wf_feb_open", started: Self.ms(2025, 2, 20),
                finished: nil)
            // March: a run that finished yesterday, inside the retention.
            try await Self.seed(store, version: version.versionID, run: "wf_mar_recent", started: Self.ms(2025, 3, 5),
                finished: now - Self.day)
            try await Self.checkpoint(store)
            // April: finished long ago, but no checkpoint has signed its last entry yet: it waits.
            try await Self.seed(store, version: version.versionID, run: "wf_apr_unsigned", started: Self.ms(2025, 4, 1),
                finished: Self.ms(2025, 4, 2))

            let schema = store.schema
            let publicKey = Self.key.publicKey.base64
            let off = try await Self.cli(["retention", "run", "--public-key", publicKey], schema: schema)
            #expect(off.status == 1 && off.output.contains("retention is off"), "\(off.output)")

            let dry = try await Self.cli(["retention", "run", "--keep-finished-days", "30", "--archive-dir", folder,
                "--public-key", publicKey, "--dry-run", "-o", "json"], schema: schema)
            #expect(dry.status == 0, "\(dry.output)")
            #expect(try await Self.count(store, "SELECT count(*) FROM runs") == 5, "a dry run changes nothing")

            let run = try await Self.cli(["retention", "run", "--keep-finished-days", "30", "--archive-dir", folder,
                "--public-key", publicKey, "-o", "json"], schema: schema)
            #expect(run.status == 0, "\(run.output)")
            let summary = try #require(try? JSONValue(parsing: Array(run.output.utf8)), "\(run.output)")
            #expect(summary["due"] == 3 && summary["awaiting_checkpoint"] == 1, "\(run.output)")
            guard case .array(let archives)? = summary["archives"], archives.count == 1 else {
                Issue.record("one archive file expected: \(run.output)")
                return
            }
            #expect(archives[0]["runs"] == 2 && archives[0]["removed"] == 2 && archives[0]["audit_entries"] == 8)
            let dropped = summary["partitions_dropped"].map { "\($0)" } ?? ""
            #expect(dropped.contains("audit_log_2025_01"), "\(run.output)")
            for held in ["audit_log_2025_02", "audit_log_2025_03", "audit_log_2025_04"] {
                #expect(!dropped.contains(held), "\(held) still has runs: \(run.output)")
            }

            // What remains: the three runs inside the retention or unsigned; the archived ones recorded.
            let remaining = try await store.client.withConnection {
                try await $0.query("SELECT run_id FROM runs ORDER BY run_id").map { try $0.decode(String.self, column: 0) }
            }
            #expect(remaining == ["wf_apr_unsigned", "wf_feb_open", "wf_mar_recent"])
            #expect(try await Self.count(store, "SELECT count(*) FROM archived_runs") == 2)
            #expect(try await Self.count(store, "SELECT count(*) FROM tasks WHERE run_id IN ('wf_jan', 'wf_feb_done')") == 0)
            #expect(try await Self.count(store, "SELECT count(*) FROM audit_log WHERE run_id = 'wf_jan'") == 0,
                "January's partition left with its rows")
            #expect(try await Self.count(store, "SELECT count(*) FROM audit_log WHERE run_id = 'wf_feb_done'") == 4,
                "February is held by a running run, so its archived run's rows stay until it goes")

            // The archive verifies offline; the database still verifies, with the archived runs' signed heads.
            let file = try #require(archives[0]["file"]?.stringValue)
            let offline = try await Self.cli(["audit", "verify", "--archive", file, "--public-key", publicKey], schema: schema)
            #expect(offline.status == 0 && offline.output.contains("✔ archive intact"), "\(offline.output)")
            let database = try await Self.cli(["audit", "verify", "--public-key", publicKey], schema: schema)
            #expect(database.status == 0 && database.output.contains("signed heads of 1 archived run"), "\(database.output)")

            // An archived run's record altered in the database is caught against the signed checkpoint.
            try await store.client.withConnection {
                try await $0.executeScript("UPDATE archived_runs SET audit_seq = 3 WHERE run_id = 'wf_jan'")
            }
            let altered = try await Self.cli(["audit", "verify", "--public-key", publicKey], schema: schema)
            #expect(altered.status == 1 && altered.output.contains("wf_jan"), "\(altered.output)")
            try await store.client.withConnection {
                try await $0.executeScript("UPDATE archived_runs SET audit_seq = 4 WHERE run_id = 'wf_jan'")
            }

            // An edited archive is caught.
            var text = try String(contentsOfFile: file, encoding: .utf8)
            text = text.replacingOccurrences(of: #""step":"s2""#, with: #""step":"forged""#)
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let edited = try await Self.cli(["audit", "verify", "--archive", file, "--public-key", publicKey], schema: schema)
            #expect(edited.status == 1 && edited.output.contains("edited"), "\(edited.output)")

            // Once a checkpoint signs April's run, the next run archives it too.
            try await Self.checkpoint(store)
            let again = try await Self.cli(["retention", "run", "--keep-finished-days", "30", "--archive-dir", folder,
                "--public-key", publicKey, "-o", "json"], schema: schema)
            let second = try #require(try? JSONValue(parsing: Array(again.output.utf8)), "\(again.output)")
            guard case .array(let files)? = second["archives"] else {
                Issue.record("no archives in \(again.output)")
                return
            }
            #expect(again.status == 0 && files.count == 1 && files.first?["removed"] == 1, "\(again.output)")
            #expect((second["partitions_dropped"].map { "\($0)" } ?? "").contains("audit_log_2025_04"), "\(again.output)")
        }
    }
}
