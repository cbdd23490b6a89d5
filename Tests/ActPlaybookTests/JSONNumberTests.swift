import ActPlaybook
import Foundation
import Testing

@Suite struct JSONNumberTests {
    /// Numbers a `Double` cannot hold, written as JSON writes them (and as `canonicalEncoding` writes them back).
    static let exactOnly = [
        "9007199254740993", "-9223372036854775808", "18446744073709551615", "12345678901234567890",
        "12345678901234567890123", "123456789.123456789", "-0.10000000000000000001",
    ]

    /// How the `Double` representation wrote a number (the canonical bytes of chains written before
    /// numbers were exact); the same function as the old `canonicalNumber`.
    static func legacyText(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 9.007_199_254_740_992e15 { return String(Int64(value)) }
        return "\(value)"
    }

    @Test(arguments: exactOnly + ["0.1", "1.7976931348623157e+308", "5e-324", "123456789012345678901234567890123456789012"])
    func parsingKeepsTheDigits(text: String) throws {
        let value = try JSONValue(parsing: Array("[\(text)]".utf8))
        #expect(value == .array([.number(try #require(JSONNumber(text)))]))
        #expect(value.value(at: ["0"])?.numberValue?.text == text)
    }

    @Test(arguments: exactOnly + ["0.1"])
    func codableRoundTripKeepsTheDigits(text: String) throws {
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data("{\"n\": \(text)}".utf8))
        #expect(decoded["n"]?.numberValue?.text == text)
        let encoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        #expect(encoded == "{\"n\":\(text)}")
    }

    /// ``JSONValue``'s `Codable` reading relies on Foundation's `JSONDecoder` reading `Decimal` from the digits.
    @Test func jsonDecoderReadsDecimalFromTheDigits() throws {
        let decimals = try JSONDecoder().decode([Decimal].self, from: Data("[123456789.123456789, 0.1, 12345678901234567890123]".utf8))
        #expect(decimals.map(\.description) == ["123456789.123456789", "0.1", "12345678901234567890123"])
    }

    @Test(arguments: [
        ("1", "1.0"), ("1", "1e0"), ("1", "10e-1"), ("0", "-0"), ("0", "0.000"), ("100", "1e2"), ("1e+20", "100000000000000000000"),
        ("0.5", "5e-1"), ("9007199254740993", "9.007199254740993e15"), ("-1.25", "-125e-2"),
    ])
    func equalValuesAreEqual(lhs: String, rhs: String) throws {
        let a = try #require(JSONNumber(lhs))
        let b = try #require(JSONNumber(rhs))
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a.text == b.text)
    }

    /// The canonical text of every number the `Double` representation kept is the bytes it wrote, so
    /// audit chains written before keep verifying.
    @Test(arguments: [
        ("3", "3"), ("-42", "-42"), ("0.5", "0.5"), ("0.1", "0.1"), ("1e20", "1e+20"), ("0.0000001", "1e-07"),
        ("9007199254740992", "9007199254740992.0"), ("1000000000000000", "1000000000000000"),
        ("123456789.12345679", "123456789.12345679"), ("12345678901234567000", "1.2345678901234567e+19"),
        ("1700000000000", "1700000000000"), ("-0.0", "0"), ("2.5e-320", "2.5e-320"),
    ])
    func canonicalTextIsWhatTheDoubleRepresentationWrote(text: String, legacy: String) throws {
        let number = try #require(JSONNumber(text))
        #expect(number.text == legacy)
        #expect(number.text == Self.legacyText(try #require(Double(text))))
    }

    @Test func everyDoubleKeepsItsOldTextAlsoAfterADatabaseRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        var doubles: [Double] = [0, 1, -1, 0.5, 1e15, 1e16, 1e21, 1e22, 1e-5, 1e-6, 1e-7, .leastNonzeroMagnitude,
            .greatestFiniteMagnitude, 9_007_199_254_740_992, 4_503_599_627_370_497]
        for _ in 0..<2_000 {
            let double = Double(bitPattern: generator.next())
            if double.isFinite { doubles.append(double) }
            doubles.append(Double(Int64.random(in: -1_000_000_000_000...1_000_000_000_000, using: &generator)) / 1_000)
        }
        for double in doubles {
            let number = try #require(JSONNumber(double))
            #expect(number.text == Self.legacyText(double), "\(double)")
            // PostgreSQL writes jsonb numerics in plain digits: the value read back keeps the old text.
            let plain = Self.plainDigits(Self.legacyText(double))
            #expect(JSONNumber(plain)?.text == Self.legacyText(double), "\(double) read back as \(plain)")
        }
    }

    /// `1.5e-07` as `0.00000015`, as PostgreSQL prints a numeric.
    static func plainDigits(_ text: String) -> String {
        let negative = text.hasPrefix("-")
        let unsigned = negative ? String(text.dropFirst()) : text
        let parts = unsigned.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1)
        let digits = String(mantissa[0]) + (mantissa.count == 2 ? String(mantissa[1]) : "")
        let point = mantissa[0].count + exponent
        var plain: String
        if point <= 0 {
            plain = "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            plain = digits + String(repeating: "0", count: point - digits.count)
        } else {
            plain = String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
        }
        while plain.count > 1, plain.hasPrefix("0"), plain.dropFirst().first?.isNumber == true { plain.removeFirst() }
        return (negative ? "-" : "") + plain
    }

    @Test func newExactValuesUseExactText() throws {
        #expect(JSONNumber("0.000001234567890123456789")?.text == "0.000001234567890123456789")
        #expect(JSONNumber("1" + String(repeating: "0", count: 400))?.text == "1e+400")
        #expect(JSONNumber("-15e-401")?.text == "-1.5e-400")
        #expect(JSONNumber(UInt64.max).text == "18446744073709551615")
        #expect(JSONNumber(Int64.min).text == "-9223372036854775808")
    }

    @Test(arguments: ["", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "1 ", "NaN", "Infinity", "1e1000000000"])
    func rejectsWhatIsNotAJSONNumber(text: String) {
        #expect(JSONNumber(text) == nil)
    }

    @Test func comparesExactly() throws {
        let pairs: [(String, String)] = [
            ("9007199254740992", "9007199254740993"), ("0.1", "0.10000000000000000001"), ("-1.5", "-1"),
            ("-12345678901234567891", "-12345678901234567890"), ("-1", "0"), ("0", "1e-400"), ("99", "1e2"),
            ("123456789.123456789", "123456789.12345679"),
        ]
        for (smaller, larger) in pairs {
            let a = try #require(JSONNumber(smaller))
            let b = try #require(JSONNumber(larger))
            #expect(a < b, "\(smaller) < \(larger)")
            #expect(!(b < a), "\(larger) < \(smaller)")
            #expect(!(a < a))
        }
    }

    @Test func integerViews() throws {
        #expect(JSONNumber("2.0")?.intValue == 2)
        #expect(JSONNumber("2.5")?.intValue == nil)
        #expect(JSONNumber("9223372036854775807")?.intValue == Int.max)
        #expect(JSONNumber("9223372036854775808")?.intValue == nil)
        #expect(JSONNumber("1e3")?.intValue == 1_000)
        #expect(JSONNumber("9007199254740993")?.doubleValue == 9_007_199_254_740_992)
        #expect(JSONNumber("9007199254740992")?.keyText == "9007199254740992")
        #expect(JSONNumber("1e15")?.keyText == "1000000000000000")
        #expect(JSONNumber("0.5")?.keyText == "0.5")
    }
}

@Suite struct JSONParsingTests {
    @Test func readsEveryKindOfValue() throws {
        let text = "\u{FEFF}" + #" {"a": [true, false, null, -0.5e1, "é\n\"\\\/\u00e9\ud83d\ude00\t"], "b": {}, "c": [], "a2": 1} "#
        let value = try JSONValue(parsing: Array(text.utf8))
        #expect(value == ["a": [true, false, nil, -5, "é\n\"\\/é😀\t"], "b": [:], "c": [], "a2": 1])
    }

    @Test(arguments: [
        "", " ", "[1,]", "{\"a\":1,}", "{a:1}", "[01]", "[1.]", "\"\\ud800\"", "\"\\udc00x\"", "\"abc", "\"a\u{01}\"",
        "tru", "nul", "[1] 2", "\"\\x\"", "{\"a\" 1}", "[\"\\u12\"]", "\u{FEFF}", "[1e400]", "[-1e309]", "[1e-400]",
    ])
    func rejectsInvalidDocuments(text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func boundsNesting() throws {
        let deep = String(repeating: "[", count: JSONValue.maximumParseDepth) + String(repeating: "]", count: JSONValue.maximumParseDepth)
        _ = try JSONValue(parsing: Array(deep.utf8))
        let tooDeep = "[" + deep + "]"
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: Array(tooDeep.utf8)) }
    }

    @Test func agreesWithJSONDecoderOnOrdinaryDocuments() throws {
        let text = #"{"type": "noise.complaint.filed", "id": "e-1", "payload": {"decibels": 71, "ratio": 0.25, "tags": ["a", "b"], "ok": true, "none": null}}"#
        #expect(try JSONValue(parsing: Array(text.utf8)) == JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))
    }
}

@Suite struct NumberExpressionTests {
    struct Context: ExpressionContext {
        var root: JSONValue
        func value(at path: [String]) -> JSONValue? { root.value(at: path) }
        func step(_ id: StepID, is condition: StepCondition) -> Bool { false }
    }

    @Test(arguments: [
        ("payload.id > 9007199254740992", true), ("payload.id == 9007199254740993", true),
        ("payload.id == 9007199254740992", false), ("payload.id <= 9007199254740992", false),
        ("payload.amount == 123456789.123456789", true), ("payload.amount < 123456789.12345679", true),
        ("payload.small == 0.1", true), ("payload.small >= 0.1", true), ("payload.small > 0.09999", true),
        ("payload.count > 2", true), ("payload.count < 3.5", true), ("payload.count == 3.0", true),
        ("payload.count in [1, 2, 3]", true), ("payload.id > 'a'", false),
    ])
    func comparesNumbersExactly(expression: String, expected: Bool) throws {
        let payload = try JSONValue(parsing: Array(
            #"{"id": 9007199254740993, "amount": 123456789.123456789, "small": 0.1, "count": 3}"#.utf8))
        let context = Context(root: ["payload": payload])
        #expect(try ExpressionParser.parse(expression).holds(in: context) == expected)
    }
}
