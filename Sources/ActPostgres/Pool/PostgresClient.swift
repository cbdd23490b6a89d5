import ActThreads
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

        /// Called each time a caller gives up waiting with ``PostgresError/Code/poolTimeout``, e.g. to count
        /// it in a metric. Runs on the waiting task after the pool's lock is released; keep it quick.
        public var onLeaseTimeout: (@Sendable () -> Void)?

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
            settingNames: SettingNames = SettingNames(),
            onLeaseTimeout: (@Sendable () -> Void)? = nil
        ) {
            self.connection = connection
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
            self.settingNames = settingNames
            self.onLeaseTimeout = onLeaseTimeout
        }
    }

    private enum Lease: Sendable {
        /// An idle connection, handed over.
        case connection(PostgresConnection)
        /// A free slot: the receiver opens a connection in it.
        case open
    }

    private typealias Machine = PoolStateMachine<PostgresConnection, Waiter<Lease>, ContinuousClock.Instant>

    private let configuration: Configuration
    private let logger: Logger
    /// The pool's bookkeeping (``PoolStateMachine``). Held only for one event, never across an `await`;
    /// waiters are resumed and connections closed after it is released.
    private let state: Mutex<Machine>
    private let leaseTimeoutCount = Atomic<Int>(0)

    /// How many callers have given up waiting for a connection with ``PostgresError/Code/poolTimeout`` since
    /// the pool was created (see also ``Configuration-swift.struct/onLeaseTimeout``).
    public var leaseTimeouts: Int { leaseTimeoutCount.load(ordering: .relaxed) }

    /// Creates a pool; no connection opens until the first use.
    ///
    /// - Parameters:
    ///   - configuration: where to connect and how many connections to allow.
    ///   - logger: receives debug and info messages, with `db.pool.*` metadata.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(
            Machine(
                configuration: .init(
                    maxConnections: configuration.maxConnections,
                    acquireTimeout: configuration.acquireTimeout
                )
            )
        )
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
        let action = state.withLock { $0.shutdown() }
        for waiter in action.failWaiters {
            waiter.resume(throwing: PostgresError(code: .poolClosed, reason: "the pool shut down"))
        }
        for connection in action.closeIdle {
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
        let waiter = Waiter<Lease>()
        let (id, deadline): (Machine.RequestID, ContinuousClock.Instant)
        switch state.withLock({ $0.leaseRequested(waiter, now: .now) }) {
        case .lend(let connection):
            return .connection(connection)
        case .open:
            return .open
        case .fail(let failure):
            throw poolError(failure, file: file, line: line)
        case .wait(let request, let requestDeadline):
            (id, deadline) = (request, requestDeadline)
        }

        let result = await withTaskGroup(of: Void.self, returning: Result<Lease, PostgresError>.self) { group in
            // The timer fails this waiter when it is still in line at the deadline; it is cancelled as soon as
            // the wait ends. The waiter joined the line before the timer started, and leaving the line under
            // the lock decides between the timer, a hand-over and a cancellation.
            group.addTask {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return
                }
                switch self.state.withLock({ $0.leaseTimedOut(id, now: .now) }) {
                case .none: break
                case .failWaiter(let waiter): waiter.resume(throwing: self.poolError(.poolTimeout, file: file, line: line))
                }
            }
            let result: Result<Lease, PostgresError>
            do {
                result = .success(try await waiter.wait())
            } catch let error as PostgresError {
                result = .failure(error)
            } catch {
                // Cancelled: `Waiter` resumed itself; leave the line (a hand-over that lost the race gives
                // its lease to the next in line).
                state.withLock { $0.leaseCancelled(id) }
                result = .failure(
                    PostgresError(code: .cancelled, reason: "cancelled while waiting for a connection", file: file, line: line)
                )
            }
            group.cancelAll()
            return result
        }
        if case .failure(let error) = result, error.code == .poolTimeout {
            leaseTimeoutCount.add(1, ordering: .relaxed)
            configuration.onLeaseTimeout?()
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

    private func poolError(_ failure: Machine.Failure, file: String, line: Int) -> PostgresError {
        switch failure {
        case .poolClosed: PostgresError(code: .poolClosed, reason: "the pool shut down", file: file, line: line)
        case .poolTimeout: leaseTimedOut(file: file, line: line)
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

    /// Frees the slot of a connection that is gone, or hands it straight to the first waiter.
    private func releaseSlot() {
        while case .openFor(let waiter) = state.withLock({ $0.connectionBroken() }) {
            // A waiter cancelled meanwhile refuses the slot: offer it to the next one.
            if waiter.resume(returning: .open) { return }
        }
    }

    private func giveBack(_ connection: PostgresConnection) async {
        guard await connection.isUsable else {
            logger.debug("PostgreSQL pool: discarding a connection returned broken or inside a transaction")
            await connection.close()
            releaseSlot()
            return
        }
        while true {
            switch state.withLock({ $0.connectionReturned(connection) }) {
            case .keepIdle:
                return
            case .handOver(let connection, let waiter):
                // A waiter cancelled meanwhile refuses the connection: return it again.
                if waiter.resume(returning: .connection(connection)) { return }
            case .close(let connection):
                await connection.close()
                return
            }
        }
    }
}
