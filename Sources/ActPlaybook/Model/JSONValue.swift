import Foundation

/// A JSON value: event payloads, step outputs and expression results.
///
/// Numbers are exact (``JSONNumber``): an id such as `9007199254740993` or an amount such as
/// `123456789.123456789` passes through unchanged. Object keys keep no order; encoding sorts them so the
/// same value always encodes to the same bytes (the audit trail hashes encodings).
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The member `key` of an object, or `nil` for anything else.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// Follows `path` through nested objects (and arrays, by decimal index).
    public func value(at path: some Collection<String>) -> JSONValue? {
        var current = self
        for component in path {
            switch current {
            case .object(let members):
                guard let next = members[component] else { return nil }
                current = next
            case .array(let elements):
                guard let index = Int(component), elements.indices.contains(index) else { return nil }
                current = elements[index]
            case .null, .bool, .number, .string:
                return nil
            }
        }
        return current
    }

    /// An integer number.
    public static func int(_ value: some BinaryInteger) -> JSONValue { .number(JSONNumber(value)) }

    /// The number, when this is one.
    public var numberValue: JSONNumber? {
        if case .number(let number) = self { return number }
        return nil
    }

    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// Whether the value counts as true in a condition: `false`, `null`, `0`, `""` and empty
    /// collections are false, everything else is true.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let bool): bool
        case .number(let number): number != 0
        case .string(let string): !string.isEmpty
        case .array(let elements): !elements.isEmpty
        case .object(let members): !members.isEmpty
        }
    }

    /// The name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: Codable {
    /// Decodes any JSON value.
    ///
    /// A decoder hands numbers over as Swift types, not as text, so numbers are read as exactly as
    /// the decoder allows: `Int64` first, then `Decimal` (Foundation's `JSONDecoder` reads it from the
    /// literal digits, exactly up to 38 significant digits), then `Double`. ``init(parsing:)`` reads
    /// every number exactly; use it for whole documents.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let integer = try? container.decode(Int64.self) {
            self = .number(JSONNumber(integer))
        } else if let number = (try? container.decode(Decimal.self)).flatMap(JSONNumber.init(_:)) {
            self = .number(number)
        } else if let number = (try? container.decode(Double.self)).flatMap(JSONNumber.init(_:)) {
            self = .number(number)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Encodes the value. Numbers go to the encoder as exactly as its types allow: integers as `Int64`
    /// or `UInt64`, numbers a `Double` denotes exactly (``JSONNumber``) as that `Double` (the bytes
    /// written before numbers were exact), others as `Decimal` (Foundation's `JSONEncoder` writes its
    /// digits), and, beyond `Decimal`'s 38 digits, as the nearest `Double`. ``canonicalEncoding`` (in
    /// ActStore) writes every number exactly.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let bool): try container.encode(bool)
        case .number(let number):
            if let integer = Int64(number.text) {
                try container.encode(integer)
            } else if let integer = UInt64(number.text) {
                try container.encode(integer)
            } else if let double = number.exactDouble {
                try container.encode(double)
            } else if let decimal = number.decimalValue {
                try container.encode(decimal)
            } else {
                try container.encode(number.doubleValue)
            }
        case .string(let string): try container.encode(string)
        case .array(let elements): try container.encode(elements)
        case .object(let members): try container.encode(members)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(JSONNumber(floatLiteral: value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
