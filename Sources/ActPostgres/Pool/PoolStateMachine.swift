/// The bookkeeping of ``PostgresClient``'s pool: who gets which connection or free slot, who waits in line,
/// whose wait has lasted too long.
///
/// Pure and synchronous: no I/O, no clock, no continuation. The client calls one method per event under its
/// lock, with the current time where it matters, and carries out the action it gets back (lend, open, close,
/// resume a waiter) after releasing the lock. `Connection` is what the pool lends (a ``PostgresConnection``
/// there, a string in tests), `Waiter` whatever the client resumes, `Instant` the clock's instant.
///
/// The rules:
/// - A *slot* is a connection that is idle, lent out or being opened. At most
///   ``Configuration-swift.struct/maxConnections`` slots are in use.
/// - A lease takes the most recently returned idle connection (warm caches, and idle ones at the bottom
///   age out on the server's side first), else a free slot to open a connection in, else waits in line.
/// - The line is first come, first served: a returned connection, or the slot of a broken one, goes to
///   the waiter that has waited longest.
/// - A waiter whose deadline (``Configuration-swift.struct/acquireTimeout`` after it joined) passes leaves
///   the line with `poolTimeout`; a cancelled one leaves silently. Nobody else moves.
/// - After shutdown every lease fails with `poolClosed`, waiters fail at once, idle connections are closed
///   and lent ones are closed as they come back.
struct PoolStateMachine<Connection, Waiter, Instant: InstantProtocol> where Instant.Duration == Duration {
    /// Limits, as in ``PostgresClient/Configuration-swift.struct``.
    struct Configuration {
        /// The most slots in use at once; at least 1.
        var maxConnections: Int
        /// How long a waiter stays in line before `poolTimeout`.
        var acquireTimeout: Duration
    }

    /// Names one waiter in line, for its timer and its cancellation.
    struct RequestID: Hashable, Sendable {
        let value: Int
    }

    enum State {
        case running
        case shutDown
    }

    /// Why a lease fails.
    enum Failure: Hashable, Sendable {
        /// The pool has shut down.
        case poolClosed
        /// The waiter's deadline passed before a connection came free.
        case poolTimeout
    }

    let configuration: Configuration
    private(set) var state: State = .running
    /// Idle connections, the most recently returned last.
    private(set) var idle: [Connection] = []
    /// Idle + lent out + being opened. Never exceeds `maxConnections`.
    private(set) var slotsInUse = 0
    private var waiters: [(id: RequestID, deadline: Instant, waiter: Waiter)] = []
    private var nextRequestID = 0

    init(configuration: Configuration) {
        precondition(configuration.maxConnections >= 1, "a pool needs at least one connection")
        self.configuration = configuration
    }

    /// The waiters in line, first come first.
    var waitersInLine: [Waiter] { waiters.map(\.waiter) }

    // MARK: Events

    /// What to do with a lease request.
    enum LeaseRequestedAction {
        /// Check this idle connection's health, then lend it.
        case lend(Connection)
        /// A slot was reserved: open a connection in it and lend that.
        case open
        /// Fail the request.
        case fail(Failure)
        /// The waiter joined the line: wait for it to be resumed, and call ``leaseTimedOut(_:now:)`` with
        /// this id at `deadline`.
        case wait(RequestID, deadline: Instant)
    }

    /// A caller asks for a connection at `now`; `waiter` joins the line when nothing is free, and is dropped
    /// otherwise.
    mutating func leaseRequested(_ waiter: Waiter, now: Instant) -> LeaseRequestedAction {
        switch state {
        case .shutDown:
            return .fail(.poolClosed)
        case .running:
            if let connection = idle.popLast() { return .lend(connection) }
            if slotsInUse < configuration.maxConnections {
                slotsInUse += 1
                return .open
            }
            nextRequestID += 1
            let id = RequestID(value: nextRequestID)
            let deadline = now.advanced(by: configuration.acquireTimeout)
            waiters.append((id, deadline, waiter))
            return .wait(id, deadline: deadline)
        }
    }

    /// What to do when a waiter's timer fires.
    enum LeaseTimedOutAction {
        /// It is no longer in line (served, cancelled), or its deadline has not come.
        case none
        /// Fail this waiter with ``Failure/poolTimeout``; it has left the line.
        case failWaiter(Waiter)
    }

    /// Waiter `id`'s timer fired at `now`: when it is still in line and its deadline has come, it leaves.
    mutating func leaseTimedOut(_ id: RequestID, now: Instant) -> LeaseTimedOutAction {
        guard let index = waiters.firstIndex(where: { $0.id == id }), waiters[index].deadline <= now else {
            return .none
        }
        return .failWaiter(waiters.remove(at: index).waiter)
    }

    /// Waiter `id`'s task was cancelled (and the waiter already resumed): it leaves the line, if still in it.
    mutating func leaseCancelled(_ id: RequestID) {
        waiters.removeAll { $0.id == id }
    }

    /// What to do with a healthy connection that came back.
    enum ConnectionReturnedAction {
        /// It is idle now; nothing to do.
        case keepIdle
        /// Lend it to this waiter, which has left the line. If the waiter turns out cancelled, return the
        /// connection again.
        case handOver(Connection, to: Waiter)
        /// The pool has shut down: close it (its slot is freed).
        case close(Connection)
    }

    /// A lent connection came back usable (not broken, not inside a transaction).
    mutating func connectionReturned(_ connection: Connection) -> ConnectionReturnedAction {
        switch state {
        case .shutDown:
            slotsInUse -= 1
            return .close(connection)
        case .running:
            if !waiters.isEmpty { return .handOver(connection, to: waiters.removeFirst().waiter) }
            idle.append(connection)
            return .keepIdle
        }
    }

    /// What to do with the slot of a connection that is gone.
    enum ConnectionBrokenAction {
        /// The slot is free; nothing to do.
        case none
        /// Hand the slot to this waiter, which has left the line: it opens a new connection. If the waiter
        /// turns out cancelled, report the slot broken again.
        case openFor(Waiter)
    }

    /// A lent connection came back broken (or inside a transaction) and was closed, or opening a connection in
    /// a reserved slot failed: the slot goes to the first waiter, who opens a replacement, or becomes free.
    mutating func connectionBroken() -> ConnectionBrokenAction {
        if !waiters.isEmpty { return .openFor(waiters.removeFirst().waiter) }
        slotsInUse -= 1
        return .none
    }

    /// What to do on shutdown.
    struct ShutdownAction {
        /// Close these; their slots are freed.
        var closeIdle: [Connection]
        /// Fail these with ``Failure/poolClosed``; the line is empty now.
        var failWaiters: [Waiter]
    }

    /// The pool shuts down. Connections lent out are closed as they come back (``connectionReturned(_:)``).
    mutating func shutdown() -> ShutdownAction {
        state = .shutDown
        let action = ShutdownAction(closeIdle: idle, failWaiters: waiters.map(\.waiter))
        slotsInUse -= idle.count
        idle = []
        waiters = []
        return action
    }
}
