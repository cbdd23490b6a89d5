import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A serial executor that runs every job on one dedicated thread.
///
/// libpq calls block and a `PGconn` must never be used from two threads at once. Each
/// ``PostgresConnection`` is an actor whose executor is one of these, so its blocking calls run on a thread
/// of their own and never on the cooperative pool (two threads on a two-core machine).
///
/// Besides running jobs, the thread can *park* on a socket (``wait(forReadable:timeoutMilliseconds:wakeForJobs:)``):
/// it then sleeps in `poll(2)` until the socket is readable, ``wake()`` is called (e.g. by a cancellation
/// handler), or — when asked — a new job is enqueued. That is how a connection waits for query results and
/// notifications without blocking its callers' threads and while staying cancellable.
///
/// The thread lives until ``shutdown()``; jobs enqueued before it still run.
final class SerialThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: every mutable stored property (`jobs`, `isShutdown`, `parkedForJobs`, `threadID`)
    // is read and written only while holding `condition`'s lock. `wakeReadFD` / `wakeWriteFD` are set in
    // `init` and never change; writing to and reading from a pipe are thread-safe system calls.

    /// Guards `jobs`, `isShutdown`, `parkedForJobs` and `threadID`; its condition signals a new job or shutdown.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var isShutdown = false
    /// True while the thread sleeps in `wait(forReadable:…wakeForJobs: true)`: `enqueue` must then wake it.
    private var parkedForJobs = false
    private var threadID: pthread_t?

    /// A non-blocking self-pipe: a byte written to `wakeWriteFD` ends a `poll` on `wakeReadFD`.
    private let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    /// Starts the thread.
    ///
    /// - Parameter name: the thread's name as tools such as `top -H` show it (Linux truncates it to 15 bytes).
    init(name: String) {
        var fds: [Int32] = [-1, -1]
        let created = fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress!) } == 0
        // A process out of file descriptors cannot open a database connection either; failing here is the
        // honest outcome and not reachable from outside input.
        precondition(created, "SerialThreadExecutor: pipe() failed (errno \(errno))")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.wakeReadFD = fds[0]
        self.wakeWriteFD = fds[1]

        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.start()
    }

    deinit {
        close(wakeReadFD)
        close(wakeWriteFD)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        condition.lock()
        jobs.append(unownedJob)
        let mustWake = parkedForJobs
        condition.signal()
        condition.unlock()
        if mustWake { wake() }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func isIsolatingCurrentContext() -> Bool? {
        isOnExecutorThread
    }

    func checkIsolated() {
        precondition(isOnExecutorThread, "not on the SerialThreadExecutor's thread")
    }

    private var isOnExecutorThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    /// Lets the thread finish the jobs already queued, then end.
    func shutdown() {
        condition.lock()
        isShutdown = true
        condition.signal()
        condition.unlock()
        wake()
    }

    /// Ends a current or the next ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)`` early. Callable from any thread.
    func wake() {
        var byte: UInt8 = 1
        // EAGAIN (pipe full) is fine: a wake-up is already pending.
        _ = write(wakeWriteFD, &byte, 1)
    }

    /// What ended a ``wait(forReadable:timeoutMilliseconds:wakeForJobs:)``.
    enum WaitResult {
        case readable
        case woken
        case jobsPending
        case timedOut
    }

    /// Sleeps on the executor's thread until `fd` is readable, ``wake()`` is called, the timeout passes, or
    /// (with `wakeForJobs`) another job is waiting to run.
    ///
    /// Call only from a job running on this executor.
    func wait(forReadable fd: Int32, timeoutMilliseconds: Int32, wakeForJobs: Bool) -> WaitResult {
        if wakeForJobs {
            condition.lock()
            if !jobs.isEmpty || isShutdown {
                condition.unlock()
                return .jobsPending
            }
            parkedForJobs = true
            condition.unlock()
        }
        defer {
            if wakeForJobs {
                condition.lock()
                parkedForJobs = false
                condition.unlock()
            }
        }
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0),
        ]
        let count = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress!, 2, timeoutMilliseconds) }
        if count < 0 {
            // EINTR: report a spurious wake-up; callers re-check their state and wait again.
            return .woken
        }
        if count == 0 { return .timedOut }
        if fds[1].revents != 0 {
            drainWakeups()
            if wakeForJobs && hasPendingJobs { return .jobsPending }
            if fds[0].revents == 0 { return .woken }
        }
        return .readable
    }

    private var hasPendingJobs: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !jobs.isEmpty || isShutdown
    }

    private func drainWakeups() {
        // 64 bytes per read: wake-ups are coalesced, so the pipe rarely holds more than a few.
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ read(wakeReadFD, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func runLoop() {
        condition.lock()
        threadID = pthread_self()
        condition.unlock()
        let executor = asUnownedSerialExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && !isShutdown {
                condition.wait()
            }
            if jobs.isEmpty && isShutdown {
                condition.unlock()
                return
            }
            // One job at a time, so that `jobs` always holds everything still waiting: a job that parks with
            // `wakeForJobs` must see the others. The queue is short, so `removeFirst` is cheap.
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: executor)
        }
    }
}
