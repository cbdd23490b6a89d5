import ActPlaybook
import ActEngine
import Metrics

/// Every metric hms-act reports, in one place (the docs' metrics table is this file). Names follow
/// Prometheus: `hms_act_` prefix, `_total` for counters, `_seconds` for durations.
enum ServiceMetrics {
    static func runStarted(playbook: String) {
        Counter(label: "hms_act_runs_started_total", dimensions: [("playbook", playbook)]).increment()
    }

    static func runFinished(playbook: String, status: String) {
        Counter(label: "hms_act_runs_finished_total", dimensions: [("playbook", playbook), ("status", status)]).increment()
    }

    /// One per governance event, labelled by its routing key (`metrics.step_started`, `sla.violation`, …).
    static func governance(_ event: GovernanceEvent) {
        Counter(label: "hms_act_governance_events_total", dimensions: [("kind", event.kind.rawValue),
            ("playbook", event.playbook.rawValue)]).increment()
        if event.kind == .stepCompleted, let duration = event.duration, let step = event.step {
            Metrics.Timer(label: "hms_act_step_duration_seconds", dimensions: [("playbook", event.playbook.rawValue),
                ("step", step.rawValue)], preferredDisplayUnit: .seconds)
                .recordMilliseconds(duration.milliseconds)
        }
    }

    /// Messages consumed, by queue and outcome (`applied`, `ignored`, `dead_lettered`).
    static func message(queue: String, outcome: String, count: Int = 1) {
        Counter(label: "hms_act_messages_total", dimensions: [("queue", queue), ("outcome", outcome)])
            .increment(by: count)
    }

    /// Time from a delivery's publish timestamp to its batch commit: the consumer's queue wait.
    static func queueWait(queue: String, milliseconds: Int64) {
        Metrics.Timer(label: "hms_act_queue_wait_seconds", dimensions: [("queue", queue)], preferredDisplayUnit: .seconds)
            .recordMilliseconds(max(0, milliseconds))
    }

    static func batch(source: String, size: Int, nanoseconds: Int64) {
        Recorder(label: "hms_act_batch_size", dimensions: [("source", source)]).record(size)
        Metrics.Timer(label: "hms_act_batch_duration_seconds", dimensions: [("source", source)],
            preferredDisplayUnit: .seconds).recordNanoseconds(nanoseconds)
    }

    static func published(outcome: String, count: Int) {
        Counter(label: "hms_act_outbox_published_total", dimensions: [("outcome", outcome)]).increment(by: count)
    }

    static func timersFired(count: Int) {
        Counter(label: "hms_act_timers_fired_total").increment(by: count)
    }

    static func consumerUp(queue: String, _ up: Bool) {
        Gauge(label: "hms_act_consumer_up", dimensions: [("queue", queue)]).record(up ? 1 : 0)
    }

    static func incidents(kind: String, count: Int = 1) {
        Counter(label: "hms_act_incidents_total", dimensions: [("kind", kind)]).increment(by: count)
    }

    /// Gauges read from the database by the housekeeping service.
    static func snapshot(outboxPending: Int, outboxLagSeconds: Double, pendingTimers: Int, runsByStatus: [String: Int],
        slaRed: Int, slaYellow: Int, slaGreen: Int)
    {
        Gauge(label: "hms_act_outbox_pending").record(outboxPending)
        Gauge(label: "hms_act_outbox_lag_seconds").record(outboxLagSeconds)
        Gauge(label: "hms_act_timers_pending").record(pendingTimers)
        for status in RunStatus.allCases {
            Gauge(label: "hms_act_runs", dimensions: [("status", status.rawValue)]).record(runsByStatus[status.rawValue] ?? 0)
        }
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "red")]).record(slaRed)
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "yellow")]).record(slaYellow)
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "green")]).record(slaGreen)
    }
}
