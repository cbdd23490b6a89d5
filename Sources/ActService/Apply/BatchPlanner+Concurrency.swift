import ActEngine
import ActPlaybook
import ActStore

/// Concurrency keys (`concurrency:` on a playbook or a task step): a run (step visit) whose key has its slots
/// taken waits (status `queued`), or is cancelled, or cancels those holding them (`on_limit`).
///
/// The planner only says what each run asks: a new run of such a playbook starts queued and *arrives* at its
/// key, a run with a key that ends *leaves* it (``BatchPlanner/Plan/concurrency``); a step visit arrives and
/// leaves by the engine's ``RunCommand/askSlot(_:step:visit:)`` and ``RunCommand/leaveSlot(_:step:visit:)``.
/// The orchestrator applies those under the key's lock in the same transaction
/// (``StoreTransaction/applyConcurrency(_:)``), and each decision reaches its run as a timer row due at once:
/// `concurrency_released` (it got a slot and starts its first step) or `concurrency_cancelled`, and for a step
/// visit `step_slot_released` / `step_slot_cancelled` (id `<run>/slot/<step>/<visit>/…`).
extension BatchPlanner.Planning {
    static let concurrencyReleased = "concurrency_released"
    static let concurrencyCancelled = "concurrency_cancelled"
    static let stepSlotReleased = "step_slot_released"
    static let stepSlotCancelled = "step_slot_cancelled"
    static let concurrencyTimerKinds: Set<String> = [
        concurrencyReleased, concurrencyCancelled, stepSlotReleased, stepSlotCancelled,
    ]

    /// The slot a new run of `entry` asks for: its key's value on the payload as text; `nil` when the playbook
    /// has no `concurrency:` or the key gives no string or number (then the run is not limited).
    static func concurrencyClaim(_ entry: PlaybookCatalog.Entry, on context: RunState) -> RunState.ConcurrencyClaim? {
        guard let concurrency = entry.playbook.concurrency, let key = concurrency.key.evaluate(in: context).concurrencyKey
        else { return nil }
        return RunState.ConcurrencyClaim(scope: entry.version.playbookID, key: key, limit: concurrency.limit,
            onLimit: concurrency.onLimit)
    }

    /// The timer rows that carry the slots' decisions to their runs.
    static func concurrencyTimers(_ outcome: ConcurrencyOutcome, now: Instant) -> [TimerRow] {
        func row(_ holder: ConcurrencyHolder, released: Bool) -> TimerRow {
            let word = released ? "released" : "cancelled"
            if let step = holder.step, let visit = holder.visit {
                return TimerRow(timerID: "\(holder.run)/slot/\(step)/\(visit)/\(word)", runID: holder.run,
                    kind: released ? stepSlotReleased : stepSlotCancelled, dueAt: now.millisecondsSinceEpoch)
            }
            return TimerRow(timerID: "\(holder.run)/concurrency/\(word)", runID: holder.run,
                kind: released ? concurrencyReleased : concurrencyCancelled, dueAt: now.millisecondsSinceEpoch)
        }
        return outcome.released.map { row($0, released: true) } + outcome.cancelled.map { row($0, released: false) }
    }

    /// A slot decision reaches its run: released, it starts; cancelled, it ends (a queued run without
    /// starting, a running one compensating). A step visit's decision starts its task or fails it.
    mutating func concurrencyTimer(_ row: TimerRow) -> BatchOutcome {
        let runID = RunID(row.runID)
        let missing = BatchOutcome.ignored(reason: "timer \(row.timerID) belongs to no run")
        if row.kind == Self.stepSlotReleased || row.kind == Self.stepSlotCancelled {
            return stepSlotTimer(row, missing: missing)
        }
        let claim = loadedState(runID)?.concurrency
        let key = claim.map { "'\($0.key)'" } ?? "its key"
        if row.kind == Self.concurrencyReleased {
            return deliver(.released, to: runID,
                note: AuditNote(kind: "run.released", actor: "concurrency", data: [
                    "concurrency_key": claim.map { .string($0.key) } ?? .null,
                ]),
                missing: missing)
        }
        let queued = loadedState(runID)?.status == .queued
        let reason = queued && claim?.onLimit == .cancelNewest
            ? "concurrency key \(key) has \(claim?.limit ?? 1) run(s) going already (on_limit: cancel_newest)"
            : "a newer run took concurrency key \(key) (on_limit: cancel_in_progress)"
        return deliver(.cancel(reason: reason), to: runID,
            note: AuditNote(kind: "run.cancel_requested", actor: "concurrency", data: ["reason": .string(reason)]),
            missing: missing)
    }

    /// `<run>/slot/<step>/<visit>/(released|cancelled)`: step ids hold no `/`, so the last three parts are
    /// step, visit and word whatever the run id holds.
    private mutating func stepSlotTimer(_ row: TimerRow, missing: BatchOutcome) -> BatchOutcome {
        let parts = row.timerID.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[parts.count - 4] == "slot", let visit = Int(parts[parts.count - 2]) else {
            return .rejected(reason: "timer \(row.timerID) is not a step slot timer (<run>/slot/<step>/<visit>/…)")
        }
        let runID = RunID(row.runID)
        let step = StepID(String(parts[parts.count - 3]))
        let record = loadedState(runID)?.record(step)
        let claim = record?.slot
        var data: [String: JSONValue] = [
            "step_id": .string(step.rawValue), "visit": .int(visit),
            "concurrency_key": claim.map { .string($0.key) } ?? .null,
        ]
        if row.kind == Self.stepSlotReleased {
            return deliver(.slotGranted(step: step, visit: visit), to: runID,
                note: AuditNote(kind: "step.released", actor: "concurrency", data: .object(data)), missing: missing)
        }
        let key = claim.map { "'\($0.key)'" } ?? "its key"
        let reason = record?.status == .queued && claim?.onLimit == .cancelNewest
            ? "concurrency key \(key) of step \(step) has \(claim?.limit ?? 1) visit(s) going already (on_limit: cancel_newest)"
            : "a newer visit of step \(step) took concurrency key \(key) (on_limit: cancel_in_progress)"
        data["reason"] = .string(reason)
        return deliver(.slotCancelled(step: step, visit: visit, reason: reason), to: runID,
            note: AuditNote(kind: "step.slot_cancelled", actor: "concurrency", data: .object(data)), missing: missing)
    }
}
