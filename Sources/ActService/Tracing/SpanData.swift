internal import Foundation

/// One finished span, as hms-act exports it over OTLP (``OTLPTraceEncoding``).
///
/// The spans of a run are made after the fact from what a committed batch did (``RunSpans``), with ids
/// derived from the run and its messages, so every replica names a span the same way, a span can name a
/// parent made in an earlier batch (the run's root, a task's dispatch) without storing it, and the
/// `traceparent` a task message carries points at the dispatch span exported for it.
public struct SpanData: Hashable, Sendable {
    /// OTLP's `SpanKind`.
    public enum Kind: Int, Hashable, Sendable {
        case `internal` = 1, server = 2, client = 3, producer = 4, consumer = 5
    }

    /// OTLP's `Status.StatusCode`: unset unless something failed.
    public enum Status: Hashable, Sendable {
        case unset
        case ok
        case error(String)
    }

    /// An attribute value (OTLP's `AnyValue`, scalars only).
    public enum Value: Hashable, Sendable {
        case string(String)
        case int(Int64)
        case bool(Bool)
        case double(Double)
    }

    /// One attribute (OTLP's `KeyValue`).
    public struct Attribute: Hashable, Sendable {
        public var key: String
        public var value: Value

        public init(_ key: String, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    public struct Link: Hashable, Sendable {
        public var traceID: String
        public var spanID: String
        public var attributes: [Attribute]

        public init(traceID: String, spanID: String, attributes: [Attribute] = []) {
            self.traceID = traceID
            self.spanID = spanID
            self.attributes = attributes
        }
    }

    /// 32 lowercase hex digits.
    public var traceID: String
    /// 16 lowercase hex digits.
    public var spanID: String
    /// 16 hex digits, or `nil` for a root span.
    public var parentSpanID: String?
    public var name: String
    public var kind: Kind
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var attributes: [Attribute]
    public var links: [Link]
    public var status: Status

    public init(traceID: String, spanID: String, parentSpanID: String?, name: String, kind: Kind,
        startNanoseconds: UInt64, endNanoseconds: UInt64, attributes: [Attribute] = [],
        links: [Link] = [], status: Status = .unset)
    {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = max(startNanoseconds, endNanoseconds)
        self.attributes = attributes
        self.links = links
        self.status = status
    }

    /// The value of the attribute `key`, if the span has it.
    public func attribute(_ key: String) -> Value? {
        attributes.first { $0.key == key }?.value
    }

    // MARK: Ids

    /// The span id hms-act gives `name` (16 hex digits): the same digest the task messages' `traceparent`
    /// uses (``OutboundMessages/traceparent(traceID:messageID:)``), so the two agree.
    public static func spanID(_ name: String) -> String {
        OutboundMessages.digest("span|" + name, length: 16)
    }

    /// The root span of a run: its trigger consumed (or its start, for a run started over HTTP or by a parent).
    public static func rootSpanID(run: String) -> String { spanID("run|" + run) }

    /// The span of a task attempt's dispatch (`task_id#attempt`): the parent span id of its message's
    /// `traceparent`, which a worker continues.
    public static func dispatchSpanID(task: String, attempt: Int) -> String { spanID("\(task)#\(attempt)") }

    /// A random trace id (spans that belong to no run: a batch, an HTTP request without `traceparent`).
    public static func randomTraceID() -> String { randomHex() + randomHex() }

    /// A random span id.
    public static func randomSpanID() -> String { randomHex() }

    private static func randomHex() -> String {
        var random = SystemRandomNumberGenerator()
        let digits = String(random.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The wall clock in nanoseconds since the Unix epoch (span times).
    public static func now() -> UInt64 {
        UInt64((Date().timeIntervalSince1970 * 1_000_000_000).rounded(.down))
    }

    /// The trace id and span id of a W3C `traceparent` (`00-<trace>-<span>-<flags>`), lowercased, if valid.
    public static func parse(traceparent: String?) -> (traceID: String, spanID: String)? {
        guard let parts = traceparent?.split(separator: "-"), parts.count == 4, parts[0].count == 2,
            parts[1].count == 32, parts[2].count == 16,
            parts[1].allSatisfy(\.isHexDigit), parts[2].allSatisfy(\.isHexDigit),
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" })
        else { return nil }
        return (parts[1].lowercased(), parts[2].lowercased())
    }
}

extension SpanData.Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
