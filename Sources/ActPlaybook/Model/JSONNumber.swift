public import Foundation

/// A JSON number, kept exactly: `9007199254740993`, `12345678901234567890123` and `0.1` stay those values
/// from an event's payload through run state, task messages, outputs and the audit chain.
///
/// JSON has one number type of unlimited precision; a `Double` would round integers above 2^53 and
/// decimals such as `123456789.123456789`. A number is stored as its canonical text (``text``), which
/// identifies its value: equal values have the same text (`1`, `1.0`, `1e0` and `10e-1` are one number, and
/// so are `0` and `-0`), so `==` and hashing compare values.
///
/// The canonical text is chosen so that numbers written before numbers were exact keep their bytes (the
/// audit chain hashes them):
/// - when the value is exactly what a `Double` printed in its shortest form denotes (every number that
///   survived the old `Double` representation unchanged), the text is that form: integers below 2^53
///   without a fraction (`3`, `-42`), others as Swift prints the `Double` (`0.5`, `0.1`, `1e+20`, `1e-07`,
///   `9007199254740992.0`);
/// - any other value is written exactly: plain digits (`9007199254740993`, `123456789.123456789`,
///   `0.000001234567890123456789`) or, when that would need more than 20 padding zeros, scientific
///   notation in the same style (`1e+400`, `1.5e-400`).
///
/// ``doubleValue`` is the nearest `Double`, for code that needs arithmetic; comparisons (`<`) are exact.
public struct JSONNumber: Hashable, Sendable {
    /// The canonical JSON text of the number (see the type's discussion); valid JSON.
    public let text: String

    private init(canonical text: String) {
        self.text = text
    }

    /// Reads a number written as JSON writes numbers (RFC 8259: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
    ///
    /// Returns `nil` for anything else, and for exponents beyond ±999,999,999.
    public init?(_ text: some StringProtocol) {
        guard let parts = Parts(parsing: Array(text.utf8), strict: true) else { return nil }
        self.init(parts: parts)
    }

    /// Reads a number that may have leading zeros and a `+` sign (`007`, `+1.5e3`), as the expression
    /// language and YAML write them.
    init?(lenient text: some StringProtocol) {
        guard let parts = Parts(parsing: Array(text.utf8), strict: false) else { return nil }
        self.init(parts: parts)
    }

    /// The number an integer denotes.
    public init(_ value: some BinaryInteger) {
        if let small = Int64(exactly: value), small.magnitude < Self.twoToThe53 {
            self.init(canonical: String(small))
        } else {
            self.init(parts: Parts(parsing: Array(String(value).utf8), strict: true)!)  // integer digits
        }
    }

    /// The number a finite `Double` denotes in its shortest round-trip form (`0.1` for `0.1`), as JSON
    /// readers take it; `nil` for NaN and infinities, which JSON cannot write.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        self.init(canonical: Self.doubleText(value))
    }

    /// The number a `Decimal` denotes; `nil` for NaN.
    public init?(_ value: Decimal) {
        guard !value.isNaN else { return nil }
        self.init(value.description)
    }

    init(parts: Parts) {
        self.init(canonical: Self.canonicalText(parts))
    }

    /// The nearest `Double` (`±infinity` beyond its range), for arithmetic. Comparing two numbers exactly
    /// needs `<` on ``JSONNumber`` instead: `9007199254740993` and `9007199254740992` have the same `Double`.
    public var doubleValue: Double {
        Double(text) ?? .nan  // every canonical text is a valid `Double` literal
    }

    /// The value as an `Int`, when it is an integer in `Int`'s range.
    public var intValue: Int? {
        if let int = Int(text) { return int }
        let parts = self.parts
        guard parts.exponent >= 0, parts.digits.count + parts.exponent <= 19 else { return nil }
        return Int(String(decoding: parts.digits, as: UTF8.self) + String(repeating: "0", count: parts.exponent))
            .map { parts.negative ? -$0 : $0 }
    }

    /// Whether the value is a whole number (`3`, `1e+20`, but not `0.5`).
    public var isInteger: Bool { parts.exponent >= 0 }

    /// The value as a `Decimal`, when a `Decimal` holds it exactly (up to 38 significant digits).
    public var decimalValue: Decimal? {
        guard let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")),
            JSONNumber(decimal) == self
        else { return nil }
        return decimal
    }

    /// The `Double` whose shortest form is ``text``, when the number is exactly such a `Double`'s value
    /// (the numbers that the `Double` representation kept unchanged).
    var exactDouble: Double? {
        guard let double = Double(text), double.isFinite, Self.doubleText(double) == text else { return nil }
        return double
    }

    /// The text a `switch` case key or an event id is matched against: integers in plain digits (`42`,
    /// `9007199254740993`, up to 40 digits), other numbers in their canonical text (`0.5`).
    public var keyText: String {
        let parts = self.parts
        guard parts.exponent >= 0, parts.digits.count + parts.exponent <= 40 else { return text }
        if parts.digits.isEmpty { return "0" }
        return (parts.negative ? "-" : "") + String(decoding: parts.digits, as: UTF8.self)
            + String(repeating: "0", count: parts.exponent)
    }

    var parts: Parts {
        Parts(parsing: Array(text.utf8), strict: false)!  // canonical texts always parse
    }

    // MARK: Canonical text

    /// 2^53: integers below it have an exact `Double`, and were written without a fraction.
    private static let twoToThe53: UInt64 = 9_007_199_254_740_992

    /// How the `Double` representation wrote a number: integers below 2^53 as integers, others as
    /// Swift prints a `Double` (its shortest round-trip form).
    static func doubleText(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 9.007_199_254_740_992e15 {
            return String(Int64(value))
        }
        return "\(value)"
    }

    private static func canonicalText(_ parts: Parts) -> String {
        if parts.digits.isEmpty { return "0" }
        if parts.exponent >= 0, parts.digits.count + parts.exponent <= 15 {  // below 10^15 < 2^53: plain digits
            return parts.exactText
        }
        if let double = Double(parts.scientificText), double.isFinite {
            let legacy = doubleText(double)
            if Parts(parsing: Array(legacy.utf8), strict: false) == parts { return legacy }
        }
        return parts.exactText
    }

    /// A number as sign, significant digits and a power of ten: `-1.25` is (true, "125", -2). Zero has no
    /// digits and no sign; the digits have no leading or trailing zeros.
    struct Parts: Equatable {
        var negative: Bool
        /// ASCII digits.
        var digits: [UInt8]
        var exponent: Int

        init?(parsing bytes: [UInt8], strict: Bool) {
            var index = 0
            func digit(_ at: Int) -> Bool { at < bytes.count && bytes[at] >= 0x30 && bytes[at] <= 0x39 }
            negative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            } else if !strict, index < bytes.count, bytes[index] == UInt8(ascii: "+") {
                index += 1
            }
            let integerStart = index
            while digit(index) { index += 1 }
            let integerDigits = bytes[integerStart..<index]
            guard !integerDigits.isEmpty else { return nil }
            if strict, integerDigits.count > 1, integerDigits.first == UInt8(ascii: "0") { return nil }
            var fractionDigits = bytes[index..<index]
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                let fractionStart = index
                while digit(index) { index += 1 }
                fractionDigits = bytes[fractionStart..<index]
                guard !fractionDigits.isEmpty else { return nil }
            }
            var exponent = 0
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                var exponentNegative = false
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    exponentNegative = bytes[index] == UInt8(ascii: "-")
                    index += 1
                }
                let exponentStart = index
                while digit(index) { index += 1 }
                var exponentDigits = bytes[exponentStart..<index]
                guard !exponentDigits.isEmpty else { return nil }
                while exponentDigits.count > 1, exponentDigits.first == UInt8(ascii: "0") {
                    exponentDigits = exponentDigits.dropFirst()
                }
                guard exponentDigits.count <= 9 else { return nil }  // keeps the arithmetic below in range
                exponent = Int(String(decoding: exponentDigits, as: UTF8.self))!  // ASCII digits
                if exponentNegative { exponent = -exponent }
            }
            guard index == bytes.count else { return nil }
            var all = Array(integerDigits) + Array(fractionDigits)
            exponent -= fractionDigits.count
            let leadingZeros = all.prefix { $0 == UInt8(ascii: "0") }.count
            all.removeFirst(leadingZeros)
            let trailingZeros = all.reversed().prefix { $0 == UInt8(ascii: "0") }.count
            all.removeLast(trailingZeros)
            exponent += trailingZeros
            if all.isEmpty {
                negative = false
                exponent = 0
            }
            digits = all
            self.exponent = exponent
        }

        /// `d.ddde±x`, a form `Double(_:)` reads.
        var scientificText: String {
            let mantissa = String(decoding: digits, as: UTF8.self)
            return (negative ? "-" : "") + mantissa + "e" + String(exponent)
        }

        /// The exact text: plain digits unless that needs more than 20 padding zeros, then scientific
        /// notation with at least two exponent digits, as Swift prints a `Double`.
        var exactText: String {
            let sign = negative ? "-" : ""
            let text = String(decoding: digits, as: UTF8.self)
            let pointPosition = digits.count + exponent  // digits before the decimal point
            if exponent >= 0, exponent <= 20 {
                return sign + text + String(repeating: "0", count: exponent)
            }
            if exponent < 0, pointPosition > 0 {
                return sign + String(text.prefix(pointPosition)) + "." + String(text.dropFirst(pointPosition))
            }
            if exponent < 0, pointPosition > -20 {
                return sign + "0." + String(repeating: "0", count: -pointPosition) + text
            }
            let power = pointPosition - 1
            let magnitude = power.magnitude < 10 ? "0" + String(power.magnitude) : String(power.magnitude)
            let mantissa = digits.count > 1 ? String(text.prefix(1)) + "." + String(text.dropFirst()) : text
            return sign + mantissa + (power < 0 ? "e-" : "e+") + magnitude
        }
    }
}

extension JSONNumber: Comparable {
    /// Exact order of the values.
    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        let (a, b) = (lhs.parts, rhs.parts)
        let aSign = a.digits.isEmpty ? 0 : (a.negative ? -1 : 1)
        let bSign = b.digits.isEmpty ? 0 : (b.negative ? -1 : 1)
        if aSign != bSign { return aSign < bSign }
        if aSign == 0 { return false }
        let magnitudeLess = Self.magnitudeLess(a, b)
        return a.negative ? (!magnitudeLess && a != b) : magnitudeLess
    }

    /// Whether `|a| < |b|`, for non-zero `a` and `b`.
    private static func magnitudeLess(_ a: Parts, _ b: Parts) -> Bool {
        let aPoint = a.digits.count + a.exponent
        let bPoint = b.digits.count + b.exponent
        if aPoint != bPoint { return aPoint < bPoint }
        // Same position of the leading digit: compare the digits, the shorter padded with zeros.
        for index in 0..<max(a.digits.count, b.digits.count) {
            let x = index < a.digits.count ? a.digits[index] : UInt8(ascii: "0")
            let y = index < b.digits.count ? b.digits[index] : UInt8(ascii: "0")
            if x != y { return x < y }
        }
        return false
    }
}

extension JSONNumber: CustomStringConvertible {
    /// The canonical text.
    public var description: String { text }
}

extension JSONNumber: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int) { self.init(value) }

    public init(floatLiteral value: Double) {
        precondition(value.isFinite, "a float literal is finite")
        self.init(canonical: Self.doubleText(value))
    }
}
