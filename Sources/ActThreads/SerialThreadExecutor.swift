import class Foundation.Thread

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A serial executor that runs every job on one dedicated thread.
///
/// libpq and rabbitmq-c calls block, and neither a `PGconn` nor an `amqp_connection_state_t` may be used from
/// two threads at once. Each `PostgresConnection` and each `AMQPConnection` is an actor whose executor is one of
/// these, so its blocking C calls run on a thread of their own and never on the cooperative pool (two threads on
/// a two-core machine).
///
/// Besides running jobs, the thread can *park* on a socket
/// (``wait(forReadable:timeoutMilliseconds:wakeForJobs:)``): it then sleeps in `poll(2)` until the socket is
/// readable, ``wake()`` is called (by a cancellation handler, say), the timeout passes or — when asked — another
/// job is enqueued. That is how a connection waits for a query result, a publisher confirm or a notification
/// without blocking its callers and while staying cancellable, and how a frame pump lets a publish or an ack
/// that arrives meanwhile run first.
///
/// The thread lives until ``shutdown()``; jobs enqueued before and after it still run, then the thread ends.
///
/// ```swift
/// actor Connection {
///     let executor: SerialThreadExecutor
///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     init() throws { executor = try SerialThreadExecutor(name: "db-conn") }
///     isolated deinit { executor.shutdown() }
/// }
/// ```
public final class SerialThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: every mutable stored property (`jobs`, `head`, `parkedForJobs`, `parked`,
    // `isShutdown`, `loopExited`, `threadID`) is read and written only while holding `mutex`. `mutex`,
    // `condition`, `wakeReadFD` and `wakeWriteFD` are set in `init`, before the object is shared, and never
    // change; they are destroyed in `deinit`, which runs after the thread has left its loop (the thread holds a
    // strong reference until then). Writing to and reading from a pipe are thread-safe system calls.

    /// Guards the queue and the flags below; `condition` signals "a job arrived or shutdown was asked".
    /// Allocated on the heap so that their addresses never move: `&` on a class property gives a temporary.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// Jobs waiting to run are `jobs[head...]`. The consumed prefix is dropped when the queue empties or grows
    /// past half its size, so dequeuing is amortised O(1) and a parked job sees every job still waiting.
    private var jobs: [UnownedJob] = []
    private var head = 0
    /// True while the running job sleeps in `wait(…wakeForJobs: true)`: ``enqueue(_:)`` must then wake it.
    private var parkedForJobs = false
    /// True while the running job sleeps in any `wait`; tests read it through ``isParked``.
    private var parked = false
    private var isShutdown = false
    /// True once the loop returned (shut down, nothing queued): ``enqueue(_:)`` must start it again.
    private var loopExited = false
    /// The thread's name, for a loop started again after shutdown.
    private let name: String
    /// The worker thread, once it runs; nil before (and forever when it could not start).
    private var threadID: pthread_t?

    /// A non-blocking self-pipe: a byte written to `wakeWriteFD` ends a `poll` on `wakeReadFD`.
    private let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    /// Starts the thread.
    ///
    /// - Parameter name: the thread's name as debuggers and `top -H` show it (Linux keeps the first 15 bytes).
    /// - Throws: ``SerialThreadExecutorError`` when the wake pipe or the thread cannot be created (the process
    ///   is out of file descriptors or threads). It never crashes the process.
    public convenience init(name: String) throws(SerialThreadExecutorError) {
        try self.init(name: name, createThread: Self.createDetachedThread)
    }

    /// Starts the thread with `createThread`, which returns 0 or a `pthread_create` error; tests pass one that
    /// fails.
    init(name: String, createThread: (ThreadStart) -> Int32) throws(SerialThreadExecutorError) {
        var fds: [Int32] = [-1, -1]
        guard fds.withUnsafeMutableBufferPointer({ pipe($0.baseAddress!) }) == 0 else {
            throw SerialThreadExecutorError(.wakePipeCreationFailed, systemError: errno, threadName: name)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeReadFD = fds[0]
        wakeWriteFD = fds[1]
        self.name = name
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        // Fully initialised from here: when this throws, `deinit` runs and frees the pipe and the lock.
        let status = createThread(ThreadStart(executor: self, name: name))
        guard status == 0 else {
            throw SerialThreadExecutorError(.threadCreationFailed, systemError: status, threadName: name)
        }
    }

    deinit {
        // Runs after the worker thread has left its loop (or never started), so nothing waits on the
        // condition or polls the pipe any more.
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deinitialize(count: 1)
        condition.deallocate()
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        close(wakeReadFD)
        close(wakeWriteFD)
    }

    /// What the new thread needs: the executor, held strongly until its loop ends, and the thread's name.
    final class ThreadStart {
        let executor: SerialThreadExecutor
        let name: String

        init(executor: SerialThreadExecutor, name: String) {
            self.executor = executor
            self.name = name
        }
    }

    private static func createDetachedThread(_ start: ThreadStart) -> Int32 {
        let box = Unmanaged.passRetained(start)
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let status = pthread_create(
            &thread,
            nil,
            { raw in
                // Balances `passRetained`: the box, and with it the executor, lives until the loop returns.
                let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                start.executor.runLoop(name: start.name)
                return nil
            },
            box.toOpaque()
        )
        guard status == 0 else {
            box.release()
            return status
        }
        #if canImport(Darwin)
        pthread_detach(thread!)
        #else
        pthread_detach(thread)
        #endif
        return 0
    }

    // MARK: SerialExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(unownedJob)
        let mustWake = parkedForJobs
        // A job that arrives after the shut-down loop already returned (an actor method called on a closed
        // connection) would otherwise wait for ever: start the loop again; it drains and returns.
        let mustRestart = loopExited
        loopExited = false
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if mustWake { wake() }
        if mustRestart {
            let status = Self.createDetachedThread(ThreadStart(executor: self, name: name))
            if status != 0 {
                // No thread to drain the queue: run the job here rather than never (only after shutdown).
                pthread_mutex_lock(mutex)
                loopExited = true
                let queued = Array(jobs[head...])
                jobs.removeAll()
                head = 0
                pthread_mutex_unlock(mutex)
                for queuedJob in queued { queuedJob.runSynchronously(on: asUnownedSerialExecutor()) }
            }
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isOnExecutorThread
    }

    public func checkIsolated() {
        precondition(isOnExecutorThread, "not on the SerialThreadExecutor's thread")
    }

    private var isOnExecutorThread: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    // MARK: Lifecycle

    /// Lets the thread run the jobs already queued (and any enqueued later), then end.
    ///
    /// A job parked in ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)`` with `wakeForJobs` returns
    /// ``WaitResult/jobsPending``, so that it can finish.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        isShutdown = true
        let mustWake = parkedForJobs
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if mustWake { wake() }
    }

    // MARK: Parking on a socket

    /// What ended a ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)``.
    public enum WaitResult: Sendable, Hashable {
        /// The socket has data (or end-of-file, or an error: the next read says which).
        case readable
        /// ``wake()`` was called, now or since the last wait, or a signal interrupted `poll`. Re-check and
        /// wait again.
        case woken
        /// Another job waits to run, or the executor is shutting down (only with `wakeForJobs`).
        case jobsPending
        /// The timeout passed.
        case timedOut
    }

    /// Sleeps on the executor's thread until `fd` is readable, ``wake()`` is called, the timeout passes, or
    /// (with `wakeForJobs`) another job is waiting to run.
    ///
    /// Call only from a job running on this executor.
    ///
    /// - Parameters:
    ///   - fd: the socket to wait for.
    ///   - timeoutMilliseconds: the longest wait; 0 only polls, -1 waits without limit.
    ///   - wakeForJobs: whether a newly enqueued job ends the wait. A job that waits for its own answer and
    ///     must not lose its place (a query result) passes false; a loop that merely listens (a frame pump,
    ///     a notification listener) passes true, returns, and lets the queued jobs run.
    public func wait(forReadable fd: Int32, timeoutMilliseconds: Int32, wakeForJobs: Bool) -> WaitResult {
        pthread_mutex_lock(mutex)
        if wakeForJobs && (head < jobs.count || isShutdown) {
            pthread_mutex_unlock(mutex)
            return .jobsPending
        }
        // Published under the lock: an enqueue after this point sees it and writes a wake byte.
        parkedForJobs = wakeForJobs
        parked = true
        pthread_mutex_unlock(mutex)
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0),
        ]
        let count = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress!, 2, timeoutMilliseconds) }
        pthread_mutex_lock(mutex)
        parkedForJobs = false
        parked = false
        let pending = wakeForJobs && (head < jobs.count || isShutdown)
        pthread_mutex_unlock(mutex)
        // EINTR: report a spurious wake-up; callers re-check their state and wait again.
        if count < 0 { return pending ? .jobsPending : .woken }
        if count == 0 { return pending ? .jobsPending : .timedOut }
        if fds[1].revents != 0 {
            drainWakeups()
            if pending { return .jobsPending }
            if fds[0].revents == 0 { return .woken }
        }
        return .readable
    }

    /// Whether a job sleeps in ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)`` now; for tests.
    var isParked: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return parked
    }

    /// How many jobs wait to run; for tests.
    var queuedJobCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return jobs.count - head
    }

    /// Ends the current or the next ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)`` early with
    /// ``WaitResult/woken``. Callable from any thread, e.g. a task cancellation handler.
    public func wake() {
        var byte: UInt8 = 1
        // EAGAIN (pipe full) is fine: a wake-up is already pending.
        _ = write(wakeWriteFD, &byte, 1)
    }

    private func drainWakeups() {
        // 64 bytes per read: wake-ups coalesce, so the pipe rarely holds more than a few.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            while read(wakeReadFD, buffer.baseAddress, buffer.count) > 0 {}
        }
    }

    // MARK: The thread

    private func runLoop(name: String) {
        Self.nameCurrentThread(name)
        pthread_mutex_lock(mutex)
        threadID = pthread_self()
        pthread_mutex_unlock(mutex)
        let executor = asUnownedSerialExecutor()
        while true {
            pthread_mutex_lock(mutex)
            while head == jobs.count && !isShutdown {
                pthread_cond_wait(condition, mutex)
            }
            if head == jobs.count {  // shut down, and nothing left to run
                loopExited = true
                pthread_mutex_unlock(mutex)
                return
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 && head * 2 >= jobs.count {
                // A long-lived backlog: drop the consumed prefix now and then, not on every job.
                jobs.removeFirst(head)
                head = 0
            }
            pthread_mutex_unlock(mutex)
            job.runSynchronously(on: executor)
        }
    }

    private static func nameCurrentThread(_ name: String) {
        // Foundation, because Glibc's module map does not export `pthread_setname_np` (a GNU extension).
        // Linux keeps the first 15 bytes.
        Thread.current.name = name
    }
}
