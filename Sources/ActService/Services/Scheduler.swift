public import Logging
public import ServiceLifecycle
import ActThreads

/// Fires playbook schedules (`schedules:`, ``ScheduleClock``): every `engine.timer_poll_ms` it claims the
/// schedules that are due (`FOR UPDATE SKIP LOCKED`, by the database's clock) and starts their runs in the
/// same transaction as their new state (``Orchestrator/fireDueSchedules(limit:)``), so each fire is handled
/// once however many replicas run. Every 10 s, and at start, it brings the schedule rows in step with the
/// playbooks (a new version's schedules replace the old ones).
public struct Scheduler: Service {
    let orchestrator: Orchestrator
    let logger: Logger

    public init(orchestrator: Orchestrator, logger: Logger) {
        self.orchestrator = orchestrator
        self.logger = logger
    }

    public func run() async throws {
        let poll = Duration.milliseconds(orchestrator.configuration.engine.timerPollMilliseconds)
        await cancelWhenGracefulShutdown {
            var backoff = Duration.milliseconds(100)
            var lastSync = ContinuousClock.now - .seconds(60)
            while !Task.isCancelled {
                do {
                    if ContinuousClock.now - lastSync >= .seconds(10) {
                        _ = try await orchestrator.refreshCatalog()
                        try await orchestrator.syncSchedules()
                        lastSync = ContinuousClock.now
                    }
                    let claimed = try await orchestrator.fireDueSchedules(limit: 100)
                    backoff = .milliseconds(100)
                    if claimed < 100 { try await orchestrator.sleep(poll) }
                } catch {
                    // Shutting down: the scan's query was cancelled with it; nothing failed.
                    if Task.isCancelled { break }
                    ServiceMetrics.loopFailed(service: "scheduler")
                    logger.warning("schedule scan failed; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                    try? await orchestrator.sleep(backoff)
                    backoff = min(backoff * 2, .seconds(5))
                }
            }
        }
        logger.info("scheduler stopped")
    }
}
