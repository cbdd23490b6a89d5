import Synchronization

/// A one-shot rendezvous between a task that waits and the frame pump that delivers the result.
///
/// The result may arrive before anyone waits (it is kept), and the waiting task may be cancelled (it is
/// resumed with `CancellationError`, and a later ``resume(with:)`` returns false so the caller can keep
/// the value, e.g. buffer a delivery instead of losing it).
final class Waiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case done(Result<Value, any Error>)
        case consumed
    }

    /// Guards the state: `resume` runs on the connection thread, cancellation on any thread.
    private let state = Mutex<State>(.idle)

    /// Waits for the result; throws `CancellationError` when the task is cancelled first.
    func wait() async throws -> Value {
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

    /// The result if it was delivered and nobody waits yet (then nobody will): lets a caller that pumped
    /// the reply itself return without suspending.
    func takeIfReady() -> Result<Value, any Error>? {
        state.withLock { state in
            guard case .done(let result) = state else { return nil }
            state = .consumed
            return result
        }
    }

    /// Delivers the result. Returns false when a result was already delivered (e.g. the waiter was cancelled).
    @discardableResult
    func resume(with result: Result<Value, any Error>) -> Bool {
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

    @discardableResult
    func resume(returning value: Value) -> Bool { resume(with: .success(value)) }

    @discardableResult
    func resume(throwing error: any Error) -> Bool { resume(with: .failure(error)) }
}
