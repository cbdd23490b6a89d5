/// A span of time as written in a playbook (`sla: 4h`, `wait: 5d`), kept in milliseconds.
///
/// The engine has no clock, so spans are plain numbers: adding one to an instant is integer arithmetic,
/// which keeps simulation exact and deterministic.
public struct TimeSpan: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func milliseconds(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value) }
    public static func seconds(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value * 1_000) }
    public static func minutes(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value * 60_000) }
    public static func hours(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value * 3_600_000) }
    public static func days(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value * 86_400_000) }
    public static let zero = TimeSpan(milliseconds: 0)
    /// The longest span a playbook may write (`3650d`, ten years): every deadline computed from it stays
    /// far inside PostgreSQL's timestamp range, and no SLA, wait or backoff is meant to be longer.
    public static let longest = TimeSpan.days(3_650)

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static func + (lhs: TimeSpan, rhs: TimeSpan) -> TimeSpan {
        TimeSpan(milliseconds: lhs.milliseconds + rhs.milliseconds)
    }

    /// This span scaled by `factor`, rounded down to a whole millisecond.
    public func scaled(by factor: Double) -> TimeSpan {
        TimeSpan(milliseconds: Int64((Double(milliseconds) * factor).rounded(.down)))
    }

    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    /// Parses `500ms`, `30s`, `5m`, `4h`, `48h`, `5d` and compounds such as `1h30m`.
    ///
    /// - Returns: `nil` when the text is not a span; the caller reports where and how to fix it.
    public init?(parsing text: String) {
        let text = text.trimmingSpaces()
        guard !text.isEmpty, text.count <= 32 else { return nil }
        var total: Int64 = 0
        var index = text.startIndex
        while index < text.endIndex {
            let digitsStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
            guard digitsStart < index, let amount = Int64(text[digitsStart..<index]) else { return nil }
            let unitStart = index
            while index < text.endIndex, text[index].isLetter { index = text.index(after: index) }
            let unit = text[unitStart..<index].lowercased()
            guard let scale = Self.units.first(where: { $0.suffix == unit })?.milliseconds else { return nil }
            let (product, overflow) = amount.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !sumOverflow else { return nil }
            total = sum
        }
        self.milliseconds = total
    }

    /// The shortest playbook spelling: `4h`, `1h30m`, `500ms`.
    public var description: String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds
        var text = rest < 0 ? "-" : ""
        rest = abs(rest)
        for (suffix, scale) in Self.units where rest >= scale {
            text += "\(rest / scale)\(suffix)"
            rest %= scale
        }
        return text
    }

    /// A human reading of the span for timelines: `1.2 s`, `6 m 11 s`, `4 h`.
    public var humanReadable: String {
        let ms = milliseconds
        if ms < 1_000 { return "\(ms) ms" }
        if ms < 60_000 {
            let tenths = ms / 100
            return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
        }
        var parts: [String] = []
        var rest = ms / 1_000
        for (suffix, scale) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60), ("s", 1)] where rest >= scale {
            parts.append("\(rest / scale) \(suffix)")
            rest %= scale
        }
        return parts.joined(separator: " ")
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
