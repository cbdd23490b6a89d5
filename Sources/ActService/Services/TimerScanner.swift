import ActStore
public import Logging
public import ServiceLifecycle
import ActThreads

/// Fires due timers (SLA warnings and breaches, retry backoff, waits): claims them with
/// `FOR UPDATE SKIP LOCKED` by database time and applies them in the same transaction, so each fires once
/// across replicas and restarts. It scans at least every `timer_poll_ms` (250 ms by default) and at once
/// when a NOTIFY says a timer was scheduled, which keeps firing within a second of the due time.
public struct TimerScanner: Service {
    let orchestrator: Orchestrator
    let logger: Logger
    /// Timers claimed per transaction.
    let batchSize: Int
    /// What wakes the scanner before the next poll (``PostgresTimerNotifications`` in production).
    let notifications: any TimerNotifications

    public init(orchestrator: Orchestrator, notifications: any TimerNotifications, logger: Logger,
        batchSize: Int = 500)
    {
        self.orchestrator = orchestrator
        self.notifications = notifications
        self.logger = logger
        self.batchSize = batchSize
    }

    public func run() async throws {
        let signal = Signal()
        let poll = Duration.milliseconds(orchestrator.configuration.engine.timerPollMilliseconds)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await notifications.listen { signal.signal() } }
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
                            try? await orchestrator.sleep(backoff)
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
}
