public import ActPlaybook
internal import Crypto
internal import Foundation

/// An event that may start runs, read from any of the forms hms-act accepts on `hms.events`:
///
/// - CloudEvents 1.0 binary mode: attributes in headers prefixed `cloudEvents:`, `cloudEvents_` or
///   `ce-` (also `ce_`), the body is the data;
/// - CloudEvents 1.0 structured mode: content type `application/cloudevents+json`, the body is the
///   whole event with `data` (or `data_base64`);
/// - the chapters' plain JSON: `{"type", "id", "time", "payload"}` (chapter 001 writes `name` for the
///   type; both are read).
///
/// Without an event type the routing key is the type. Without an id, the AMQP `message_id` is the id,
/// and without that, the SHA-256 of the body: a redelivered copy then maps to the same run.
public struct TriggerEvent: Hashable, Sendable {
    public var id: String
    public var type: String
    public var source: String?
    public var subject: String?
    /// The event time as written (RFC 3339), when given.
    public var time: String?
    public var payload: JSONValue
    /// A W3C `traceparent` that came with the event, continued by every message of the run.
    public var traceparent: String?
    /// It came from hms-act's trigger queue, so someone bound its type to hms-act: when no registered playbook
    /// takes it, it is refused (dead-lettered, to be replayed once the playbook is registered) instead of
    /// ignored as over HTTP, where the caller is told at once.
    public var arrivedOnTriggerQueue = false
    /// The run's priority from the `x-hms-priority` header (0…9, higher first), overriding the playbook's
    /// `priority:`; `nil` when not given.
    public var priority: Int?

    public init(
        id: String, type: String, source: String? = nil, subject: String? = nil, time: String? = nil,
        payload: JSONValue, traceparent: String? = nil
    ) {
        self.id = id
        self.type = type
        self.source = source
        self.subject = subject
        self.time = time
        self.payload = payload
        self.traceparent = traceparent
    }

    /// The longest body read, in bytes. Larger events are dead-lettered with this limit in the reason.
    public static let maximumBodySize = 1 << 20

    /// Reads a trigger from a broker message.
    ///
    /// - Throws: ``MessageRejection`` saying what is wrong and how to fix it.
    public init(message: InboundMessage) throws(MessageRejection) {
        guard message.body.count <= Self.maximumBodySize else {
            throw MessageRejection(
                "event body is \(message.body.count) bytes, above the limit of \(Self.maximumBodySize); "
                    + "send a reference to large documents instead of the documents")
        }
        let contentType = message.contentType?.lowercased() ?? ""
        let attributes = Self.binaryAttributes(message.headers)
        let traceparent = message.headers["traceparent"]?.stringValue ?? attributes["traceparent"]

        if contentType.hasPrefix("application/cloudevents+json") {
            let object = try Self.parseObject(message.body, what: "structured CloudEvent")
            try self.init(structured: object, message: message, traceparent: traceparent)
        } else if let specversion = attributes["specversion"] {
            guard specversion.hasPrefix("1.") else {
                throw MessageRejection("CloudEvents specversion \(specversion) is not supported; send 1.0")
            }
            let payload: JSONValue
            if message.body.isEmpty {
                payload = .null
            } else if contentType.isEmpty || contentType.contains("json") {
                payload = try Self.parseJSON(message.body, what: "CloudEvent data")
            } else {
                payload = .string(String(decoding: message.body, as: UTF8.self))
            }
            self.init(
                id: attributes["id"] ?? message.messageID ?? Self.digestID(message.body),
                type: attributes["type"] ?? message.type ?? message.routingKey,
                source: attributes["source"],
                subject: attributes["subject"],
                time: attributes["time"],
                payload: payload,
                traceparent: traceparent)
        } else {
            let object = try Self.parseObject(message.body, what: "event")
            if object["specversion"] != nil {
                try self.init(structured: object, message: message, traceparent: traceparent)
                return
            }
            let type = object["type"]?.stringValue ?? object["name"]?.stringValue ?? message.type ?? message.routingKey
            let payload = object["payload"] ?? object["data"] ?? .object(object.filter {
                !["type", "name", "id", "time", "source", "subject"].contains($0.key)
            })
            self.init(
                id: Self.idText(object["id"]) ?? message.messageID ?? Self.digestID(message.body),
                type: type,
                source: object["source"]?.stringValue,
                subject: object["subject"]?.stringValue,
                time: object["time"]?.stringValue,
                payload: payload,
                traceparent: traceparent)
        }
        guard !type.isEmpty else {
            throw MessageRejection("event has no type; set the CloudEvents `type` attribute or publish with the event type as routing key")
        }
        if let header = message.headers["x-hms-priority"] {
            let text = header.stringValue ?? header.numberValue.map(\.keyText) ?? ""
            guard let value = Int(text), (0...9).contains(value) else {
                throw MessageRejection("header x-hms-priority is \(text.isEmpty ? header.typeName : text); "
                    + "give a whole number from 0 (lowest) to 9 (highest), or leave it out")
            }
            priority = value
        }
    }

    private init(structured object: [String: JSONValue], message: InboundMessage, traceparent: String?) throws(MessageRejection) {
        if let version = object["specversion"]?.stringValue, !version.hasPrefix("1.") {
            throw MessageRejection("CloudEvents specversion \(version) is not supported; send 1.0")
        }
        guard let type = object["type"]?.stringValue ?? message.type else {
            throw MessageRejection("structured CloudEvent has no `type`; add the event type, e.g. \"type\": \"noise.complaint.filed\"")
        }
        var payload = object["data"] ?? .null
        if case .string(let base64)? = object["data_base64"] {
            guard let data = Data(base64Encoded: base64) else {
                throw MessageRejection("`data_base64` is not valid base64")
            }
            payload = (try? Self.parseJSON(Array(data), what: "data_base64")) ?? .string(String(decoding: data, as: UTF8.self))
        }
        self.init(
            id: Self.idText(object["id"]) ?? message.messageID ?? Self.digestID(message.body),
            type: type,
            source: object["source"]?.stringValue,
            subject: object["subject"]?.stringValue,
            time: object["time"]?.stringValue,
            payload: payload,
            traceparent: object["traceparent"]?.stringValue ?? traceparent)
    }

    /// Binary-mode attributes with their prefix removed and names lower-cased.
    static func binaryAttributes(_ headers: [String: JSONValue]) -> [String: String] {
        var attributes: [String: String] = [:]
        for (name, value) in headers {
            let lower = name.lowercased()
            for prefix in ["cloudevents:", "cloudevents_", "ce-", "ce_"] where lower.hasPrefix(prefix) {
                let attribute = String(lower.dropFirst(prefix.count))
                switch value {
                case .string(let text): attributes[attribute] = text
                case .number, .bool: attributes[attribute] = value.caseKey
                case .null, .array, .object: break
                }
            }
        }
        return attributes
    }

    private static func idText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text.isEmpty ? nil : text
        case .number?: value?.caseKey
        case .null?, .bool?, .array?, .object?, nil: nil
        }
    }

    static func digestID(_ body: [UInt8]) -> String {
        "sha256:" + SHA256.hash(data: body).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func parseJSON(_ body: [UInt8], what: String) throws(MessageRejection) -> JSONValue {
        do {
            return try JSONValue(parsing: body)
        } catch {
            throw MessageRejection("\(what) is not valid JSON (\(error)); send UTF-8 JSON")
        }
    }

    static func parseObject(_ body: [UInt8], what: String) throws(MessageRejection) -> [String: JSONValue] {
        guard case .object(let object) = try parseJSON(body, what: what) else {
            throw MessageRejection("\(what) must be a JSON object such as {\"type\": …, \"id\": …, \"payload\": {…}}")
        }
        return object
    }

}
