public import ActEngine
public import ActPlaybook
import ActPostgres
internal import Foundation

/// Playbook schedules (`schedules:`): one row per schedule, with its ``ScheduleState`` (migration 0015).
public struct ScheduleRow: Hashable, Sendable {
    public var playbookID: String
    public var scheduleID: String
    public var definition: Schedule
    public var state: ScheduleState
    /// When the scheduler looks at it next (Unix milliseconds); `nil`: never.
    public var dueAt: Int64?
    public var paused: Bool
    /// Who paused it (with the reason), while paused.
    public var pausedBy: String?
    public var updatedAt: Int64

    public init(playbookID: String, scheduleID: String, definition: Schedule, state: ScheduleState, dueAt: Int64?,
        paused: Bool = false, pausedBy: String? = nil, updatedAt: Int64 = 0)
    {
        self.playbookID = playbookID
        self.scheduleID = scheduleID
        self.definition = definition
        self.state = state
        self.dueAt = dueAt
        self.paused = paused
        self.pausedBy = pausedBy
        self.updatedAt = updatedAt
    }

    /// Pauses or resumes the schedule at `now`, as ``Store/setSchedulePaused(playbook:schedule:paused:by:reason:now:)``
    /// writes it: a paused schedule keeps who paused it (`ops: billing freeze` with a reason); a resumed one goes
    /// on from `now` (``ScheduleClock/resumed(_:state:now:)``), so fires missed while paused are not made up.
    ///
    /// - Returns: Whether anything changed (pausing a paused schedule, or resuming a running one, does not).
    @discardableResult
    public mutating func setPaused(_ paused: Bool, by actor: String, reason: String?, now: Int64) -> Bool {
        guard self.paused != paused else { return false }
        self.paused = paused
        pausedBy = paused ? (reason.map { "\(actor): \($0)" } ?? actor) : nil
        if !paused {
            state = ScheduleClock.resumed(definition, state: state, now: now)
            dueAt = ScheduleClock.dueAt(definition, playbook: PlaybookID(playbookID), state: state, now: now)
        }
        return true
    }

    /// The row of a schedule whose definition changed (or that is new): it starts over from `now`, keeping its
    /// counts, last fire and last run.
    public mutating func redefine(_ schedule: Schedule, now: Int64) {
        let playbook = PlaybookID(playbookID)
        var fresh = ScheduleClock.initial(schedule, now: now)
        (fresh.started, fresh.skipped, fresh.lastRun, fresh.lastFire) =
            (state.started, state.skipped, state.lastRun, state.lastFire)
        definition = schedule
        state = fresh
        dueAt = ScheduleClock.dueAt(schedule, playbook: playbook, state: fresh, now: now)
    }

    static let columns = "playbook_id, schedule_id, definition::text, state::text, "
        + "(extract(epoch FROM due_at) * 1000)::bigint, paused, paused_by, (extract(epoch FROM updated_at) * 1000)::bigint"

    static func decode(_ row: PostgresRow) throws -> ScheduleRow {
        let decoder = JSONDecoder()
        return ScheduleRow(playbookID: try row.decode(column: 0), scheduleID: try row.decode(column: 1),
            definition: try decoder.decode(Schedule.self, from: Data((try row.decode(String.self, column: 2)).utf8)),
            state: try decoder.decode(ScheduleState.self, from: Data((try row.decode(String.self, column: 3)).utf8)),
            dueAt: try row.decode(column: 4), paused: try row.decode(column: 5), pausedBy: try row.decode(column: 6),
            updatedAt: try row.decode(column: 7))
    }

    static func json(_ value: some Encodable) throws -> PostgresBind {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return PostgresBind(PostgresJSON(bytes: Array(try encoder.encode(value))))
    }
}

extension StoreSQL {
    static let claimDueSchedules = """
        SELECT \(ScheduleRow.columns) FROM schedules
        WHERE NOT paused AND due_at <= now()
        ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
        """
    static let lockSchedules = "SELECT \(ScheduleRow.columns) FROM schedules ORDER BY playbook_id, schedule_id FOR UPDATE"
    static let lockSchedule = """
        SELECT \(ScheduleRow.columns) FROM schedules WHERE playbook_id = $1 AND schedule_id = $2 FOR UPDATE
        """
    static let listSchedules = "SELECT \(ScheduleRow.columns) FROM schedules ORDER BY playbook_id, schedule_id"
    static let schedule = "SELECT \(ScheduleRow.columns) FROM schedules WHERE playbook_id = $1 AND schedule_id = $2"
    static let upsertSchedule = """
        INSERT INTO schedules (playbook_id, schedule_id, definition, state, due_at, paused, paused_by, updated_at)
        VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), $6, $7, now())
        ON CONFLICT (playbook_id, schedule_id) DO UPDATE SET definition = excluded.definition, state = excluded.state,
            due_at = excluded.due_at, paused = excluded.paused, paused_by = excluded.paused_by, updated_at = now()
        """
    /// A schedule first seen: a replica syncing at the same moment may have inserted it already, and its row
    /// (perhaps fired since) wins.
    static let insertScheduleIfAbsent = """
        INSERT INTO schedules (playbook_id, schedule_id, definition, state, due_at)
        VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0))
        ON CONFLICT (playbook_id, schedule_id) DO NOTHING
        """
    static let deleteSchedule = "DELETE FROM schedules WHERE playbook_id = $1 AND schedule_id = $2"
    static let runStatuses = """
        SELECT run_id, status FROM runs WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        """
}

extension StoreTransaction {
    /// Claims up to `limit` schedules due by the database's clock, not paused, earliest first; other replicas
    /// skip them until this transaction ends.
    public func claimDueSchedules(limit: Int) async throws -> [ScheduleRow] {
        try await connection.query(StoreSQL.claimDueSchedules, [PostgresBind(limit)]).map(ScheduleRow.decode)
    }

    /// Writes schedule rows (state, due time, pause), inserting those that are new.
    public func writeSchedules(_ rows: [ScheduleRow]) async throws {
        for row in rows {
            _ = try await connection.execute(StoreSQL.upsertSchedule, [
                PostgresBind(row.playbookID), PostgresBind(row.scheduleID), try ScheduleRow.json(row.definition),
                try ScheduleRow.json(row.state), PostgresBind(row.dueAt), PostgresBind(row.paused),
                PostgresBind(row.pausedBy),
            ])
        }
    }

    /// The status of each run that exists among `ids`.
    public func runStatuses(_ ids: [String]) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        var statuses: [String: String] = [:]
        for row in try await connection.query(StoreSQL.runStatuses, [Self.jsonArray(ids)]) {
            statuses[try row.decode(String.self, column: 0)] = try row.decode(String.self, column: 1)
        }
        return statuses
    }
}

extension Store {
    /// Every schedule row, by playbook and schedule id.
    public func schedules() async throws -> [ScheduleRow] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.listSchedules, []).map(ScheduleRow.decode)
        }
    }

    /// Brings the rows in step with `schedules` (every schedule of each playbook's current version): new ones
    /// start from `now`, changed ones start over from `now` (keeping their counts and pause), and rows of
    /// schedules no longer written are removed.
    ///
    /// - Returns: How many rows were inserted, changed and removed.
    @discardableResult
    public func syncSchedules(_ schedules: [(playbook: PlaybookID, schedule: Schedule)], now: Int64) async throws
        -> (inserted: Int, changed: Int, removed: Int)
    {
        // Usually nothing changed: look without locking first, so the scheduler's claims are never held up.
        var stored: [String: Schedule] = [:]
        for row in try await self.schedules() { stored[row.playbookID + "\u{0}" + row.scheduleID] = row.definition }
        var written: [String: Schedule] = [:]
        for (playbook, schedule) in schedules { written[playbook.rawValue + "\u{0}" + schedule.id] = schedule }
        if stored == written { return (0, 0, 0) }
        return try await withTransaction { transaction in
            let existing = try await transaction.connection.query(StoreSQL.lockSchedules, []).map(ScheduleRow.decode)
            var byKey: [String: ScheduleRow] = [:]
            for row in existing { byKey[row.playbookID + "\u{0}" + row.scheduleID] = row }
            var writes: [ScheduleRow] = []
            var inserted = 0
            var changed = 0
            var wanted = Set<String>()
            for (playbook, schedule) in schedules {
                let key = playbook.rawValue + "\u{0}" + schedule.id
                wanted.insert(key)
                if var row = byKey[key] {
                    guard row.definition != schedule else { continue }
                    row.redefine(schedule, now: now)
                    writes.append(row)
                    changed += 1
                } else {
                    let state = ScheduleClock.initial(schedule, now: now)
                    inserted += try await transaction.connection.execute(StoreSQL.insertScheduleIfAbsent, [
                        PostgresBind(playbook.rawValue), PostgresBind(schedule.id), try ScheduleRow.json(schedule),
                        try ScheduleRow.json(state),
                        PostgresBind(ScheduleClock.dueAt(schedule, playbook: playbook, state: state, now: now)),
                    ])
                }
            }
            try await transaction.writeSchedules(writes)
            var removed = 0
            for row in existing where !wanted.contains(row.playbookID + "\u{0}" + row.scheduleID) {
                _ = try await transaction.connection.execute(StoreSQL.deleteSchedule,
                    [PostgresBind(row.playbookID), PostgresBind(row.scheduleID)])
                removed += 1
            }
            return (inserted, changed, removed)
        }
    }

    /// One schedule row; `nil` when there is no such schedule.
    public func schedule(playbook: String, schedule: String) async throws -> ScheduleRow? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.schedule, [PostgresBind(playbook), PostgresBind(schedule)]).first
                .map(ScheduleRow.decode)
        }
    }

    /// Pauses or resumes a schedule. A resumed schedule goes on from `now`: fires missed while paused are not
    /// made up. Pausing a paused schedule (or resuming a running one) changes nothing.
    ///
    /// - Parameters:
    ///   - actor: Who pauses it; kept in `paused_by` while it is paused.
    ///   - reason: Why, kept after the actor (`ops: billing freeze`) when given.
    /// - Returns: The row afterwards; `nil` when there is no such schedule.
    public func setSchedulePaused(playbook: String, schedule: String, paused: Bool, by actor: String,
        reason: String? = nil, now: Int64) async throws -> ScheduleRow?
    {
        try await withTransaction { transaction in
            guard var row = try await transaction.connection.query(StoreSQL.lockSchedule,
                [PostgresBind(playbook), PostgresBind(schedule)]).first.map(ScheduleRow.decode)
            else { return nil }
            guard row.setPaused(paused, by: actor, reason: reason, now: now) else { return row }
            try await transaction.writeSchedules([row])
            return row
        }
    }
}
