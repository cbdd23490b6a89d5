/// Why a ``SerialThreadExecutor`` could not start.
///
/// A process out of threads or file descriptors cannot open another connection either, so the client that
/// asked for the executor fails that one connection with this error (as its own "connection failed") instead
/// of crashing the process.
public struct SerialThreadExecutorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What could not be created. Extensible: new codes can be added without breaking `switch`-free callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case threadCreationFailed
            case wakePipeCreationFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// `pthread_create` failed (`EAGAIN`: the process or the system ran out of threads or memory).
        public static let threadCreationFailed = Code(.threadCreationFailed)
        /// `pipe` failed (`EMFILE`/`ENFILE`: out of file descriptors).
        public static let wakePipeCreationFailed = Code(.wakePipeCreationFailed)

        public var description: String {
            switch base {
            case .threadCreationFailed: "threadCreationFailed"
            case .wakePipeCreationFailed: "wakePipeCreationFailed"
            }
        }
    }

    /// What failed.
    public var code: Code
    /// The `errno` (for `pipe`) or the return value (for `pthread_create`) that says why.
    public var systemError: Int32
    /// The name the thread would have had.
    public var threadName: String

    /// Creates an error.
    public init(_ code: Code, systemError: Int32, threadName: String) {
        self.code = code
        self.systemError = systemError
        self.threadName = threadName
    }

    public var description: String {
        let cause =
            code == .threadCreationFailed
            ? "pthread_create failed with \(systemError) (out of threads or memory?)"
            : "pipe() failed with errno \(systemError) (out of file descriptors?)"
        return "cannot start thread \(threadName): \(cause)"
    }
}
