import ActThreads
internal import CLibPQ
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to PostgreSQL, over libpq.
///
/// ## Threading
/// The connection is an actor whose executor is a ``SerialThreadExecutor``: a thread of its own. Every libpq
/// call runs there, so blocking network I/O never occupies the cooperative thread pool, and the `PGconn` is
/// never used from two threads at once. Callers `await` and hop to that thread; a statement runs from send
/// to last result without suspending, so statements from concurrent tasks never interleave on the wire.
///
/// While waiting for a result the thread sleeps in `poll(2)` on the socket and a wake-up pipe; cancelling
/// the calling task wakes it, and it then asks the server to cancel the statement (`PQcancel`). The
/// statement fails with ``PostgresError/Code/cancelled``.
///
/// ## Use
/// ```swift
/// let connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
/// let rows = try await connection.query("SELECT id, name FROM agents WHERE skill = $1", [PostgresBind(skill)])
/// for row in rows { let name = try row.decode(String.self, column: 1) }
/// await connection.close()
/// ```
/// Pooled use goes through ``PostgresClient``.
public actor PostgresConnection {
    /// The thread all of this actor's code runs on.
    let executor: SerialThreadExecutor

    /// Runs this actor on its own thread (see the type's documentation).
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The settings this connection was opened with.
    public nonisolated let configuration: PostgresConfiguration

    var logger: Logger
    /// The libpq connection (`PGconn *`); nil before `open` and after ``close()``.
    var conn: OpaquePointer?
    /// libpq's cancel object (`PGcancel *`) for this connection, used only on this actor's thread.
    private var cancelObject: OpaquePointer?
    /// Set once a cancel request was sent for the current statement, so that its `57014` error reads as
    /// ``PostgresError/Code/cancelled`` and the request is sent only once.
    private var cancelRequested = false
    /// True inside ``withTransaction(_:)``, which refuses to nest.
    var isInTransaction = false
    /// Names of the statements prepared on this connection, by SQL text and parameter types.
    var preparedStatements: [PreparedKey: String] = [:]

    struct PreparedKey: Hashable {
        var sql: String
        var types: [UInt32]
    }

    /// Receives libpq's notices; kept alive as long as the connection, which points at it.
    private let noticeSink: NoticeSink

    /// The server process serving this connection (`pg_backend_pid()`), or 0 when closed.
    public private(set) var backendProcessID: Int32 = 0

    private init(configuration: PostgresConfiguration, logger: Logger) throws(PostgresError) {
        self.configuration = configuration
        self.logger = logger
        self.noticeSink = NoticeSink(logger: logger)
        do {
            self.executor = try SerialThreadExecutor(name: "hms-pg-conn")
        } catch {
            // Out of threads or file descriptors: this connection fails, the process goes on.
            throw PostgresError(code: .connectionFailed, reason: error.description, underlying: error)
        }
    }

    isolated deinit {
        // Runs on this actor's thread (SE-0371), like every other libpq call; the thread ends after it.
        if let cancelObject { PQfreeCancel(cancelObject) }
        if let conn { PQfinish(conn) }
        executor.shutdown()
    }

    /// Opens a connection.
    ///
    /// The connection sets `client_encoding` UTF8, `DateStyle` ISO, `TimeZone` UTC and `bytea_output` hex,
    /// which the decoders rely on, and the configuration's `statement_timeout`, `lock_timeout`,
    /// `idle_in_transaction_session_timeout`, TCP keepalives and `tcp_user_timeout`
    /// (``PostgresConfiguration/statementTimeout`` and the fields after it).
    ///
    /// - Parameters:
    ///   - configuration: where to connect and as whom.
    ///   - logger: receives debug messages about this connection, with `db.backend.pid` metadata.
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/connectionFailed``.
    public static func connect(
        configuration: PostgresConfiguration,
        logger: Logger
    ) async throws(PostgresError) -> PostgresConnection {
        let connection = try PostgresConnection(configuration: configuration, logger: logger)
        try await connection.open()
        return connection
    }

    private func open() throws(PostgresError) {
        let c = configuration
        let parameters = c.libpqParameters
        let keys = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            for pointer in keys { free(pointer) }
            for pointer in values { free(pointer) }
        }
        let keyPointers = keys.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectdbParams(keyPointers, valuePointers, 0) else {
            throw PostgresError(code: .connectionFailed, reason: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            var message = String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines
            PQfinish(conn)
            // libpq does not echo passwords, but make sure no message ever carries one.
            if let password = c.password, !password.isEmpty {
                message = message.replacingAll(password, with: "<redacted>")
            }
            throw PostgresError(code: .connectionFailed, reason: message + Self.tlsHint(for: message, configuration: c))
        }
        self.conn = conn
        // libpq prints notices (e.g. "FATAL: terminating connection due to unexpected postmaster exit") to
        // stderr by default; route them to the logger instead. The sink outlives `conn`: the actor holds it.
        PQsetNoticeProcessor(
            conn,
            { context, message in
                guard let context, let message else { return }
                let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
                sink.logger.debug(
                    "PostgreSQL notice",
                    metadata: ["db.notice": "\(String(cString: message).trimmingTrailingNewlines)"]
                )
            },
            Unmanaged.passUnretained(noticeSink).toOpaque()
        )
        self.cancelObject = PQgetCancel(conn)
        self.backendProcessID = PQbackendPID(conn)
        logger[metadataKey: "db.backend.pid"] = "\(backendProcessID)"
        logger.debug("PostgreSQL connection opened", metadata: ["db.host": "\(c.host)", "db.port": "\(c.port)"])
    }

    /// What to do about a TLS failure libpq reported in `message`, or "" for any other failure. libpq says
    /// what failed ("certificate verify failed", "does not match host name") but not which setting fixes it.
    static func tlsHint(for message: String, configuration: PostgresConfiguration) -> String {
        if message.contains("certificate verify failed") {
            let file = configuration.rootCertificateFile.map { "the CA file \($0)" } ?? "libpq's default CA file"
            return " (the server's certificate is not signed by a CA in \(file): point sslrootcert at the CA that "
                + "signed it, or give the server a certificate from that CA)"
        }
        if message.contains("does not match host name") {
            return " (connect with a host name the server's certificate names, or issue the server a certificate "
                + "whose subjectAltName names \(configuration.host))"
        }
        if message.contains("root certificate file") {
            return " (sslmode \(configuration.tls) needs the CA that signed the server's certificate: set sslrootcert)"
        }
        if message.contains("server does not support SSL") {
            return " (sslmode \(configuration.tls) requires TLS: turn ssl on in the server, or connect to one that has it)"
        }
        return ""
    }

    /// Closes the connection. Statements issued afterwards fail with ``PostgresError/Code/connectionClosed``.
    public func close() {
        if let cancelObject { PQfreeCancel(cancelObject) }
        cancelObject = nil
        if let conn {
            PQfinish(conn)
            logger.debug("PostgreSQL connection closed")
        }
        conn = nil
        preparedStatements = [:]
        backendProcessID = 0
    }

    /// True while the connection is open, healthy and outside any transaction: fit to be reused.
    public var isUsable: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// Reads whatever the server sent while the connection was idle and reports whether it is still usable.
    ///
    /// A backend ended by `pg_terminate_backend` or a server restart leaves an error and end-of-file on the
    /// socket; reading them marks the connection bad. ``PostgresClient`` calls this before lending a
    /// connection out.
    public func checkHealth() -> Bool {
        guard let conn else { return false }
        // A few rounds at most: each read consumes what has arrived; end-of-file makes libpq drop the socket.
        for _ in 0..<3 {
            let socket = PQsocket(conn)
            guard socket >= 0 else { break }
            guard executor.wait(forReadable: socket, timeoutMilliseconds: 0, wakeForJobs: false) == .readable else {
                break
            }
            if PQconsumeInput(conn) == 0 { break }
        }
        return isUsable
    }

    // MARK: - Statements

    /// Runs one statement and returns its rows.
    ///
    /// - Parameters:
    ///   - sql: one SQL statement with `$1`, `$2`, … placeholders.
    ///   - binds: the values for the placeholders, sent apart from the SQL text.
    /// - Returns: the rows (none for statements that return none) and the command tag.
    /// - Throws: ``PostgresError``: ``PostgresError/Code/server`` with the SQLSTATE,
    ///   ``PostgresError/Code/connectionClosed``, or ``PostgresError/Code/cancelled`` when the task is cancelled.
    @discardableResult
    public func query(
        _ sql: String,
        _ binds: [PostgresBind] = [],
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> PostgresRows {
        try await query(PostgresStatement(sql, binds), file: file, line: line)
    }

    /// Runs one statement (possibly as a prepared statement) and returns its rows.
    ///
    /// - Throws: see ``query(_:_:file:line:)``.
    @discardableResult
    public func query(
        _ statement: PostgresStatement,
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> PostgresRows {
        try await cancellable { () throws(PostgresError) in
            try self.run(statement, cancellable: true, file: file, line: line)
        }
    }

    /// Runs one statement and returns the number of rows it inserted, updated, deleted or selected.
    ///
    /// - Throws: see ``query(_:_:file:line:)``.
    @discardableResult
    public func execute(
        _ sql: String,
        _ binds: [PostgresBind] = [],
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> Int {
        try await query(PostgresStatement(sql, binds), file: file, line: line).affectedRows
    }

    /// Runs one statement (possibly prepared) and returns the number of rows it affected.
    ///
    /// - Throws: see ``query(_:_:file:line:)``.
    @discardableResult
    public func execute(
        _ statement: PostgresStatement,
        file: String = #fileID,
        line: Int = #line
    ) async throws(PostgresError) -> Int {
        try await query(statement, file: file, line: line).affectedRows
    }

    /// Runs a script of several statements separated by `;`, without parameters (the simple query protocol).
    ///
    /// Meant for migrations and fixed DDL. Outside a transaction, the statements run as one implicit
    /// transaction.
    ///
    /// - Throws: see ``query(_:_:file:line:)``.
    public func executeScript(_ sql: String, file: String = #fileID, line: Int = #line) async throws(PostgresError) {
        try await cancellable { () throws(PostgresError) in
            let conn = try self.openConnection(file: file, line: line)
            try self.checkNotCancelled(file: file, line: line)
            self.cancelRequested = false
            guard PQsendQuery(conn, sql) == 1 else { throw self.sendError(conn, sql: sql, file: file, line: line) }
            var firstError: PostgresError?
            while let result = try self.nextResult(conn, cancellable: true, file: file, line: line) {
                defer { PQclear(result) }
                if let error = self.error(in: result, sql: sql, file: file, line: line), firstError == nil {
                    firstError = error
                }
            }
            if let firstError { throw firstError }
        }
    }

    /// Runs `body` on this connection, wakes this connection's thread when the task is cancelled, and
    /// passes typed errors through (`withTaskCancellationHandler` itself only `rethrows`).
    func cancellable<T>(
        _ body: () throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        let executor = self.executor
        // The operation must capture `self` (the isolated parameter): only then is the closure isolated to this
        // actor (SE-0420), so `body` runs on the connection's own thread. Without the capture it is a
        // nonisolated closure and the blocking libpq calls would run on the cooperative pool, where two
        // statements waiting on a lock are enough to starve every other task.
        let result: Result<T, PostgresError> = await withTaskCancellationHandler { [self] in
            self.assertIsolated("libpq calls must run on the connection's thread")
            return Result { () throws(PostgresError) in try body() }
        } onCancel: {
            executor.wake()
        }
        return try result.get()
    }

    func openConnection(file: String, line: Int) throws(PostgresError) -> OpaquePointer {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError(code: .connectionClosed, reason: "the connection is closed or broken", file: file, line: line)
        }
        return conn
    }

    func checkNotCancelled(file: String, line: Int) throws(PostgresError) {
        if Task.isCancelled {
            throw PostgresError(code: .cancelled, reason: "the task was cancelled", file: file, line: line)
        }
    }

    /// Sends one statement and collects its single result. Runs on this actor's thread without suspending.
    func run(
        _ statement: PostgresStatement,
        cancellable: Bool,
        file: String,
        line: Int
    ) throws(PostgresError) -> PostgresRows {
        let conn = try openConnection(file: file, line: line)
        if cancellable { try checkNotCancelled(file: file, line: line) }
        let preparedName = statement.isPrepared ? try prepare(statement, file: file, line: line) : nil
        cancelRequested = false
        try send(statement, preparedName: preparedName, on: conn, file: file, line: line)
        var rows: PostgresRows?
        var firstError: PostgresError?
        while let result = try nextResult(conn, cancellable: cancellable, file: file, line: line) {
            defer { PQclear(result) }
            if let error = error(in: result, sql: statement.sql, file: file, line: line) {
                if firstError == nil { firstError = error }
            } else if rows == nil {
                rows = makeRows(result)
            }
        }
        if let firstError { throw firstError }
        guard let rows else {
            throw PostgresError(code: .unexpectedResult, reason: "the server sent no result", file: file, line: line)
        }
        return rows
    }

    /// Returns the server-side name of `statement`, preparing it on first use.
    func prepare(_ statement: PostgresStatement, file: String, line: Int) throws(PostgresError) -> String {
        let key = PreparedKey(sql: statement.sql, types: statement.binds.map(\.type.oid))
        if let name = preparedStatements[key] { return name }
        let conn = try openConnection(file: file, line: line)
        let name = "act_\(preparedStatements.count + 1)"
        cancelRequested = false
        let sent = key.types.withUnsafeBufferPointer { types in
            PQsendPrepare(conn, name, statement.sql, Int32(types.count), types.baseAddress)
        }
        guard sent == 1 else { throw sendError(conn, sql: statement.sql, file: file, line: line) }
        var firstError: PostgresError?
        while let result = try nextResult(conn, cancellable: false, file: file, line: line) {
            defer { PQclear(result) }
            if let error = error(in: result, sql: statement.sql, file: file, line: line), firstError == nil {
                firstError = error
            }
        }
        if let firstError { throw firstError }
        preparedStatements[key] = name
        return name
    }

    /// Queues one statement on the wire (`PQsendQueryParams` / `PQsendQueryPrepared`), results in text format.
    func send(
        _ statement: PostgresStatement,
        preparedName: String?,
        on conn: OpaquePointer,
        file: String,
        line: Int
    ) throws(PostgresError) {
        // The protocol counts parameters in 16 bits.
        guard statement.binds.count <= Int(UInt16.max) else {
            throw PostgresError(code: .encoding, reason: "more than 65535 parameters", file: file, line: line)
        }
        let sent = withParameters(statement.binds) { count, types, values, lengths, formats in
            if let preparedName {
                PQsendQueryPrepared(conn, preparedName, count, values, lengths, formats, 0)
            } else {
                PQsendQueryParams(conn, statement.sql, count, types, values, lengths, formats, 0)
            }
        }
        guard sent == 1 else { throw sendError(conn, sql: statement.sql, file: file, line: line) }
    }

    /// Lays the parameters out for libpq: one buffer holds every value, alive for the duration of `body`.
    private func withParameters<R>(
        _ binds: [PostgresBind],
        _ body: (
            Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?
        ) -> R
    ) -> R {
        if binds.isEmpty { return body(0, nil, nil, nil, nil) }
        var total = 0
        for bind in binds {
            switch bind.value {
            case .null: break
            case .text(let text): total += text.utf8.count + 1
            case .binary(let bytes): total += bytes.count
            }
        }
        // At least one byte, so that an empty non-NULL value still gets a non-NULL pointer.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { buffer.deallocate() }
        var types = [Oid]()
        var values = [UnsafePointer<CChar>?]()
        var lengths = [Int32]()
        var formats = [Int32]()
        types.reserveCapacity(binds.count)
        values.reserveCapacity(binds.count)
        lengths.reserveCapacity(binds.count)
        formats.reserveCapacity(binds.count)
        var offset = 0
        for bind in binds {
            types.append(bind.type.oid)
            let start = buffer.baseAddress!.advanced(by: offset)
            switch bind.value {
            case .null:
                values.append(nil)
                lengths.append(0)
                formats.append(0)
            case .text(let text):
                var utf8 = Array(text.utf8)
                utf8.append(0)
                utf8.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                values.append(UnsafePointer(start.assumingMemoryBound(to: CChar.self)))
                lengths.append(Int32(utf8.count - 1))
                formats.append(0)
                offset += utf8.count
            case .binary(let bytes):
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { start.copyMemory(from: base, byteCount: raw.count) }
                }
                values.append(UnsafePointer(start.assumingMemoryBound(to: CChar.self)))
                lengths.append(Int32(bytes.count))
                formats.append(1)
                offset += bytes.count
            }
        }
        return types.withUnsafeBufferPointer { types in
            values.withUnsafeBufferPointer { values in
                lengths.withUnsafeBufferPointer { lengths in
                    formats.withUnsafeBufferPointer { formats in
                        body(
                            Int32(binds.count),
                            types.baseAddress,
                            values.baseAddress,
                            lengths.baseAddress,
                            formats.baseAddress
                        )
                    }
                }
            }
        }
    }

    /// Waits on this thread until libpq holds a complete result, then returns it (nil: no more results).
    ///
    /// When `cancellable` and the task is cancelled meanwhile, sends a cancel request once and keeps reading:
    /// the server then ends the statement with SQLSTATE `57014`.
    ///
    /// When the server sends nothing for ``PostgresConfiguration/answerTimeout`` (every byte that arrives
    /// restarts the wait), the connection is closed and ``PostgresError/Code/timedOut`` is thrown: a server
    /// that enforces its own `statement_timeout` answers sooner, so it is hung (a stopped backend, a peer that
    /// acknowledges packets but never answers), and a cancel request would not reach it either. Callers must
    /// not touch their `conn` pointer after this throws.
    func nextResult(
        _ conn: OpaquePointer,
        cancellable: Bool,
        file: String,
        line: Int
    ) throws(PostgresError) -> OpaquePointer? {
        let answerTimeout = configuration.answerTimeout
        let clock = ContinuousClock()
        var deadline = answerTimeout.map { clock.now + $0 }
        while PQisBusy(conn) != 0 {
            let socket = PQsocket(conn)
            guard socket >= 0 else { throw connectionLost(conn, file: file, line: line) }
            // The 1 s timeout is only a safety net: a cancellation normally ends the wait through `wake()`.
            var waitMilliseconds: Int32 = 1000
            if let answerTimeout, let deadline {
                let remaining = deadline - clock.now
                guard remaining > .zero else { throw noAnswer(within: answerTimeout, file: file, line: line) }
                waitMilliseconds = Int32(min(1000, PostgresConfiguration.milliseconds(remaining)))
            }
            switch executor.wait(forReadable: socket, timeoutMilliseconds: waitMilliseconds, wakeForJobs: false) {
            case .readable:
                guard PQconsumeInput(conn) != 0 else { throw connectionLost(conn, file: file, line: line) }
                // The server is alive and answering: measure silence from here.
                deadline = answerTimeout.map { clock.now + $0 }
            case .woken, .timedOut, .jobsPending:
                if cancellable && !cancelRequested && Task.isCancelled {
                    requestCancel()
                }
            }
        }
        return PQgetResult(conn)
    }

    /// Closes the hung connection and returns the error that says so.
    ///
    /// `PQfinish` closes the socket; once the backend runs again it reads end-of-file, rolls back and ends,
    /// which releases its locks.
    private func noAnswer(within timeout: Duration, file: String, line: Int) -> PostgresError {
        let seconds = Self.secondsText(timeout)
        logger.info(
            "PostgreSQL sent no answer in time; closing the connection",
            metadata: ["db.answer_timeout_seconds": "\(seconds)"]
        )
        close()
        return PostgresError(
            code: .timedOut,
            reason: "no answer from PostgreSQL within \(seconds) s (statement timeout + grace); the connection was "
                + "closed and will be replaced. The server or the network is hung or overloaded; if statements "
                + "legitimately run longer, raise the statement timeout",
            file: file,
            line: line
        )
    }

    /// `2`, `2.5`, `0.25`: a duration in seconds, without trailing zeros.
    static func secondsText(_ duration: Duration) -> String {
        let milliseconds = PostgresConfiguration.milliseconds(duration)
        let whole = milliseconds / 1000
        var fraction = milliseconds % 1000
        guard fraction > 0 else { return String(whole) }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let padded = String(repeating: "0", count: digits - String(fraction).count) + String(fraction)
        return "\(whole).\(padded)"
    }

    private func requestCancel() {
        cancelRequested = true
        guard let cancelObject else { return }
        // 256 bytes: libpq's recommended size for PQcancel's error buffer.
        var errorBuffer = [CChar](repeating: 0, count: 256)
        if PQcancel(cancelObject, &errorBuffer, Int32(errorBuffer.count)) == 0 {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            logger.debug("PostgreSQL cancel request failed", metadata: ["db.error": "\(message)"])
        } else {
            logger.debug("PostgreSQL cancel request sent")
        }
    }

    // MARK: - Results and errors

    func makeRows(_ result: OpaquePointer) -> PostgresRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns = [PostgresColumn]()
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(
                PostgresColumn(
                    name: String(cString: PQfname(result, Int32(column))),
                    type: PostgresDataType(oid: PQftype(result, Int32(column)))
                )
            )
        }
        var cells = [String?]()
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)!).assumingMemoryBound(to: UInt8.self)
                    cells.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
        }
        let commandTag = String(cString: PQcmdStatus(result))
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(
            columns: columns,
            cells: cells,
            rowCount: rowCount,
            commandTag: commandTag,
            affectedRows: affected
        )
    }

    /// The error a result reports, or nil for a successful one.
    func error(in result: OpaquePointer, sql: String, file: String, line: Int) -> PostgresError? {
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return nil
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
            return serverError(result, sql: sql, file: file, line: line)
        case PGRES_PIPELINE_ABORTED:
            var error = PostgresError(
                code: .pipelineAborted,
                reason: "skipped: an earlier statement in the pipeline failed",
                file: file,
                line: line
            )
            error.query = sql
            return error
        default:
            var error = PostgresError(
                code: .unexpectedResult,
                reason: "unsupported result status \(String(cString: PQresStatus(status)))",
                file: file,
                line: line
            )
            error.query = sql
            return error
        }
    }

    private func serverError(_ result: OpaquePointer, sql: String, file: String, line: Int) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        var code = PostgresError.Code.server
        if sqlState == "57014" && cancelRequested {
            code = .cancelled
        } else if let conn, PQstatus(conn) != CONNECTION_OK {
            code = .connectionClosed
        }
        var message = field("M")
        if message == nil {
            message = String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines
        }
        var error = PostgresError(
            code: code,
            reason: code == .cancelled ? "the statement was cancelled" : nil,
            sqlState: sqlState,
            serverMessage: message,
            file: file,
            line: line
        )
        error.detail = field("D")
        error.hint = field("H")
        error.constraintName = field("n")
        error.tableName = field("t")
        error.query = sql
        return error
    }

    func sendError(_ conn: OpaquePointer, sql: String, file: String, line: Int) -> PostgresError {
        var error = PostgresError(
            code: PQstatus(conn) == CONNECTION_OK ? .unexpectedResult : .connectionClosed,
            reason: "could not send the statement",
            serverMessage: String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines,
            file: file,
            line: line
        )
        error.query = sql
        return error
    }

    func connectionLost(_ conn: OpaquePointer, file: String, line: Int) -> PostgresError {
        logger.debug("PostgreSQL connection lost")
        return PostgresError(
            code: .connectionClosed,
            reason: "the connection to the server was lost",
            serverMessage: String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines,
            file: file,
            line: line
        )
    }
}

/// Where libpq's notice callback logs to (it gets a raw pointer to this object, so it must be a class).
final class NoticeSink: Sendable {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var output = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            output += rest[..<range.lowerBound]
            output += replacement
            rest = rest[range.upperBound...]
        }
        output += rest
        return output
    }
}
