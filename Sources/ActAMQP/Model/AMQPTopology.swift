/// Exchanges, queues and bindings that a connection declares, and declares again after every reconnect.
///
/// Declarations are idempotent as long as the arguments match what exists on the broker; a mismatch is
/// a 406 PRECONDITION_FAILED channel error.
public struct AMQPTopology: Sendable, Hashable {
    /// An exchange declaration.
    public struct Exchange: Sendable, Hashable {
        /// Exchange types built into RabbitMQ.
        public struct Kind: Sendable, Hashable, CustomStringConvertible {
            /// Name as sent to the broker.
            public var name: String
            public static let direct = Kind(name: "direct")
            public static let topic = Kind(name: "topic")
            public static let fanout = Kind(name: "fanout")
            public static let headers = Kind(name: "headers")
            /// Any other type (a plugin's).
            public init(name: String) { self.name = name }
            public var description: String { name }
        }

        public var name: String
        public var kind: Kind
        public var durable: Bool
        public var autoDelete: Bool
        /// Only check that the exchange exists (404 NOT_FOUND otherwise); needs no permission on it, so a
        /// client without `configure` rights (a worker) can check the exchanges it uses.
        public var passive: Bool
        public var arguments: [String: AMQPFieldValue]

        /// An exchange; durable by default.
        public init(
            _ name: String, kind: Kind = .topic, durable: Bool = true, autoDelete: Bool = false,
            passive: Bool = false, arguments: [String: AMQPFieldValue] = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.autoDelete = autoDelete
            self.passive = passive
            self.arguments = arguments
        }
    }

    /// A queue declaration.
    public struct Queue: Sendable, Hashable {
        /// Classic or quorum (`x-queue-type`).
        public enum Kind: String, Sendable, Hashable {
            case classic
            case quorum
        }

        public var name: String
        public var kind: Kind
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool
        /// Dead-letter exchange for rejected, expired or over-delivered messages (`x-dead-letter-exchange`).
        public var deadLetterExchange: String?
        /// Routing key to dead-letter with (`x-dead-letter-routing-key`); nil keeps the original key.
        public var deadLetterRoutingKey: String?
        /// Quorum queues: deliveries after which a message is dead-lettered (`x-delivery-limit`).
        public var deliveryLimit: Int?
        /// Milliseconds a message may wait in the queue (`x-message-ttl`).
        public var messageTTLMilliseconds: Int?
        /// Further arguments, merged over the ones above.
        public var arguments: [String: AMQPFieldValue]

        /// A queue; durable and classic by default.
        public init(
            _ name: String, kind: Kind = .classic, durable: Bool = true, exclusive: Bool = false,
            autoDelete: Bool = false, deadLetterExchange: String? = nil, deadLetterRoutingKey: String? = nil,
            deliveryLimit: Int? = nil, messageTTLMilliseconds: Int? = nil, arguments: [String: AMQPFieldValue] = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.deadLetterExchange = deadLetterExchange
            self.deadLetterRoutingKey = deadLetterRoutingKey
            self.deliveryLimit = deliveryLimit
            self.messageTTLMilliseconds = messageTTLMilliseconds
            self.arguments = arguments
        }

        /// The `x-…` arguments sent with `queue.declare`.
        public var declareArguments: [String: AMQPFieldValue] {
            var result: [String: AMQPFieldValue] = [:]
            if kind == .quorum { result["x-queue-type"] = .string("quorum") }
            if let deadLetterExchange { result["x-dead-letter-exchange"] = .string(deadLetterExchange) }
            if let deadLetterRoutingKey { result["x-dead-letter-routing-key"] = .string(deadLetterRoutingKey) }
            if let deliveryLimit { result["x-delivery-limit"] = .int(Int64(deliveryLimit)) }
            if let messageTTLMilliseconds { result["x-message-ttl"] = .int(Int64(messageTTLMilliseconds)) }
            result.merge(arguments) { _, new in new }
            return result
        }
    }

    /// A binding of a queue to an exchange.
    public struct Binding: Sendable, Hashable {
        public var queue: String
        public var exchange: String
        public var routingKey: String
        public var arguments: [String: AMQPFieldValue]

        /// A binding (`routingKey` may use topic wildcards `*` and `#`).
        public init(queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue] = [:]) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    /// A topology; declared in the order exchanges, queues, bindings.
    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }
}
