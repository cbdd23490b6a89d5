import ActEngine
import ActPlaybook
import ActPostgres
import ActStore
import ActTesting
import Testing

/// The store against the PostgreSQL server `scripts/stack up` started; each test gets a schema of its own.
@Suite struct StoreIntegrationTests {
    static let now: Int64 = 1_800_000_000_000

    /// A registered version and a run row for it, written in one batch, with a chained audit entry.
    static func seedRun(_ store: Store, runID: String = "wf_test1") async throws -> RunRow {
        let (version, _) = try await store.registerPlaybook(id: "Test.v1", checksum: "c1", source: "id: Test.v1",
            model: Array("{}".utf8), triggers: ["test.event"])
        let entry = AuditEntry(runID: runID, sequence: 1, at: now, kind: "run.started", actor: "test", data: ["n": 1])
        let hash = AuditChain.hash(previous: [], entry: entry)
        let run = RunRow(runID: runID, playbookID: "Test.v1", versionID: version.versionID, status: "running",
            state: Array(#"{"a": 1}"#.utf8), traceID: "0af7651916cd43dd8448eb211c80319c", triggerEventID: "e-1",
            triggerType: "test.event", auditSequence: 1, auditHead: hash, createdAt: now, updatedAt: now, finishedAt: nil)
        var batch = StoreBatch()
        batch.runs = [run]
        batch.audit = [.init(entry: entry, previousHash: [], hash: hash)]
        try await store.withTransaction { try await $0.write(batch) }
        return run
    }

    @Test func migrationsAreIdempotent() async throws {
        try await TestDatabase.withStore { store in
            let first = try await store.migrate()
            let second = try await store.migrate()
            #expect(first.isEmpty && second.isEmpty)
        }
    }

    /// Replicas (or the migration Job and a replica) starting together on an empty database: nobody fails
    /// on the race to create the schema, and every migration is applied exactly once.
    @Test func concurrentMigrationsOfAnEmptySchemaApplyEachMigrationOnce() async throws {
        let schema = TestEnvironment.uniqueSchema("mig")
        var configuration = TestEnvironment.postgres
        configuration.searchPath = schema
        let stores = (0..<4).map { _ in
            Store(client: PostgresClient(configuration: .init(connection: configuration, maxConnections: 1),
                logger: TestEnvironment.logger("test.postgres")), schema: schema, logger: TestEnvironment.logger("test.store"))
        }
        do {
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                var all: [Int] = []
                for try await versions in group { all += versions }
                return all
            }
            let shipped = try Store.bundledMigrations().map(\.version)
            #expect(!shipped.isEmpty)
            #expect(applied.sorted() == shipped)
            #expect(try await stores[0].migrate().isEmpty)
            try await TestDatabase.drop(schema)
        } catch {
            try? await TestDatabase.drop(schema)
            throw error
        }
    }

    @Test func playbookVersionsAreImmutableAndRegisteringTwiceIsHarmless() async throws {
        try await TestDatabase.withStore { store in
            let first = try await store.registerPlaybook(id: "P", checksum: "aa", source: "id: P", model: Array("{}".utf8),
                triggers: ["x"])
            let again = try await store.registerPlaybook(id: "P", checksum: "aa", source: "id: P", model: Array("{}".utf8),
                triggers: ["x"])
            let second = try await store.registerPlaybook(id: "P", checksum: "bb", source: "id: P\n", model: Array("{}".utf8),
                triggers: ["x", "y"])
            #expect(first.created && !again.created && second.created)
            #expect(first.version.versionID == again.version.versionID)
            #expect(second.version.versionID > first.version.versionID)
            #expect(second.version.triggers == ["x", "y"])
            #expect(try await store.playbookVersions().count == 2)
        }
    }

    @Test func aBatchRoundTripsThroughOneTransaction() async throws {
        try await TestDatabase.withStore { store in
            let run = try await Self.seedRun(store)
            var batch = StoreBatch()
            batch.dispatchedTasks = [TaskRow(taskID: "wf_test1/review/1", attempt: 1, runID: run.runID, stepID: "review",
                assignee: "human.investigator", agentID: nil, target: "task.human.investigator", status: .dispatched,
                deadline: Self.now + 4 * 3_600_000, warnAt: Self.now + 3 * 3_600_000, isCompensation: false, output: nil,
                error: nil, createdAt: Self.now, updatedAt: Self.now)]
            batch.scheduledTimers = [TimerRow(timerID: "wf_test1/review/1/sla-breach", runID: run.runID, kind: "sla_breach",
                dueAt: Self.now + 4 * 3_600_000)]
            batch.outbox = [OutboxMessage(exchange: "hms.tasks", routingKey: "task.human.investigator",
                messageID: "wf_test1/review/1#1", correlationID: run.runID, type: "hms.task",
                headers: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
                body: Array(#"{"task_id":"wf_test1/review/1","bytes":"\u0001é"}"#.utf8), createdAt: Self.now)]
            try await store.withTransaction { try await $0.write(batch) }

            let open = try await store.openTasks(assignee: "human.investigator", limit: 10)
            #expect(open.map(\.taskID) == ["wf_test1/review/1"])
            #expect(open.first?.deadline == Self.now + 4 * 3_600_000)
            let locked = try await store.withTransaction { try await $0.lockRuns([run.runID, "wf_missing"]) }
            #expect(locked.keys.sorted() == [run.runID])
            #expect(locked[run.runID]?.auditHead == run.auditHead)
            let claimed = try await store.withTransaction { try await $0.claimOutbox(limit: 10) }
            #expect(claimed.first?.body == batch.outbox[0].body)
            #expect(claimed.first?.headers == batch.outbox[0].headers)

            var change = StoreBatch()
            change.taskChanges = [TaskStatusChange(taskID: "wf_test1/review/1", attempt: 1, status: .completed,
                output: ["ok": true], error: nil, at: Self.now + 1_000)]
            change.cancelledTimers = ["wf_test1/review/1/sla-breach"]
            try await store.withTransaction { try await $0.write(change) }
            #expect(try await store.openTasks(assignee: "human.investigator", limit: 10).isEmpty)
            #expect(try await store.tasks(ofRun: run.runID).first?.output == ["ok": true])
            #expect(try await store.pendingTimerCount() == 0)
        }
    }

    /// Rows edited outside hms-act are refused with the column and the row, never read as "nothing":
    /// no headers would publish a task without its trace and x-hms-* headers, an unknown status would pass
    /// on as any string.
    @Test func damagedRowsAreRefusedWithTheColumnAndRowNotReadAsEmpty() async throws {
        try await TestDatabase.withStore { store in
            let run = try await Self.seedRun(store)
            var batch = StoreBatch()
            batch.dispatchedTasks = [TaskRow(taskID: "wf_test1/review/1", attempt: 1, runID: run.runID, stepID: "review",
                assignee: "human.investigator", agentID: nil, target: "task.human.investigator", status: .dispatched,
                deadline: nil, warnAt: nil, isCompensation: false, output: nil, error: nil, createdAt: Self.now,
                updatedAt: Self.now)]
            batch.outbox = [OutboxMessage(exchange: "hms.tasks", routingKey: "task.human.investigator",
                messageID: "wf_test1/review/1#1", correlationID: run.runID, type: "hms.task",
                headers: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
                body: Array("{}".utf8), createdAt: Self.now)]
            try await store.withTransaction { try await $0.write(batch) }
            try await store.client.withConnection { connection in
                try await connection.executeScript("""
                    UPDATE outbox SET headers = '["not", "an", "object"]';
                    UPDATE tasks SET status = 'misplaced'
                    """)
            }
            await #expect(throws: StoreDataError(column: "outbox.headers", row: "outbox row 1",
                problem: "is not an object of strings")) {
                try await store.withTransaction { try await $0.claimOutbox(limit: 10) }
            }
            let refused = await #expect(throws: StoreDataError.self) { try await store.tasks(ofRun: run.runID) }
            #expect(refused?.description == "tasks.status of task wf_test1/review/1#1 is not a task status hms-act knows")
        }
    }

    /// A relay's claim is bounded in bytes, not only rows: a burst of large task messages cannot make one
    /// claim hold hundreds of megabytes. One row larger than the bound is still claimed alone.
    @Test func anOutboxClaimStopsAtItsByteBound() async throws {
        try await TestDatabase.withStore { store in
            var batch = StoreBatch()
            for (index, bytes) in [100, 100, 100, 1_000, 100].enumerated() {
                batch.outbox.append(OutboxMessage(exchange: "x", routingKey: "k", messageID: "m\(index)", correlationID: nil,
                    type: "t", headers: [:], body: [UInt8](repeating: 65, count: bytes), createdAt: Self.now))
            }
            try await store.withTransaction { try await $0.write(batch) }
            let first = try await store.withTransaction { transaction in
                let rows = try await transaction.claimOutbox(limit: 10, maxBytes: 250)
                try await transaction.deleteOutbox(rows.map(\.outboxID))
                return rows.map(\.messageID)
            }
            #expect(first == ["m0", "m1"])
            let second = try await store.withTransaction { transaction in
                let rows = try await transaction.claimOutbox(limit: 10, maxBytes: 250)
                try await transaction.deleteOutbox(rows.map(\.outboxID))
                return rows.map(\.messageID)
            }
            #expect(second == ["m2"])
            let large = try await store.withTransaction { try await $0.claimOutbox(limit: 10, maxBytes: 250).map(\.messageID) }
            #expect(large == ["m3"])
        }
    }

    /// A batch loads run states only up to its byte bound (the first always); the rest stay locked and
    /// wait for the next transaction.
    @Test func lockingRunsLoadsStatesUpToTheByteBound() async throws {
        try await TestDatabase.withStore { store in
            let (version, _) = try await store.registerPlaybook(id: "A", checksum: "a", source: "id: A",
                model: Array("{}".utf8), triggers: [])
            var batch = StoreBatch()
            for id in ["wf_a", "wf_b", "wf_c"] {
                let state = Array(#"{"pad":""#.utf8) + [UInt8](repeating: 120, count: 600_000) + Array(#""}"#.utf8)
                batch.runs.append(RunRow(runID: id, playbookID: "A", versionID: version.versionID, status: "running",
                    state: state, traceID: "t", triggerEventID: nil, triggerType: nil, auditSequence: 1, auditHead: [1],
                    createdAt: Self.now, updatedAt: Self.now, finishedAt: nil))
            }
            try await store.withTransaction { try await $0.write(batch) }
            let (runs, leftOut) = try await store.withTransaction {
                try await $0.lockRuns(["wf_c", "wf_a", "wf_b", "wf_new"], maxBytes: 1 << 20)
            }
            #expect(runs.keys.sorted() == ["wf_a"])
            #expect(leftOut == ["wf_b", "wf_c"])
            #expect(runs["wf_a"]?.state.count == 600_011)  // as jsonb prints it: `{"pad": "…"}`
            let all = try await store.withTransaction { try await $0.lockRuns(["wf_a", "wf_b", "wf_c"], maxBytes: 2_000_000) }
            #expect(all.runs.count == 3)
            #expect(all.leftOut.isEmpty)
        }
    }

    /// Two replicas applying results of one run (a parallel step's branches) at the same moment: the second
    /// waits for the first's lock and must then read the row as the first committed it. Reading it from the
    /// statement's snapshot instead (a `FOR UPDATE` in a CTE joined back to `runs`) gave the old audit
    /// sequence, so the second batch wrote a duplicate audit entry, PostgreSQL refused it (23505) and the
    /// result was dead-lettered as bad data: the run stalled for ever. Found by the real-process fault suite.
    @Test func aRunLockedAfterWaitingIsReadAsTheHolderCommittedIt() async throws {
        try await TestDatabase.withStore { store in
            let run = try await Self.seedRun(store)
            let holding = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await store.withTransaction { transaction in
                    var row = try #require(try await transaction.lockRuns([run.runID])[run.runID])
                    holding.continuation.yield()
                    for await _ in release.stream { break }
                    row.auditSequence = 2
                    row.auditHead = [2]
                    row.state = Array(#"{"a": 2}"#.utf8)
                    var batch = StoreBatch()
                    batch.runs = [row]
                    try await transaction.write(batch)
                }
            }
            for await _ in holding.stream { break }
            let waiter = Task {
                try await store.withTransaction { try await $0.lockRuns([run.runID], maxBytes: 1 << 20) }
            }
            try await Task.sleep(for: .milliseconds(300))  // the waiter is now blocked on the row lock
            release.continuation.yield()
            try await holder.value
            let (runs, _) = try await waiter.value
            #expect(runs[run.runID]?.auditSequence == 2)
            #expect(runs[run.runID]?.auditHead == [2])
            #expect(runs[run.runID].map { String(decoding: $0.state, as: UTF8.self) } == #"{"a": 2}"#)
        }
    }

    @Test func aFailedBatchLeavesNothingBehind() async throws {
        try await TestDatabase.withStore { store in
            var batch = StoreBatch()
            batch.outbox = [OutboxMessage(exchange: "x", routingKey: "y", messageID: "m", correlationID: nil, type: "t",
                headers: [:], body: [1], createdAt: Self.now)]
            // A timer for a run that does not exist violates the foreign key: the whole batch rolls back.
            batch.scheduledTimers = [TimerRow(timerID: "t", runID: "wf_nope", kind: "wait_over", dueAt: Self.now)]
            await #expect(throws: (any Error).self) {
                try await store.withTransaction { try await $0.write(batch) }
            }
            let lag = try await store.outboxLag()
            #expect(lag.count == 0)
        }
    }

    @Test func theInboxAcceptsEachKeyOnce() async throws {
        try await TestDatabase.withStore { store in
            let first = try await store.withTransaction { try await $0.claimInbox(["a", "b"]) }
            let second = try await store.withTransaction { try await $0.claimInbox(["b", "c"]) }
            #expect(first == ["a", "b"])
            #expect(second == ["c"])
        }
    }

    @Test func concurrentTimerClaimersNeverClaimATimerTwice() async throws {
        try await TestDatabase.withStore(maxConnections: 4) { store in
            let run = try await Self.seedRun(store)
            var batch = StoreBatch()
            batch.scheduledTimers = (0..<300).map {
                TimerRow(timerID: "timer-\($0)", runID: run.runID, kind: "sla_breach", dueAt: 1_600_000_000_000 - Int64($0))
            }
            try await store.withTransaction { try await $0.write(batch) }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await store.withTransaction { try await $0.claimDueTimers(limit: 7) }
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.timerID)
                        }
                    }
                }
                var all: [[String]] = []
                for try await claim in group { all.append(claim) }
                return all
            }
            let all = claims.flatMap { $0 }
            #expect(all.count == 300)
            #expect(Set(all).count == 300)
        }
    }

    @Test func outboxPartitionsSplitTheRunsWithoutSharingOrLosingARow() async throws {
        try await TestDatabase.withStore(maxConnections: 4) { store in
            var batch = StoreBatch()
            batch.outbox = (0..<240).map {
                OutboxMessage(exchange: "x", routingKey: "k", messageID: "m\($0)", correlationID: "wf_\($0 % 24)", type: "t",
                    headers: [:], body: [UInt8(truncatingIfNeeded: $0)], createdAt: Self.now)
            }
            try await store.withTransaction { try await $0.write(batch) }
            // Three relays claim concurrently, each its own share, in small batches.
            let shares = try await withThrowingTaskGroup(of: [OutboxMessage].self) { group in
                for index in 0..<3 {
                    group.addTask {
                        var mine: [OutboxMessage] = []
                        while true {
                            let rows = try await store.withTransaction { transaction in
                                let rows = try await transaction.claimOutbox(limit: 7, partition: (index, 3))
                                try await transaction.deleteOutbox(rows.map(\.outboxID))
                                return rows
                            }
                            if rows.isEmpty { return mine }
                            mine += rows
                        }
                    }
                }
                var all: [[OutboxMessage]] = []
                for try await share in group { all.append(share) }
                return all
            }
            let all = shares.flatMap { $0 }
            #expect(all.count == 240)
            #expect(Set(all.map(\.messageID)).count == 240)
            // A run's messages all go to one relay, in the order they were written.
            let runsPerShare = shares.map { Set($0.compactMap(\.correlationID)) }
            #expect(runsPerShare[0].isDisjoint(with: runsPerShare[1]) && runsPerShare[1].isDisjoint(with: runsPerShare[2])
                && runsPerShare[0].isDisjoint(with: runsPerShare[2]))
            #expect(runsPerShare.filter { !$0.isEmpty }.count > 1)
            for share in shares {
                for run in Set(share.compactMap(\.correlationID)) {
                    let ids = share.filter { $0.correlationID == run }.map(\.outboxID)
                    #expect(ids == ids.sorted())
                }
            }
        }
    }

    @Test func concurrentOutboxClaimersNeverShareARow() async throws {
        try await TestDatabase.withStore(maxConnections: 4) { store in
            var batch = StoreBatch()
            batch.outbox = (0..<200).map {
                OutboxMessage(exchange: "x", routingKey: "k", messageID: "m\($0)", correlationID: nil, type: "t",
                    headers: [:], body: [UInt8(truncatingIfNeeded: $0)], createdAt: Self.now)
            }
            try await store.withTransaction { try await $0.write(batch) }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let rows = try await store.withTransaction { transaction in
                                let rows = try await transaction.claimOutbox(limit: 9)
                                try await transaction.deleteOutbox(rows.map(\.outboxID))
                                return rows
                            }
                            if rows.isEmpty { return mine }
                            mine += rows.map(\.messageID)
                        }
                    }
                }
                var all: [[String]] = []
                for try await claim in group { all.append(claim) }
                return all
            }
            let all = claims.flatMap { $0 }
            #expect(all.count == 200)
            #expect(Set(all).count == 200)
        }
    }
}

/// The audit trail's promises: append-only in the database, and any tampering found by `verifyAudit`.
@Suite struct AuditTrailIntegrationTests {
    /// The service's checkpoint signing key; verifiers trust only its public half.
    static let signingKey = AuditSigningKey.generate()
    static var trusted: [AuditPublicKey] { [signingKey.publicKey] }

    /// Five chained entries for `run`, plus a signed checkpoint over its head; returns the checkpoint.
    @discardableResult
    static func seedChain(_ store: Store, run: String = "wf_audit") async throws -> Store.WrittenCheckpoint {
        let (version, _) = try await store.registerPlaybook(id: "A", checksum: "a", source: "id: A",
            model: Array("{}".utf8), triggers: [])
        var previous: [UInt8] = []
        var batch = StoreBatch()
        for sequence in 1...5 {
            let entry = AuditEntry(runID: run, sequence: Int64(sequence), at: 1_800_000_000_000 + Int64(sequence),
                kind: "task.completed", actor: "ai.classifier", data: ["step": .string("s\(sequence)")])
            let hash = AuditChain.hash(previous: previous, entry: entry)
            batch.audit.append(.init(entry: entry, previousHash: previous, hash: hash))
            previous = hash
        }
        batch.runs = [RunRow(runID: run, playbookID: "A", versionID: version.versionID, status: "completed",
            state: Array("{}".utf8), traceID: "t", triggerEventID: nil, triggerType: nil, auditSequence: 5,
            auditHead: previous, createdAt: 1_800_000_000_000, updatedAt: 1_800_000_000_000, finishedAt: nil)]
        try await store.withTransaction { try await $0.write(batch) }
        let written = try await store.writeCheckpoint(signingKey: signingKey, now: 1_800_000_001_000) { written in
            OutboxMessage(exchange: "hms.governance", routingKey: "audit.checkpoint",
                messageID: "audit.checkpoint:\(written.id)", correlationID: nil, type: "audit.checkpoint", headers: [:],
                body: Array("{}".utf8), createdAt: 1_800_000_001_000)
        }
        let checkpoint = try #require(written)
        // The witness message is committed with the checkpoint: the outbox holds it for the relay.
        let rows = try await store.withTransaction { try await $0.claimOutbox(limit: 10) }
        #expect(rows.map(\.messageID) == ["audit.checkpoint:\(checkpoint.id)"])
        return checkpoint
    }

    /// Runs SQL as the table owner with the append-only triggers off: what a DBA-level intruder could do.
    static func tamper(_ store: Store, _ sql: String) async throws {
        try await store.client.withConnection { connection in
            try await connection.executeScript("""
                ALTER TABLE audit_log DISABLE TRIGGER USER;
                \(sql);
                ALTER TABLE audit_log ENABLE TRIGGER USER
                """)
        }
    }

    @Test func theTrailRefusesUpdateDeleteAndTruncate() async throws {
        try await TestDatabase.withStore { store in
            try await Self.seedChain(store)
            for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
                await #expect(throws: PostgresError.self) {
                    try await store.client.withConnection { try await $0.executeScript(sql) }
                }
            }
            #expect(try await store.verifyAudit(trusted: Self.trusted).isIntact)
        }
    }

    @Test(arguments: [
        ("edit", "UPDATE audit_log SET data = '{\"step\": \"forged\"}' WHERE seq = 3", AuditChain.Finding.Kind.edited),
        ("delete", "DELETE FROM audit_log WHERE seq = 2", .gap),
        ("reorder", "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -2", .broken),
        ("truncate tail", "DELETE FROM audit_log WHERE seq >= 4", .truncated),
        ("truncate all", "TRUNCATE audit_log", .truncated),
    ])
    func tamperingIsDetected(name: String, sql: String, expected: AuditChain.Finding.Kind) async throws {
        try await TestDatabase.withStore { store in
            try await Self.seedChain(store)
            try await Self.tamper(store, sql)
            let report = try await store.verifyAudit(trusted: Self.trusted)
            #expect(!report.isIntact, "\(name) went unnoticed")
            #expect(report.findings.contains { $0.kind == expected }, "\(name): \(report.findings)")
        }
    }

    @Test func aForgedCheckpointIsDetected() async throws {
        try await TestDatabase.withStore { store in
            try await Self.seedChain(store)
            try await store.client.withConnection { connection in
                try await connection.executeScript(
                    "UPDATE audit_checkpoints SET heads = '[{\"run\": \"wf_audit\", \"seq\": 4, \"hash\": \"00\"}]'")
            }
            let report = try await store.verifyAudit(trusted: Self.trusted)
            #expect(report.findings.contains { $0.kind == .badCheckpoint })
        }
    }
}
