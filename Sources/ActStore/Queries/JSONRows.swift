import ActPlaybook

/// Builds the JSON array a bulk statement expands with `jsonb_to_recordset`, so a whole batch of rows is
/// one parameter of one statement (one round trip, one plan) instead of a statement per row.
///
/// Pre-encoded JSON (a run's state) is spliced in as raw bytes, so it is not decoded and encoded again.
struct JSONRows {
    enum Field {
        case value(JSONValue)
        /// Already valid JSON.
        case raw([UInt8])
    }

    private(set) var bytes: [UInt8] = [UInt8(ascii: "[")]
    private(set) var count = 0

    mutating func append(_ fields: KeyValuePairs<String, Field>) {
        if count > 0 { bytes.append(UInt8(ascii: ",")) }
        count += 1
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for (key, field) in fields {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(contentsOf: JSONValue.string(key).canonicalEncoding)
            bytes.append(UInt8(ascii: ":"))
            switch field {
            case .value(let value): bytes.append(contentsOf: value.canonicalEncoding)
            case .raw(let raw): bytes.append(contentsOf: raw)
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// The finished array. Consumes the rows, so the bytes (megabytes for large states) are not copied.
    consuming func finished() -> [UInt8] {
        var bytes = self.bytes
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }
}

extension JSONRows.Field {
    static func string(_ text: String?) -> Self { .value(text.map(JSONValue.string) ?? .null) }
    static func int(_ number: Int64?) -> Self { .value(number.map { .int($0) } ?? .null) }
    static func bool(_ flag: Bool) -> Self { .value(.bool(flag)) }
    static func hex(_ bytes: [UInt8]) -> Self { .value(.string(bytes.hexString)) }
    static func json(_ value: JSONValue?) -> Self { .value(value ?? .null) }
}
