import ActService
import Testing

/// The OTLP protobuf written by hand, read back field by field with a minimal protobuf reader (the
/// integration test reads it with the official definitions).
@Suite struct OTLPTraceEncodingTests {
    /// Field number → values (varints and fixed numbers as UInt64, length-delimited as bytes).
    enum Field: Equatable {
        case number(UInt64)
        case bytes([UInt8])
    }

    static func fields(_ bytes: [UInt8]) throws -> [(Int, Field)] {
        var result: [(Int, Field)] = []
        var index = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }
        while index < bytes.count {
            let tag = try varint()
            switch tag & 7 {
            case 0: result.append((Int(tag >> 3), .number(try varint())))
            case 1, 5:
                let width = tag & 7 == 1 ? 8 : 4
                let value = bytes[index..<index + width].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                index += width
                result.append((Int(tag >> 3), .number(value)))
            case 2:
                let length = Int(try varint())
                result.append((Int(tag >> 3), .bytes(Array(bytes[index..<index + length]))))
                index += length
            default:
                Issue.record("wire type \(tag & 7)")
                return result
            }
        }
        return result
    }

    static func only(_ fields: [(Int, Field)], _ number: Int) throws -> [UInt8] {
        let found = fields.filter { $0.0 == number }
        #expect(found.count == 1, "field \(number)")
        guard case .bytes(let bytes)? = found.first?.1 else { throw Missing() }
        return bytes
    }

    struct Missing: Error {}

    @Test func aSpanIsWhereOTLPPutsIt() throws {
        let span = SpanData(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7",
            parentSpanID: "0102030405060708", name: "dispatch inspection #1", kind: .producer,
            startNanoseconds: 1_700_000_000_000_000_001, endNanoseconds: 1_700_000_000_500_000_000,
            attributes: [.init("hms.attempt", .int(-2)), .init("hms.retryable", true), .init("ratio", .double(0.25)),
                .init("hms.step_id", "inspection")],
            links: [SpanData.Link(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "1111111111111111")],
            status: .error("boom"))
        let request = OTLPTraceEncoding.request([span], resource: [.init("service.name", "hms-act")], scope: "hms-act",
            version: "1")
        let resourceSpans = try Self.only(try Self.fields(request), 1)
        let resource = try Self.only(try Self.fields(resourceSpans), 1)
        let serviceName = try Self.fields(try Self.only(try Self.fields(resource), 1))
        #expect(serviceName[0].1 == .bytes(Array("service.name".utf8)))
        let scopeSpans = try Self.fields(try Self.only(try Self.fields(resourceSpans), 2))
        let scope = try Self.fields(try Self.only(scopeSpans, 1))
        #expect(scope.map(\.1) == [.bytes(Array("hms-act".utf8)), .bytes(Array("1".utf8))])
        let fields = try Self.fields(try Self.only(scopeSpans, 2))
        func value(_ number: Int) -> [Field] { fields.filter { $0.0 == number }.map(\.1) }
        #expect(value(1) == [.bytes([0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36])])
        #expect(value(2) == [.bytes([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])])
        #expect(value(4) == [.bytes([1, 2, 3, 4, 5, 6, 7, 8])])
        #expect(value(5) == [.bytes(Array("dispatch inspection #1".utf8))])
        #expect(value(6) == [.number(4)])
        #expect(value(7) == [.number(1_700_000_000_000_000_001)] && value(8) == [.number(1_700_000_000_500_000_000)])
        #expect(value(9).count == 4 && value(13).count == 1 && value(16) == [.number(1)])
        guard case .bytes(let attempt) = value(9)[0], case .bytes(let ratio) = value(9)[2],
            case .bytes(let status) = value(15).first
        else { throw Missing() }
        let attemptValue = try Self.fields(try Self.only(try Self.fields(attempt), 2))
        #expect(attemptValue.map(\.0) == [3] && attemptValue[0].1 == .number(UInt64(bitPattern: -2)))
        let ratioValue = try Self.fields(try Self.only(try Self.fields(ratio), 2))
        #expect(ratioValue.map(\.0) == [4] && ratioValue[0].1 == .number(0.25.bitPattern))
        #expect(try Self.fields(status).map(\.1) == [.bytes(Array("boom".utf8)), .number(2)])
    }
}
