
/// A level-triggered wake-up with a timeout for each waiter.
///
/// ``signal()`` wakes every task waiting in ``wait(timeout:)`` at that moment; when none waits, the signal is
/// kept and the next ``wait(timeout:)`` returns at once (several signals before it count as one). A waiter
/// whose timeout passes, or whose task is cancelled, leaves alone: no other waiter wakes, and no signal is
/// used up. Use it for "there may be new work, look again", such as an outbox that a commit has just filled,
/// with the timeout as the polling fallback.
///
/// ```swift
/// let outboxFilled = Signal()
/// // relay loop:
/// while !Task.isCancelled {
///     try await relayBatch()
///     await outboxFilled.wait(timeout: .milliseconds(200))
/// }
/// // after a commit that wrote outbox rows:
/// outboxFilled.signal()
/// ```
public final class Signal: Sendable {
    /// What ended a ``Signal/wait(timeout:)``.
    public enum WaitResult: Sendable, Hashable {
        /// ``Signal/signal()`` was called while waiting, or before and not yet consumed.
        case signalled
        /// The timeout passed first.
        case timedOut
        /// The waiting task was cancelled first.
        case cancelled
    }

    private struct State {
        /// A signal that found no waiter, kept for the next one.
        var isSet = false
        var waiters: [(id: UInt64, waiter: Waiter<WaitResult>)] = []
        var nextID: UInt64 = 0

        /// Takes waiter `id` out of the line; nil when it has left (signalled, timed out or cancelled).
        mutating func remove(_ id: UInt64) -> Waiter<WaitResult>? {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index).waiter
        }
    }

    /// Guards the flag and the line. ``signal()`` resumes waiters while holding it, so that a waiter that
    /// joins concurrently is either in the batch being woken or sees the flag; resuming only schedules the
    /// waiting task, and ``Waiter`` never calls back into this type, so the lock is held briefly and never
    /// nested the other way round.
    private let state = Lock(State())

    /// Creates a signal that is not set.
    public init() {}

    /// Wakes every current waiter, or, when none waits (or every one has just been cancelled), keeps the
    /// signal for the next ``wait(timeout:)``.
    public func signal() {
        state.withLock { state in
            var woke = false
            for entry in state.waiters {
                if entry.waiter.resume(returning: .signalled) { woke = true }
            }
            state.waiters.removeAll()
            if !woke { state.isSet = true }
        }
    }

    /// Waits for ``signal()``, at most `timeout`, or until the task is cancelled.
    ///
    /// Returns at once, consuming the signal, when one is pending.
    ///
    /// - Parameter timeout: the longest wait.
    /// - Returns: why the wait ended.
    @discardableResult
    public func wait(timeout: Duration) async -> WaitResult {
        if Task.isCancelled { return .cancelled }
        let waiter = Waiter<WaitResult>()
        let id: UInt64? = state.withLock { state in
            if state.isSet {
                state.isSet = false
                return nil
            }
            state.nextID += 1
            // In line before the timer starts, so the timer always finds it (or finds it gone).
            state.waiters.append((state.nextID, waiter))
            return state.nextID
        }
        guard let id else { return .signalled }
        return await withTaskGroup(of: Void.self, returning: WaitResult.self) { group in
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return  // the wait ended first
                }
                self.state.withLock { $0.remove(id) }?.resume(returning: .timedOut)
            }
            let result: WaitResult
            do {
                result = try await waiter.wait()
            } catch {
                // Cancelled: leave the line without touching the flag or anyone else.
                _ = state.withLock { $0.remove(id) }
                result = .cancelled
            }
            group.cancelAll()
            return result
        }
    }

    /// How many tasks wait now; for tests.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Whether a signal is kept for the next waiter; for tests.
    var isSet: Bool { state.withLock { $0.isSet } }
}
