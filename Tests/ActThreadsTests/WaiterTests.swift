import ActThreads
import Testing

/// The one-shot rendezvous: a result delivered early is kept, a cancelled waiter lets its deliverer keep the value.
@Suite struct WaiterTests {
    @Test func aResultDeliveredBeforeTheWaitIsKept() async throws {
        let waiter = Waiter<Int>()
        #expect(waiter.resume(returning: 1))
        #expect(try await waiter.wait() == 1)
    }

    @Test func aResultDeliveredDuringTheWaitResumesIt() async throws {
        let waiter = Waiter<Int>()
        async let value = waiter.wait()
        await Task.yield()
        waiter.resume(returning: 2)
        #expect(try await value == 2)
    }

    @Test func onlyTheFirstResultCounts() async throws {
        let waiter = Waiter<Int>()
        #expect(waiter.resume(returning: 1))
        #expect(!waiter.resume(returning: 2))
        #expect(!waiter.resume(throwing: CancellationError()))
        #expect(try await waiter.wait() == 1)
    }

    @Test func aCancelledWaiterThrowsAndRefusesALaterResult() async {
        let waiter = Waiter<Int>()
        let task = Task { try await waiter.wait() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // The deliverer learns that nobody took the value, and keeps it.
        #expect(!waiter.resume(returning: 3))
    }

    @Test func takeIfReadyReturnsADeliveredResultWithoutSuspending() throws {
        let waiter = Waiter<Int>()
        #expect(waiter.takeIfReady() == nil)
        waiter.resume(returning: 4)
        #expect(try waiter.takeIfReady()?.get() == 4)
        #expect(waiter.takeIfReady() == nil)
    }
}
