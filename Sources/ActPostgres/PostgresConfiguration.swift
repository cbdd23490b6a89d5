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
        /// TLS with a certificate signed by a CA of ``PostgresConfiguration/rootCertificateFile``, for any host.
        public static let verifyCA = TLSMode(rawValue: "verify-ca")
        /// TLS with a certificate signed by a CA of ``PostgresConfiguration/rootCertificateFile`` that also
        /// names ``PostgresConfiguration/host``: the only mode that stops an active man in the middle.
        public static let verifyFull = TLSMode(rawValue: "verify-full")
        public var description: String { rawValue }

        /// The mode libpq calls `name` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`);
        /// `allow` counts as `prefer`. Nil for any other name.
        public init?(name: String) {
            switch name {
            case "disable": self = .disable
            case "prefer", "allow": self = .prefer
            case "require": self = .require
            case "verify-ca": self = .verifyCA
            case "verify-full": self = .verifyFull
            default: return nil
            }
        }

        private init(rawValue: String) { self.rawValue = rawValue }

        /// Whether the server's certificate is checked against a CA (`verify-ca`, `verify-full`).
        public var verifiesCertificate: Bool { self == .verifyCA || self == .verifyFull }
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
    /// PEM file of the CA certificates that may sign the server's certificate (libpq `sslrootcert`); nil
    /// leaves libpq's default (`~/.postgresql/root.crt`). Needed for ``TLSMode/verifyCA`` and ``TLSMode/verifyFull``.
    public var rootCertificateFile: String? = nil
    /// Client certificate (PEM) for servers that ask for one (libpq `sslcert`); requires ``clientKeyFile``.
    public var clientCertificateFile: String? = nil
    /// The client certificate's private key (libpq `sslkey`; mode 0600 or stricter, libpq checks).
    public var clientKeyFile: String? = nil
    /// The IP address to connect to instead of resolving ``host`` (libpq `hostaddr`); ``host`` is then only
    /// the name the server's certificate must carry under ``TLSMode/verifyFull``.
    public var hostAddress: String? = nil
    /// The schema search path set at connect (`-c search_path=…`), so unqualified SQL names resolve in
    /// one schema; `nil` keeps the server's default. Only letters, digits, `_` and `,` are passed on.
    public var searchPath: String? = nil

    /// The server cancels any statement that runs longer (`statement_timeout`, SQLSTATE `57014`); `.zero`
    /// turns the limit off. Sent at connect, so it bounds every statement of the session, lock waits included.
    public var statementTimeout: Duration = .seconds(30)
    /// The server stops a statement that waits longer for a lock (`lock_timeout`, SQLSTATE `55P03`), so a
    /// row held by a stuck transaction fails the waiter quickly instead of stalling it; `.zero` turns it off.
    public var lockTimeout: Duration = .seconds(10)
    /// The server ends a session that sits inside a transaction without sending anything for longer
    /// (`idle_in_transaction_session_timeout`, SQLSTATE `25P03`), which releases the locks a forgotten or
    /// stuck client holds; `.zero` turns it off.
    public var idleInTransactionSessionTimeout: Duration = .seconds(60)
    /// TCP keepalive probes on the connection's socket, so that a peer that vanished (a dead host, a dropped
    /// NAT entry) is noticed; `nil` turns them off. Ignored for unix sockets.
    public var keepalives: Keepalives? = Keepalives()
    /// How long sent data may stay unacknowledged before the kernel drops the connection (`tcp_user_timeout`,
    /// Linux); `.zero` keeps the system's default (minutes). Ignored for unix sockets.
    public var tcpUserTimeout: Duration = .seconds(30)
    /// How much longer than ``statementTimeout`` the client waits for an answer before it gives the
    /// connection up; see ``answerTimeout``.
    public var answerTimeoutGrace: Duration = .seconds(5)

    /// TCP keepalive timing, as libpq's `keepalives_idle`, `keepalives_interval` and `keepalives_count`.
    ///
    /// A silent peer is given up after about `idle + interval × count` (25 s by default). libpq counts whole
    /// seconds: durations are rounded up, and anything below 1 s is sent as 1 s.
    public struct Keepalives: Sendable, Hashable {
        /// Quiet time before the first probe.
        public var idle: Duration
        /// Time between unanswered probes.
        public var interval: Duration
        /// Unanswered probes before the connection is dropped.
        public var count: Int

        /// Creates keepalive timing.
        public init(idle: Duration = .seconds(10), interval: Duration = .seconds(5), count: Int = 3) {
            self.idle = idle
            self.interval = interval
            self.count = count
        }
    }

    /// How long the client waits for the server to send anything while a statement runs, before it closes
    /// the connection and fails the statement with ``PostgresError/Code/timedOut``: ``statementTimeout``
    /// plus ``answerTimeoutGrace``; `nil` (no client deadline) when ``statementTimeout`` is off.
    ///
    /// The server enforces ``statementTimeout`` itself, so a healthy server answers well within this. One
    /// that does not is hung (a stopped or starved backend, a half-open TCP connection whose peer still
    /// acknowledges packets): closing the socket is then the only way to end the wait, and it also makes
    /// the server roll back the session's transaction and release its locks once the backend runs again.
    /// The deadline comes from this configuration: a session that raises its own `statement_timeout` with
    /// `SET` keeps it, so raise ``statementTimeout`` (or open the connection with a configuration of its own)
    /// for statements that legitimately run longer.
    public var answerTimeout: Duration? {
        statementTimeout > .zero ? statementTimeout + max(.zero, answerTimeoutGrace) : nil
    }

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
    /// TLS parameters as libpq names them: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`; and `hostaddr`.
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
                guard let mode = TLSMode(name: value) else {
                    throw invalid("sslmode must be disable, prefer, require, verify-ca or verify-full")
                }
                tls = mode
            case "sslrootcert":
                rootCertificateFile = value
            case "sslcert":
                clientCertificateFile = value
            case "sslkey":
                clientKeyFile = value
            case "hostaddr":
                hostAddress = value
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

    /// The `options` libpq sends at connect: the session settings the decoders rely on, no JIT, the timeouts
    /// and the search path, as `-c name=value` pairs (times in milliseconds).
    ///
    /// JIT is off: hms-act's statements are short, and PostgreSQL compiles any statement whose estimated cost
    /// passes `jit_above_cost`, as a scan of a large history or of a queue table full of dead rows does, at
    /// 65-100 ms of compiling per call, every call (bench/README.md, "Flat with history").
    package var sessionOptions: String {
        var options = "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c jit=off"
        options += " -c statement_timeout=\(Self.milliseconds(statementTimeout))"
        options += " -c lock_timeout=\(Self.milliseconds(lockTimeout))"
        options += " -c idle_in_transaction_session_timeout=\(Self.milliseconds(idleInTransactionSessionTimeout))"
        if let path = Self.safeSearchPath(searchPath) { options += " -c search_path=" + path }
        return options
    }

    /// The keywords and values passed to `PQconnectdbParams`, password included (never log them).
    package var libpqParameters: [(key: String, value: String)] {
        // libpq counts whole seconds and treats anything below 2 as 2 (0 would mean "wait forever").
        let connectSeconds = max(2, Self.wholeSeconds(connectTimeout))
        var parameters: [(key: String, value: String)] = [
            ("host", host),
            ("port", String(port)),
            ("user", user),
            ("dbname", database),
            ("connect_timeout", String(connectSeconds)),
            ("application_name", applicationName),
            ("sslmode", tls.rawValue),
            ("client_encoding", "UTF8"),
            ("options", sessionOptions),
        ]
        if let keepalives {
            parameters += [
                ("keepalives", "1"),
                ("keepalives_idle", String(max(1, Self.wholeSeconds(keepalives.idle)))),
                ("keepalives_interval", String(max(1, Self.wholeSeconds(keepalives.interval)))),
                ("keepalives_count", String(max(1, keepalives.count))),
            ]
        } else {
            parameters.append(("keepalives", "0"))
        }
        parameters.append(("tcp_user_timeout", String(Self.milliseconds(tcpUserTimeout))))
        if let hostAddress { parameters.append(("hostaddr", hostAddress)) }
        if let rootCertificateFile { parameters.append(("sslrootcert", rootCertificateFile)) }
        if let clientCertificateFile { parameters.append(("sslcert", clientCertificateFile)) }
        if let clientKeyFile { parameters.append(("sslkey", clientKeyFile)) }
        if let password { parameters.append(("password", password)) }
        return parameters
    }

    /// A search path made only of identifier characters and commas; anything else is dropped rather than
    /// passed into the options string.
    static func safeSearchPath(_ searchPath: String?) -> String? {
        guard let searchPath, !searchPath.isEmpty,
            searchPath.unicodeScalars.allSatisfy({
                $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == ","
            })
        else { return nil }
        return searchPath
    }

    /// Whole milliseconds, rounded up so that a small positive limit never becomes 0 ("off"), capped at
    /// PostgreSQL's largest value (`INT_MAX`); negative durations count as 0.
    static func milliseconds(_ duration: Duration) -> Int {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let rest = (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
        guard seconds < Int64(Int32.max) / 1000 else { return Int(Int32.max) }
        return Int(min(Int64(Int32.max), seconds * 1000 + rest))
    }

    /// Whole seconds, rounded up; negative durations count as 0.
    static func wholeSeconds(_ duration: Duration) -> Int {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64(Int32.max) else { return Int(Int32.max) }
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
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
        "postgres://\(user)@\(host):\(port)/\(database) (password: \(password == nil ? "none" : "set"), tls: \(tls)\(rootCertificateFile.map { ", CA file: \($0)" } ?? ""))"
    }
}
