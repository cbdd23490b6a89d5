public import ActPlaybook

/// Where one schedule is: the next fire it will handle, the run of its last fire, and what it skipped.
/// Kept per schedule in the `schedules` table; only ``ScheduleClock`` changes it.
public struct ScheduleState: Hashable, Sendable, Codable {
    /// The nominal instant (milliseconds since the epoch) of the next fire not handled yet; `nil` when the
    /// schedule never fires again.
    public var nextFire: Int64?
    /// The latest fire handled (started, held or skipped).
    public var lastFire: Int64?
    /// The run the latest started fire started.
    public var lastRun: RunID?
    /// A fire held under `overlap: buffer_one` until the run of the previous fire ends.
    public var buffered: Int64?
    /// Fires started and skipped so far.
    public var started: Int
    public var skipped: Int
    /// Why the latest skipped fire was skipped.
    public var lastSkip: String?

    public init(nextFire: Int64?) {
        self.nextFire = nextFire
        self.started = 0
        self.skipped = 0
    }
}

/// What a due schedule makes the service do.
public enum ScheduleAction: Hashable, Sendable {
    /// Start a run for the fire at `fire`, from the event `eventID` (so the run id is derived from the
    /// schedule and the fire: a repeated tick never starts it twice).
    case start(fire: Int64, eventID: String)
    /// Cancel the previous fire's run (`overlap: cancel_previous`).
    case cancel(RunID, reason: String)
}

/// The pure decisions of schedules: `(schedule, state, now, is the last run active) → (state, actions)`, on
/// whatever clock the caller passes, so tests play days in microseconds. The service calls
/// ``tick(_:playbook:state:now:previousRunActive:)`` for each due schedule it claimed, in the transaction
/// that starts the runs and writes the new state.
///
/// - A fire less than ``Schedule/grace`` late starts (subject to `overlap`).
/// - Older fires are **missed**: `catch_up: none` skips them, `one` starts the latest of them, `all` starts
///   each (at most ``Schedule/maxCatchUpFires``, the latest); fires older than `catch_up_window` are skipped
///   under every policy.
/// - While the previous fire's run is active: `skip` skips the fire, `buffer_one` holds one fire (and skips
///   others) until that run ends, `allow` starts it beside, `cancel_previous` cancels the previous run and
///   starts it.
/// - `jitter` delays when a fire is looked at by an amount derived from the fire (the same on every replica);
///   the fire keeps its nominal instant in its event id.
public enum ScheduleClock {
    /// The state of a schedule first seen at `now`: its first fire is the one after `now`.
    public static func initial(_ schedule: Schedule, now: Int64) -> ScheduleState {
        ScheduleState(nextFire: schedule.nextFire(afterMilliseconds: now))
    }

    /// The state after an operator resumed a paused schedule at `now`: fires missed while paused are not made
    /// up; the next is the one after `now`.
    public static func resumed(_ schedule: Schedule, state: ScheduleState, now: Int64) -> ScheduleState {
        var state = state
        state.nextFire = schedule.nextFire(afterMilliseconds: now)
        return state
    }

    /// The event id of a fire: `schedule:<playbook>/<schedule>/<fire, RFC 3339>`.
    public static func eventID(playbook: PlaybookID, schedule: String, fire: Int64) -> String {
        "schedule:\(playbook.rawValue)/\(schedule)/\(Instant(millisecondsSinceEpoch: fire).rfc3339)"
    }

    /// How much later than its nominal instant a fire is looked at: a fixed share of `jitter`.
    public static func jitter(_ schedule: Schedule, playbook: PlaybookID, fire: Int64) -> Int64 {
        guard let jitter = schedule.jitter, jitter.milliseconds > 0 else { return 0 }
        let hex = SHA256Digest.hex("\(playbook.rawValue)/\(schedule.id)/\(fire)", length: 12)
        return Int64(UInt64(hex, radix: 16)! % UInt64(jitter.milliseconds))
    }

    /// When the schedule should be looked at next (milliseconds since the epoch), `nil` for never: the next
    /// fire plus its jitter, or within a second while a fire is held for a run to end.
    public static func dueAt(_ schedule: Schedule, playbook: PlaybookID, state: ScheduleState, now: Int64) -> Int64? {
        let next = state.nextFire.map { $0 + jitter(schedule, playbook: playbook, fire: $0) }
        guard state.buffered != nil else { return next }
        return min(next ?? .max, now + 1_000)
    }

    /// Handles every fire due by `now`.
    ///
    /// - Parameter previousRunActive: Whether the run of ``ScheduleState/lastRun`` is still going.
    /// - Returns: The new state, the actions in order, and the fires skipped with the reason.
    public static func tick(
        _ schedule: Schedule, playbook: PlaybookID, state: ScheduleState, now: Int64, previousRunActive: Bool
    ) -> (state: ScheduleState, actions: [ScheduleAction]) {
        var state = state
        var actions: [ScheduleAction] = []
        var active = previousRunActive && state.lastRun != nil

        func start(_ fire: Int64) {
            let eventID = eventID(playbook: playbook, schedule: schedule.id, fire: fire)
            actions.append(.start(fire: fire, eventID: eventID))
            state.lastRun = RunID.forTrigger(playbook: playbook.rawValue, eventID: eventID)
            state.started += 1
            active = true
        }
        func skip(_ fires: Int, _ reason: String) {
            guard fires > 0 else { return }
            state.skipped += fires
            state.lastSkip = reason
        }

        // A held fire goes once the run before it ended.
        if let held = state.buffered, !active {
            state.buffered = nil
            start(held)
        }

        // The fires due, those older than the window jumped over (without listing them one by one).
        let oldest = now - max(schedule.catchUpWindow.milliseconds, Schedule.grace.milliseconds)
        if let next = state.nextFire, next < oldest {
            let resume = schedule.nextFire(afterMilliseconds: oldest - 1)
            skip(1, "fires from \(Instant(millisecondsSinceEpoch: next).rfc3339) on were missed for longer than "
                + "catch_up_window (\(schedule.catchUpWindow))")
            state.lastFire = next
            state.nextFire = resume
        }
        var missed: [Int64] = []
        var onTime: [Int64] = []
        while let fire = state.nextFire, fire <= now {
            if now - fire > Schedule.grace.milliseconds {
                missed.append(fire)
                if missed.count > Schedule.maxCatchUpFires {
                    missed.removeFirst()
                    skip(1, "more than \(Schedule.maxCatchUpFires) fires were missed; the oldest are skipped")
                }
            } else {
                onTime.append(fire)
            }
            state.lastFire = fire
            state.nextFire = schedule.nextFire(afterMilliseconds: fire)
        }

        var toStart: [Int64] = []
        switch schedule.catchUp {
        case .none:
            skip(missed.count, "missed while no replica could fire it (catch_up: none)")
        case .one:
            skip(max(missed.count - 1, 0), "missed; only the latest missed fire starts (catch_up: one)")
            toStart += missed.suffix(1)
        case .all:
            toStart += missed
        }
        toStart += onTime

        for fire in toStart {
            guard active else {
                start(fire)
                continue
            }
            let previous = state.lastRun.map { "the run of the previous fire (\($0))" } ?? "the previous run"
            switch schedule.overlap {
            case .skip:
                skip(1, "\(previous) was still going (overlap: skip)")
            case .bufferOne:
                if state.buffered == nil {
                    state.buffered = fire
                } else {
                    skip(1, "\(previous) was still going and one fire waits already (overlap: buffer_one)")
                }
            case .allow:
                start(fire)
            case .cancelPrevious:
                if let run = state.lastRun {
                    actions.append(.cancel(run, reason: "schedule \(schedule.id) fired again (overlap: cancel_previous)"))
                }
                start(fire)
            }
        }
        return (state, actions)
    }
}
