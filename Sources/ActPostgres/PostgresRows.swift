public import Foundation

/// A result column: its name and type.
public struct PostgresColumn: Sendable, Hashable {
    /// The column's name (`AS` alias if given).
    public let name: String
    /// The column's type.
    public let type: PostgresDataType
}

/// The outcome of one statement: its rows (possibly none), columns, and command tag.
///
/// The values are copied out of libpq when the statement completes, so a `PostgresRows` is a plain value:
/// `Sendable` and usable after the connection moved on. Values are held in PostgreSQL's text format and
/// decoded on access with ``PostgresRow/decode(_:column:file:line:)-(_,Int,_,_)``.
public struct PostgresRows: Sendable, RandomAccessCollection {
    final class Storage: Sendable {
        let columns: [PostgresColumn]
        /// Row-major cells: `cells[row * columns.count + column]`; `nil` is SQL NULL.
        let cells: [String?]
        let rowCount: Int
        /// Column index by name; the first column wins when names repeat.
        let indexByName: [String: Int]

        init(columns: [PostgresColumn], cells: [String?], rowCount: Int) {
            self.columns = columns
            self.cells = cells
            self.rowCount = rowCount
            var indexByName: [String: Int] = [:]
            for (index, column) in columns.enumerated() where indexByName[column.name] == nil {
                indexByName[column.name] = index
            }
            self.indexByName = indexByName
        }
    }

    let storage: Storage
    /// The command tag, e.g. `INSERT 0 3`, `UPDATE 2`, `SELECT 10`.
    public let commandTag: String
    /// Rows inserted, updated, deleted, selected, … as the command tag reports (0 when it reports none).
    public let affectedRows: Int

    init(columns: [PostgresColumn], cells: [String?], rowCount: Int, commandTag: String, affectedRows: Int) {
        self.storage = Storage(columns: columns, cells: cells, rowCount: rowCount)
        self.commandTag = commandTag
        self.affectedRows = affectedRows
    }

    /// The result's columns, in order.
    public var columns: [PostgresColumn] { storage.columns }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.rowCount }
    public subscript(position: Int) -> PostgresRow {
        precondition(position >= 0 && position < storage.rowCount, "row index out of range")
        return PostgresRow(storage: storage, row: position)
    }
}

/// One row of a ``PostgresRows``.
public struct PostgresRow: Sendable {
    let storage: PostgresRows.Storage
    let row: Int

    /// The number of columns.
    public var count: Int { storage.columns.count }

    /// True when the value in `column` is SQL NULL.
    public func isNull(column: Int) -> Bool {
        column >= 0 && column < storage.columns.count && storage.cells[row * storage.columns.count + column] == nil
    }

    /// Decodes the value in column `column` (0-based).
    ///
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/decoding`` when the column does not exist,
    ///   holds NULL and `T` is not optional, or holds a type `T` cannot be decoded from.
    public func decode<T: PostgresDecodable>(
        _ type: T.Type = T.self,
        column: Int,
        file: String = #fileID,
        line: Int = #line
    ) throws(PostgresError) -> T {
        let columns = storage.columns
        guard column >= 0 && column < columns.count else {
            throw PostgresError(
                code: .decoding,
                reason: "no column \(column); the result has \(columns.count)",
                file: file,
                line: line
            )
        }
        let info = columns[column]
        guard let text = storage.cells[row * columns.count + column] else {
            if let null = T.postgresNull { return null }
            throw PostgresError(
                code: .decoding,
                reason: "column \(column) '\(info.name)' is NULL; decode \(T.self)? to accept NULL",
                file: file,
                line: line
            )
        }
        do {
            return try T(postgresText: text, type: info.type)
        } catch {
            var error = error
            error.reason = "column \(column) '\(info.name)' (\(info.type)) as \(T.self): \(error.reason ?? "invalid value")"
            error.file = file
            error.line = line
            throw error
        }
    }

    /// Decodes the value in the column named `column`.
    ///
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/decoding`` (see ``decode(_:column:file:line:)-(_,Int,_,_)``).
    public func decode<T: PostgresDecodable>(
        _ type: T.Type = T.self,
        column name: String,
        file: String = #fileID,
        line: Int = #line
    ) throws(PostgresError) -> T {
        guard let index = storage.indexByName[name] else {
            throw PostgresError(code: .decoding, reason: "no column named '\(name)'", file: file, line: line)
        }
        return try decode(type, column: index, file: file, line: line)
    }
}

/// A Swift type that can be decoded from a result value in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value.
    ///
    /// - Parameters:
    ///   - text: the value in PostgreSQL's text output format.
    ///   - type: the column's type; refuse types you do not understand.
    /// - Throws: ``PostgresError/decodingFailed(_:file:line:)``, with a reason that does not quote the value.
    init(postgresText text: String, type: PostgresDataType) throws(PostgresError)

    /// What SQL NULL decodes to, or `nil` when NULL is an error (every type but `Optional`).
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        self = .some(try Wrapped(postgresText: text, type: type))
    }
    public static var postgresNull: Self? { .some(.none) }
}

private func mismatch(_ type: PostgresDataType) -> PostgresError {
    .decodingFailed("type mismatch: cannot decode \(type)")
}

extension String: PostgresDecodable {
    /// Any type decodes as its text form, except `bytea` (decode `[UInt8]` instead).
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type != .bytea else { throw mismatch(type) }
        self = text
    }
}

extension Int: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard [.int2, .int4, .int8, .oidType].contains(type) else { throw mismatch(type) }
        guard let value = Int(text) else { throw .decodingFailed("not an integer") }
        self = value
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard [.int2, .int4, .int8, .oidType].contains(type) else { throw mismatch(type) }
        guard let value = Int64(text) else { throw .decodingFailed("not an integer") }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard [.int2, .int4, .int8, .oidType].contains(type) else { throw mismatch(type) }
        guard let value = Int32(text) else { throw .decodingFailed("not an integer in Int32's range") }
        self = value
    }
}

extension Int16: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard [.int2, .int4, .int8].contains(type) else { throw mismatch(type) }
        guard let value = Int16(text) else { throw .decodingFailed("not an integer in Int16's range") }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type == .bool else { throw mismatch(type) }
        switch text {
        case "t": self = true
        case "f": self = false
        default: throw .decodingFailed("not a bool ('t' or 'f')")
        }
    }
}

extension Double: PostgresDecodable {
    /// Decodes `float8`, `float4`, `numeric` (possibly losing precision) and the integer types.
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard [.float4, .float8, .numeric, .int2, .int4, .int8].contains(type) else { throw mismatch(type) }
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(text) else { throw .decodingFailed("not a number") }
            self = value
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type == .uuid else { throw mismatch(type) }
        guard let value = UUID(uuidString: text) else { throw .decodingFailed("not a UUID") }
        self = value
    }
}

extension Date: PostgresDecodable {
    /// Decodes `timestamptz` (any UTC offset) and `timestamp` (read as UTC) in ISO `DateStyle`, which every
    /// connection sets. `infinity` and BC dates are refused.
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type == .timestamptz || type == .timestamp else { throw mismatch(type) }
        guard let date = PostgresTimestamp.parse(Array(text.utf8)) else {
            throw .decodingFailed("not an ISO timestamp (infinity and BC dates are not supported)")
        }
        self = date
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    /// Decodes `bytea` in hex output format (`\x…`), which every connection sets.
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type == .bytea else { throw mismatch(type) }
        guard let bytes = PostgresHex.decode(text) else { throw .decodingFailed("not bytea hex output") }
        self = bytes
    }
}

extension Data: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        self = Data(try [UInt8](postgresText: text, type: type))
    }
}

extension PostgresJSON: PostgresDecodable {
    public init(postgresText text: String, type: PostgresDataType) throws(PostgresError) {
        guard type == .jsonb || type == .json else { throw mismatch(type) }
        self.init(text)
    }
}

enum PostgresHex {
    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            return nil
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Parses PostgreSQL's ISO timestamp output: `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]]`.
enum PostgresTimestamp {
    static func parse(_ s: [UInt8]) -> Date? {
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= s.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let byte = s[index]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                index += 1
            }
            return value
        }
        func expect(_ char: Character) -> Bool {
            guard index < s.count, s[index] == char.asciiValue else { return false }
            index += 1
            return true
        }
        // Years have 4 digits up to 9999; more digits would need a longer scan. PostgreSQL supports
        // up to 294276 AD, which hms-act never stores.
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect(" "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        var micros = 0
        if index < s.count && s[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < s.count, s[index] >= UInt8(ascii: "0"), s[index] <= UInt8(ascii: "9") {
                if digits < 6 { micros = micros * 10 + Int(s[index] - UInt8(ascii: "0")) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offsetSeconds = 0
        if index < s.count {
            let sign: Int
            switch s[index] {
            case UInt8(ascii: "+"): sign = 1
            case UInt8(ascii: "-"): sign = -1
            default: return nil
            }
            index += 1
            guard let offsetHours = number(2) else { return nil }
            var offsetMinutes = 0
            var offsetSecs = 0
            if expect(":") {
                guard let value = number(2) else { return nil }
                offsetMinutes = value
                if expect(":") {
                    guard let value = number(2) else { return nil }
                    offsetSecs = value
                }
            }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60 + offsetSecs)
        }
        guard index == s.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
