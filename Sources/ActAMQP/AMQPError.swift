/// An error from the AMQP layer: a ``Code`` plus the broker's reply code and text when it sent one.
///
/// `description` is safe to log: it never contains credentials or message bodies. `debugDescription`
/// adds where the error was raised.
public struct AMQPError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong. Extensible: new codes may be added, so switch with a `default` branch.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: Sendable, Hashable {
            case invalidURL
            case connectionFailed
            case authenticationFailed
            case connectionClosed
            case channelClosed
            case timeout
            case frameTooLarge
            case protocolError
            case staleDeliveryTag
            case consumerCancelled
            case shutdown
        }

        fileprivate let base: Base

        /// The URL or configuration cannot be used.
        public static let invalidURL = Code(base: .invalidURL)
        /// The TCP/TLS connection or the AMQP handshake failed.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The broker refused the credentials (or the vhost).
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// The connection is gone: socket error, heartbeat timeout or `connection.close` from the broker
        /// (then ``AMQPError/replyCode`` is set, e.g. 320 CONNECTION_FORCED). Unconfirmed publishes have an
        /// unknown outcome: retry them.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// The broker closed a channel, e.g. 404 NOT_FOUND or 406 PRECONDITION_FAILED
        /// (``AMQPError/replyCode`` and ``AMQPError/replyText`` say why). The connection stays usable.
        public static let channelClosed = Code(base: .channelClosed)
        /// An operation did not finish in time.
        public static let timeout = Code(base: .timeout)
        /// A message is larger than the broker accepts (`max_message_size`).
        public static let frameTooLarge = Code(base: .frameTooLarge)
        /// The broker or the library sent something unexpected.
        public static let protocolError = Code(base: .protocolError)
        /// An ack/nack/reject names a delivery from an earlier connection; the broker redelivers it.
        public static let staleDeliveryTag = Code(base: .staleDeliveryTag)
        /// The broker cancelled the consumer (e.g. its queue was deleted).
        public static let consumerCancelled = Code(base: .consumerCancelled)
        /// The client is shutting down.
        public static let shutdown = Code(base: .shutdown)

        public var description: String {
            switch base {
            case .invalidURL: "invalidURL"
            case .connectionFailed: "connectionFailed"
            case .authenticationFailed: "authenticationFailed"
            case .connectionClosed: "connectionClosed"
            case .channelClosed: "channelClosed"
            case .timeout: "timeout"
            case .frameTooLarge: "frameTooLarge"
            case .protocolError: "protocolError"
            case .staleDeliveryTag: "staleDeliveryTag"
            case .consumerCancelled: "consumerCancelled"
            case .shutdown: "shutdown"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// The AMQP reply code the broker sent (e.g. 404, 406, 320), if any.
    public var replyCode: UInt16?
    /// The broker's reply text, or a description of the library error. Never holds credentials or bodies.
    public var replyText: String?
    /// Source file that raised the error.
    public var file: String
    /// Source line that raised the error.
    public var line: Int

    /// Creates an error.
    public init(
        _ code: Code, replyCode: UInt16? = nil, replyText: String? = nil, file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.replyCode = replyCode
        self.replyText = replyText
        self.file = file
        self.line = line
    }

    /// True when the whole connection is unusable, so the client reconnects (as opposed to one channel).
    public var isConnectionLevel: Bool {
        code == .connectionClosed || code == .connectionFailed || code == .authenticationFailed
            || code == .timeout || code == .protocolError
    }

    public var description: String {
        var text = "AMQPError.\(code)"
        if let replyCode { text += " \(replyCode)" }
        if let replyText { text += ": \(replyText)" }
        return text
    }

    public var debugDescription: String {
        "\(description) (at \(file):\(line))"
    }
}
