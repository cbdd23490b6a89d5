public import Foundation

/// A PostgreSQL type, by its OID (`pg_type.oid`).
public struct PostgresDataType: Sendable, Hashable, CustomStringConvertible {
    /// The type's OID.
    public let oid: UInt32

    /// Wraps an OID, e.g. one read from `pg_type`.
    public init(oid: UInt32) { self.oid = oid }

    /// No type given: the server infers it from the statement.
    public static let unspecified = PostgresDataType(oid: 0)
    public static let bool = PostgresDataType(oid: 16)
    public static let bytea = PostgresDataType(oid: 17)
    public static let name = PostgresDataType(oid: 19)
    public static let int8 = PostgresDataType(oid: 20)
    public static let int2 = PostgresDataType(oid: 21)
    public static let int4 = PostgresDataType(oid: 23)
    public static let text = PostgresDataType(oid: 25)
    public static let oidType = PostgresDataType(oid: 26)
    public static let json = PostgresDataType(oid: 114)
    public static let float4 = PostgresDataType(oid: 700)
    public static let float8 = PostgresDataType(oid: 701)
    public static let unknown = PostgresDataType(oid: 705)
    public static let bpchar = PostgresDataType(oid: 1042)
    public static let varchar = PostgresDataType(oid: 1043)
    public static let date = PostgresDataType(oid: 1082)
    public static let timestamp = PostgresDataType(oid: 1114)
    public static let timestamptz = PostgresDataType(oid: 1184)
    public static let interval = PostgresDataType(oid: 1186)
    public static let numeric = PostgresDataType(oid: 1700)
    public static let uuid = PostgresDataType(oid: 2950)
    public static let jsonb = PostgresDataType(oid: 3802)

    public var description: String {
        switch oid {
        case 0: "unspecified"
        case 16: "bool"
        case 17: "bytea"
        case 19: "name"
        case 20: "int8"
        case 21: "int2"
        case 23: "int4"
        case 25: "text"
        case 26: "oid"
        case 114: "json"
        case 700: "float4"
        case 701: "float8"
        case 705: "unknown"
        case 1042: "bpchar"
        case 1043: "varchar"
        case 1082: "date"
        case 1114: "timestamp"
        case 1184: "timestamptz"
        case 1186: "interval"
        case 1700: "numeric"
        case 2950: "uuid"
        case 3802: "jsonb"
        default: "oid \(oid)"
        }
    }
}

/// One statement parameter (`$1`, `$2`, …): a value with its type, sent apart from the SQL text.
///
/// Values are never spliced into SQL, so a parameter is always data, whatever it contains. Build one from
/// any ``PostgresEncodable`` value (`PostgresBind(runID)`), from a literal (`"text"`, `42`, `true`, `nil`),
/// or with ``text(_:type:)`` / ``binary(_:type:)`` for types this layer does not model.
public struct PostgresBind: Sendable, Hashable {
    enum Value: Sendable, Hashable {
        case null
        /// Sent in PostgreSQL's text format; libpq reads it as a C string, so it must not contain NUL.
        case text(String)
        /// Sent in PostgreSQL's binary format, with an explicit length.
        case binary([UInt8])
    }

    let value: Value
    /// The parameter's type. ``PostgresDataType/unspecified`` lets the server infer it.
    public let type: PostgresDataType

    init(value: Value, type: PostgresDataType) {
        self.value = value
        self.type = type
    }

    /// Encodes a value (an optional `nil` becomes SQL NULL).
    public init<Value: PostgresEncodable>(_ value: Value) {
        self = value.postgresBind
    }

    /// SQL NULL of the given type.
    public static func null(_ type: PostgresDataType = .unspecified) -> PostgresBind {
        PostgresBind(value: .null, type: type)
    }

    /// A value in PostgreSQL's text input syntax, e.g. `.text("1 day", type: .interval)`.
    public static func text(_ text: String, type: PostgresDataType = .unspecified) -> PostgresBind {
        PostgresBind(value: .text(text), type: type)
    }

    /// A value in PostgreSQL's binary format for `type` (e.g. big-endian integers).
    public static func binary(_ bytes: [UInt8], type: PostgresDataType) -> PostgresBind {
        PostgresBind(value: .binary(bytes), type: type)
    }

    /// True for SQL NULL.
    public var isNull: Bool { value == .null }
}

extension PostgresBind: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = value.postgresBind }
    public init(integerLiteral value: Int) { self = value.postgresBind }
    public init(booleanLiteral value: Bool) { self = value.postgresBind }
    public init(floatLiteral value: Double) { self = value.postgresBind }
    public init(nilLiteral: ()) { self = .null() }
}

/// A Swift value that can be sent as a statement parameter.
public protocol PostgresEncodable: Sendable {
    /// The PostgreSQL type this Swift type is sent as (also the type of its NULL).
    static var postgresType: PostgresDataType { get }
    /// The parameter for this value.
    var postgresBind: PostgresBind { get }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresDataType { Wrapped.postgresType }
    public var postgresBind: PostgresBind {
        switch self {
        case .none: .null(Wrapped.postgresType)
        case .some(let value): value.postgresBind
        }
    }
}

extension FixedWidthInteger {
    fileprivate var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: self.bigEndian) { Array($0) }
    }
}

extension String: PostgresEncodable {
    public static var postgresType: PostgresDataType { .text }
    /// Sent as binary `text` (its UTF-8 bytes with an explicit length).
    public var postgresBind: PostgresBind { .binary(Array(utf8), type: .text) }
}

extension Substring: PostgresEncodable {
    public static var postgresType: PostgresDataType { .text }
    public var postgresBind: PostgresBind { .binary(Array(utf8), type: .text) }
}

extension Int: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int8 }
    /// Sent as `int8`; the server casts it to `int4`/`int2` columns on assignment.
    public var postgresBind: PostgresBind { .binary(Int64(self).bigEndianBytes, type: .int8) }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int8 }
    public var postgresBind: PostgresBind { .binary(bigEndianBytes, type: .int8) }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int4 }
    public var postgresBind: PostgresBind { .binary(bigEndianBytes, type: .int4) }
}

extension Int16: PostgresEncodable {
    public static var postgresType: PostgresDataType { .int2 }
    public var postgresBind: PostgresBind { .binary(bigEndianBytes, type: .int2) }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresDataType { .bool }
    public var postgresBind: PostgresBind { .binary([self ? 1 : 0], type: .bool) }
}

extension Double: PostgresEncodable {
    public static var postgresType: PostgresDataType { .float8 }
    public var postgresBind: PostgresBind { .binary(bitPattern.bigEndianBytes, type: .float8) }
}

extension UUID: PostgresEncodable {
    public static var postgresType: PostgresDataType { .uuid }
    public var postgresBind: PostgresBind {
        withUnsafeBytes(of: uuid) { .binary(Array($0), type: .uuid) }
    }
}

/// Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's timestamp epoch.
let postgresEpochOffset: Double = 946_684_800

extension Date: PostgresEncodable {
    public static var postgresType: PostgresDataType { .timestamptz }
    /// Sent as binary `timestamptz`: microseconds since 2000-01-01 UTC, rounded to the nearest microsecond
    /// (PostgreSQL's precision).
    public var postgresBind: PostgresBind {
        let micros = ((timeIntervalSince1970 - postgresEpochOffset) * 1_000_000).rounded()
        // Dates beyond ±292,000 years do not fit; clamp instead of trapping (PostgreSQL's own range is smaller
        // and the server then refuses the value with a clear error).
        let clamped = Int64(exactly: micros) ?? (micros < 0 ? Int64.min + 1 : Int64.max - 1)
        return .binary(clamped.bigEndianBytes, type: .timestamptz)
    }
}

extension Array: PostgresEncodable where Element == UInt8 {
    public static var postgresType: PostgresDataType { .bytea }
    /// Sent as binary `bytea`: the bytes as they are, zero bytes included.
    public var postgresBind: PostgresBind { .binary(self, type: .bytea) }
}

extension Data: PostgresEncodable {
    public static var postgresType: PostgresDataType { .bytea }
    public var postgresBind: PostgresBind { .binary(Array(self), type: .bytea) }
}

/// JSON for a `jsonb` (or `json`) column, kept as raw UTF-8 text: this layer neither parses nor re-encodes it.
///
/// Encode your values with `JSONEncoder` into ``init(bytes:)``, and decode ``bytes`` with `JSONDecoder`.
public struct PostgresJSON: Sendable, Hashable, PostgresEncodable {
    /// The JSON document's UTF-8 bytes.
    public var bytes: [UInt8]

    /// Wraps JSON bytes (e.g. `JSONEncoder().encode(value)`).
    public init(bytes: some Sequence<UInt8>) { self.bytes = Array(bytes) }
    /// Wraps JSON text.
    public init(_ text: String) { self.bytes = Array(text.utf8) }

    /// The JSON text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public static var postgresType: PostgresDataType { .jsonb }
    /// Sent as binary `jsonb`: a version byte (1) followed by the JSON text.
    public var postgresBind: PostgresBind { .binary([1] + bytes, type: .jsonb) }
}
