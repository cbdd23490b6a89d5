internal import CLibPQ
import Logging

extension PostgresConnection {
    /// Runs `body` in a transaction: `BEGIN`, then `COMMIT` when `body` returns, `ROLLBACK` when it throws
    /// or the task is cancelled.
    ///
    /// `body` runs isolated to this connection, so its statements do not hop threads. Transactions do not
    /// nest: calling this inside `body` throws ``PostgresError/Code/transactionState``.
    ///
    /// If `body` swallows a failed statement's error, the transaction is already aborted on the server: the
    /// `COMMIT` is replaced by `ROLLBACK` and ``PostgresError/Code/transactionState`` is thrown.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws (after rolling back), or a ``PostgresError``.
    public func withTransaction<Result: Sendable>(
        file: String = #fileID,
        line: Int = #line,
        _ body: (isolated PostgresConnection) async throws -> Result
    ) async throws -> Result {
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
        defer { isInTransaction = false }
        let result: Result
        do {
            result = try await body(self)
        } catch {
            rollbackQuietly(file: file, line: line)
            throw error
        }
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
        return result
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
