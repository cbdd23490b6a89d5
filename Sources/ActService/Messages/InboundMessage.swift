public import ActPlaybook

/// A message as it arrived from the broker, reduced to what hms-act reads: the AMQP properties that
/// carry meaning, the header table (as JSON values) and the body bytes.
public struct InboundMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var contentType: String?
    /// The AMQP `type` property.
    public var type: String?
    public var messageID: String?
    public var correlationID: String?
    /// The AMQP `timestamp` property, seconds since the epoch.
    public var timestamp: Int64?
    public var headers: [String: JSONValue]
    public var body: [UInt8]
    /// The AMQP `user_id` property: RabbitMQ refuses one that is not the publishing connection's user.
    public var userID: String?

    public init(
        exchange: String = "",
        routingKey: String,
        contentType: String? = nil,
        type: String? = nil,
        messageID: String? = nil,
        correlationID: String? = nil,
        timestamp: Int64? = nil,
        headers: [String: JSONValue] = [:],
        body: [UInt8],
        userID: String? = nil
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.contentType = contentType
        self.type = type
        self.messageID = messageID
        self.correlationID = correlationID
        self.timestamp = timestamp
        self.headers = headers
        self.body = body
        self.userID = userID
    }
}

/// Why a message could not be read. It becomes the `x-hms-reason` header of the dead-lettered copy,
/// so it says what is wrong and how to fix it, without quoting the payload.
public struct MessageRejection: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}
