import ActEngine
import ActPlaybook
import Foundation
import Testing

/// Schedules on a virtual clock: fires across a daylight-saving change, catch-up after three days of
/// downtime under each policy, overlap under each policy, and jitter.
@Suite struct ScheduleClockTests {
    static let playbook: PlaybookID = "PermitSweep.v1"

    static func ms(_ text: String) -> Int64 {
        let formatter = ISO8601DateFormatter()
        return Int64(formatter.date(from: text)!.timeIntervalSince1970 * 1_000)
    }

    static func text(_ ms: Int64) -> String { Instant(millisecondsSinceEpoch: ms).rfc3339 }

    static func cron(_ text: String, zone: String = "UTC", catchUp: Schedule.CatchUp = .one,
        window: TimeSpan = .hours(24), overlap: Schedule.Overlap = .allow) throws -> Schedule
    {
        Schedule(id: "nightly", spec: .cron(try CronExpression(parsing: text)), timeZone: zone, catchUp: catchUp,
            catchUpWindow: window, overlap: overlap)
    }

    static func fires(_ actions: [ScheduleAction]) -> [String] {
        actions.compactMap { if case .start(let fire, _) = $0 { text(fire) } else { nil } }
    }

    /// Ticks every `step` from `from` to `to` with no run ever active: the fires started, in order.
    static func play(_ schedule: Schedule, from: Int64, to: Int64, step: Int64 = 60_000) -> [String] {
        var state = ScheduleClock.initial(schedule, now: from)
        var started: [String] = []
        var now = from
        while now <= to {
            let (next, actions) = ScheduleClock.tick(schedule, playbook: playbook, state: state, now: now,
                previousRunActive: false)
            state = next
            started += fires(actions)
            now += step
        }
        return started
    }

    @Test func aNightlyScheduleFiresOnceADayAcrossBothDaylightSavingChanges() throws {
        // 02:30 does not exist in New York on 2026-03-08: that night's fire comes at 03:00 EDT, once.
        let spring = Self.play(try Self.cron("30 2 * * *", zone: "America/New_York"),
            from: Self.ms("2026-03-06T12:00:00Z"), to: Self.ms("2026-03-10T12:00:00Z"))
        #expect(spring == ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z",
            "2026-03-10T06:30:00.000Z"])
        // 01:30 happens twice on 2026-11-01: it fires once, at the first.
        let fall = Self.play(try Self.cron("30 1 * * *", zone: "America/New_York"),
            from: Self.ms("2026-10-31T12:00:00Z"), to: Self.ms("2026-11-02T12:00:00Z"))
        #expect(fall == ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
        // Hourly follows elapsed time: 23 fires on the short day, 25 on the long one.
        let hourly = try Self.cron("0 * * * *", zone: "Europe/Berlin")
        #expect(Self.play(hourly, from: Self.ms("2026-03-28T22:59:00Z"), to: Self.ms("2026-03-29T21:59:00Z")).count == 23)
        #expect(Self.play(hourly, from: Self.ms("2026-10-24T21:59:00Z"), to: Self.ms("2026-10-25T22:59:00Z")).count == 25)
    }

    @Test(arguments: [
        // policy, window, fires started (the on-time one included), fires skipped at least
        (Schedule.CatchUp.none, TimeSpan.hours(24), 1, 24),
        (.one, .hours(24), 2, 23),
        (.all, .hours(24), 24, 1),
        (.all, .hours(96), 72, 0),
    ])
    func afterThreeDaysDownCatchUpFollowsItsPolicy(policy: Schedule.CatchUp, window: TimeSpan, started: Int,
        skippedCount: Int) throws
    {
        let schedule = try Self.cron("0 * * * *", catchUp: policy, window: window)
        let down = Self.ms("2026-05-01T00:30:00Z")
        let state = ScheduleClock.initial(schedule, now: down)
        // Three days later (72 fires were due), a replica looks again, 10 s after a fire.
        let back = Self.ms("2026-05-04T00:00:10Z")
        let (after, actions) = ScheduleClock.tick(schedule, playbook: Self.playbook, state: state, now: back,
            previousRunActive: false)
        // The fire 10 s ago is on time, not missed: it starts under every policy.
        let fired = Self.fires(actions)
        #expect(fired.last == "2026-05-04T00:00:00.000Z")
        #expect(fired.count == started, "\(policy) \(window): \(fired.count) started")
        #expect(after.nextFire == Self.ms("2026-05-04T01:00:00Z"))
        if policy == .one { #expect(fired == ["2026-05-03T23:00:00.000Z", "2026-05-04T00:00:00.000Z"]) }
        if policy == .none { #expect(after.lastSkip == "missed while no replica could fire it (catch_up: none)") }
        #expect(after.skipped >= skippedCount)
        // Every started fire is distinct, oldest first, and names its nominal instant.
        #expect(fired == fired.sorted() && Set(fired).count == fired.count)
    }

    @Test func overlapDecidesWhatAFireDoesWhileThePreviousRunGoesOn() throws {
        let start = Self.ms("2026-05-01T00:00:30Z")
        let tenPast = Self.ms("2026-05-01T00:10:05Z")
        for overlap in Schedule.Overlap.allCases {
            let schedule = try Self.cron("*/10 * * * *", overlap: overlap)
            var state = ScheduleClock.initial(schedule, now: start)
            state.lastRun = "wf_previous"
            let (after, actions) = ScheduleClock.tick(schedule, playbook: Self.playbook, state: state, now: tenPast,
                previousRunActive: true)
            switch overlap {
            case .skip:
                #expect(actions.isEmpty && after.skipped == 1 && after.lastRun == "wf_previous")
                #expect(after.lastSkip == "the run of the previous fire (wf_previous) was still going (overlap: skip)")
            case .bufferOne:
                #expect(actions.isEmpty && after.buffered == Self.ms("2026-05-01T00:10:00Z"))
                #expect(ScheduleClock.dueAt(schedule, playbook: Self.playbook, state: after, now: tenPast) == tenPast + 1_000)
                // Still going a second later: still held; once it ended, the held fire starts (with its own instant).
                let (held, none) = ScheduleClock.tick(schedule, playbook: Self.playbook, state: after, now: tenPast + 1_000,
                    previousRunActive: true)
                #expect(none.isEmpty && held.buffered != nil)
                let (released, go) = ScheduleClock.tick(schedule, playbook: Self.playbook, state: held,
                    now: tenPast + 2_000, previousRunActive: false)
                #expect(Self.fires(go) == ["2026-05-01T00:10:00.000Z"] && released.buffered == nil)
            case .allow:
                #expect(Self.fires(actions) == ["2026-05-01T00:10:00.000Z"])
            case .cancelPrevious:
                #expect(actions.first == .cancel("wf_previous", reason: "schedule nightly fired again (overlap: cancel_previous)"))
                #expect(Self.fires(actions) == ["2026-05-01T00:10:00.000Z"])
            }
        }
    }

    @Test func aRepeatedTickNeverStartsAFireTwiceAndEveryStartsOnMultiplesOfItsSpan() throws {
        let schedule = Schedule(id: "pulse", spec: .every(.seconds(1)), overlap: .allow)
        let begin = Self.ms("2026-05-01T00:00:00Z") + 400
        let started = Self.play(schedule, from: begin, to: begin + 60_000, step: 250)
        #expect(started.count == 60 && Set(started).count == 60)
        #expect(started.first == "2026-05-01T00:00:01.000Z" && started.last == "2026-05-01T00:01:00.000Z")
        // A lagging replica (2.5 s late) starts every fire it missed: they are within the grace.
        var state = ScheduleClock.initial(schedule, now: begin)
        (state, _) = ScheduleClock.tick(schedule, playbook: Self.playbook, state: state, now: begin + 2_500,
            previousRunActive: false)
        #expect(state.started == 2 && state.nextFire == Self.ms("2026-05-01T00:00:03Z"))
    }

    @Test func jitterIsTheSameOnEveryReplicaAndWithinItsBound() throws {
        var schedule = try Self.cron("0 2 * * *")
        schedule.jitter = .minutes(5)
        let fire = Self.ms("2026-05-02T02:00:00Z")
        let offsets = (0..<50).map { ScheduleClock.jitter(schedule, playbook: Self.playbook, fire: fire + Int64($0) * 86_400_000) }
        #expect(offsets.allSatisfy { (0..<300_000).contains($0) })
        #expect(Set(offsets).count > 40)
        #expect(ScheduleClock.jitter(schedule, playbook: Self.playbook, fire: fire) == offsets[0])
        #expect(ScheduleClock.eventID(playbook: Self.playbook, schedule: "nightly", fire: fire)
            == "schedule:PermitSweep.v1/nightly/2026-05-02T02:00:00.000Z")
    }
}
