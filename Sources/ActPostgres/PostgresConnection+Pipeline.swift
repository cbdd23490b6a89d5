internal import CLibPQ
import Logging

extension PostgresConnection {
    /// Statements sent before each pipeline sync point.
    ///
    /// libpq's blocking mode sends while the server answers; if neither side reads, both socket buffers fill
    /// and the pipeline deadlocks. Reading all results every 256 statements keeps the unread answers far below
    /// the buffer sizes for ordinary statements (an INSERT's answer is ~20 bytes), at one round trip per 256.
    static let pipelineChunkSize = 256

    /// Runs many statements in libpq pipeline mode: sent back to back, answered in one round trip (per 256
    /// statements), and applied atomically.
    ///
    /// Outside a transaction the pipeline wraps itself in `BEGIN`/`COMMIT` (sent in the same round trip), so it
    /// is all or nothing. Inside ``withTransaction(file:line:_:)`` (or after a manual `BEGIN`) it joins that
    /// transaction, and a failure aborts it.
    ///
    /// When a statement fails, the server skips the rest: the error is the failing statement's, with its index
    /// in ``PostgresError/statementIndex``, and nothing of the pipeline is committed.
    ///
    /// - Returns: one ``PostgresRows`` per statement, in order.
    /// - Throws: ``PostgresError`` (see ``query(_:_:file:line:)``), with ``PostgresError/statementIndex`` set
    ///   when a statement failed.
    @discardableResult
    public func pipeline(
        _ statements: [PostgresStatement],
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> [PostgresRows] {
        guard !statements.isEmpty else { return [] }
        return try await cancellable { () throws(PostgresError) in
            try self.runPipeline(statements, file: file, line: line)
        }
    }

    /// Runs `(sql, binds)` pairs in pipeline mode; see the ``PostgresStatement`` overload.
    @discardableResult
    public func pipeline(
        _ statements: [(sql: String, binds: [PostgresBind])],
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> [PostgresRows] {
        try await pipeline(statements.map { PostgresStatement($0.sql, $0.binds) }, file: file, line: line)
    }

    private struct PipelineItem {
        var statement: PostgresStatement
        var preparedName: String?
        /// The caller's index; nil for the `BEGIN`/`COMMIT` the pipeline adds itself.
        var index: Int?
    }

    private func runPipeline(
        _ statements: [PostgresStatement],
        file: String,
        line: Int
    ) throws(PostgresError) -> [PostgresRows] {
        let conn = try openConnection(file: file, line: line)
        try checkNotCancelled(file: file, line: line)

        var items: [PipelineItem] = []
        items.reserveCapacity(statements.count + 2)
        let ownTransaction = PQtransactionStatus(conn) == PQTRANS_IDLE
        if ownTransaction { items.append(PipelineItem(statement: PostgresStatement("BEGIN"), index: nil)) }
        for (index, statement) in statements.enumerated() {
            let name = statement.isPrepared ? try prepare(statement, file: file, line: line) : nil
            items.append(PipelineItem(statement: statement, preparedName: name, index: index))
        }
        if ownTransaction { items.append(PipelineItem(statement: PostgresStatement("COMMIT"), index: nil)) }

        guard PQenterPipelineMode(conn) == 1 else {
            throw sendError(conn, sql: "", file: file, line: line)
        }
        var results = [PostgresRows?](repeating: nil, count: statements.count)
        var failure: PostgresError?
        do throws(PostgresError) {
            var chunkStart = 0
            while chunkStart < items.count && failure == nil {
                let chunk = items[chunkStart..<min(items.count, chunkStart + Self.pipelineChunkSize)]
                for item in chunk {
                    try send(item.statement, preparedName: item.preparedName, on: conn, file: file, line: line)
                }
                guard PQpipelineSync(conn) == 1 else { throw sendError(conn, sql: "", file: file, line: line) }
                for item in chunk {
                    while let result = try nextResult(conn, cancellable: true, file: file, line: line) {
                        defer { PQclear(result) }
                        guard PQresultStatus(result) != PGRES_PIPELINE_SYNC else {
                            throw PostgresError(
                                code: .unexpectedResult,
                                reason: "pipeline sync arrived before all results",
                                file: file,
                                line: line
                            )
                        }
                        if var error = error(in: result, sql: item.statement.sql, file: file, line: line) {
                            if failure == nil && error.code != .pipelineAborted {
                                error.statementIndex = item.index
                                failure = error
                            }
                        } else if let index = item.index, results[index] == nil {
                            results[index] = makeRows(result)
                        }
                    }
                }
                guard let sync = try nextResult(conn, cancellable: true, file: file, line: line) else {
                    throw PostgresError(code: .unexpectedResult, reason: "pipeline sync missing", file: file, line: line)
                }
                let status = PQresultStatus(sync)
                PQclear(sync)
                guard status == PGRES_PIPELINE_SYNC else {
                    throw PostgresError(code: .unexpectedResult, reason: "pipeline sync missing", file: file, line: line)
                }
                chunkStart += chunk.count
            }
        } catch {
            // A timed-out wait closed the connection (and freed `conn`): only an open one has a pipeline to leave.
            if let open = self.conn { leavePipelineMode(open) }
            if ownTransaction { rollbackQuietly(file: file, line: line) }
            throw error
        }
        leavePipelineMode(conn)
        if let failure {
            if ownTransaction { rollbackQuietly(file: file, line: line) }
            throw failure
        }
        var rows: [PostgresRows] = []
        rows.reserveCapacity(results.count)
        for (index, result) in results.enumerated() {
            guard let result else {
                throw PostgresError(
                    code: .unexpectedResult,
                    reason: "no result for statement \(index)",
                    file: file,
                    line: line
                )
            }
            rows.append(result)
        }
        return rows
    }

    /// Leaves pipeline mode; when libpq refuses (results left unread after a failure), the connection's state is
    /// unknown, so it is closed rather than reused.
    private func leavePipelineMode(_ conn: OpaquePointer) {
        guard PQpipelineStatus(conn) != PQ_PIPELINE_OFF else { return }
        if PQexitPipelineMode(conn) != 1 {
            logger.debug("PostgreSQL pipeline left in an unknown state; closing the connection")
            close()
        }
    }
}
