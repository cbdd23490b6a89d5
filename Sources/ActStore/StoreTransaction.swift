import ActEngine
import ActPlaybook
public import ActPostgres
internal import Foundation

/// The statements of one batch transaction. Reads lock what they return (runs `FOR UPDATE`, timers and
/// outbox rows `SKIP LOCKED`), so replicas never apply two batches to one run at once and never fire one
/// timer twice.
public struct StoreTransaction: Sendable {
    public let connection: PostgresConnection

    /// Inserts the keys into the inbox.
    ///
    /// - Returns: The keys that were new; the others were applied before.
    public func claimInbox(_ keys: [String]) async throws -> Set<String> {
        guard !keys.isEmpty else { return [] }
        let rows = try await connection.query(StoreSQL.claimInbox, [Self.jsonArray(keys)])
        return Set(try rows.map { row throws(PostgresError) in try row.decode(String.self, column: 0) })
    }

    /// Locks and reads the runs (in run-id order, so two transactions never deadlock on each other).
    public func lockRuns(_ ids: [String]) async throws -> [String: RunRow] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await connection.query(StoreSQL.lockRuns, [Self.jsonArray(Array(Set(ids)).sorted())])
        var runs: [String: RunRow] = [:]
        for row in rows {
            let run = try Self.runRow(row)
            runs[run.runID] = run
        }
        return runs
    }

    /// Locks the runs (in run-id order) and reads them, loading states only while their sizes add up to
    /// `maxBytes` (the first one always).
    ///
    /// - Returns: The runs read, and the ids of runs that are locked but whose state was left out: inputs
    ///   touching those wait for the next transaction.
    public func lockRuns(_ ids: [String], maxBytes: Int) async throws -> (runs: [String: RunRow], leftOut: Set<String>) {
        guard !ids.isEmpty else { return ([:], []) }
        let rows = try await connection.query(StoreSQL.lockRunsWithin,
            [Self.jsonArray(Array(Set(ids)).sorted()), PostgresBind(Int64(maxBytes))])
        var runs: [String: RunRow] = [:]
        var leftOut = Set<String>()
        for row in rows {
            guard !row.isNull(column: 4) else {
                leftOut.insert(try row.decode(String.self, column: 0))
                continue
            }
            let run = try Self.runRow(row)
            runs[run.runID] = run
        }
        return (runs, leftOut)
    }

    /// Claims up to `limit` due timers (by database time), earliest first, and deletes them; the claim
    /// commits with the batch that applies them.
    public func claimDueTimers(limit: Int) async throws -> [TimerRow] {
        // `DELETE … RETURNING` returns rows in no particular order: sort them, so a run's warning is applied
        // before its breach when both are due.
        try await connection.query(StoreSQL.claimDueTimers, [PostgresBind(limit)]).map { row throws(PostgresError) in
            TimerRow(timerID: try row.decode(column: 0), runID: try row.decode(column: 1), kind: try row.decode(column: 2),
                dueAt: try row.decode(column: 3))
        }.sorted { ($0.dueAt, $0.timerID) < ($1.dueAt, $1.timerID) }
    }

    /// Claims up to `limit` outbox rows that are available now.
    ///
    /// - Parameter partition: Only rows whose run (`correlation_id`) hashes to `index` of `count` shares, so
    ///   several relays split the runs between them and each run's messages keep their order.
    /// - Parameter maxBytes: Past the first row, no more than this many bytes of bodies.
    public func claimOutbox(limit: Int, partition: (index: Int, count: Int) = (0, 1), maxBytes: Int = Int(Int32.max))
        async throws -> [OutboxMessage]
    {
        // The outbox is a queue: its statistics are always stale and its heap holds the dead rows of the last
        // vacuum interval. A sequential or bitmap scan reads every one of them on each claim (8,674 buffers for 86
        // live rows, bench/README.md "Flat with history"); the primary key in order stops after `limit` live rows
        // and marks the dead entries it passes so the next claim skips them. For this transaction only.
        try await connection.executeScript(StoreSQL.queueScanSettings)
        return try await connection.query(StoreSQL.claimOutbox,
            [PostgresBind(limit), PostgresBind(partition.count), PostgresBind(partition.index), PostgresBind(Int64(maxBytes))])
            .map { row in
            let outboxID: Int64 = try row.decode(column: 0)
            let headersText: String = try row.decode(column: 7)
            let headers: [String: String]
            do {
                headers = try JSONDecoder().decode([String: String].self, from: Data(headersText.utf8))
            } catch {
                // The relay would publish without traceparent and x-hms-*: refuse the row instead.
                throw StoreDataError(column: "outbox.headers", row: "outbox row \(outboxID)",
                    problem: "is not an object of strings")
            }
            return OutboxMessage(
                outboxID: outboxID, exchange: try row.decode(column: 1),
                routingKey: try row.decode(column: 2), messageID: try row.decode(column: 3),
                correlationID: try row.decode(column: 4), type: try row.decode(column: 5),
                contentType: try row.decode(column: 6), headers: headers, body: try row.decode(column: 8),
                createdAt: try row.decode(column: 9), attempts: try row.decode(column: 10))
        }
    }

    /// Playbook versions registered after `versionID`, on this transaction's connection (a batch that meets
    /// a version it does not know must not lease a second connection while it holds this one).
    public func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion] {
        try await connection.query(StoreSQL.playbookVersionsAfter, [PostgresBind(versionID)]).map(Store.playbookVersion)
    }

    /// Moves a timer's due time `seconds` from now (a timer that cannot be applied as it is).
    public func postponeTimer(_ timerID: String, seconds: Int) async throws {
        try await connection.execute(StoreSQL.postponeTimer, [PostgresBind(timerID), PostgresBind(Double(seconds))])
    }

    /// Deletes outbox rows after their publish was confirmed.
    public func deleteOutbox(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await connection.execute(StoreSQL.deleteOutbox, [Self.jsonArray(ids.map(String.init))])
    }

    /// Leaves outbox rows for a later attempt (exponential delay, at most 5 minutes), noting why.
    public func deferOutbox(_ ids: [Int64], error: String) async throws {
        guard !ids.isEmpty else { return }
        try await connection.execute(StoreSQL.deferOutbox, [Self.jsonArray(ids.map(String.init)), PostgresBind(error)])
    }

    /// Writes a batch: every statement in one pipeline (one round trip), inside this transaction.
    public func write(_ batch: StoreBatch) async throws {
        var statements: [PostgresStatement] = []
        if !batch.runs.isEmpty {
            var rows = JSONRows()
            for run in batch.runs {
                rows.append([
                    "run_id": .string(run.runID), "playbook_id": .string(run.playbookID),
                    "version_id": .int(run.versionID), "status": .string(run.status),
                    "state": .raw(run.state.isEmpty ? Array("{}".utf8) : run.state),
                    "state_bytes": .int(Int64(run.state.count)), "trace_id": .string(run.traceID),
                    "trigger_event_id": .string(run.triggerEventID), "trigger_type": .string(run.triggerType),
                    "audit_seq": .int(run.auditSequence), "audit_head": .hex(run.auditHead),
                    "created_ms": .int(run.createdAt), "updated_ms": .int(run.updatedAt),
                    "finished_ms": .int(run.finishedAt), "business_key": .string(run.businessKey),
                ])
            }
            statements.append(.prepared(StoreSQL.upsertRuns, [Self.json(rows)]))
        }
        if !batch.runPayloads.isEmpty {
            var rows = JSONRows()
            for (runID, createdAt, payload) in batch.runPayloads {
                rows.append(["run_id": .string(runID), "created_ms": .int(createdAt), "payload": .json(payload)])
            }
            statements.append(.prepared(StoreSQL.insertRunPayloads, [Self.json(rows)]))
        }
        if !batch.dispatchedTasks.isEmpty {
            var rows = JSONRows()
            for task in batch.dispatchedTasks {
                rows.append([
                    "task_id": .string(task.taskID), "attempt": .int(Int64(task.attempt)), "run_id": .string(task.runID),
                    "step_id": .string(task.stepID), "assignee": .string(task.assignee), "agent_id": .string(task.agentID),
                    "target": .string(task.target), "status": .string(task.status.rawValue), "deadline_ms": .int(task.deadline),
                    "warn_ms": .int(task.warnAt), "is_compensation": .bool(task.isCompensation),
                    "created_ms": .int(task.createdAt),
                ])
            }
            statements.append(.prepared(StoreSQL.insertTasks, [Self.json(rows)]))
        }
        if !batch.taskChanges.isEmpty {
            var rows = JSONRows()
            for change in batch.taskChanges {
                rows.append([
                    "task_id": .string(change.taskID), "attempt": .int(Int64(change.attempt)),
                    "status": .string(change.status.rawValue), "output": .json(change.output), "error": .string(change.error),
                    "at_ms": .int(change.at),
                ])
            }
            statements.append(.prepared(StoreSQL.updateTasks, [Self.json(rows)]))
        }
        if !batch.cancelledTimers.isEmpty {
            statements.append(.prepared(StoreSQL.deleteTimers, [Self.jsonArray(batch.cancelledTimers)]))
        }
        if !batch.scheduledTimers.isEmpty {
            var rows = JSONRows()
            for timer in batch.scheduledTimers {
                rows.append([
                    "timer_id": .string(timer.timerID), "run_id": .string(timer.runID), "kind": .string(timer.kind),
                    "due_ms": .int(timer.dueAt),
                ])
            }
            statements.append(.prepared(StoreSQL.upsertTimers, [Self.json(rows)]))
            let earliest = batch.scheduledTimers.map(\.dueAt).min() ?? 0
            statements.append(.prepared(StoreSQL.notifyTimers, [PostgresBind(String(earliest))]))
        }
        if !batch.outbox.isEmpty {
            var rows = JSONRows()
            for message in batch.outbox {
                rows.append([
                    "exchange": .string(message.exchange), "routing_key": .string(message.routingKey),
                    "message_id": .string(message.messageID), "correlation_id": .string(message.correlationID),
                    "type": .string(message.type), "content_type": .string(message.contentType),
                    "headers": .json(.object(message.headers.mapValues(JSONValue.string))),
                    "body": .hex(message.body), "created_ms": .int(message.createdAt),
                ])
            }
            statements.append(.prepared(StoreSQL.insertOutbox, [Self.json(rows)]))
            statements.append(.prepared(StoreSQL.notifyOutbox))
        }
        if !batch.pullTasks.isEmpty {
            var rows = JSONRows()
            for task in batch.pullTasks {
                rows.append([
                    "task_id": .string(task.taskID), "attempt": .int(Int64(task.attempt)), "run_id": .string(task.runID),
                    "assignee": .string(task.assignee), "body": .hex(task.body), "created_ms": .int(task.createdAt),
                ])
            }
            statements.append(.prepared(StoreSQL.insertPullTasks, [Self.json(rows)]))
        }
        if !batch.audit.isEmpty {
            var started: [String: Int64] = [:]
            for run in batch.runs { started[run.runID] = run.createdAt }
            var rows = JSONRows()
            for stored in batch.audit {
                let entry = stored.entry
                rows.append([
                    "run_id": .string(entry.runID), "seq": .int(entry.sequence), "at_ms": .int(entry.at),
                    "kind": .string(entry.kind), "actor": .string(entry.actor), "data": .json(entry.data),
                    "prev": .hex(stored.previousHash), "hash": .hex(stored.hash),
                    "started_ms": .int(started[entry.runID]),
                ])
            }
            statements.append(.prepared(StoreSQL.insertAudit, [Self.json(rows)]))
        }
        if !batch.releasedInboxKeys.isEmpty {
            statements.append(.prepared(StoreSQL.releaseInbox, [Self.jsonArray(batch.releasedInboxKeys)]))
        }
        if !batch.resolvedRunIncidents.isEmpty {
            var rows = JSONRows()
            for (runID, resolution) in batch.resolvedRunIncidents.sorted(by: { $0.key < $1.key }) {
                rows.append([
                    "run_id": .string(runID), "resolution": .string(resolution.action),
                    "actor": .string(resolution.actor), "note": .string(resolution.note), "at_ms": .int(resolution.at),
                ])
            }
            statements.append(.prepared(StoreSQL.resolveRunIncidents, [Self.json(rows)]))
        }
        if !batch.incidents.isEmpty {
            var rows = JSONRows()
            for (ordinal, incident) in batch.incidents.enumerated() {
                let resolution = incident.resolution
                rows.append([
                    "kind": .string(incident.kind), "run_id": .string(incident.runID), "detail": .json(incident.detail),
                    "created_ms": .int(incident.createdAt), "holds_run": .bool(incident.holdsRun),
                    "resolution": .string(resolution?.action), "resolved_by": .string(resolution?.actor),
                    "resolution_note": .string(resolution?.note), "resolved_ms": .int(resolution?.at),
                    "ordinal": .int(Int64(ordinal)),
                ])
            }
            statements.append(.prepared(StoreSQL.insertIncidents, [Self.json(rows)]))
        }
        guard !statements.isEmpty else { return }
        _ = try await connection.pipeline(statements)
    }

    static func json(_ rows: consuming JSONRows) -> PostgresBind {
        PostgresBind(PostgresJSON(bytes: rows.finished()))
    }

    static func jsonArray(_ strings: [String]) -> PostgresBind {
        PostgresBind(PostgresJSON(bytes: JSONValue.array(strings.map(JSONValue.string)).canonicalEncoding))
    }

    static func runRow(_ row: PostgresRow) throws(PostgresError) -> RunRow {
        RunRow(
            runID: try row.decode(column: 0), playbookID: try row.decode(column: 1), versionID: try row.decode(column: 2),
            status: try row.decode(column: 3), state: Array((try row.decode(String.self, column: 4)).utf8),
            traceID: try row.decode(column: 5), triggerEventID: try row.decode(column: 6),
            triggerType: try row.decode(column: 7), auditSequence: try row.decode(column: 8),
            auditHead: try row.decode(column: 9), createdAt: try row.decode(column: 10),
            updatedAt: try row.decode(column: 11), finishedAt: try row.decode(column: 12))
    }
}
