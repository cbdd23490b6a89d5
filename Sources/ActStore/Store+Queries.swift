import ActEngine
public import ActPlaybook
internal import ActPostgres
internal import Foundation

/// A run as lists show it.
public struct RunSummary: Hashable, Sendable {
    public var runID: String
    public var playbookID: String
    public var status: String
    public var traceID: String
    public var triggerType: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var finishedAt: Int64?
}

/// One page of runs, newest first, and the cursor of the next page.
public struct RunPage: Hashable, Sendable {
    public var runs: [RunSummary]
    /// Pass back as `after` for the next page; `nil` on the last page.
    public var nextCursor: String?
}

/// Which runs a listing shows; every condition given must hold.
public struct RunFilter: Hashable, Sendable {
    public var status: String?
    public var playbookID: String?
    /// The business key (the playbook's `key:`, else the trigger event's id).
    public var key: String?
    /// Runs whose trigger payload contains this JSON (jsonb `@>`: `{"address": "123 Oak St"}`).
    public var payload: JSONValue?
    /// Milliseconds since the epoch: created at or after.
    public var createdAfter: Int64?
    /// Milliseconds since the epoch: created before.
    public var createdBefore: Int64?

    public init(status: String? = nil, playbookID: String? = nil, key: String? = nil, payload: JSONValue? = nil,
        createdAfter: Int64? = nil, createdBefore: Int64? = nil)
    {
        self.status = status
        self.playbookID = playbookID
        self.key = key
        self.payload = payload
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
    }
}

extension Store {
    /// Runs, newest first, filtered by status, playbook and business key, `limit` per page (keyset paging).
    public func listRuns(status: String?, playbookID: String?, key: String? = nil, after cursor: String?, limit: Int)
        async throws -> RunPage
    {
        try await listRuns(RunFilter(status: status, playbookID: playbookID, key: key), after: cursor, limit: limit)
    }

    /// How many of the newest payloads a payload search reads in order before it asks the GIN index.
    static let payloadWindow = 20_000

    /// Runs, newest first, that `filter` matches, `limit` per page (keyset paging; `after` is a cursor from a
    /// previous page). A key or a payload uses its own index.
    public func listRuns(_ filter: RunFilter, after cursor: String?, limit: Int) async throws -> RunPage {
        var cursorTime: Int64?
        var cursorRun: String?
        if let cursor, let separator = cursor.firstIndex(of: ":"), let time = Int64(cursor[..<separator]) {
            cursorTime = time
            cursorRun = String(cursor[cursor.index(after: separator)...])
        }
        let limit = max(1, min(limit, 500))
        let rows = try await client.withConnection { connection in
            var binds = [
                PostgresBind(filter.status), PostgresBind(filter.playbookID), PostgresBind(cursorTime),
                PostgresBind(cursorRun), PostgresBind(limit + 1), PostgresBind(filter.createdAfter),
                PostgresBind(filter.createdBefore),
            ]
            let sql: String
            if let payload = filter.payload {
                binds += [PostgresBind(PostgresJSON(bytes: payload.canonicalEncoding)), PostgresBind(filter.key)]
                // A value many runs share fills a page among the newest payloads; a rare one needs the index.
                let recent = try await connection.query(StoreSQL.listRunsByPayloadAmongRecent,
                    binds + [PostgresBind(Self.payloadWindow)])
                if recent.count > limit { return recent }
                sql = StoreSQL.listRunsByPayload
            } else if let key = filter.key {
                binds.append(PostgresBind(key))
                sql = StoreSQL.listRunsByKey
            } else {
                sql = StoreSQL.listRuns
            }
            return try await connection.query(sql, binds)
        }
        var runs: [RunSummary] = []
        for row in rows {
            runs.append(RunSummary(
                runID: try row.decode(column: 0), playbookID: try row.decode(column: 1), status: try row.decode(column: 2),
                traceID: try row.decode(column: 3), triggerType: try row.decode(column: 4),
                createdAt: try row.decode(column: 5), updatedAt: try row.decode(column: 6),
                finishedAt: try row.decode(column: 7)))
        }
        var next: String?
        if runs.count > limit {
            runs.removeLast()
            if let last = runs.last { next = "\(last.createdAt):\(last.runID)" }
        }
        return RunPage(runs: runs, nextCursor: next)
    }

    /// The active (running or paused) runs a signal naming `key` reaches: those whose playbook `key:` gave
    /// that value at start, or, for a playbook without one, whose trigger event had that id; only
    /// `playbook`'s when given. Oldest first, at most 100.
    public func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [String] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.activeRunsByCorrelationKey, [PostgresBind(key), PostgresBind(playbook)])
                .map { try $0.decode(String.self, column: 0) }
        }
    }

    /// The id of the run with this trace id (the W3C trace id its messages carry), if any.
    public func runID(traceID: String) async throws -> String? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.runIDByTraceID, [PostgresBind(traceID)]).first
                .map { try $0.decode(String.self, column: 0) }
        }
    }

    /// One run's row.
    public func run(id: String) async throws -> RunRow? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.runByID, [PostgresBind(id)]).first.map(StoreTransaction.runRow)
        }
    }

    /// Every task attempt of a run, in dispatch order.
    public func tasks(ofRun runID: String) async throws -> [TaskRow] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.tasksOfRun, [PostgresBind(runID)]).map(Self.taskRow)
        }
    }

    /// Open (dispatched, unanswered) tasks, oldest first; for one assignee label when given (the human inbox).
    public func openTasks(assignee: String?, limit: Int) async throws -> [TaskRow] {
        let limit = max(1, min(limit, 1_000))
        return try await client.withConnection { connection in
            if let assignee {
                return try await connection.query(StoreSQL.openTasksByAssignee, [PostgresBind(assignee), PostgresBind(limit)])
                    .map(Self.taskRow)
            }
            return try await connection.query(StoreSQL.openTasks, [PostgresBind(limit)]).map(Self.taskRow)
        }
    }

    /// How the inbox is ordered.
    public enum InboxOrder: String, Sendable, CaseIterable {
        /// Oldest first.
        case created
        /// Soonest deadline first; tasks without one last.
        case deadline
    }

    /// One page of open tasks (of one assignee when given) in `order`, after `cursor` (the `next` of the
    /// previous page); the next page's cursor when there is more.
    public func openTaskPage(assignee: String?, order: InboxOrder, after cursor: String?, limit: Int) async throws
        -> (tasks: [TaskRow], next: String?)
    {
        let limit = max(1, min(limit, 1_000))
        // A cursor is "<ms or inf>:<attempt>:<task id>" (task ids hold no colon before their last part).
        var position: (time: Int64?, infinite: Bool, attempt: Int, task: String)?
        if let cursor {
            let parts = cursor.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let attempt = Int(parts[1]), parts[0] == "inf" || Int64(parts[0]) != nil else {
                throw StoreDataError(column: "cursor", row: cursor, problem: "is not a cursor of this listing")
            }
            position = (Int64(parts[0]), parts[0] == "inf", attempt, String(parts[2]))
        }
        let rows = try await client.withConnection { connection in
            switch order {
            case .created:
                return try await connection.query(StoreSQL.openTasksByCreated, [
                    PostgresBind(assignee), PostgresBind(position?.time), PostgresBind(position?.task),
                    PostgresBind(position?.attempt), PostgresBind(limit + 1),
                ]).map(Self.taskRow)
            case .deadline:
                return try await connection.query(StoreSQL.openTasksByDeadline, [
                    PostgresBind(assignee), PostgresBind(position?.time), PostgresBind(position?.task),
                    PostgresBind(position?.attempt), PostgresBind(limit + 1), PostgresBind(position?.infinite ?? false),
                ]).map(Self.taskRow)
            }
        }
        guard rows.count > limit, let last = rows.prefix(limit).last else { return (rows, nil) }
        let time: String =
            switch order {
            case .created: String(last.createdAt)
            case .deadline: last.deadline.map(String.init) ?? "inf"
            }
        return (Array(rows.prefix(limit)), "\(time):\(last.attempt):\(last.taskID)")
    }

    /// The latest attempt of a task.
    public func latestAttempt(taskID: String) async throws -> TaskRow? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.latestAttempt, [PostgresBind(taskID)]).first.map(Self.taskRow)
        }
    }

    /// The audit trail of a run, in order.
    public func auditTrail(runID: String) async throws -> [AuditChain.StoredEntry] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.auditOfRun, [PostgresBind(runID)]).map(Self.auditEntry)
        }
    }

    /// Run counts by status, finished ones included: a scan of every run, for tests and tools, never on a timer.
    public func runCountsByStatus() async throws -> [String: Int] {
        try await runCounts(StoreSQL.countRunsByStatus)
    }

    /// Counts of the runs not finished, by status (the `hms_act_runs` gauge): read through a partial index that
    /// holds only them, so the cost follows the open runs, not the history.
    public func unfinishedRunCountsByStatus() async throws -> [String: Int] {
        try await runCounts(StoreSQL.countUnfinishedRunsByStatus)
    }

    private func runCounts(_ sql: String) async throws -> [String: Int] {
        try await client.withConnection { connection in
            var counts: [String: Int] = [:]
            for row in try await connection.query(sql) {
                counts[try row.decode(String.self, column: 0)] = try row.decode(Int.self, column: 1)
            }
            return counts
        }
    }

    /// Open tasks by SLA light: past deadline (red), past warning (yellow), the rest (green).
    public func slaLights() async throws -> (red: Int, yellow: Int, green: Int) {
        try await client.withConnection { connection in
            guard let row = try await connection.query(StoreSQL.slaLights).first else { return (0, 0, 0) }
            return (try row.decode(Int.self, column: 0), try row.decode(Int.self, column: 1), try row.decode(Int.self, column: 2))
        }
    }

    /// Rows waiting in the outbox and the age of the oldest, in seconds.
    public func outboxLag() async throws -> (count: Int, oldestSeconds: Double) {
        try await client.withConnection { connection in
            guard let row = try await connection.query(StoreSQL.outboxLag).first else { return (0, 0) }
            return (try row.decode(Int.self, column: 0), try row.decode(Double.self, column: 1))
        }
    }

    /// Pending timers.
    public func pendingTimerCount() async throws -> Int {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.pendingTimerCount).first?.decode(Int.self, column: 0) ?? 0
        }
    }

    /// The due time of the earliest timer, in milliseconds since the epoch.
    public func nextTimerDue() async throws -> Int64? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.nextTimerDue).first?.decode(Int64?.self, column: 0)
        }
    }

    /// Open incidents, newest first.
    public func openIncidents(limit: Int) async throws -> [Incident] {
        try await listIncidents(status: .open, limit: limit)
    }

    /// Which incidents ``listIncidents(status:runID:kind:before:limit:)`` lists.
    public enum IncidentStatus: String, Sendable, CaseIterable {
        case open, resolved, all
    }

    /// Incidents newest first, by status, run and kind; `before` an incident id pages on.
    public func listIncidents(
        status: IncidentStatus, runID: String? = nil, kind: String? = nil, before: Int64? = nil, limit: Int
    ) async throws -> [Incident] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.listIncidents, [
                PostgresBind(status == .all ? nil : status.rawValue), PostgresBind(runID), PostgresBind(kind),
                PostgresBind(before), PostgresBind(max(1, min(limit, 1_000))),
            ]).map(Self.incident)
        }
    }

    /// One incident, resolved or not.
    public func incident(id: Int64) async throws -> Incident? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.incident, [PostgresBind(id)]).first.map(Self.incident)
        }
    }

    /// Marks an incident that holds no run as resolved by `actor`.
    /// - Returns: Whether it was open (false: already resolved, holding a run, or unknown).
    public func resolveIncident(id: Int64, actor: String, note: String?) async throws -> Bool {
        try await client.withConnection { connection in
            !(try await connection.query(StoreSQL.resolveIncident, [PostgresBind(id), PostgresBind(actor),
                PostgresBind(note)]).isEmpty)
        }
    }

    private static func incident(_ row: PostgresRow) throws -> Incident {
        let incidentID: Int64 = try row.decode(column: 0)
        let detailText: String = try row.decode(column: 3)
        let detail = try Self.json(detailText, column: "incidents.detail", row: "incident \(incidentID)")
        var resolution: IncidentResolution?
        if let action: String = try row.decode(column: 6) {
            resolution = IncidentResolution(action: action, actor: try row.decode(String?.self, column: 7) ?? "",
                note: try row.decode(column: 8), at: try row.decode(Int64?.self, column: 9) ?? 0)
        } else if let at: Int64 = try row.decode(column: 9) {
            resolution = IncidentResolution(action: "resolve", actor: "", note: nil, at: at)  // resolved by SQL
        }
        return Incident(incidentID: incidentID, kind: try row.decode(column: 1), runID: try row.decode(column: 2),
            detail: detail, createdAt: try row.decode(column: 4), holdsRun: try row.decode(column: 5),
            resolution: resolution)
    }

    /// Records incidents outside a batch (e.g. an unroutable message seen by the relay).
    public func recordIncidents(_ incidents: [Incident]) async throws {
        var batch = StoreBatch()
        batch.incidents = incidents
        try await withTransaction { transaction in try await transaction.write(batch) }
    }

    /// Deletes inbox rows older than `hours`.
    @discardableResult
    public func pruneInbox(olderThanHours hours: Int) async throws -> Int {
        try await client.withConnection { connection in
            try await connection.execute(StoreSQL.pruneInbox, [PostgresBind(hours)])
        }
    }

    static func taskRow(_ row: PostgresRow) throws -> TaskRow {
        let taskID: String = try row.decode(column: 0)
        let attempt: Int = try row.decode(column: 1)
        let key = "task \(taskID)#\(attempt)"
        let outputText: String? = try row.decode(column: 11)
        let output = try outputText.map { try Self.json($0, column: "tasks.output", row: key) }
        let statusText: String = try row.decode(column: 7)
        guard let status = TaskStatus(rawValue: statusText) else {
            throw StoreDataError(column: "tasks.status", row: key, problem: "is not a task status hms-act knows")
        }
        return TaskRow(
            taskID: taskID, attempt: attempt, runID: try row.decode(column: 2),
            stepID: try row.decode(column: 3), assignee: try row.decode(column: 4), agentID: try row.decode(column: 5),
            target: try row.decode(column: 6), status: status, deadline: try row.decode(column: 8),
            warnAt: try row.decode(column: 9), isCompensation: try row.decode(column: 10), output: output,
            error: try row.decode(column: 12), createdAt: try row.decode(column: 13), updatedAt: try row.decode(column: 14))
    }

    static func auditEntry(_ row: PostgresRow) throws -> AuditChain.StoredEntry {
        let runID: String = try row.decode(column: 0)
        let sequence: Int64 = try row.decode(column: 1)
        let dataText: String = try row.decode(column: 5)
        let data = try Self.json(dataText, column: "audit_log.data", row: "audit entry \(runID)#\(sequence)")
        return AuditChain.StoredEntry(
            entry: AuditEntry(runID: runID, sequence: sequence,
                at: try row.decode(column: 2), kind: try row.decode(column: 3), actor: try row.decode(column: 4),
                data: data),
            previousHash: try row.decode(column: 6), hash: try row.decode(column: 7))
    }

    /// A jsonb column's text as a value; PostgreSQL's jsonb is always JSON, but a number beyond a
    /// `Double`'s range is refused (``ActPlaybook/JSONValue/init(parsing:)``), and that must not read as `null`.
    static func json(_ text: String, column: String, row: String) throws -> JSONValue {
        do {
            return try JSONValue(parsing: Array(text.utf8))
        } catch {
            throw StoreDataError(column: column, row: row, problem: "is not JSON hms-act can read")
        }
    }
}
