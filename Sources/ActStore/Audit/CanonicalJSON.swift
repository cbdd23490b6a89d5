public import ActPlaybook

extension JSONValue {
    /// The canonical encoding hashed by the audit chain: UTF-8 JSON without whitespace, object keys
    /// sorted by their UTF-8 bytes, numbers in their canonical text (``JSONNumber/text``: exact, and
    /// byte for byte what the `Double` representation wrote for every number it kept unchanged:
    /// integers below 2^53 without a fraction, other such numbers in Swift's shortest round-trip form),
    /// and strings escaped only where JSON requires it.
    ///
    /// It is written by hand rather than with `JSONEncoder` so that the bytes can never change under a
    /// Foundation update: a changed encoding would make every stored chain look tampered with.
    public var canonicalEncoding: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        appendCanonical(to: &bytes)
        return bytes
    }

    private func appendCanonical(to bytes: inout [UInt8]) {
        switch self {
        case .null:
            bytes.append(contentsOf: Array("null".utf8))
        case .bool(let value):
            bytes.append(contentsOf: Array((value ? "true" : "false").utf8))
        case .number(let value):
            bytes.append(contentsOf: value.text.utf8)
        case .string(let value):
            Self.appendString(value, to: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                element.appendCanonical(to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (index, key) in keys.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.appendString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                members[key]!.appendCanonical(to: &bytes)  // key comes from `members.keys`
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private static func appendString(_ value: String, to bytes: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            default:
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
