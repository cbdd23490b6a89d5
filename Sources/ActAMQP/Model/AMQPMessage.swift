public import struct Foundation.Date

/// The basic properties of a message (AMQP 0-9-1 `basic` content header).
public struct AMQPProperties: Sendable, Hashable {
    /// MIME type of the body, e.g. `application/json`.
    public var contentType: String?
    /// Encoding of the body, e.g. `gzip`.
    public var contentEncoding: String?
    /// Application headers.
    public var headers: [String: AMQPFieldValue]
    /// True for persistent messages (delivery mode 2), stored to disk by durable queues.
    public var persistent: Bool
    /// Priority 0…9, for priority queues.
    public var priority: UInt8?
    /// Correlation id (hms-act puts the run id here).
    public var correlationID: String?
    /// Queue to reply to.
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string (AMQP's representation).
    public var expiration: String?
    /// Application message id (hms-act's idempotency key).
    public var messageID: String?
    /// Creation time (whole seconds).
    public var timestamp: Date?
    /// Message type name, e.g. the CloudEvents type.
    public var type: String?
    /// Validated user id.
    public var userID: String?
    /// Publishing application.
    public var appID: String?

    /// Properties; messages are persistent by default.
    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: [String: AMQPFieldValue] = [:],
        persistent: Bool = true, priority: UInt8? = nil, correlationID: String? = nil, replyTo: String? = nil,
        expiration: String? = nil, messageID: String? = nil, timestamp: Date? = nil, type: String? = nil,
        userID: String? = nil, appID: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.persistent = persistent
        self.priority = priority
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageID = messageID
        self.timestamp = timestamp
        self.type = type
        self.userID = userID
        self.appID = appID
    }
}

/// A message to publish.
public struct AMQPMessage: Sendable, Hashable {
    /// The body bytes.
    public var body: [UInt8]
    /// Exchange to publish to (`""` is the default exchange, which routes by queue name).
    public var exchange: String
    /// Routing key.
    public var routingKey: String
    /// Basic properties and headers.
    public var properties: AMQPProperties
    /// Ask the broker to return the message when no queue receives it (default true). A returned message
    /// is reported as ``PublishOutcome/returned(replyCode:replyText:)`` instead of silently confirmed.
    public var mandatory: Bool

    /// A message; persistent and mandatory by default.
    public init(
        body: [UInt8], exchange: String, routingKey: String, properties: AMQPProperties = AMQPProperties(),
        mandatory: Bool = true
    ) {
        self.body = body
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// What became of one published message.
public enum PublishOutcome: Sendable, Hashable {
    /// The broker took responsibility for the message (persisted to every queue it routed to).
    case confirmed
    /// The broker refused the message (`basic.nack`); retry it.
    case nacked
    /// The message was mandatory and no queue received it (`basic.return`), e.g. 312 NO_ROUTE.
    case returned(replyCode: UInt16, replyText: String)
    /// The broker closed the publishing channel before confirming the message: it refused this message or
    /// one published before it on the same channel (406 for a message above `max_message_size`, 404 for a
    /// missing exchange). The message may or may not have been stored. Messages of the same batch the
    /// broker confirmed before closing keep `confirmed`; publish the others again, one at a time, to find
    /// the one at fault.
    case channelClosed(replyCode: UInt16, replyText: String)
}

/// Identifies a delivery for ack, nack and reject: the broker's tag plus the channel and connection it
/// arrived on (tags are per channel and die with their connection).
public struct AMQPDeliveryTag: Sendable, Hashable, CustomStringConvertible {
    /// The broker's delivery tag, increasing per channel.
    public var value: UInt64
    public let channel: UInt16
    public let connectionID: UInt64

    /// A tag as the broker gave it (`value`) on `channel` of connection `connectionID` (any number that
    /// tells this client's connections apart; in-memory brokers in tests make their own).
    public init(value: UInt64, channel: UInt16, connectionID: UInt64) {
        self.value = value
        self.channel = channel
        self.connectionID = connectionID
    }

    public var description: String { "\(value)" }
}

/// A message received from a queue.
public struct AMQPDelivery: Sendable {
    /// The body bytes.
    public var body: [UInt8]
    /// Exchange it was published to.
    public var exchange: String
    /// Routing key it was published with.
    public var routingKey: String
    /// Tag to ack, nack or reject it with.
    public var deliveryTag: AMQPDeliveryTag
    /// True when the broker delivered it before (to this or another consumer) without an ack.
    public var redelivered: Bool
    /// Consumer that received it.
    public var consumerTag: String
    /// Basic properties and headers.
    public var properties: AMQPProperties

    public init(body: [UInt8], exchange: String, routingKey: String, deliveryTag: AMQPDeliveryTag, redelivered: Bool,
        consumerTag: String, properties: AMQPProperties)
    {
        self.body = body
        self.exchange = exchange
        self.routingKey = routingKey
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.consumerTag = consumerTag
        self.properties = properties
    }
}
