internal import CLibPQ
import Logging

extension PostgresConnection {
    /// Runs `body` in a transaction: `BEGIN`, then `COMMIT` when `body` returns, `ROLLBACK` when it throws
    /// or the task is cancelled.
    ///
    /// `body` runs in the caller's isolation (so it may capture and mutate the caller's state); each statement
    /// hops to the connection's thread. Transactions do not nest: calling this inside `body` throws
    /// ``PostgresError/Code/transactionState``.
    ///
    /// If `body` swallows a failed statement's error, the transaction is already aborted on the server: the
    /// `COMMIT` is replaced by `ROLLBACK` and ``PostgresError/Code/transactionState`` is thrown.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws (after rolling back), or a ``PostgresError``.
    public nonisolated func withTransaction<Result>(
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await beginTransaction(file: file, line: line)
        let result: Result
        do {
            result = try await body(self)
        } catch {
            await rollBackTransaction(file: file, line: line)
            throw error
        }
        try await endTransaction(commit: true, file: file, line: line)
        return result
    }

    private func beginTransaction(file: String, line: Int) async throws(PostgresError) {
        guard !isInTransaction else {
            throw PostgresError(
                code: .transactionState,
                reason: "a transaction is already open on this connection",
                file: file,
                line: line
            )
        }
        try await query("BEGIN", file: file, line: line)
        isInTransaction = true
    }

    private func rollBackTransaction(file: String, line: Int) {
        isInTransaction = false
        rollbackQuietly(file: file, line: line)
    }

    /// Commits when possible, else rolls back and throws; leaves the transaction either way.
    private func endTransaction(commit: Bool, file: String, line: Int) throws(PostgresError) {
        defer { isInTransaction = false }
        if Task.isCancelled {
            rollbackQuietly(file: file, line: line)
            throw PostgresError(code: .cancelled, reason: "the task was cancelled; rolled back", file: file, line: line)
        }
        if let conn, PQtransactionStatus(conn) == PQTRANS_INERROR {
            rollbackQuietly(file: file, line: line)
            throw PostgresError(
                code: .transactionState,
                reason: "a statement failed inside the transaction; rolled back",
                file: file,
                line: line
            )
        }
        // Not cancellable: once COMMIT is sent, its outcome must be read, or it is unknown.
        _ = try run(PostgresStatement("COMMIT"), cancellable: false, file: file, line: line)
    }

    /// Sends `ROLLBACK` even when the task is cancelled; a failure means the connection is broken, which
    /// ``isUsable`` then reports.
    func rollbackQuietly(file: String, line: Int) {
        guard let conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE else { return }
        do {
            _ = try run(PostgresStatement("ROLLBACK"), cancellable: false, file: file, line: line)
        } catch {
            logger.debug("PostgreSQL rollback failed", metadata: ["db.error.code": "\(error.code)"])
        }
    }
}
