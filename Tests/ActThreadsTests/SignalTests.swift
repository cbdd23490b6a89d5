@testable import ActThreads
import Testing

/// The level-triggered wake-up: a signal is never lost, a timeout or a cancellation touches only its own waiter.
@Suite struct SignalTests {
    /// Waits until `count` tasks wait on `signal` (a task is in line once `wait` has registered it).
    static func waitersArrive(_ signal: Signal, count: Int) async {
        while signal.waiterCount < count { await Task.yield() }
    }

    @Test func aSignalWithNoWaiterIsKeptForTheNextWaitAndCountsOnce() async {
        let signal = Signal()
        signal.signal()
        signal.signal()
        #expect(signal.isSet)
        #expect(await signal.wait(timeout: .seconds(60)) == .signalled)
        #expect(!signal.isSet)
        #expect(await signal.wait(timeout: .milliseconds(1)) == .timedOut)
    }

    @Test func aSignalWakesEveryCurrentWaiterAndIsUsedUp() async {
        let signal = Signal()
        async let first = signal.wait(timeout: .seconds(60))
        async let second = signal.wait(timeout: .seconds(60))
        await Self.waitersArrive(signal, count: 2)
        signal.signal()
        #expect(await first == .signalled)
        #expect(await second == .signalled)
        #expect(!signal.isSet)
    }

    @Test func aTimeoutEndsOnlyItsOwnWaiter() async {
        let signal = Signal()
        async let patient = signal.wait(timeout: .seconds(60))
        await Self.waitersArrive(signal, count: 1)
        #expect(await signal.wait(timeout: .milliseconds(5)) == .timedOut)
        // The patient waiter was not woken by the other's timeout, and no signal was invented or used up.
        #expect(signal.waiterCount == 1)
        #expect(!signal.isSet)
        signal.signal()
        #expect(await patient == .signalled)
    }

    @Test func aCancelledWaiterLeavesWithoutWakingOthersOrUsingUpASignal() async {
        let signal = Signal()
        async let patient = signal.wait(timeout: .seconds(60))
        await Self.waitersArrive(signal, count: 1)
        let cancelled = Task { await signal.wait(timeout: .seconds(60)) }
        await Self.waitersArrive(signal, count: 2)
        cancelled.cancel()
        #expect(await cancelled.value == .cancelled)
        #expect(signal.waiterCount == 1)
        #expect(!signal.isSet)
        signal.signal()
        #expect(await patient == .signalled)
    }

    @Test func aTaskCancelledBeforeWaitingReturnsAtOnce() async {
        let signal = Signal()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await signal.wait(timeout: .seconds(60))
        }
        #expect(await task.value == .cancelled)
        #expect(signal.waiterCount == 0)
    }

    @Test func noSignalIsLostUnderConcurrentSignalsAndWaits() async {
        // Each round: a waiter and a signaller race; the waiter must see the signal, kept or delivered.
        let signal = Signal()
        for _ in 0..<500 {
            async let waited = signal.wait(timeout: .seconds(60))
            async let signalled: Void = signal.signal()
            await signalled
            #expect(await waited == .signalled)
            #expect(!signal.isSet)
        }
    }
}
