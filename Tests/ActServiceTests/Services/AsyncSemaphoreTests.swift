@testable import ActTesting
import Testing

/// The in-memory store's pool and transaction lock.
@Suite("async semaphore")
struct AsyncSemaphoreTests {
    @Test func aTaskCancelledBeforeItWaitsNeverWaits() async {
        let semaphore = AsyncSemaphore(permits: 0)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }  // cancelled before it asks: the handler runs at once
            return await semaphore.acquire(timeout: nil)
        }
        #expect(await task.value == false)
    }

    @Test func waitersAreServedInOrderAndATimeoutRemovesOnlyItsOwn() async {
        let semaphore = AsyncSemaphore(permits: 1)
        #expect(await semaphore.acquire(timeout: nil))
        #expect(await semaphore.acquire(timeout: .milliseconds(10)) == false)
        let waiter = Task { await semaphore.acquire(timeout: nil) }
        try? await Task.sleep(for: .milliseconds(20))
        semaphore.release()
        #expect(await waiter.value)
    }
}
