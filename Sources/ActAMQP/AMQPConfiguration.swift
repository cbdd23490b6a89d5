/// Where and how to connect to RabbitMQ.
///
/// Usually made from a URL: `amqp://user:pass@host:port/vhost` or `amqps://…` (TLS). User, password and
/// vhost are percent-decoded, so the default vhost `/` is written `%2f`; an empty path is the vhost `/`.
/// The query may set `heartbeat` (seconds), `frame_max` (bytes), `channel_max`, `connection_timeout`
/// (milliseconds), and for TLS `cacertfile`, `certfile`, `keyfile`, `verify` (`verify_peer`/`verify_none`)
/// and `server_name_indication` (`disable` turns hostname verification off).
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    /// TLS settings for `amqps://` (rabbitmq-c's OpenSSL socket).
    public struct TLS: Sendable {
        /// PEM file with the CA certificates that sign the broker's certificate; nil uses no CA file.
        public var caCertificateFile: String?
        /// Client certificate (PEM) for mutual TLS; requires ``clientKeyFile``.
        public var clientCertificateFile: String?
        /// Client private key (PEM) for mutual TLS.
        public var clientKeyFile: String?
        /// Verify the broker's certificate chain (default true).
        public var verifyPeer: Bool
        /// Verify that the certificate names ``AMQPConfiguration/host`` (default true).
        public var verifyHostname: Bool

        /// TLS settings; by default the peer and its hostname are verified.
        public init(
            caCertificateFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
            verifyPeer: Bool = true, verifyHostname: Bool = true
        ) {
            self.caCertificateFile = caCertificateFile
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
        }
    }

    /// Reconnect policy: exponential backoff, capped.
    public struct Reconnect: Sendable {
        /// Delay before the first retry (default 100 ms).
        public var initialDelay: Duration
        /// Largest delay between attempts (default 10 s).
        public var maximumDelay: Duration
        /// Factor applied after every failed attempt (default 2).
        public var multiplier: Double

        /// A backoff policy.
        public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(10), multiplier: Double = 2) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.multiplier = multiplier
        }

        /// The delay after `failures` consecutive failed attempts (1 = first failure).
        public func delay(afterFailures failures: Int) -> Duration {
            let exponent = Double(max(0, failures - 1))
            let scaled = initialDelay * Swift.min(pow2(multiplier, exponent), 1e6)
            return Swift.min(scaled, maximumDelay)
        }

        private func pow2(_ base: Double, _ exponent: Double) -> Double {
            var result = 1.0
            var remaining = Int(exponent)
            while remaining > 0 && result < 1e6 {
                result *= base
                remaining -= 1
            }
            return result
        }
    }

    /// Broker host name or address.
    public var host: String
    /// Broker port (5672 for `amqp`, 5671 for `amqps` unless the URL says otherwise).
    public var port: Int
    /// User name for PLAIN authentication.
    public var user: String
    /// Password; never logged nor shown in ``description``.
    public var password: String
    /// Virtual host (`/` by default).
    public var vhost: String
    /// Heartbeat interval proposed to the broker (default 10 s; zero disables heartbeats).
    public var heartbeat: Duration
    /// Largest frame proposed to the broker (default 131,072 bytes, RabbitMQ's default; at least 4,096).
    /// Larger message bodies are split into several frames.
    public var frameMax: Int
    /// Largest channel number proposed (default 2,047, RabbitMQ's default).
    public var channelMax: Int
    /// Time allowed for the TCP connect and, separately, for the AMQP handshake (default 10 s).
    public var connectTimeout: Duration
    /// Time allowed for a synchronous AMQP method (declare, qos, consume…) before the connection is
    /// considered dead (default 30 s).
    public var rpcTimeout: Duration
    /// Time a publish waits for its confirms before it fails with ``AMQPError/Code/timeout`` (default 30 s).
    public var confirmTimeout: Duration
    /// TLS settings, set for `amqps://` URLs; nil means plain TCP.
    public var tls: TLS?
    /// Reconnect backoff used by ``AMQPClient``.
    public var reconnect: Reconnect
    /// Connection name shown in the management UI (client property `connection_name`).
    public var connectionName: String

    /// A configuration from its parts.
    public init(
        host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: String = "guest",
        vhost: String = "/", heartbeat: Duration = .seconds(10), frameMax: Int = 131_072, channelMax: Int = 2047,
        connectTimeout: Duration = .seconds(10), rpcTimeout: Duration = .seconds(30),
        confirmTimeout: Duration = .seconds(30), tls: TLS? = nil, reconnect: Reconnect = Reconnect(),
        connectionName: String = "hms-act"
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.vhost = vhost
        self.heartbeat = heartbeat
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.confirmTimeout = confirmTimeout
        self.tls = tls
        self.reconnect = reconnect
        self.connectionName = connectionName
    }

    /// Parses an `amqp://` or `amqps://` URL.
    ///
    /// - Throws: ``AMQPError`` with ``AMQPError/Code/invalidURL`` naming the problem (never the password).
    public init(url: String) throws {
        func invalid(_ why: String) -> AMQPError { AMQPError(.invalidURL, replyText: why) }
        var rest = Substring(url)
        let secure: Bool
        if rest.lowercased().hasPrefix("amqps://") {
            secure = true
            rest = rest.dropFirst("amqps://".count)
        } else if rest.lowercased().hasPrefix("amqp://") {
            secure = false
            rest = rest.dropFirst("amqp://".count)
        } else {
            throw invalid("scheme must be amqp:// or amqps://")
        }
        self.init(port: secure ? 5671 : 5672)
        if secure { tls = TLS() }

        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var authority = rest
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.percentDecode(userInfo[..<colon], what: "user")
                password = try Self.percentDecode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                user = try Self.percentDecode(userInfo, what: "user")
            }
        }
        var hostPart = authority
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else { throw invalid("bad port") }
                port = value
            } else if !after.isEmpty {
                throw invalid("unexpected text after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                throw invalid("bad port")
            }
            port = value
        }
        if !hostPart.isEmpty { host = try Self.percentDecode(hostPart, what: "host") }
        if let path, !path.isEmpty {
            guard !path.contains("/") else { throw invalid("vhost must be one path segment (write / as %2f)") }
            vhost = try Self.percentDecode(path, what: "vhost")
        }

        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = parts.count > 1 ? try Self.percentDecode(parts[1], what: key) : ""
            switch key {
            case "heartbeat":
                guard let seconds = Int(value), seconds >= 0 else { throw invalid("heartbeat must be whole seconds") }
                heartbeat = .seconds(seconds)
            case "frame_max":
                guard let bytes = Int(value), bytes >= 4096 || bytes == 0 else { throw invalid("frame_max must be ≥ 4096") }
                frameMax = bytes
            case "channel_max":
                guard let count = Int(value), (0...65535).contains(count) else { throw invalid("bad channel_max") }
                channelMax = count
            case "connection_timeout":
                guard let ms = Int(value), ms > 0 else { throw invalid("connection_timeout must be milliseconds") }
                connectTimeout = .milliseconds(ms)
            case "cacertfile": tls?.caCertificateFile = value
            case "certfile": tls?.clientCertificateFile = value
            case "keyfile": tls?.clientKeyFile = value
            case "verify": tls?.verifyPeer = value != "verify_none"
            case "server_name_indication": tls?.verifyHostname = value != "disable"
            default: break  // Unknown options (auth_mechanism, …) are ignored, as other clients do.
            }
        }
    }

    /// `amqp[s]://user@host:port/vhost` without the password.
    public var description: String {
        let vhostPart = vhost == "/" ? "%2f" : vhost
        return "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)/\(vhostPart)"
    }

    private static func percentDecode(_ text: Substring, what: String) throws -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw AMQPError(.invalidURL, replyText: "bad percent-encoding in the \(what)")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw AMQPError(.invalidURL, replyText: "the \(what) is not UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
