internal import Synchronization

/// An error an in-memory port throws because a test told it to.
public struct InjectedFault: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Which calls of an in-memory port fail next, and how: a test says "the second commit fails" or "the
/// ack is lost after the commit" in one line, and the port consults the plan on every call.
public final class FaultPlan<Call: Hashable & Sendable>: Sendable {
    /// When an injected failure happens relative to the call's effect.
    public enum Moment: Sendable {
        /// The call throws and has no effect (a request that never reached the server).
        case before
        /// The call takes effect, then throws (the answer was lost: a commit that committed, a publish that
        /// reached the broker).
        case after
    }

    private struct Fault {
        /// The calls (1-based, counted per kind of call) that fail.
        var calls: ClosedRange<Int>
        var moment: Moment
        var error: any Error & Sendable
    }

    private struct State {
        var faults: [Call: [Fault]] = [:]
        var counts: [Call: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Fails the next `times` calls of `call`, after letting `skip` calls through.
    public func fail(_ call: Call, skip: Int = 0, times: Int = 1, moment: Moment = .before,
        with error: any Error & Sendable = InjectedFault("injected fault"))
    {
        state.withLock { state in
            let first = state.counts[call, default: 0] + skip + 1
            state.faults[call, default: []].append(
                Fault(calls: first...(first + max(1, times) - 1), moment: moment, error: error))
        }
    }

    /// Removes every planned failure.
    public func clear() {
        state.withLock { $0.faults = [:] }
    }

    /// How many times `call` was made.
    public func count(_ call: Call) -> Int {
        state.withLock { $0.counts[call, default: 0] }
    }

    /// Throws the failure planned before `call` takes effect, if any (and counts the call).
    func before(_ call: Call) throws {
        let error = state.withLock { state -> (any Error)? in
            state.counts[call, default: 0] += 1
            return Self.planned(state, call, .before)
        }
        if let error { throw error }
    }

    /// Throws the failure planned after `call` took effect, if any.
    func after(_ call: Call) throws {
        if let error = state.withLock({ Self.planned($0, call, .after) }) { throw error }
    }

    private static func planned(_ state: State, _ call: Call, _ moment: Moment) -> (any Error)? {
        let number = state.counts[call, default: 0]
        return state.faults[call]?.first { $0.moment == moment && $0.calls.contains(number) }?.error
    }
}

/// A counting semaphore with FIFO waiters and an optional timeout: the in-memory store's connections
/// (a pool of a chosen size, so a test can show a nested lease cannot deadlock) and its transaction lock.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var permits: Int
        var waiters: [Waiter] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    init(permits: Int) {
        state = Mutex(State(permits: permits))
    }

    /// Takes a permit, waiting at most `timeout` (for ever when nil).
    ///
    /// - Returns: Whether a permit was taken (false: timed out or cancelled); release only a permit taken.
    func acquire(timeout: Duration?) async -> Bool {
        let id = state.withLock { state -> Int? in
            if state.permits > 0, state.waiters.isEmpty {
                state.permits -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                // A task cancelled before this point had its cancellation handler run already, with no
                // waiter to end: it must not start waiting now, or it would wait for ever.
                let decided = state.withLock { state -> Bool? in
                    if state.permits > 0, state.waiters.isEmpty {
                        state.permits -= 1
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let decided { continuation.resume(returning: decided) }
                if let timeout, decided == nil {
                    Task { [self] in
                        try? await Task.sleep(for: timeout)
                        self.abandon(id)
                    }
                }
            }
        } onCancel: {
            abandon(id)
        }
    }

    /// Ends one waiter's wait without a permit (timeout or cancellation); a waiter already served is left alone.
    private func abandon(_ id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }

    func release() {
        let waiter = state.withLock { state -> Waiter? in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: true)
    }
}
