public import Logging
public import ServiceLifecycle
import Synchronization

/// A small pool of ``PostgresConnection``s.
///
/// Connections open lazily, up to ``Configuration-swift.struct/maxConnections``; when all are busy, callers
/// wait in line, at most ``Configuration-swift.struct/acquireTimeout``. A connection is checked before it is lent
/// out: one that broke while idle (server restart, `pg_terminate_backend`) is closed and replaced, so the next use
/// after a restart simply reconnects. One that breaks while lent out (including one closed because the server
/// did not answer in time, ``PostgresError/Code/timedOut``) is discarded when it comes back, and its slot opens
/// a new connection on the next lease.
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
        /// How long a caller waits in line for a connection before ``PostgresError/Code/poolTimeout``. A pool
        /// whose connections are all held by stuck work then fails fast and visibly instead of stalling every
        /// caller behind it.
        public var acquireTimeout: Duration
        /// The names of the two settings above as the application's operators know them, for the
        /// ``PostgresError/Code/poolTimeout`` error's advice (e.g. a configuration key); the property names
        /// by default.
        public var settingNames: SettingNames

        /// Names for ``maxConnections`` and ``acquireTimeout`` in error messages.
        public struct SettingNames: Sendable, Hashable {
            /// What raises ``maxConnections``.
            public var maxConnections: String
            /// What raises ``acquireTimeout``.
            public var acquireTimeout: String

            /// Creates setting names.
            public init(maxConnections: String = "maxConnections", acquireTimeout: String = "acquireTimeout") {
                self.maxConnections = maxConnections
                self.acquireTimeout = acquireTimeout
            }
        }

        /// Creates pool settings.
        public init(
            connection: PostgresConfiguration,
            maxConnections: Int = 4,
            acquireTimeout: Duration = .seconds(10),
            settingNames: SettingNames = SettingNames()
        ) {
            self.connection = connection
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
            self.settingNames = settingNames
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
    ///   ``PostgresError/Code/poolClosed``, ``PostgresError/Code/cancelled`` while waiting for a connection,
    ///   ``PostgresError/Code/poolTimeout`` when none came free within
    ///   ``Configuration-swift.struct/acquireTimeout``).
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

    /// Takes an idle connection or a free slot, or waits in line for one, at most
    /// ``Configuration-swift.struct/acquireTimeout``.
    private func acquire(file: String, line: Int) async throws(PostgresError) -> Lease {
        // The common case takes no continuation and no timer task.
        let immediate: Result<Lease, PostgresError>? = state.withLock { state in
            takeImmediately(&state, file: file, line: line)
        }
        if let immediate { return try immediate.get() }

        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let deadline = ContinuousClock.now + configuration.acquireTimeout
        let result = await withTaskGroup(of: Void.self, returning: Result<Lease, PostgresError>.self) { group in
            // The timer fails this waiter when it is still in line at the deadline; it is cancelled as soon as
            // the wait ends. Removal under the lock decides which side wins, and a waiter that would join the
            // line after the timer looked checks the deadline itself (`waitInLine`).
            group.addTask {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return
                }
                self.removeWaiter(id)?.resume(returning: .failure(self.leaseTimedOut(file: file, line: line)))
            }
            let result = await waitInLine(id: id, deadline: deadline, file: file, line: line)
            group.cancelAll()
            return result
        }
        if case .failure(let error) = result, error.code == .poolTimeout {
            logger.info(
                "PostgreSQL pool: no connection came free in time",
                metadata: [
                    "db.pool.max_connections": "\(configuration.maxConnections)",
                    "db.pool.acquire_timeout_seconds": "\(PostgresConnection.secondsText(configuration.acquireTimeout))",
                ]
            )
        }
        return try result.get()
    }

    /// An idle connection or a free slot when there is one; a failure when the pool is shut down or the task
    /// cancelled; nil when the caller must wait.
    private func takeImmediately(_ state: inout State, file: String, line: Int) -> Result<Lease, PostgresError>? {
        if state.isShutDown {
            return .failure(PostgresError(code: .poolClosed, reason: "the pool shut down", file: file, line: line))
        }
        if let connection = state.idle.popLast() { return .success(.connection(connection)) }
        if state.slotsInUse < configuration.maxConnections {
            state.slotsInUse += 1
            return .success(.open)
        }
        return nil
    }

    /// Waits for ``giveBack(_:)`` or ``releaseSlot()`` to hand over a lease, for cancellation, or for the
    /// acquire timer.
    private func waitInLine(
        id: Int,
        deadline: ContinuousClock.Instant,
        file: String,
        line: Int
    ) async -> Result<Lease, PostgresError> {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Lease, PostgresError>, Never>) in
                let immediate: Result<Lease, PostgresError>? = state.withLock { state in
                    // Checked again under the lock: a connection may have come back since the first look.
                    if let immediate = takeImmediately(&state, file: file, line: line) { return immediate }
                    // Checked under the lock: a cancellation handler that ran before this point found no
                    // waiter to remove, so the waiter must not be added.
                    if Task.isCancelled {
                        return .failure(PostgresError(code: .cancelled, reason: "cancelled while waiting for a connection", file: file, line: line))
                    }
                    // The timer may have looked for this waiter already (a tiny timeout, a busy machine).
                    if ContinuousClock.now >= deadline { return .failure(leaseTimedOut(file: file, line: line)) }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            removeWaiter(id)?.resume(
                returning: .failure(PostgresError(code: .cancelled, reason: "cancelled while waiting for a connection", file: file, line: line))
            )
        }
    }

    /// Takes waiter `id` out of the line; nil when it is no longer waiting (served, cancelled or timed out).
    private func removeWaiter(_ id: Int) -> CheckedContinuation<Result<Lease, PostgresError>, Never>? {
        state.withLock { state in
            state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
        }
    }

    private func leaseTimedOut(file: String, line: Int) -> PostgresError {
        let size = configuration.maxConnections
        let seconds = PostgresConnection.secondsText(configuration.acquireTimeout)
        let names = configuration.settingNames
        return PostgresError(
            code: .poolTimeout,
            reason: "no PostgreSQL connection came free within \(seconds) s (pool size \(size), every connection "
                + "in use). Raise the pool size (\(names.maxConnections)) if the load needs more connections, or "
                + "the wait (\(names.acquireTimeout)); slow statements or long transactions holding connections "
                + "show in pg_stat_activity",
            file: file,
            line: line
        )
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
