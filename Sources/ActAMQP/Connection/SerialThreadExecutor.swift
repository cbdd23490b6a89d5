import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A serial executor that runs every job on one dedicated thread.
///
/// rabbitmq-c blocks in `poll`/`recv`/`send` and a connection must not be used from two threads at once.
/// An ``AMQPConnection`` actor runs on one of these, so its blocking C calls never occupy a thread of the
/// cooperative pool (two threads on a two-core machine).
///
/// Besides running jobs, the executor lets the job that is running wait for a socket *or* for the next
/// enqueued job (``waitForReadableOrJob(fd:timeoutMilliseconds:)``): the connection's frame pump blocks on
/// the socket without delaying publishes and acks that arrive meanwhile, which wake it through a pipe.
///
/// The thread ends after ``shutdown()`` once the queue is empty.
final class SerialThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: all mutable state (`jobs`, `head`, `waitingOnSocket`, `stopping`) is read and
    // written only while holding `mutex`; `thread` and the pipe descriptors are written once in `init`
    // (before the object is shared) and closed only by the worker thread after it has left its loop.

    /// Guards the job queue and the flags below; `condition` signals "a job arrived or stop requested".
    /// Heap-allocated so their addresses never move (a class property's `&` address is not guaranteed stable).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [UnownedJob] = []
    /// Index of the next job in `jobs`; the array is compacted when the consumed prefix grows (amortised O(1)).
    private var head = 0
    /// True while the running job waits in `poll` and needs a byte on the wake pipe to return early.
    private var waitingOnSocket = false
    private var stopping = false
    private var thread = pthread_t()
    /// Self-pipe: a byte written to `wakeWrite` makes `poll` in ``waitForReadableOrJob`` return.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    /// Starts the worker thread.
    ///
    /// - Parameter name: thread name shown by debuggers and `top -H` (Linux truncates it to 15 bytes).
    /// - Throws: ``AMQPError`` when the thread or its wake pipe cannot be created.
    init(name: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw AMQPError(.connectionFailed, replyText: "pipe() failed: errno \(errno)")
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        let unmanaged = Unmanaged.passRetained(ThreadStart(executor: self, name: name))
        let result = pthread_create(
            &thread, nil,
            { raw in
                // The retained box is released here, once; the executor lives until the loop returns.
                let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                start.executor.runLoop(name: start.name)
                return nil
            }, unmanaged.toOpaque())
        guard result == 0 else {
            unmanaged.release()
            throw AMQPError(.connectionFailed, replyText: "pthread_create failed: \(result)")
        }
        pthread_detach(thread)
    }

    deinit {
        // Runs after the worker thread has left its loop (it holds a strong reference until then), so
        // nothing can still wait on the condition or write to the pipe.
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
        close(wakeRead)
        close(wakeWrite)
    }

    /// Carries the executor into the new thread (strongly: the thread keeps the executor alive).
    private final class ThreadStart {
        let executor: SerialThreadExecutor
        let name: String
        init(executor: SerialThreadExecutor, name: String) {
            self.executor = executor
            self.name = name
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(unowned)
        let wake = waitingOnSocket
        waitingOnSocket = false
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if wake { writeWakeByte() }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        precondition(pthread_equal(pthread_self(), thread) != 0, "not on the AMQP connection thread")
    }

    /// Asks the thread to end once every queued job has run. Jobs enqueued later still run first.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        let wake = waitingOnSocket
        waitingOnSocket = false
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if wake { writeWakeByte() }
    }

    /// Wakes a job blocked in ``waitForReadableOrJob(fd:timeoutMilliseconds:)`` (for cancellation).
    func wakeUp() {
        pthread_mutex_lock(mutex)
        let wake = waitingOnSocket
        waitingOnSocket = false
        pthread_mutex_unlock(mutex)
        if wake { writeWakeByte() }
    }

    /// What ended a ``waitForReadableOrJob(fd:timeoutMilliseconds:)``.
    enum WaitResult {
        case readable
        case jobPending
        case timedOut
    }

    /// Blocks the current job until `fd` is readable, another job is enqueued (or ``wakeUp()`` is called),
    /// or the timeout passes. Call only from a job running on this executor.
    ///
    /// With `ignoringJobs`, only the socket and the timeout end the wait: a caller that waits briefly for
    /// its own reply (a publisher confirm) uses it to avoid thread hops, bounding the delay of other jobs.
    func waitForReadableOrJob(fd: Int32, timeoutMilliseconds: Int32, ignoringJobs: Bool = false) -> WaitResult {
        if ignoringJobs {
            var single = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&single, 1, timeoutMilliseconds) > 0 ? .readable : .timedOut
        }
        // Drain stale wake bytes first, then publish "waiting" and check the queue under the lock: an
        // enqueue after this point either is seen here or writes a fresh byte that ends the poll.
        var scratch = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &scratch, scratch.count) > 0 {}
        pthread_mutex_lock(mutex)
        if head < jobs.count || stopping {
            pthread_mutex_unlock(mutex)
            return .jobPending
        }
        waitingOnSocket = true
        pthread_mutex_unlock(mutex)

        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        let result = poll(&fds, 2, timeoutMilliseconds)

        pthread_mutex_lock(mutex)
        waitingOnSocket = false
        let pending = head < jobs.count || stopping
        pthread_mutex_unlock(mutex)
        if result > 0 && fds[0].revents != 0 { return .readable }
        if pending || (result > 0 && fds[1].revents != 0) { return .jobPending }
        return .timedOut
    }

    private func writeWakeByte() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func runLoop(name: String) {
        Thread.current.name = name
        while true {
            pthread_mutex_lock(mutex)
            while head == jobs.count && !stopping {
                pthread_cond_wait(condition, mutex)
            }
            if head == jobs.count {  // stopping, queue empty
                pthread_mutex_unlock(mutex)
                break
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 && head * 2 >= jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            pthread_mutex_unlock(mutex)
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}
