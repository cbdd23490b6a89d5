import ActEngine
import ActPlaybook
public import ActStore
import Foundation
import Logging

extension Orchestrator {
    /// Every schedule of every playbook's current version (a disabled playbook's are gone).
    var currentSchedules: [(playbook: PlaybookID, schedule: Schedule)] {
        let catalog = self.catalog
        return catalog.current.keys.sorted().flatMap { playbookID -> [(playbook: PlaybookID, schedule: Schedule)] in
            guard let entry = catalog.currentEntry(playbookID: playbookID) else { return [] }
            return (entry.playbook.schedules ?? []).map { (PlaybookID(playbookID), $0) }
        }
    }

    /// Brings the `schedules` rows in step with the catalog (after a refresh): new schedules start from now,
    /// changed ones start over, removed ones go.
    func syncSchedules() async throws {
        guard let store = store as? any ScheduleStore else { return }
        let (inserted, changed, removed) = try await store.syncSchedules(currentSchedules, now: now().millisecondsSinceEpoch)
        if inserted + changed + removed > 0 {
            logger.info("schedules brought in step with the playbooks", metadata: [
                "schedules.inserted": "\(inserted)", "schedules.changed": "\(changed)", "schedules.removed": "\(removed)",
            ])
        }
    }

    /// Claims up to `limit` due schedules and handles their fires (``ScheduleClock``) in one transaction: the
    /// runs they start (and the previous runs `cancel_previous` cancels) and the schedules' new state commit
    /// together, so a fire is handled once across replicas and restarts.
    ///
    /// - Returns: How many schedules were claimed (a full batch means more may be due).
    public func fireDueSchedules(limit: Int) async throws -> Int {
        let (plans, claimed, skipped) = try await store.transaction { transaction in
            try await self.fireDueSchedules(limit: limit, in: transaction)
        }
        for plan in plans { record(plan) }
        for (row, reason) in skipped {
            logger.warning("a schedule skipped a fire", metadata: ["playbook.id": "\(row.playbookID)",
                "schedule.id": "\(row.scheduleID)", "reason": "\(reason)"])
        }
        return claimed
    }

    private func fireDueSchedules(limit: Int, in transaction: any ServiceTransaction) async throws
        -> (plans: [BatchPlanner.Plan], claimed: Int, skipped: [(ScheduleRow, String)])
    {
        let rows = try await transaction.claimDueSchedules(limit: limit)
        guard !rows.isEmpty else { return ([], 0, []) }
        let now = self.now().millisecondsSinceEpoch
        let statuses = try await transaction.runStatuses(rows.compactMap { $0.state.lastRun?.rawValue })
        var inputs: [BatchInput] = []
        var updated: [ScheduleRow] = []
        var skipped: [(ScheduleRow, String)] = []
        for var row in rows {
            let playbook = PlaybookID(row.playbookID)
            let active = row.state.lastRun.flatMap { statuses[$0.rawValue] }.flatMap(RunStatus.init(rawValue:))
                .map { !$0.isFinished } ?? false
            let before = row.state.skipped
            let (state, actions) = ScheduleClock.tick(row.definition, playbook: playbook, state: row.state, now: now,
                previousRunActive: active)
            for action in actions {
                switch action {
                case .start(let fire, let eventID):
                    inputs.append(.start(playbookID: row.playbookID, event: Self.fireEvent(row, fire: fire, eventID: eventID)))
                case .cancel(let run, let reason):
                    inputs.append(.operatorCommand(runID: run, event: .cancel(reason: reason),
                        actor: "schedule:\(row.playbookID)/\(row.scheduleID)", key: "schedule-cancel:\(run.rawValue)"))
                }
            }
            row.state = state
            row.dueAt = ScheduleClock.dueAt(row.definition, playbook: playbook, state: state, now: now)
            if state.skipped > before, let reason = state.lastSkip { skipped.append((row, reason)) }
            updated.append(row)
        }
        var plans: [BatchPlanner.Plan] = []
        var pending = inputs
        while !pending.isEmpty {
            let (plan, applied) = try await apply(pending, claimTimers: 0, in: transaction)
            plans.append(plan)
            let done = Set(applied)
            pending = pending.indices.filter { !done.contains($0) }.map { pending[$0] }
        }
        try await transaction.writeSchedules(updated)
        ServiceMetrics.scheduleFires(started: inputs.count { if case .start = $0 { true } else { false } },
            skipped: skipped.count)
        return (plans, rows.count, skipped)
    }

    /// The trigger of one fire: the schedule's payload with `schedule: {id, fire_time}` added (unless the
    /// payload has a `schedule` of its own), the fire's nominal instant as the event time.
    ///
    /// - Parameter manual: A fire an operator triggered by hand (`POST /v1/schedules/…/trigger`): `schedule`
    ///   also says `manual: true`.
    public static func fireEvent(_ row: ScheduleRow, fire: Int64, eventID: String, manual: Bool = false)
        -> TriggerEvent
    {
        let time = Instant(millisecondsSinceEpoch: fire).rfc3339
        var payload = row.definition.payload
        if case .object(var members) = payload, members["schedule"] == nil {
            var schedule: [String: JSONValue] = ["id": .string(row.scheduleID), "fire_time": .string(time)]
            if manual { schedule["manual"] = .bool(true) }
            members["schedule"] = .object(schedule)
            payload = .object(members)
        }
        return TriggerEvent(id: eventID, type: "schedule", source: "schedule:\(row.playbookID)/\(row.scheduleID)",
            time: time, payload: payload)
    }
}
