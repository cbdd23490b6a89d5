public import Foundation

/// A classic five-field cron schedule (`30 2 * * 1-5`), read in the wall-clock time of an IANA time zone.
///
/// The fields are minute (0-59), hour (0-23), day of the month (1-31), month (1-12 or `JAN`-`DEC`) and day of
/// the week (0-7 or `SUN`-`SAT`; 0 and 7 are both Sunday). Each field is `*`, a value, a range `a-b`, a step
/// `*/n`, `a-b/n` or `a/n` (`a` up to the field's last value; Saturday for the day of the week), or a
/// comma-separated list of those. Names are case-insensitive. The macros `@yearly` (`@annually`), `@monthly`,
/// `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for `0 0 1 1 *`, `0 0 1 * *`, `0 0 * * 0`,
/// `0 0 * * *` and `0 * * * *`. Anything else is refused with a ``ParseError``: six fields (seconds or
/// years), Quartz's `?`, `L`, `W` and `#`, and `@reboot`.
///
/// Days follow Vixie cron: when the day-of-month and day-of-week fields are both restricted (neither starts
/// with `*`), a day matches if either field matches (`0 9 1 * MON` fires on the 1st and on every Monday);
/// when either starts with `*`, a day must match both (`0 9 */2 * MON` fires on Mondays with an odd date).
///
/// ## Daylight-saving changes
///
/// A schedule names wall-clock times, and on the days the clock jumps, some wall times do not happen and some
/// happen twice. What ``nextFire(after:in:)`` does then depends on the hour field, as in Vixie/ISC cron and
/// croniter (see ``coversEveryHour``):
///
/// - **A schedule whose hour field covers all 24 hours** (`*`, `*/1`, `0-23`, as in `*/15 * * * *` or
///   `0 * * * *`) is about elapsed time. It fires at every instant at which the clock shows a matching time:
///   wall times skipped by a spring-forward change are not made up (`0 * * * *` in New York fires at 01:00
///   and then 03:00 EDT, one hour later), and in the hour a fall-back change repeats it fires in both passes
///   (01:00 EDT, 01:00 EST, 02:00 EST: every real hour).
/// - **Any other schedule** names times of day, and fires once for each of them:
///   - a wall time that does not exist (02:30 on the US spring-forward day) fires once, at the first instant
///     after the gap (03:00 EDT). Several matching times in one gap (`0,30 2 * * *`) fire once, together, and
///     a schedule that also names the time the gap ends at fires once there (`0 2,3 * * *`: once at 03:00);
///   - a wall time that happens twice (01:30 on the US fall-back day) fires once, at its first occurrence
///     (01:30 EDT), as Vixie cron does for jobs with a fixed hour.
///
/// croniter 7 (checked against 1,500 random cases by `CronCrossCheckTests`) follows the same rules, with two
/// differences, which the cross-check leaves out:
/// - it fires at both occurrences of a repeated wall time for every schedule (`0 1 * * *` fires at 01:00 EDT and
///   again at 01:00 EST). hms-act does not: a "daily at 01:00" job that runs twice on one night surprises more
///   people than one that follows the clock, and Vixie cron runs such a job once too;
/// - where the clock goes back by half an hour (Australia/Lord_Howe), it sometimes leaves out the second pass
///   of a schedule that covers every hour (`*/20 * * * *` skips the second 01:40 but `33 * * * *` fires at both
///   01:33s), which looks like a slip of its search; hms-act treats a half-hour repeat as it treats an hour.
///
/// Vixie cron calls a job "wildcard" when its minute *or* hour field starts with `*`; here only the hour field
/// counts, and only when it names all 24 hours, as croniter decides for skipped times. So `*/15 1 * * *` fires
/// four times on the fall-back night, not eight, and `30 */2 * * *` makes up a skipped 02:30 at 03:00.
///
/// Offsets come from Foundation's `TimeZone`. A zone's offset is assumed to change at most once within a day
/// either side of any wall time, which every zone's daylight-saving rules satisfy.
public struct CronExpression: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The text the schedule was read from, exactly as given (for display and for ``Codable``).
    public let source: String

    let minutes: CronValueSet
    let hours: CronValueSet
    let daysOfMonth: CronValueSet
    let months: CronValueSet
    /// Days of the week, 0 = Sunday ... 6 = Saturday (a written 7 is stored as 0).
    let daysOfWeek: CronValueSet
    /// Whether the day-of-month field starts with `*` (Vixie cron's `DOM_STAR`).
    let dayOfMonthStartsWithStar: Bool
    /// Whether the day-of-week field starts with `*` (Vixie cron's `DOW_STAR`).
    let dayOfWeekStartsWithStar: Bool

    init(
        source: String,
        minutes: CronValueSet,
        hours: CronValueSet,
        daysOfMonth: CronValueSet,
        months: CronValueSet,
        daysOfWeek: CronValueSet,
        dayOfMonthStartsWithStar: Bool,
        dayOfWeekStartsWithStar: Bool
    ) {
        self.source = source
        self.minutes = minutes
        self.hours = hours
        self.daysOfMonth = daysOfMonth
        self.months = months
        self.daysOfWeek = daysOfWeek
        self.dayOfMonthStartsWithStar = dayOfMonthStartsWithStar
        self.dayOfWeekStartsWithStar = dayOfWeekStartsWithStar
    }

    /// The source text.
    public var description: String { source }

    /// Whether the hour field names all 24 hours (`*`, `*/1`, `0-23`, `@hourly`).
    ///
    /// Such a schedule follows elapsed time across daylight-saving changes: it fires in both passes of a
    /// repeated hour and does not make up wall times that were skipped. Any other schedule names times of day,
    /// which fire once each (see the type's discussion).
    public var coversEveryHour: Bool { hours == CronValueSet(0...23) }

    /// Whether some calendar day can ever match: `false` only when the day-of-month field names days that none
    /// of the months has (`0 0 30 2 *`, `0 0 31 4,6 *`) and the day-of-week field cannot help (it starts
    /// with `*`, so a day must match both).
    ///
    /// Every other schedule matches some day in every 40 years: when both day fields are restricted either one
    /// is enough, and a field starting with `*` includes day 1 or Sunday, which each month has. The rarest is a
    /// date on a given weekday, such as February 29 on a Sunday (`0 0 29 2 */7`), which skips from 2088 to 2128.
    public var canFire: Bool {
        if dayOfMonthStartsWithStar || !dayOfWeekStartsWithStar { return true }
        return months.values.contains { month in
            daysOfMonth.values.contains { day in day <= Self.longestMonth(month) }
        }
    }

    /// How far ahead ``nextFire(after:in:)`` looks before giving up: 50 years of wall-clock time, more than
    /// the longest wait of any schedule that can fire (40 years; see ``canFire``).
    public static let searchHorizonInYears = 50

    /// The first time the schedule fires strictly after `instant`, reading wall-clock times in `timeZone`.
    ///
    /// The search skips whole months, days and hours that cannot match, so it costs a few dozen steps even for
    /// a schedule that fires once a year. Daylight-saving changes follow the rules in the type's discussion.
    ///
    /// - Parameters:
    ///   - instant: The time to start after; a fire exactly at `instant` is not returned.
    ///   - timeZone: Whose wall clock the fields are read on (an IANA zone such as `Europe/Berlin`).
    /// - Returns: The fire time, on a whole minute of `timeZone`'s clock (or the first instant after a skipped
    ///   wall time). `nil` when the schedule can never fire (``canFire`` is `false`), when it would not fire in
    ///   the next ``searchHorizonInYears`` years, or when `instant` is outside the years 1 to 9999.
    public func nextFire(after instant: Date, in timeZone: TimeZone) -> Date? {
        let seconds = instant.timeIntervalSince1970
        guard canFire, seconds >= Self.earliestSupported, seconds <= Self.latestSupported else { return nil }
        let zone = ZoneClock(timeZone)
        let after = Int64(seconds.rounded(.down))
        let wall = after + zone.offset(at: after)
        let limitYear = CivilDate(daysSinceEpoch: wall.flooredDivision(by: 86_400)).year + Self.searchHorizonInYears
        // A schedule that follows elapsed time may fire in the second pass of a repeated hour at a wall time
        // earlier than `instant`'s own (at 01:50 EDT, 01:00 EST is still ahead); start the walk early enough
        // to see those. Any other schedule only fires at first occurrences, which come in wall-clock order.
        let lookBack = coversEveryHour ? zone.repeatedSpan(around: after) : 0
        var cursor = wall - wall.flooredModulo(60) - lookBack
        // First occurrences (and gap ends) come in the order of their wall times, so the first one after
        // `instant` ends the search; the second pass of an earlier wall time, noted on the way, may come sooner.
        var secondPass: Int64?
        while let candidate = nextMatchingWallTime(atOrAfter: cursor, throughYear: limitYear) {
            switch zone.instants(showing: candidate) {
            case .once(let at):
                if Double(at) > seconds { return Date(seconds: Swift.min(at, secondPass ?? at)) }
            case .twice(let first, let second):
                if Double(first) > seconds { return Date(seconds: Swift.min(first, secondPass ?? first)) }
                if coversEveryHour, Double(second) > seconds, secondPass == nil { secondPass = second }
            case .skipped(let gapEnd):
                if !coversEveryHour, Double(gapEnd) > seconds {
                    return Date(seconds: Swift.min(gapEnd, secondPass ?? gapEnd))
                }
            }
            cursor = candidate + 60
        }
        return secondPass.map { Date(seconds: $0) }
    }

    /// Every fire strictly after `start` and at or before `end`, earliest first, at most `limit` of them.
    ///
    /// For catching up after downtime: the fires a scheduler missed between its last run and now. When the
    /// result has `limit` entries there may be more; ask again after the last one.
    ///
    /// - Parameters:
    ///   - start: The time to start after (exclusive).
    ///   - end: The last time to include (inclusive).
    ///   - timeZone: Whose wall clock the fields are read on.
    ///   - limit: The most fires to return; 0 or less returns none.
    /// - Returns: The fire times, as ``nextFire(after:in:)`` finds them one after another.
    public func fires(after start: Date, through end: Date, in timeZone: TimeZone, limit: Int) -> [Date] {
        var found: [Date] = []
        var cursor = start
        while found.count < limit, let next = nextFire(after: cursor, in: timeZone), next <= end {
            found.append(next)
            cursor = next
        }
        return found
    }

    // MARK: Codable (as the source text)

    /// Reads the schedule from its text, as a playbook writes it.
    ///
    /// - Throws: `DecodingError.dataCorrupted` with the ``ParseError``'s description when the text is not a
    ///   schedule.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Writes the source text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(source)
    }

    // MARK: Wall-clock search

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the instants whose wall times stay four-digit years.
    static let earliestSupported: TimeInterval = -62_135_596_800
    static let latestSupported: TimeInterval = 253_402_300_799

    /// February's days in a leap year, and every other month's.
    static func longestMonth(_ month: Int) -> Int {
        month == 2 ? 29 : CivilDate.daysIn(month: month, year: 2001)
    }

    /// Whether the calendar day matches the two day fields, with Vixie cron's either/both rule.
    func matchesDay(_ date: CivilDate) -> Bool {
        let byDate = daysOfMonth.contains(date.day)
        let byWeekday = daysOfWeek.contains(date.weekday)
        if dayOfMonthStartsWithStar || dayOfWeekStartsWithStar { return byDate && byWeekday }
        return byDate || byWeekday
    }

    /// The first wall-clock minute at or after `wall` that matches every field, with no time zone involved.
    ///
    /// Wall times are seconds since 1970-01-01T00:00 on the zone's clock (as if it were UTC). The walk moves
    /// the smallest field that fails to its next allowed value and resets the smaller ones, so it takes at
    /// most a few steps per month it passes through.
    ///
    /// - Returns: `nil` when no match comes before the end of `throughYear`.
    func nextMatchingWallTime(atOrAfter wall: Int64, throughYear: Int) -> Int64? {
        let days = wall.flooredDivision(by: 86_400)
        let secondOfDay = Int(wall - days * 86_400)
        var date = CivilDate(daysSinceEpoch: days)
        var (year, month, day) = (date.year, date.month, date.day)
        var hour = secondOfDay / 3_600
        var minute = secondOfDay % 3_600 / 60
        while year <= throughYear {
            guard let nextMonth = months.next(atOrAfter: month) else {
                (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0)
                continue
            }
            if nextMonth != month { (month, day, hour, minute) = (nextMonth, 1, 0, 0) }
            guard day <= CivilDate.daysIn(month: month, year: year) else {
                (month, day, hour, minute) = (month + 1, 1, 0, 0)
                continue
            }
            date = CivilDate(year: year, month: month, day: day)
            guard matchesDay(date) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            guard let nextHour = hours.next(atOrAfter: hour) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            if nextHour != hour { (hour, minute) = (nextHour, 0) }
            guard let nextMinute = minutes.next(atOrAfter: minute) else {
                (hour, minute) = (hour + 1, 0)
                continue
            }
            return date.daysSinceEpoch * 86_400 + Int64(hour * 3_600 + nextMinute * 60)
        }
        return nil
    }
}

/// A set of small numbers (0-63), as the bits of one word: a cron field's allowed values.
struct CronValueSet: Hashable, Sendable {
    var bits: UInt64

    init(bits: UInt64 = 0) { self.bits = bits }

    init(_ values: some Sequence<Int>) {
        self.init()
        for value in values { insert(value) }
    }

    mutating func insert(_ value: Int) {
        precondition((0..<64).contains(value), "a cron field's values are 0-63; the parser checks the bounds")
        bits |= 1 << UInt64(value)
    }

    func contains(_ value: Int) -> Bool {
        (0..<64).contains(value) && bits & (1 << UInt64(value)) != 0
    }

    /// The smallest value in the set that is at least `value`.
    func next(atOrAfter value: Int) -> Int? {
        guard value < 64 else { return nil }
        let remaining = bits & (UInt64.max << UInt64(Swift.max(value, 0)))
        return remaining == 0 ? nil : remaining.trailingZeroBitCount
    }

    /// The values, smallest first.
    var values: [Int] { (0..<64).filter(contains) }
}

/// A day of the proleptic Gregorian calendar, converted to and from days since 1970-01-01 with integer
/// arithmetic (Howard Hinnant's `days_from_civil` and `civil_from_days`), so walking the calendar needs no
/// `Calendar` and no time zone.
struct CivilDate: Hashable, Sendable {
    var year: Int
    var month: Int
    var day: Int

    init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    init(daysSinceEpoch days: Int64) {
        let shifted = days + 719_468  // days from 0000-03-01, when the 400-year cycle's leap day is last
        let era = shifted.flooredDivision(by: 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        year = Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0)
    }

    var daysSinceEpoch: Int64 {
        let shiftedYear = Int64(month <= 2 ? year - 1 : year)
        let era = shiftedYear.flooredDivision(by: 400)
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = Int64((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1)
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday).
    var weekday: Int { Int((daysSinceEpoch + 4).flooredModulo(7)) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func isLeap(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }
}

/// A time zone's clock: its UTC offset at an instant, and the instants at which it shows a wall time.
struct ZoneClock {
    let zone: TimeZone

    init(_ zone: TimeZone) { self.zone = zone }

    /// What the clock does at one wall time.
    enum Reading: Equatable {
        /// The clock shows it once, at this instant (Unix seconds).
        case once(Int64)
        /// The clock shows it twice, after a change that set it back.
        case twice(first: Int64, second: Int64)
        /// The clock never shows it (it jumped over it); this is the instant it jumped.
        case skipped(gapEnd: Int64)
    }

    /// Seconds east of UTC at `instant` (Unix seconds).
    func offset(at instant: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(seconds: instant)))
    }

    /// The instants at which the clock shows `wall` (seconds since 1970-01-01T00:00 on this clock).
    ///
    /// Every instant showing `wall` is `wall - offset` for the offset in force then, and offsets change at
    /// most once within a day either side (see ``CronExpression``), so trying the offsets a day before, a day
    /// after and at `wall` itself finds them all. When none fits, `wall` is in a gap, and the jump is the first
    /// instant at which the clock reads later than `wall`, found by bisection (a gap is at most a few hours).
    func instants(showing wall: Int64) -> Reading {
        let offsets = [offset(at: wall - 86_400), offset(at: wall), offset(at: wall + 86_400)]
        var found: [Int64] = []
        for candidate in offsets.map({ wall - $0 }) where offset(at: candidate) == wall - candidate {
            if !found.contains(candidate) { found.append(candidate) }
        }
        found.sort()
        if let first = found.first, let last = found.last {
            return first == last ? .once(first) : .twice(first: first, second: last)
        }
        // Before the jump the clock reads at most `wall` (it has not got there yet), after it more.
        var before = wall - (offsets.max() ?? 0)
        var after = wall - (offsets.min() ?? 0)
        while after - before > 1 {
            let middle = before + (after - before) / 2
            if middle + offset(at: middle) > wall { after = middle } else { before = middle }
        }
        return .skipped(gapEnd: after)
    }

    /// How long the clock repeats around `instant` when it is set back within a few hours of it (0 if not).
    ///
    /// A fall-back change repeats at most two hours of wall time in every zone (most repeat one; Lord Howe
    /// half an hour), so six hours either side holds any repeat that `instant` is in or about to enter.
    func repeatedSpan(around instant: Int64) -> Int64 {
        Swift.max(0, offset(at: instant - 6 * 3_600) - offset(at: instant + 6 * 3_600))
    }
}

extension Date {
    /// The instant `seconds` whole seconds after 1970-01-01T00:00:00Z.
    fileprivate init(seconds: Int64) { self.init(timeIntervalSince1970: TimeInterval(seconds)) }
}

extension Int64 {
    /// Division rounding toward negative infinity, so that times before 1970 fall on the right day.
    fileprivate func flooredDivision(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    /// The remainder that goes with ``flooredDivision(by:)``: always in `0..<divisor` for a positive divisor.
    fileprivate func flooredModulo(_ divisor: Int64) -> Int64 { self - flooredDivision(by: divisor) * divisor }
}
