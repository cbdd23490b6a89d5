extension Instant {
    /// RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.000Z`).
    ///
    /// Pure arithmetic (Howard Hinnant's civil-from-days), with no date formatter: it runs for every task and
    /// governance message and every time an API response lists runs.
    public var rfc3339: String {
        let (days, msOfDay) = Self.floorDividingAndModulo(millisecondsSinceEpoch, 86_400_000)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        let seconds = msOfDay / 1_000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(seconds / 3_600, 2)):"
            + "\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(msOfDay % 1_000, 3))Z"
    }

    /// Floor division and a non-negative remainder (times before 1970 stay well-formed).
    private static func floorDividingAndModulo(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }
}
