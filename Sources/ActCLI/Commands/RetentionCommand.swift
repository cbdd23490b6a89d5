import ActEngine
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ArgumentParser
import Foundation

/// `hms-act retention run|status`: archive finished runs past the retention to verifiable files, remove them,
/// and drop the audit log's monthly partitions nothing holds any more (docs/operations.md, "Retention and
/// archive"). Runs against PostgreSQL directly, from a schedule (a Kubernetes CronJob) or by hand.
struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Archive and remove finished runs past the retention; drop the audit partitions they leave empty.",
        discussion: """
            Connects to PostgreSQL directly (--postgres-url, POSTGRES_URL; --schema, HMS_POSTGRES_SCHEMA). The \
            retention is retention.keep_finished_days (HMS_RETENTION_KEEP_FINISHED_DAYS); archive files go to \
            retention.archive_dir (HMS_RETENTION_ARCHIVE_DIR). Each file is written, flushed to disk, read back and \
            verified with the checkpoint public key before any run in it is removed.
            Examples:
              hms-act retention status
              hms-act retention run --dry-run
              hms-act retention run --keep-finished-days 400 --archive-dir /archive
              hms-act audit verify --archive /archive/hms-act-archive-hms_act-20270105T020000.000Z-1.jsonl
            """,
        subcommands: [Run.self, Status.self]
    )
}

/// Where retention connects and what it keeps.
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong("keep-finished-days"), help: ArgumentHelp(
        "Days finished runs are kept (default retention.keep_finished_days).", valueName: "days"))
    var keepFinishedDays: Int?
    @Option(name: .customLong("postgres-url"), help: ArgumentHelp(
        "The database (default the configuration's postgres.url, env POSTGRES_URL).", valueName: "url"))
    var postgresURL: String?
    @Option(help: "The schema holding hms-act's tables (default the configuration's postgres.schema).")
    var schema: String?
    @Option(name: [.short, .customLong("output")], help: "table or json.")
    var output: OutputFormat = .table
    @OptionGroup var configurationOptions: ConfigurationOptions

    /// The retention in days, from the flag or the configuration; 0 when it is off.
    func days(_ configuration: ServiceConfiguration) throws -> Int {
        let days = keepFinishedDays ?? configuration.retention.keepFinishedDays
        guard (0...36_500).contains(days) else {
            throw CLIError("--keep-finished-days must be 1…36500 days, got \(days)")
        }
        return days
    }

    func direct(_ configuration: ServiceConfiguration) throws -> DirectStore {
        try DirectStore(configuration: configuration, url: postgresURL, schema: schema, name: "hms-act retention")
    }
}

extension RetentionCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive finished runs past the retention, remove them, and drop emptied audit partitions.",
            discussion: """
                Only runs that completed, failed or were cancelled more than the retention ago, and whose final \
                audit head a checkpoint has signed, are archived; the others wait for a later run. A run that \
                changes while it is being archived (rewound, say) is kept. Exit status: 0 done (or nothing to \
                do), 1 when anything failed; no run is removed unless its archive verified.
                """
        )

        @Option(name: .customLong("archive-dir"), help: ArgumentHelp(
            "Folder for the archive files (default retention.archive_dir).", valueName: "dir"))
        var archiveDirectory: String?
        @Option(name: .customLong("runs-per-file"), help: "Most runs in one archive file.")
        var runsPerFile = 10_000
        @Option(name: .customLong("public-key"), help: ArgumentHelp(
            "The checkpoint public key each archive is verified with before its runs are removed (default the public half of audit.signing_key); repeat for rotated keys.",
            valueName: "key"))
        var publicKeys: [String] = []
        @Flag(name: .customLong("dry-run"), help: "Say what would be archived and dropped; change nothing.")
        var dryRun = false
        @OptionGroup var options: RetentionOptions

        func run() async throws {
            var failed = false
            try await Console.reportingErrors {
                let configuration = try options.configurationOptions.load()
                let days = try options.days(configuration)
                guard days > 0 else {
                    throw CLIError("""
                        retention is off (retention.keep_finished_days is 0): set HMS_RETENTION_KEEP_FINISHED_DAYS, \
                        or pass --keep-finished-days DAYS
                        """)
                }
                guard (1...100_000).contains(runsPerFile) else {
                    throw CLIError("--runs-per-file must be 1…100000, got \(runsPerFile)")
                }
                let trusted = try AuditKeys.trusted(publicKeys, configuration: configuration,
                    purpose: "to verify each archive before its runs are removed")
                let direct = try options.direct(configuration)
                let directory = archiveDirectory ?? configuration.retention.archiveDirectory
                let summary = try await DirectStore.explaining(direct, missing: "retention_archives") {
                    let store = direct.store
                    let now = try await store.databaseTimeMilliseconds()
                    let finishedBefore = now - Int64(days) * 86_400_000
                    try await store.ensureAuditPartitions(monthsAhead: 2)
                    var summary = RetentionSummary(finishedBefore: finishedBefore, days: days, dryRun: dryRun)
                    summary.backlog = try await store.retentionBacklog(finishedBefore: finishedBefore)
                    if !dryRun {
                        let archiver = RetentionArchiver(store: store, directory: directory, schema: direct.schema,
                            finishedBefore: finishedBefore, now: now, runsPerFile: runsPerFile, trusted: trusted)
                        summary.archives = try await archiver.archiveAll()
                    }
                    for partition in try await store.auditPartitions() {
                        let droppable = partition.liveRuns == 0 && partition.to < now - 86_400_000
                        if droppable, !dryRun, try await store.dropAuditPartition(partition, now: now) {
                            summary.dropped.append(partition)
                        } else if droppable && dryRun {
                            summary.dropped.append(partition)
                        } else if partition.to < now - 86_400_000 {
                            summary.held.append(partition)
                        }
                    }
                    return summary
                }
                failed = summary.archives.contains { $0.problem != nil }
                summary.print(options.output)
            }
            if failed { throw ExitCode.failure }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What retention would archive now, and the audit log's monthly partitions.")

        @OptionGroup var options: RetentionOptions

        func run() async throws {
            try await Console.reportingErrors {
                let configuration = try options.configurationOptions.load()
                let days = try options.days(configuration)
                let direct = try options.direct(configuration)
                let (now, backlog, partitions) = try await DirectStore.explaining(direct, missing: "retention_archives") {
                    let now = try await direct.store.databaseTimeMilliseconds()
                    let backlog = days > 0
                        ? try await direct.store.retentionBacklog(finishedBefore: now - Int64(days) * 86_400_000) : nil
                    return (now, backlog, try await direct.store.auditPartitions())
                }
                switch options.output {
                case .json:
                    var object: [String: JSONValue] = [
                        "keep_finished_days": .int(days),
                        "partitions": .array(partitions.map { partition in
                            .object([
                                "name": .string(partition.name), "from": .string(Instant(millisecondsSinceEpoch: partition.from).rfc3339),
                                "to": .string(Instant(millisecondsSinceEpoch: partition.to).rfc3339),
                                "live_runs": .int(partition.liveRuns), "bytes": .int(partition.bytes),
                            ])
                        }),
                    ]
                    if let backlog {
                        object["finished_before"] = .string(Instant(millisecondsSinceEpoch: now - Int64(days) * 86_400_000).rfc3339)
                        object["due"] = .int(backlog.due)
                        object["awaiting_checkpoint"] = .int(backlog.awaitingCheckpoint)
                    }
                    print(Console.pretty(.object(object)))
                case .table:
                    if let backlog {
                        print("retention \(days) days: \(backlog.due) finished run\(backlog.due == 1 ? "" : "s") due, "
                            + "\(backlog.awaitingCheckpoint) of them waiting for a checkpoint to sign their last entry")
                    } else {
                        print("retention is off (retention.keep_finished_days is 0): finished runs are kept for ever")
                    }
                    print("PARTITION          RUNS LEFT  SIZE")
                    for partition in partitions {
                        print(partition.name.padding(toLength: 19, withPad: " ", startingAt: 0)
                            + String(partition.liveRuns).padding(toLength: 11, withPad: " ", startingAt: 0)
                            + RetentionSummary.size(partition.bytes))
                    }
                }
            }
        }
    }
}

/// Writes archive files page by page and removes each file's runs once it verified.
struct RetentionArchiver {
    let store: Store
    let directory: String
    let schema: String
    let finishedBefore: Int64
    let now: Int64
    let runsPerFile: Int
    let trusted: [AuditPublicKey]

    /// One archive file written.
    struct Written {
        var path: String
        var sha256: String
        var runs: Int
        var auditEntries: Int
        var removed = 0
        var changed: [String] = []
        /// Why its runs were not removed.
        var problem: String?
    }

    /// Archives every candidate, a file at a time; stops at the first file that does not verify.
    func archiveAll() async throws -> [Written] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the archive folder \(directory): \(error.localizedDescription); pass --archive-dir or set HMS_RETENTION_ARCHIVE_DIR")
        }
        var written: [Written] = []
        var cursor = Store.RetentionCursor.start
        while true {
            let file = try await archiveFile(number: written.count + 1, cursor: &cursor)
            guard let file else { break }
            written.append(file)
            if file.problem != nil || file.runs < runsPerFile { break }
        }
        return written
    }

    /// Writes the next file of up to `runsPerFile` runs after `cursor`, verifies it and removes its runs.
    /// - Returns: `nil` when no run was left.
    private func archiveFile(number: Int, cursor: inout Store.RetentionCursor) async throws -> Written? {
        // Never over an earlier file: two runs in the same millisecond, or a clock set back, take the next number.
        var ordinal = number
        var name: String { "hms-act-archive-\(schema)-\(Self.stamp(now))-\(ordinal).jsonl" }
        while FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(name)) { ordinal += 1 }
        let path = (directory as NSString).appendingPathComponent(name)
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil),
            let handle = FileHandle(forWritingAtPath: partial)
        else {
            throw CLIError("cannot write \(partial): check that the archive folder is writable")
        }
        var closed = false
        defer {
            if !closed { try? handle.close() }
        }
        var writer = try AuditArchive.Writer(createdAt: now, finishedBefore: finishedBefore, schema: schema) { bytes in
            try handle.write(contentsOf: bytes)
        }
        var records: [AuditArchive.RunRecord] = []
        var entries = 0
        while records.count < runsPerFile {
            let (candidates, next) = try await store.retentionCandidates(finishedBefore: finishedBefore, after: cursor,
                limit: min(500, runsPerFile - records.count))
            guard !candidates.isEmpty else { break }
            cursor = next
            let (runs, checkpoints) = try await store.archiveRecords(for: candidates)
            for run in runs { try writer.write(run) }
            for checkpoint in checkpoints { try writer.write(checkpoint) }
            entries += runs.reduce(0) { $0 + $1.audit.count }
            // Only what removal needs is kept: the rows themselves are in the file.
            records.append(contentsOf: runs.map {
                AuditArchive.RunRecord(runID: $0.runID, auditSequence: $0.auditSequence, auditHead: $0.auditHead,
                    row: .null, tasks: [], incidents: [], audit: [])
            })
            if candidates.count < 500 { break }
        }
        if records.isEmpty {
            try? handle.close()
            closed = true
            try? FileManager.default.removeItem(atPath: partial)
            return nil
        }
        let sha256 = try writer.finish()
        try handle.synchronize()
        try handle.close()
        closed = true
        // Read back what is on disk and verify it before anything is removed.
        var file = Written(path: path, sha256: sha256, runs: records.count, auditEntries: entries)
        guard let bytes = FileManager.default.contents(atPath: partial) else {
            file.problem = "cannot read back \(partial)"
            return file
        }
        let report = AuditArchive.verify(Array(bytes), trusted: trusted)
        guard report.isIntact else {
            file.problem = "the archive did not verify (\(report.findings.first.map { "\($0)" } ?? "")); no run was removed, "
                + "the file is left as \(partial)"
            return file
        }
        do {
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        } catch {
            throw CLIError("cannot rename \(partial) to \(path): \(error.localizedDescription)")
        }
        Self.syncDirectory(directory)
        let (removed, changed) = try await store.removeArchivedRuns(fileName: name, sha256: sha256,
            finishedBefore: finishedBefore, auditEntries: entries, runs: records)
        file.removed = removed.count
        file.changed = changed
        return file
    }

    /// `20270105T020000.123Z`.
    static func stamp(_ milliseconds: Int64) -> String {
        Instant(millisecondsSinceEpoch: milliseconds).rfc3339
            .replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    }

    /// Flushes the folder's entries (the renamed file) to disk.
    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        _ = close(descriptor)
    }
}

/// What one `retention run` did, for its output.
struct RetentionSummary {
    var finishedBefore: Int64
    var days: Int
    var dryRun: Bool
    var backlog: (due: Int, awaitingCheckpoint: Int) = (0, 0)
    var archives: [RetentionArchiver.Written] = []
    var dropped: [Store.AuditPartition] = []
    var held: [Store.AuditPartition] = []

    func print(_ output: OutputFormat) {
        switch output {
        case .json:
            let object: [String: JSONValue] = [
                "dry_run": .bool(dryRun), "keep_finished_days": .int(days),
                "finished_before": .string(Instant(millisecondsSinceEpoch: finishedBefore).rfc3339),
                "due": .int(backlog.due), "awaiting_checkpoint": .int(backlog.awaitingCheckpoint),
                "archives": .array(archives.map { file in
                    var entry: [String: JSONValue] = [
                        "file": .string(file.path), "sha256": .string(file.sha256), "runs": .int(file.runs),
                        "audit_entries": .int(file.auditEntries), "removed": .int(file.removed),
                        "kept_changed": .array(file.changed.map(JSONValue.string)),
                    ]
                    if let problem = file.problem { entry["problem"] = .string(problem) }
                    return .object(entry)
                }),
                (dryRun ? "partitions_to_drop" : "partitions_dropped"): .array(dropped.map { .string($0.name) }),
                "partitions_held": .array(held.map {
                    .object(["name": .string($0.name), "live_runs": .int($0.liveRuns)])
                }),
            ]
            Swift.print(Console.pretty(.object(object)))
        case .table:
            let before = Instant(millisecondsSinceEpoch: finishedBefore).rfc3339
            Swift.print("retention \(days) days: runs finished before \(before); \(backlog.due) due, "
                + "\(backlog.awaitingCheckpoint) waiting for a checkpoint to sign their last entry")
            if dryRun {
                Swift.print("dry run: \(backlog.due - backlog.awaitingCheckpoint) run(s) would be archived and removed")
            }
            for file in archives {
                if let problem = file.problem {
                    Swift.print("✘ \(file.path): \(problem)")
                } else {
                    Swift.print("✔ \(file.path): \(file.runs) runs, \(file.auditEntries) audit entries, sha256 \(file.sha256); "
                        + "removed \(file.removed)" + (file.changed.isEmpty ? "" : ", kept \(file.changed.count) that changed meanwhile"))
                }
            }
            for partition in dropped {
                Swift.print("\(dryRun ? "would drop" : "✔ dropped") \(partition.name) (\(Self.size(partition.bytes)))")
            }
            for partition in held {
                Swift.print("– kept \(partition.name): \(partition.liveRuns) run(s) started that month are still in the database")
            }
            if !dryRun && archives.isEmpty && dropped.isEmpty { Swift.print("nothing to archive") }
        }
    }

    static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576) : "\(bytes / 1024) KiB"
    }
}

/// The checkpoint public keys a command trusts: the ones given, or else the public half of audit.signing_key.
enum AuditKeys {
    /// The keys given with --public-key, or the signing key's public half; empty when there is neither.
    static func given(_ given: [String], configuration: ServiceConfiguration) throws -> [AuditPublicKey] {
        var trusted: [AuditPublicKey] = []
        for text in given {
            do {
                trusted.append(try AuditPublicKey(base64: text))
            } catch {
                throw CLIError("--public-key: \(error)")
            }
        }
        if trusted.isEmpty, !configuration.audit.hasNoSigningKey {
            do {
                trusted.append(try configuration.audit.signingKey().publicKey)
            } catch {
                throw CLIError("\(error)")
            }
        }
        return trusted
    }

    /// Like ``given(_:configuration:)``, refusing to go on without a key.
    static func trusted(_ given: [String], configuration: ServiceConfiguration, purpose: String) throws -> [AuditPublicKey] {
        let trusted = try Self.given(given, configuration: configuration)
        if trusted.isEmpty {
            throw CLIError("""
                no key to verify checkpoints with \(purpose): pass --public-key KEY (the HMS_AUDIT_PUBLIC_KEY that \
                `hms-act audit keygen` printed), or set HMS_AUDIT_SIGNING_KEY
                """)
        }
        return trusted
    }
}
