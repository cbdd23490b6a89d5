import Synchronization
@testable import ActThreads
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one executor both C clients run on: jobs run in order on one thread, a job can park on a socket and be
/// woken, and a thread that cannot start is an error, not a crash.
@Suite struct SerialThreadExecutorTests {
    /// An actor on its own thread, as the connections are.
    actor Worker {
        let executor: SerialThreadExecutor
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        var log: [Int] = []

        init(executor: SerialThreadExecutor) { self.executor = executor }

        func append(_ value: Int) { log.append(value) }

        func thread() -> pthread_t { pthread_self() }

        func isolationHolds() -> Bool {
            assertIsolated()
            return executor.isIsolatingCurrentContext() == true
        }

        /// Parks on `fd` the way a connection waits for its answer.
        func park(on fd: Int32, timeoutMilliseconds: Int32, wakeForJobs: Bool) -> SerialThreadExecutor.WaitResult {
            executor.wait(forReadable: fd, timeoutMilliseconds: timeoutMilliseconds, wakeForJobs: wakeForJobs)
        }
    }

    /// A pipe standing in for a socket; closed when the test ends.
    final class Socket: Sendable {
        let readFD: Int32
        let writeFD: Int32

        init() {
            var fds: [Int32] = [-1, -1]
            precondition(pipe(&fds) == 0)
            readFD = fds[0]
            writeFD = fds[1]
        }

        deinit {
            close(readFD)
            close(writeFD)
        }

        func send() {
            var byte: UInt8 = 7
            _ = write(writeFD, &byte, 1)
        }
    }

    @Test func jobsRunInOrderOnOneThreadThatIsNotTheCaller() async throws {
        let executor = try SerialThreadExecutor(name: "test-order")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        for value in 0..<200 { await worker.append(value) }
        #expect(await worker.log == Array(0..<200))
        let first = await worker.thread()
        let second = await worker.thread()
        #expect(pthread_equal(first, second) != 0)
        #expect(pthread_equal(first, pthread_self()) == 0)
        #expect(await worker.isolationHolds())
        #expect(executor.isIsolatingCurrentContext() == false)
    }

    @Test func concurrentCallersAreSerialised() async throws {
        let executor = try SerialThreadExecutor(name: "test-serial")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        await withTaskGroup(of: Void.self) { group in
            for value in 0..<400 {
                group.addTask { await worker.append(value) }
            }
        }
        #expect(await worker.log.sorted() == Array(0..<400))
    }

    @Test func aParkedJobReturnsWhenTheSocketBecomesReadable() async throws {
        let executor = try SerialThreadExecutor(name: "test-readable")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        let socket = Socket()
        socket.send()
        #expect(await worker.park(on: socket.readFD, timeoutMilliseconds: 10_000, wakeForJobs: false) == .readable)
    }

    @Test func aParkedJobTimesOut() async throws {
        let executor = try SerialThreadExecutor(name: "test-timeout")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        let socket = Socket()
        #expect(await worker.park(on: socket.readFD, timeoutMilliseconds: 5, wakeForJobs: false) == .timedOut)
    }

    @Test func wakeEndsAParkedJobAndAWakeBeforehandEndsTheNextOne() async throws {
        let executor = try SerialThreadExecutor(name: "test-wake")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        let socket = Socket()
        // A wake that arrives before the wait is not lost (a cancellation just before parking).
        executor.wake()
        #expect(await worker.park(on: socket.readFD, timeoutMilliseconds: 10_000, wakeForJobs: false) == .woken)
        // …and is consumed: the next wait sleeps until its timeout.
        #expect(await worker.park(on: socket.readFD, timeoutMilliseconds: 5, wakeForJobs: false) == .timedOut)
        // A wake from another thread while parked.
        async let parked = worker.park(on: socket.readFD, timeoutMilliseconds: 10_000, wakeForJobs: false)
        while !executor.isParked { await Task.yield() }
        executor.wake()
        #expect(await parked == .woken)
    }

    @Test func aJobParkedForJobsYieldsToAnEnqueuedJob() async throws {
        let executor = try SerialThreadExecutor(name: "test-jobs")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        let socket = Socket()
        async let parked = worker.park(on: socket.readFD, timeoutMilliseconds: 10_000, wakeForJobs: true)
        while !executor.isParked { await Task.yield() }
        async let appended: Void = worker.append(1)
        #expect(await parked == .jobsPending)
        await appended
        #expect(await worker.log == [1])
    }

    @Test func aJobParkedForItsOwnAnswerIsNotWokenByOtherJobs() async throws {
        let executor = try SerialThreadExecutor(name: "test-own")
        defer { executor.shutdown() }
        let worker = Worker(executor: executor)
        let socket = Socket()
        async let parked = worker.park(on: socket.readFD, timeoutMilliseconds: 10_000, wakeForJobs: false)
        while !executor.isParked { await Task.yield() }
        async let appended: Void = worker.append(1)
        while executor.queuedJobCount == 0 { await Task.yield() }
        // The queued job did not end the wait: only the answer does, and the job runs after it.
        #expect(executor.isParked)
        socket.send()
        #expect(await parked == .readable)
        await appended
        #expect(await worker.log == [1])
    }

    @Test func jobsQueuedAfterShutdownStillRun() async throws {
        let executor = try SerialThreadExecutor(name: "test-shutdown")
        let worker = Worker(executor: executor)
        for value in 0..<10 { await worker.append(value) }
        executor.shutdown()
        // Jobs enqueued after shutdown still run.
        await worker.append(10)
        #expect(await worker.log == Array(0...10))
    }

    /// The loop returns once shut down with nothing queued; a job that comes later (an actor method called
    /// on a closed connection) used to wait for ever. It hung the unit tests about once in two runs on a
    /// loaded machine, through the test above.
    @Test func aJobAfterTheShutDownLoopReturnedStillRuns() async throws {
        let executor = try SerialThreadExecutor(name: "test-late-job")
        let worker = Worker(executor: executor)
        await worker.append(0)
        executor.shutdown()
        try await Task.sleep(for: .milliseconds(200))  // the loop has returned by now
        let ran = Mutex(false)
        Task {
            await worker.append(1)
            ran.withLock { $0 = true }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !ran.withLock({ $0 }), clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let appended = ran.withLock { $0 }
        #expect(appended, "a job enqueued after the loop returned never ran")
    }

    @Test func aThreadThatCannotStartIsAnErrorNotACrash() {
        let error = #expect(throws: SerialThreadExecutorError.self) {
            _ = try SerialThreadExecutor(name: "test-no-thread") { _ in EAGAIN }
        }
        #expect(error?.code == .threadCreationFailed)
        #expect(error?.systemError == EAGAIN)
        #expect(error?.description.contains("test-no-thread") == true)
    }
}
