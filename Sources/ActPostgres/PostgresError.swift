/// An error from ActPostgres: a failed connection, a server error, a value that cannot be decoded.
///
/// ``code`` says what kind of failure it is; server errors also carry the SQLSTATE in ``sqlState``. Match on
/// the helpers (``isUniqueViolation``, ``isSerializationFailure``, ``isConnectionError``) rather than on
/// message text.
///
/// `description` is redacted: it names the code, the SQLSTATE and schema objects, never SQL parameters,
/// server messages (which can echo values, e.g. `invalid input syntax for type integer: "…"`) or
/// credentials, so it is safe to log. `debugDescription` (`String(reflecting:)`) adds the server's message,
/// detail, hint and the SQL text, for debugging.
public struct PostgresError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind of failure. Extensible: new codes can be added without breaking `switch`-free callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case connectionFailed
            case connectionClosed
            case server
            case decoding
            case encoding
            case invalidURL
            case cancelled
            case pipelineAborted
            case poolClosed
            case poolTimeout
            case timedOut
            case transactionState
            case unexpectedResult
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Opening the connection failed (unreachable server, bad credentials, unknown database).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke or was closed (server restart, `pg_terminate_backend`, ``PostgresConnection/close()``).
        public static let connectionClosed = Code(.connectionClosed)
        /// The server reported an error; see ``PostgresError/sqlState``.
        public static let server = Code(.server)
        /// A value could not be decoded into the requested Swift type (NULL into a non-optional, type mismatch).
        public static let decoding = Code(.decoding)
        /// A parameter could not be sent (e.g. too many parameters).
        public static let encoding = Code(.encoding)
        /// A `postgres://` URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The calling task was cancelled; a running statement was cancelled on the server.
        public static let cancelled = Code(.cancelled)
        /// A statement in a pipeline did not run because an earlier one failed.
        public static let pipelineAborted = Code(.pipelineAborted)
        /// The ``PostgresClient`` has shut down.
        public static let poolClosed = Code(.poolClosed)
        /// No pooled connection came free within ``PostgresClient/Configuration-swift.struct/acquireTimeout``:
        /// every connection stayed lent out. Nothing was sent; the caller may retry later.
        public static let poolTimeout = Code(.poolTimeout)
        /// The server sent nothing within ``PostgresConfiguration/answerTimeout`` while a statement ran, so the
        /// connection was presumed hung and closed (a pool opens a new one). The statement's outcome is unknown
        /// (a `COMMIT` may or may not have happened); retrying on a new connection may succeed.
        public static let timedOut = Code(.timedOut)
        /// A transaction was started inside another, or the transaction was left in a failed state.
        public static let transactionState = Code(.transactionState)
        /// The server answered with a result this layer does not handle (e.g. `COPY`).
        public static let unexpectedResult = Code(.unexpectedResult)

        public var description: String {
            switch base {
            case .connectionFailed: "connectionFailed"
            case .connectionClosed: "connectionClosed"
            case .server: "server"
            case .decoding: "decoding"
            case .encoding: "encoding"
            case .invalidURL: "invalidURL"
            case .cancelled: "cancelled"
            case .pipelineAborted: "pipelineAborted"
            case .poolClosed: "poolClosed"
            case .poolTimeout: "poolTimeout"
            case .timedOut: "timedOut"
            case .transactionState: "transactionState"
            case .unexpectedResult: "unexpectedResult"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The five-character SQLSTATE from the server (e.g. `23505`), for ``Code/server`` and some others.
    public var sqlState: String?
    /// The server's (or libpq's) primary message. May echo values: shown only in `debugDescription`.
    public var serverMessage: String?
    /// The server's detail line (e.g. `Key (id)=(…) already exists.`). May contain values.
    public var detail: String?
    /// The server's hint, if any.
    public var hint: String?
    /// The constraint a violation names, e.g. `runs_pkey`. A schema name, not data.
    public var constraintName: String?
    /// The table a server error names. A schema name, not data.
    public var tableName: String?
    /// For `PostgresConnection.pipeline(_:)`: the index of the statement that failed.
    public var statementIndex: Int?
    /// A short explanation written by this layer (never containing values).
    public var reason: String?
    /// The SQL text of the failing statement (without its parameters). Shown only in `debugDescription`.
    public var query: String?
    /// The error this one wraps, if any.
    public var underlying: (any Error)?
    /// Where the failing operation was called.
    public var file: String
    /// Where the failing operation was called.
    public var line: Int

    /// Creates an error. Library code uses the internal factories; this is public for tests and fakes.
    public init(
        code: Code,
        reason: String? = nil,
        sqlState: String? = nil,
        serverMessage: String? = nil,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.reason = reason
        self.sqlState = sqlState
        self.serverMessage = serverMessage
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// A decoding failure, for custom ``PostgresDecodable`` conformances.
    ///
    /// - Parameter reason: what was expected; must not contain the value itself.
    public static func decodingFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> PostgresError {
        PostgresError(code: .decoding, reason: reason, file: file, line: line)
    }

    /// `23505`: a unique or primary-key constraint refused a duplicate.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// `23503`: a foreign-key constraint refused the change.
    public var isForeignKeyViolation: Bool { sqlState == "23503" }
    /// `40001` or `40P01`: a serialization failure or deadlock; the transaction may be retried.
    public var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }
    /// `55P03`: the statement waited longer than ``PostgresConfiguration/lockTimeout`` for a lock (or a
    /// `NOWAIT` lock was taken). The transaction may be retried.
    public var isLockNotAvailable: Bool { sqlState == "55P03" }
    /// A time limit ran out: the server's statement or lock timeout (`57014` without a cancellation by this
    /// client, `55P03`), the client's deadline for an answer (``Code/timedOut``) or the pool's lease wait
    /// (``Code/poolTimeout``). Usually transient: retry later, and look for what holds the locks or connections.
    public var isTimeout: Bool {
        code == .timedOut || code == .poolTimeout || isLockNotAvailable || (code == .server && sqlState == "57014")
    }
    /// The connection is unusable: it failed to open, broke, did not answer in time (``Code/timedOut``), or the
    /// server is shutting down (class `08`, `57P01`–`57P03`). Retrying on a new connection may succeed.
    public var isConnectionError: Bool {
        if code == .connectionFailed || code == .connectionClosed || code == .timedOut { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }

    /// PostgreSQL's condition names for the SQLSTATEs an operator most often meets in hms-act's logs (the
    /// redacted ``description`` has no server message to explain them).
    static let conditionNames = [
        "53100": "disk_full", "53200": "out_of_memory", "53300": "too_many_connections",
        "25006": "read_only_sql_transaction", "57014": "query_canceled", "57P01": "admin_shutdown",
        "57P02": "crash_shutdown", "57P03": "cannot_connect_now", "40001": "serialization_failure",
        "40P01": "deadlock_detected", "55P03": "lock_not_available", "23505": "unique_violation",
        "23503": "foreign_key_violation", "42501": "insufficient_privilege", "25P03": "idle_in_transaction_session_timeout",
    ]

    /// ` (disk_full)` for a state in ``conditionNames``, else empty.
    private var conditionName: String { sqlState.flatMap { Self.conditionNames[$0] }.map { " (\($0))" } ?? "" }

    public var description: String {
        var parts = ["code: \(code)"]
        if let sqlState { parts.append("sqlState: \(sqlState)\(conditionName)") }
        if let reason { parts.append("reason: \(reason)") }
        if let constraintName { parts.append("constraint: \(constraintName)") }
        if let tableName { parts.append("table: \(tableName)") }
        if let statementIndex { parts.append("statementIndex: \(statementIndex)") }
        parts.append("at: \(file):\(line)")
        return "PostgresError(\(parts.joined(separator: ", ")))"
    }

    public var debugDescription: String {
        var parts = ["code: \(code)"]
        if let sqlState { parts.append("sqlState: \(sqlState)\(conditionName)") }
        if let reason { parts.append("reason: \(reason)") }
        if let serverMessage { parts.append("message: \(serverMessage)") }
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let constraintName { parts.append("constraint: \(constraintName)") }
        if let tableName { parts.append("table: \(tableName)") }
        if let statementIndex { parts.append("statementIndex: \(statementIndex)") }
        if let query { parts.append("query: \(query)") }
        if let underlying { parts.append("underlying: \(String(reflecting: underlying))") }
        parts.append("at: \(file):\(line)")
        return "PostgresError(\(parts.joined(separator: ", ")))"
    }
}
