import ActThreads
internal import CLibPQ

extension PostgresConnection {
    /// Subscribes this connection to `channel` (`LISTEN`). Read what arrives from ``notifications``.
    ///
    /// Use a dedicated connection for listening, not a pooled one: a pool hands connections to other tasks.
    ///
    /// - Parameter channel: the channel name (an identifier; quoted here, so any text is safe).
    /// - Throws: ``PostgresError``.
    public func listen(_ channel: String, file: String = #fileID, line: Int = #line) async throws(PostgresError) {
        try await query("LISTEN \(Self.quotedIdentifier(channel))", file: file, line: line)
    }

    /// Ends the subscription to `channel` (`UNLISTEN`).
    ///
    /// - Throws: ``PostgresError``.
    public func unlisten(_ channel: String, file: String = #fileID, line: Int = #line) async throws(PostgresError) {
        try await query("UNLISTEN \(Self.quotedIdentifier(channel))", file: file, line: line)
    }

    /// Sends a notification (`SELECT pg_notify($1, $2)`). Inside a transaction it is delivered on commit.
    ///
    /// - Throws: ``PostgresError``.
    public func notify(
        _ channel: String,
        payload: String = "",
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) {
        try await query("SELECT pg_notify($1, $2)", [PostgresBind(channel), PostgresBind(payload)], file: file, line: line)
    }

    /// The notifications this connection receives for the channels it ``listen(_:file:line:)``s to.
    ///
    /// Iterating waits on this connection's thread for the socket (not on the cooperative pool), and lets
    /// other statements on the connection run in between. The sequence ends when the iterating task is
    /// cancelled, and throws when the connection breaks. Iterate from one task at a time.
    public nonisolated var notifications: PostgresNotifications {
        PostgresNotifications(connection: self)
    }

    /// Waits for the next notification. See ``notifications``.
    func nextNotification() async throws(PostgresError) -> PostgresNotification? {
        let executor = self.executor
        let result: Result<PostgresNotification?, PostgresError> = await withTaskCancellationHandler {
            do throws(PostgresError) {
                return .success(try await waitForNotification())
            } catch {
                return .failure(error)
            }
        } onCancel: {
            executor.wake()
        }
        return try result.get()
    }

    private func waitForNotification() async throws(PostgresError) -> PostgresNotification? {
        while true {
            let conn = try openConnection(file: #fileID, line: #line)
            if let notice = PQnotifies(conn) {
                defer { PQfreemem(notice) }
                return PostgresNotification(
                    channel: String(cString: notice.pointee.relname),
                    payload: String(cString: notice.pointee.extra),
                    senderProcessID: notice.pointee.be_pid
                )
            }
            if Task.isCancelled { return nil }
            let socket = PQsocket(conn)
            guard socket >= 0 else { throw connectionLost(conn, file: #fileID, line: #line) }
            // 1 s: a safety net only; new jobs, cancellation and socket input all end the wait at once.
            switch executor.wait(forReadable: socket, timeoutMilliseconds: 1000, wakeForJobs: true) {
            case .readable:
                guard PQconsumeInput(conn) != 0 else { throw connectionLost(conn, file: #fileID, line: #line) }
            case .jobsPending:
                // Let the queued statements of other tasks run on this thread, then wait again.
                await Task.yield()
            case .woken, .timedOut:
                continue
            }
        }
    }

    /// `"name"` with inner quotes doubled: a safe SQL identifier for any text.
    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }
}

/// The notifications a ``PostgresConnection`` receives; see ``PostgresConnection/notifications``.
public struct PostgresNotifications: AsyncSequence, Sendable {
    public typealias Element = PostgresNotification
    public typealias Failure = PostgresError

    let connection: PostgresConnection

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(connection: connection)
    }

    /// Reads notifications one at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let connection: PostgresConnection

        /// The next notification; nil when the task is cancelled.
        public mutating func next() async throws(PostgresError) -> PostgresNotification? {
            try await connection.nextNotification()
        }

        public mutating func next(
            isolation actor: isolated (any Actor)?
        ) async throws(PostgresError) -> PostgresNotification? {
            try await connection.nextNotification()
        }
    }
}
