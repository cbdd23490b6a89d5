public import ActPostgres
import ActStore
public import Logging
public import ServiceLifecycle

/// Fires due timers (SLA warnings and breaches, retry backoff, waits): claims them with
/// `FOR UPDATE SKIP LOCKED` by database time and applies them in the same transaction, so each fires once
/// across replicas and restarts. It scans at least every `timer_poll_ms` (250 ms by default) and at once
/// when a NOTIFY says a timer was scheduled, which keeps firing within a second of the due time.
public struct TimerScanner: Service {
    let orchestrator: Orchestrator
    let logger: Logger
    /// Timers claimed per transaction.
    let batchSize: Int
    /// Where the NOTIFY listener connects (its own connection, outside the pool).
    let listenerConfiguration: PostgresConfiguration

    public init(orchestrator: Orchestrator, listenerConfiguration: PostgresConfiguration, logger: Logger,
        batchSize: Int = 500)
    {
        self.orchestrator = orchestrator
        self.listenerConfiguration = listenerConfiguration
        self.logger = logger
        self.batchSize = batchSize
    }

    public func run() async throws {
        let signal = Signal()
        let poll = Duration.milliseconds(orchestrator.configuration.engine.timerPollMilliseconds)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await listen(waking: signal) }
                group.addTask {
                    var backoff = Duration.milliseconds(100)
                    while !Task.isCancelled {
                        do {
                            let fired = try await orchestrator.fireDueTimers(limit: batchSize)
                            backoff = .milliseconds(100)
                            if fired < batchSize { await signal.wait(timeout: poll) }
                        } catch {
                            ServiceMetrics.loopFailed(service: "timer_scanner")
                            logger.warning("timer scan failed; retrying", metadata: ["error": "\(error)"])
                            try? await Task.sleep(for: backoff)
                            backoff = min(backoff * 2, .seconds(5))
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
        logger.info("timer scanner stopped")
    }

    /// Listens for `hms_act_timers` notifications on a connection of its own, reconnecting on failure.
    private func listen(waking signal: Signal) async {
        while !Task.isCancelled {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: listenerConfiguration, logger: logger)
            } catch {
                logger.debug("timer listener cannot connect; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            do {
                try await connection.listen("hms_act_timers")
                for try await _ in connection.notifications { signal.signal() }
            } catch {
                logger.debug("timer listener lost its connection", metadata: ["error": "\(error)"])
            }
            await connection.close()
            // Scans go on every poll interval meanwhile; wake once in case a notification was missed.
            signal.signal()
        }
    }
}
