import ActEngine
import ActPlaybook
import ActStore

/// Concurrency keys (`concurrency:` on a playbook): a run whose key has its slots taken waits (status
/// `queued`), or is cancelled, or cancels the runs holding them (`on_limit`).
///
/// The planner only says what each run asks: a new run of such a playbook starts queued and *arrives* at its
/// key, a run with a key that ends *leaves* it (``BatchPlanner/Plan/concurrency``). The orchestrator applies
/// those under the key's lock in the same transaction (``StoreTransaction/applyConcurrency(_:)``), and each
/// decision reaches its run as a timer row due at once: `concurrency_released` (it got a slot and starts its
/// first step) or `concurrency_cancelled`.
extension BatchPlanner.Planning {
    static let concurrencyReleased = "concurrency_released"
    static let concurrencyCancelled = "concurrency_cancelled"

    /// The slot a new run of `entry` asks for: its key's value on the payload as text; `nil` when the playbook
    /// has no `concurrency:` or the key gives no string or number (then the run is not limited).
    static func concurrencyClaim(_ entry: PlaybookCatalog.Entry, on context: RunState) -> RunState.ConcurrencyClaim? {
        guard let concurrency = entry.playbook.concurrency else { return nil }
        let key: String
        switch concurrency.key.evaluate(in: context) {
        case .string(let text) where !text.isEmpty: key = String(text.prefix(500))
        case .number(let number): key = number.keyText
        case .bool(let flag): key = flag ? "true" : "false"
        case .null, .string, .array, .object: return nil
        }
        return RunState.ConcurrencyClaim(scope: entry.version.playbookID, key: key, limit: concurrency.limit,
            onLimit: concurrency.onLimit)
    }

    /// The timer rows that carry the slots' decisions to their runs.
    static func concurrencyTimers(_ outcome: ConcurrencyOutcome, now: Instant) -> [TimerRow] {
        outcome.released.map {
            TimerRow(timerID: "\($0)/concurrency/released", runID: $0, kind: concurrencyReleased,
                dueAt: now.millisecondsSinceEpoch)
        } + outcome.cancelled.map {
            TimerRow(timerID: "\($0)/concurrency/cancelled", runID: $0, kind: concurrencyCancelled,
                dueAt: now.millisecondsSinceEpoch)
        }
    }

    /// A slot decision reaches its run: released, it starts; cancelled, it ends (a queued run without
    /// starting, a running one compensating).
    mutating func concurrencyTimer(_ row: TimerRow) -> BatchOutcome {
        let runID = RunID(row.runID)
        let claim = loadedState(runID)?.concurrency
        let key = claim.map { "'\($0.key)'" } ?? "its key"
        if row.kind == Self.concurrencyReleased {
            return deliver(.released, to: runID,
                note: AuditNote(kind: "run.released", actor: "concurrency", data: [
                    "concurrency_key": claim.map { .string($0.key) } ?? .null,
                ]),
                missing: .ignored(reason: "timer \(row.timerID) belongs to no run"))
        }
        let queued = loadedState(runID)?.status == .queued
        let reason = queued && claim?.onLimit == .cancelNewest
            ? "concurrency key \(key) has \(claim?.limit ?? 1) run(s) going already (on_limit: cancel_newest)"
            : "a newer run took concurrency key \(key) (on_limit: cancel_in_progress)"
        return deliver(.cancel(reason: reason), to: runID,
            note: AuditNote(kind: "run.cancel_requested", actor: "concurrency", data: ["reason": .string(reason)]),
            missing: .ignored(reason: "timer \(row.timerID) belongs to no run"))
    }
}
