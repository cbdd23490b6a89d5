public import ActPostgres
public import Logging

/// Wake-ups for the timer scanner when a transaction scheduled a timer, so timers fire within a second of
/// their due time rather than at the next poll.
///
/// Two implementations: ``PostgresTimerNotifications`` (`LISTEN hms_act_timers`) and the in-memory store's
/// (`ActTesting`), which wakes on every commit that scheduled a timer.
public protocol TimerNotifications: Sendable {
    /// Calls `wake` for each notification until the calling task is cancelled, reconnecting on failure
    /// (and waking once after a reconnect, in case a notification was missed meanwhile).
    func listen(_ wake: @escaping @Sendable () -> Void) async
}

/// `LISTEN hms_act_timers` on a connection of its own, outside the pool (a listener holds its connection
/// for as long as the service runs).
public struct PostgresTimerNotifications: TimerNotifications {
    let configuration: PostgresConfiguration
    let logger: Logger

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func listen(_ wake: @escaping @Sendable () -> Void) async {
        while !Task.isCancelled {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
            } catch {
                logger.debug("timer listener cannot connect; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            do {
                try await connection.listen("hms_act_timers")
                for try await _ in connection.notifications { wake() }
            } catch {
                logger.debug("timer listener lost its connection", metadata: ["error": "\(error)"])
            }
            await connection.close()
            // Scans go on every poll interval meanwhile; wake once in case a notification was missed.
            wake()
        }
    }
}
