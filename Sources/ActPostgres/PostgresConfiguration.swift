/// Where and how to connect: server, credentials, database and connection settings.
///
/// Build it field by field or from a URL (``init(url:)``). Reading the environment is the CLI's job.
/// The password never appears in `description`.
public struct PostgresConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// How to use TLS, as libpq's `sslmode`.
    public struct TLSMode: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// Plain TCP.
        public static let disable = TLSMode(rawValue: "disable")
        /// TLS when the server offers it (libpq's default).
        public static let prefer = TLSMode(rawValue: "prefer")
        /// TLS, without verifying the certificate.
        public static let require = TLSMode(rawValue: "require")
        /// TLS with a certificate that must match the host name.
        public static let verifyFull = TLSMode(rawValue: "verify-full")
        public var description: String { rawValue }
    }

    /// Host name, IP address, or an absolute path to a unix socket folder.
    public var host: String
    /// TCP port (or the socket file's suffix).
    public var port: Int
    /// Role to log in as.
    public var user: String
    /// Password, if the server asks for one.
    public var password: String?
    /// Database name.
    public var database: String
    /// How long to wait for a connection. libpq counts whole seconds and treats less than 2 as 2.
    public var connectTimeout: Duration
    /// Shown in `pg_stat_activity.application_name`.
    public var applicationName: String
    /// TLS use.
    public var tls: TLSMode
    /// The schema search path set at connect (`-c search_path=…`), so unqualified SQL names resolve in
    /// one schema; `nil` keeps the server's default. Only letters, digits, `_` and `,` are passed on.
    public var searchPath: String? = nil

    /// Creates a configuration.
    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        user: String,
        password: String? = nil,
        database: String,
        connectTimeout: Duration = .seconds(10),
        applicationName: String = "hms-act",
        tls: TLSMode = .prefer
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
        self.tls = tls
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=…&application_name=…&connect_timeout=…`.
    ///
    /// `postgresql://` works too. User, password, host and database are percent-decoded; a host in
    /// brackets is an IPv6 address. Missing parts default to host `127.0.0.1`, port 5432, and a database
    /// named like the user.
    ///
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/invalidURL``; its description names the
    ///   part that is wrong, never the URL (it may hold a password).
    public init(url: String) throws(PostgresError) {
        func invalid(_ reason: String) -> PostgresError {
            PostgresError(code: .invalidURL, reason: reason)
        }
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw invalid("scheme must be postgres:// or postgresql://")
        }

        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.percentDecoded(userInfo[..<colon], part: "user")
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], part: "password")
            } else {
                user = try Self.percentDecoded(userInfo, part: "user")
            }
        }

        var host = "127.0.0.1"
        var port = 5432
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("unexpected text after IPv6 host")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = try Self.percentDecoded(rest[..<colon], part: "host")
            portText = rest[rest.index(after: colon)...]
        } else if !rest.isEmpty {
            host = try Self.percentDecoded(rest, part: "host")
        }
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("port must be a number from 1 to 65535")
            }
            port = value
        }
        guard let user, !user.isEmpty else { throw invalid("user is missing") }
        let database = path.isEmpty ? user : try Self.percentDecoded(path, part: "database")

        self.init(host: host, port: port, user: user, password: password, database: database)

        for pair in query.split(separator: "&") where !pair.isEmpty {
            let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = keyValue[0]
            let value = keyValue.count > 1 ? try Self.percentDecoded(keyValue[1], part: "query") : ""
            switch key {
            case "sslmode":
                switch value {
                case "disable": tls = .disable
                case "prefer", "allow": tls = .prefer
                case "require": tls = .require
                case "verify-full": tls = .verifyFull
                default: throw invalid("sslmode must be disable, prefer, require or verify-full")
                }
            case "application_name":
                applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw invalid("connect_timeout must be a whole number of seconds")
                }
                connectTimeout = .seconds(seconds)
            default:
                throw invalid("unsupported URL parameter '\(key.prefix(40))'")
            }
        }
    }

    private static func percentDecoded(_ text: Substring, part: String) throws(PostgresError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else {
                throw PostgresError(code: .invalidURL, reason: "bad percent-encoding in \(part)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw PostgresError(code: .invalidURL, reason: "\(part) is not UTF-8 after percent-decoding")
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

    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database) (password: \(password == nil ? "none" : "set"), tls: \(tls))"
    }
}
