public import ActPlaybook
public import ActStore
internal import Foundation

extension API {
    /// A collected dead letter (`hms-act dead …`, `GET /v1/dead-letters`).
    public struct DeadLetter: Hashable, Sendable, Encodable {
        public var id: Int64
        /// `dead` (waiting), `replayed` or `discarded`.
        public var status: String
        public var reason: String
        /// Where it was first published, and where a replay sends it.
        public var exchange: String
        public var routingKey: String
        /// The queue that gave up on it.
        public var queue: String?
        public var messageID: String?
        public var collectedAt: String
        public var properties: JSONValue
        /// The body: JSON when it parses, else text when it is UTF-8, else base64 (`body_encoding`).
        public var body: JSONValue
        public var bodyEncoding: String
        public var handledBy: String?
        public var handledAt: String?
        public var note: String?

        public init(_ letter: ActStore.DeadLetter) {
            id = letter.id
            status = letter.status.rawValue
            reason = letter.reason
            exchange = letter.exchange
            routingKey = letter.routingKey
            queue = letter.queue
            messageID = letter.messageID
            collectedAt = API.timestamp(letter.collectedAt)
            properties = letter.properties
            if let parsed = try? JSONValue(parsing: letter.body) {
                (body, bodyEncoding) = (parsed, "json")
            } else if let text = String(validating: letter.body, as: UTF8.self) {
                (body, bodyEncoding) = (.string(text), "text")
            } else {
                (body, bodyEncoding) = (.string(Data(letter.body).base64EncodedString()), "base64")
            }
            handledBy = letter.handledBy
            handledAt = letter.handledAt.map(API.timestamp)
            note = letter.note
        }

        enum CodingKeys: String, CodingKey {
            case id, status, reason, exchange, routingKey = "routing_key", queue, messageID = "message_id"
            case collectedAt = "collected_at", properties, body, bodyEncoding = "body_encoding"
            case handledBy = "handled_by", handledAt = "handled_at", note
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(status, forKey: .status)
            try c.encode(reason, forKey: .reason)
            try c.encode(exchange, forKey: .exchange)
            try c.encode(routingKey, forKey: .routingKey)
            try c.encode(queue, forKey: .queue)
            try c.encode(messageID, forKey: .messageID)
            try c.encode(collectedAt, forKey: .collectedAt)
            try c.encode(properties, forKey: .properties)
            try c.encode(body, forKey: .body)
            try c.encode(bodyEncoding, forKey: .bodyEncoding)
            try c.encode(handledBy, forKey: .handledBy)
            try c.encode(handledAt, forKey: .handledAt)
            try c.encode(note, forKey: .note)
        }
    }

    /// A page of dead letters, newest first; `next` pages on (`before`).
    public struct DeadLetterPage: Hashable, Sendable, Encodable {
        public var deadLetters: [DeadLetter]
        public var next: String?

        public init(deadLetters: [DeadLetter], next: String?) {
            self.deadLetters = deadLetters
            self.next = next
        }

        enum CodingKeys: String, CodingKey { case deadLetters = "dead_letters", next }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(deadLetters, forKey: .deadLetters)
            try c.encode(next, forKey: .next)
        }
    }
}
