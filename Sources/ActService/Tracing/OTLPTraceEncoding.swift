/// Spans as an OTLP `ExportTraceServiceRequest` in protobuf's binary form (`application/x-protobuf`, what
/// OTLP/HTTP sends by default), written by hand: the request is five small messages, and encoding them here
/// spares the service the protobuf runtime and its generated code.
///
/// Field numbers are those of opentelemetry-proto's `collector/trace/v1/trace_service.proto`,
/// `trace/v1/trace.proto`, `resource/v1/resource.proto` and `common/v1/common.proto`; the integration test
/// decodes what this writes with the official definitions (clients/python/tests/otlp_receiver.py).
public enum OTLPTraceEncoding {
    /// The request for `spans`, all from one resource (the service) and one instrumentation scope.
    public static func request(_ spans: [SpanData], resource: [SpanData.Attribute], scope: String, version: String)
        -> [UInt8]
    {
        var scopeSpans = Writer()
        scopeSpans.message(1) { scopeMessage in  // InstrumentationScope
            scopeMessage.string(1, scope)
            scopeMessage.string(2, version)
        }
        for span in spans { scopeSpans.message(2) { $0.span(span) } }
        var resourceSpans = Writer()
        resourceSpans.message(1) { resourceMessage in  // Resource
            for attribute in resource { resourceMessage.message(1) { $0.keyValue(attribute) } }
        }
        resourceSpans.bytes(2, scopeSpans.bytes)
        var request = Writer()
        request.bytes(1, resourceSpans.bytes)
        return request.bytes
    }

    /// A protobuf writer: tags, varints, fixed-width numbers and length-delimited fields.
    struct Writer {
        var bytes: [UInt8] = []

        mutating func varint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                bytes.append(UInt8(value & 0x7F) | 0x80)
                value >>= 7
            }
            bytes.append(UInt8(value))
        }

        mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

        mutating func bytes(_ field: Int, _ value: [UInt8]) {
            tag(field, 2)
            varint(UInt64(value.count))
            bytes += value
        }

        mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

        mutating func fixed64(_ field: Int, _ value: UInt64) {
            tag(field, 1)
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }

        mutating func fixed32(_ field: Int, _ value: UInt32) {
            tag(field, 5)
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }

        mutating func message(_ field: Int, _ write: (inout Writer) -> Void) {
            var inner = Writer()
            write(&inner)
            bytes(field, inner.bytes)
        }

        mutating func hex(_ field: Int, _ value: String) { bytes(field, Self.bytes(hex: value)) }

        mutating func keyValue(_ attribute: SpanData.Attribute) {
            string(1, attribute.key)
            message(2) { any in  // AnyValue
                switch attribute.value {
                case .string(let text): any.string(1, text)
                case .bool(let flag):
                    any.tag(2, 0)
                    any.varint(flag ? 1 : 0)
                case .int(let number):
                    any.tag(3, 0)
                    any.varint(UInt64(bitPattern: number))
                case .double(let number):
                    any.fixed64(4, number.bitPattern)
                }
            }
        }

        mutating func span(_ span: SpanData) {
            hex(1, span.traceID)
            hex(2, span.spanID)
            if let parent = span.parentSpanID { hex(4, parent) }
            string(5, span.name)
            tag(6, 0)
            varint(UInt64(span.kind.rawValue))
            fixed64(7, span.startNanoseconds)
            fixed64(8, span.endNanoseconds)
            for attribute in span.attributes { message(9) { $0.keyValue(attribute) } }
            for link in span.links {
                message(13) { linkMessage in
                    linkMessage.hex(1, link.traceID)
                    linkMessage.hex(2, link.spanID)
                    for attribute in link.attributes { linkMessage.message(4) { $0.keyValue(attribute) } }
                }
            }
            switch span.status {
            case .unset: break
            case .ok: message(15) { $0.tag(3, 0); $0.varint(1) }
            case .error(let reason):
                message(15) { status in
                    status.string(2, reason)
                    status.tag(3, 0)
                    status.varint(2)
                }
            }
            fixed32(16, 1)  // flags: the W3C trace flags, sampled
        }

        /// The bytes of an even-length hex string (ids are made or checked as hex before they get here).
        static func bytes(hex: String) -> [UInt8] {
            var result: [UInt8] = []
            result.reserveCapacity(hex.utf8.count / 2)
            var high: UInt8?
            for character in hex.utf8 {
                let nibble: UInt8 =
                    switch character {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
                    default: 0
                    }
                if let first = high {
                    result.append(first << 4 | nibble)
                    high = nil
                } else {
                    high = nibble
                }
            }
            return result
        }
    }
}
