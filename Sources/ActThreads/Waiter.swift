
/// A one-shot rendezvous between a task that waits and whoever delivers its result.
///
/// The result may arrive before anyone waits (it is kept), and the waiting task may be cancelled: it is then
/// resumed with `CancellationError` at once, and a later ``resume(with:)`` returns false, so that the deliverer
/// keeps what it meant to hand over (buffers a delivery, lends the connection to the next in line).
///
/// ```swift
/// let waiter = Waiter<Int>()
/// queue.append(waiter)            // under the owner's lock
/// let value = try await waiter.wait()
/// // elsewhere: if !waiter.resume(returning: 42) { /* cancelled: give 42 to someone else */ }
/// ```
public final class Waiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case done(Result<Value, any Error>)
        case consumed
    }

    /// Guards the state: the deliverer and a cancellation handler may run on any thread.
    private let state = Lock<State>(.idle)

    /// Creates a waiter that nobody waits on yet.
    public init() {}

    /// Waits for the result (returns at once when it was already delivered).
    ///
    /// Await a waiter once.
    ///
    /// - Returns: the delivered value.
    /// - Throws: the delivered error, or `CancellationError` when the task is cancelled first.
    public func wait() async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let ready: Result<Value, any Error>? = state.withLock { state in
                    switch state {
                    case .idle:
                        state = .waiting(continuation)
                        return nil
                    case .done(let result):
                        state = .consumed
                        return result
                    case .waiting, .consumed:
                        preconditionFailure("a Waiter is awaited once")
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            resume(with: .failure(CancellationError()))
        }
    }

    /// The result if it was delivered and nobody waits yet (then nobody will): lets a caller that produced the
    /// reply itself return without suspending.
    public func takeIfReady() -> Result<Value, any Error>? {
        state.withLock { state in
            guard case .done(let result) = state else { return nil }
            state = .consumed
            return result
        }
    }

    /// Delivers the result.
    ///
    /// - Returns: false when a result was delivered before (e.g. the waiting task was cancelled): the caller
    ///   still owns what it meant to hand over.
    @discardableResult
    public func resume(with result: Result<Value, any Error>) -> Bool {
        let action: (accepted: Bool, continuation: CheckedContinuation<Value, any Error>?) = state.withLock { state in
            switch state {
            case .idle:
                state = .done(result)
                return (true, nil)
            case .waiting(let continuation):
                state = .consumed
                return (true, continuation)
            case .done, .consumed:
                return (false, nil)
            }
        }
        action.continuation?.resume(with: result)
        return action.accepted
    }

    /// Delivers a value. See ``resume(with:)``.
    @discardableResult
    public func resume(returning value: Value) -> Bool { resume(with: .success(value)) }

    /// Delivers an error. See ``resume(with:)``.
    @discardableResult
    public func resume(throwing error: any Error) -> Bool { resume(with: .failure(error)) }
}
