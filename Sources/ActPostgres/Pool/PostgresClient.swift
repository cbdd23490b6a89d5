public import Logging
public import ServiceLifecycle
import Synchronization

/// A small pool of ``PostgresConnection``s.
///
/// Connections open lazily, up to ``Configuration-swift.struct/maxConnections``; when all are busy, callers
/// wait in line. A connection is checked before it is lent out: one that broke while idle (server restart,
/// `pg_terminate_backend`) is closed and replaced, so the next use after a restart simply reconnects. One that
/// breaks while lent out is discarded when it comes back.
///
/// ## Running a client
/// The client is a `Service`: add it to your `ServiceGroup` before the services that use it. ``run()``
/// keeps it alive until graceful shutdown or cancellation, then closes the idle connections, fails waiting
/// callers with ``PostgresError/Code/poolClosed`` and closes lent connections as they come back.
/// ```swift
/// let client = PostgresClient(configuration: .init(connection: postgres), logger: logger)
/// let group = ServiceGroup(services: [client, relay, consumers], logger: logger)
/// try await group.run()
/// ```
/// The client serves callers before ``run()`` starts too (handy in tests), but only ``run()`` closes its
/// connections.
public final class PostgresClient: Service, Sendable {
    /// Pool settings.
    public struct Configuration: Sendable {
        /// How to open each connection.
        public var connection: PostgresConfiguration
        /// The most connections open at once. PostgreSQL's default `max_connections` is 100, shared by every
        /// replica and tool, so keep this small.
        public var maxConnections: Int

        /// Creates pool settings.
        public init(connection: PostgresConfiguration, maxConnections: Int = 4) {
            self.connection = connection
            self.maxConnections = max(1, maxConnections)
        }
    }

    private enum Lease {
        /// An idle connection, handed over.
        case connection(PostgresConnection)
        /// A free slot: the receiver opens a connection in it.
        case open
    }

    private struct State: ~Copyable {
        var idle: [PostgresConnection] = []
        /// Idle + lent out + being opened. Never exceeds `maxConnections`.
        var slotsInUse = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Result<Lease, PostgresError>, Never>)] = []
        var nextWaiterID = 0
        var isShutDown = false
    }

    private let configuration: Configuration
    private let logger: Logger
    /// Guards the pool's bookkeeping. Held only for a few assignments, never across an `await`; continuations
    /// are resumed after it is released.
    private let state = Mutex(State())

    /// Creates a pool; no connection opens until the first use.
    ///
    /// - Parameters:
    ///   - configuration: where to connect and how many connections to allow.
    ///   - logger: receives debug and info messages, with `db.pool.*` metadata.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Keeps the pool alive until graceful shutdown or cancellation, then closes its connections.
    public func run() async throws {
        logger.info("PostgreSQL pool running", metadata: ["db.pool.max_connections": "\(configuration.maxConnections)"])
        // Returns on graceful shutdown; throws CancellationError on cancellation. Both end the pool.
        try? await gracefulShutdown()
        await shutDown()
        logger.info("PostgreSQL pool closed")
    }

    private func shutDown() async {
        let (idle, waiters) = state.withLock { state in
            state.isShutDown = true
            let idle = state.idle
            state.idle = []
            state.slotsInUse -= idle.count
            let waiters = state.waiters
            state.waiters = []
            return (idle, waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(returning: .failure(PostgresError(code: .poolClosed, reason: "the pool shut down")))
        }
        for connection in idle {
            await connection.close()
        }
    }

    /// Lends a connection to `body` and takes it back afterwards.
    ///
    /// Do not keep the connection beyond `body`. A connection that `body` leaves broken or inside a transaction
    /// is closed, not reused.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws, or ``PostgresError`` (``PostgresError/Code/connectionFailed``,
    ///   ``PostgresError/Code/poolClosed``, ``PostgresError/Code/cancelled`` while waiting for a connection).
    public func withConnection<Result>(
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await lease(file: file, line: line)
        let result: Result
        do {
            result = try await body(connection)
        } catch {
            await giveBack(connection)
            throw error
        }
        await giveBack(connection)
        return result
    }

    /// Runs `body` in a transaction on a pooled connection; see ``PostgresConnection/withTransaction(file:line:_:)``.
    ///
    /// - Throws: what `body` throws (after rolling back), or a ``PostgresError``.
    public func withTransaction<Result>(
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection(file: file, line: line) { connection in
            try await connection.withTransaction(file: file, line: line, body)
        }
    }

    // MARK: - Lending

    private func lease(file: String, line: Int) async throws(PostgresError) -> PostgresConnection {
        var lease = try await acquire(file: file, line: line)
        while true {
            switch lease {
            case .connection(let connection):
                if await connection.checkHealth() { return connection }
                logger.debug("PostgreSQL pool: dropping a broken idle connection")
                await connection.close()
                lease = .open  // Keep the slot and open a fresh connection in it.
            case .open:
                do {
                    let connection = try await PostgresConnection.connect(
                        configuration: configuration.connection,
                        logger: logger
                    )
                    logger.debug("PostgreSQL pool: opened a connection")
                    return connection
                } catch {
                    releaseSlot()
                    throw error
                }
            }
        }
    }

    /// Takes an idle connection or a free slot, or waits in line for one.
    private func acquire(file: String, line: Int) async throws(PostgresError) -> Lease {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Lease, PostgresError>, Never>) in
                let immediate: Result<Lease, PostgresError>? = state.withLock { state in
                    if state.isShutDown {
                        return .failure(PostgresError(code: .poolClosed, reason: "the pool shut down", file: file, line: line))
                    }
                    if let connection = state.idle.popLast() { return .success(.connection(connection)) }
                    if state.slotsInUse < configuration.maxConnections {
                        state.slotsInUse += 1
                        return .success(.open)
                    }
                    // Checked under the lock: a cancellation handler that ran before this point found no
                    // waiter to remove, so the waiter must not be added.
                    if Task.isCancelled {
                        return .failure(PostgresError(code: .cancelled, reason: "cancelled while waiting for a connection", file: file, line: line))
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
            }
            continuation?.resume(
                returning: .failure(PostgresError(code: .cancelled, reason: "cancelled while waiting for a connection", file: file, line: line))
            )
        }
        return try result.get()
    }

    /// Frees a slot, or hands it straight to the first waiter.
    private func releaseSlot() {
        let waiter = state.withLock { state in
            if state.waiters.isEmpty {
                state.slotsInUse -= 1
                return nil as CheckedContinuation<Result<Lease, PostgresError>, Never>?
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .success(.open))
    }

    private func giveBack(_ connection: PostgresConnection) async {
        guard await connection.isUsable else {
            logger.debug("PostgreSQL pool: discarding a connection returned broken or inside a transaction")
            await connection.close()
            releaseSlot()
            return
        }
        enum Next {
            case keep
            case handOver(CheckedContinuation<Result<Lease, PostgresError>, Never>)
            case close
        }
        let next: Next = state.withLock { state in
            if state.isShutDown {
                state.slotsInUse -= 1
                return .close
            }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst().continuation) }
            state.idle.append(connection)
            return .keep
        }
        switch next {
        case .keep: break
        case .handOver(let continuation): continuation.resume(returning: .success(.connection(connection)))
        case .close: await connection.close()
        }
    }
}
