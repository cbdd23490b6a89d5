/// One SQL statement with its parameters, for `PostgresConnection.pipeline(_:)` and
/// `PostgresConnection.query(_:)`.
public struct PostgresStatement: Sendable, Hashable {
    /// The SQL text, with `$1`, `$2`, … where the parameters go. One statement only.
    public var sql: String
    /// The parameters, in order.
    public var binds: [PostgresBind]
    /// Use a server-side prepared statement, parsed once per connection and reused.
    ///
    /// The connection prepares the statement on first use, keyed by its SQL text and parameter types, and
    /// keeps it until the connection closes. Worth it for statements run many times on one connection.
    public var isPrepared: Bool

    /// Creates a statement.
    public init(_ sql: String, _ binds: [PostgresBind] = [], prepared: Bool = false) {
        self.sql = sql
        self.binds = binds
        self.isPrepared = prepared
    }

    /// A statement that uses a server-side prepared statement (see ``isPrepared``).
    public static func prepared(_ sql: String, _ binds: [PostgresBind] = []) -> PostgresStatement {
        PostgresStatement(sql, binds, prepared: true)
    }
}

/// A `NOTIFY` received by a connection that `LISTEN`s.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel it was sent on.
    public let channel: String
    /// Its payload (empty when none was given).
    public let payload: String
    /// The process id of the sending server backend.
    public let senderProcessID: Int32
}
