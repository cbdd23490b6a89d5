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

    /// One try of a `call:` step: its answer's status class (`2xx`, `4xx`, `5xx`, …, or `error` when none
    /// came) and how long it took.
    static func httpCall(method: String, status: Int, took: Duration) {
        let outcome = status == 0 ? "error" : "\(status / 100)xx"
        Counter(label: "hms_act_http_calls_total", dimensions: [("method", method), ("status", outcome)]).increment()
        Metrics.Timer(label: "hms_act_http_call_duration_seconds", dimensions: [("method", method)],
            preferredDisplayUnit: .seconds).recordNanoseconds(took.wholeNanoseconds)
    }

    static func timersFired(count: Int) {
        Counter(label: "hms_act_timers_fired_total").increment(by: count)
    }

    /// Schedule fires handled: runs started, fires skipped (missed or overlapping).
    static func scheduleFires(started: Int, skipped: Int) {
        if started > 0 { Counter(label: "hms_act_schedule_fires_total", dimensions: [("outcome", "started")]).increment(by: started) }
        if skipped > 0 { Counter(label: "hms_act_schedule_fires_total", dimensions: [("outcome", "skipped")]).increment(by: skipped) }
    }

    /// Tasks held back in the outbox because their agent's `rate_limit` had no token left.
    static func rateLimited(agent: String, count: Int) {
        Counter(label: "hms_act_rate_limited_total", dimensions: [("agent", agent)]).increment(by: count)
    }

    static func consumerUp(queue: String, _ up: Bool) {
        Gauge(label: "hms_act_consumer_up", dimensions: [("queue", queue)]).record(up ? 1 : 0)
    }

    /// A consumer's batch failed transiently and waits to be retried; the gauge says it is stuck retrying.
    static func batchRetried(queue: String) {
        Counter(label: "hms_act_batch_retries_total", dimensions: [("queue", queue)]).increment()
    }

    static func consumerRetrying(queue: String, _ retrying: Bool) {
        Gauge(label: "hms_act_consumer_retrying", dimensions: [("queue", queue)]).record(retrying ? 1 : 0)
    }

    /// A service loop (timer scanner, relay, housekeeping) failed and waits to retry.
    /// A caller waited for a pool connection longer than `postgres.pool_acquire_timeout_ms` and got `poolTimeout`.
    static func poolTimedOut() {
        Counter(label: "hms_act_pool_timeouts_total").increment()
    }

    static func loopFailed(service: String) {
        Counter(label: "hms_act_loop_failures_total", dimensions: [("service", service)]).increment()
    }

    /// How far PostgreSQL's clock is ahead of this replica's (see ``DatabaseClock``).
    static func clockOffset(milliseconds: Int64) {
        Gauge(label: "hms_act_clock_offset_seconds").record(Double(milliseconds) / 1_000)
    }

    static func incidents(kind: String, count: Int = 1) {
        Counter(label: "hms_act_incidents_total", dimensions: [("kind", kind)]).increment(by: count)
    }

    static func spansExported(count: Int) {
        Counter(label: "hms_act_spans_exported_total").increment(by: count)
    }

    static func spansDropped(count: Int, reason: String) {
        Counter(label: "hms_act_spans_dropped_total", dimensions: [("reason", reason)]).increment(by: count)
    }

    /// Gauges read from the database by the housekeeping service.
    static func snapshot(outboxPending: Int, outboxLagSeconds: Double, pendingTimers: Int, runsByStatus: [String: Int],
        slaRed: Int, slaYellow: Int, slaGreen: Int)
    {
        Gauge(label: "hms_act_outbox_pending").record(outboxPending)
        Gauge(label: "hms_act_outbox_lag_seconds").record(outboxLagSeconds)
        Gauge(label: "hms_act_timers_pending").record(pendingTimers)
        for status in RunStatus.allCases where !status.isFinished {
            Gauge(label: "hms_act_runs", dimensions: [("status", status.rawValue)]).record(runsByStatus[status.rawValue] ?? 0)
        }
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "red")]).record(slaRed)
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "yellow")]).record(slaYellow)
        Gauge(label: "hms_act_open_tasks", dimensions: [("sla", "green")]).record(slaGreen)
    }
}

/// What an exporter needs to know about the metrics above beyond their names: the help text of each
/// (Prometheus `# HELP`; the same words as the docs' metrics table) and histogram buckets where the
/// defaults do not fit. `ActCLI` reads it when it installs the Prometheus factory; a metric missing here
/// is served without help text, which `scripts/check-deploy` (`promtool check metrics`) refuses.
public enum ServiceMetricsCatalog {
    public static let help: [String: String] = [
        "hms_act_runs_started_total": "Runs started.",
        "hms_act_runs_finished_total": "Runs completed, failed or cancelled.",
        "hms_act_governance_events_total": "Governance messages produced (metrics.step_started, sla.violation, ...).",
        "hms_act_step_duration_seconds": "Step visit duration, on completion.",
        "hms_act_spans_exported_total": "Spans accepted by the OTLP collector (tracing on: OTEL_EXPORTER_OTLP_ENDPOINT).",
        "hms_act_spans_dropped_total": "Spans not exported, by reason (queue_full, export_failed).",
        "hms_act_messages_total": "Deliveries consumed: applied, ignored (duplicates, late answers), dead_lettered.",
        "hms_act_queue_wait_seconds": "Publish timestamp to batch commit.",
        "hms_act_batch_size": "Inputs applied per transaction.",
        "hms_act_batch_duration_seconds": "One batch transaction.",
        "hms_act_outbox_published_total": "Outbox rows confirmed or retried (nacked, unroutable).",
        "hms_act_timers_fired_total": "Timers claimed and applied.",
        "hms_act_rate_limited_total": "Tasks held back in the outbox by their agent's rate_limit (each time a relay found no token).",
        "hms_act_schedule_fires_total": "Schedule fires handled: started (a run), skipped (missed, or the previous run still going).",
        "hms_act_http_calls_total": "Tries of call: steps hms-act performs over HTTP, by method and status class (error: no answer).",
        "hms_act_http_call_duration_seconds": "How long each try of a call: step took.",
        "hms_act_incidents_total": "Incidents recorded (step_failed, compensation_failed, unroutable_task, unpublishable_message, poison_timer).",
        "hms_act_consumer_up": "1 while a consumer runs.",
        "hms_act_consumer_retrying": "1 while a consumer retries a batch that failed transiently (database or broker unreachable).",
        "hms_act_clock_offset_seconds": "How far PostgreSQL's clock is ahead of this replica's; deadlines follow PostgreSQL's.",
        "hms_act_batch_retries_total": "Batch attempts that failed transiently and were retried.",
        "hms_act_loop_failures_total": "Failed iterations of the relay, timer scanner and housekeeping loops.",
        "hms_act_pool_timeouts_total": "Pool leases that waited past postgres.pool_acquire_timeout_ms (poolTimeout).",
        "hms_act_outbox_pending": "Outbox rows waiting to be published.",
        "hms_act_outbox_lag_seconds": "Age of the oldest outbox row waiting to be published.",
        "hms_act_timers_pending": "Timers scheduled.",
        "hms_act_runs": "Runs not finished, by status (finished ones: hms_act_runs_finished_total).",
        "hms_act_open_tasks": "Open tasks by SLA light: green, yellow (past warning), red (past deadline).",
    ]

    /// Histogram buckets for durations that outgrow the exporter's default (5 ms … 10 s): a step is a
    /// human desk as often as a service, and takes minutes to days (SLAs of `48h`, `5d`); a queue backs up
    /// for minutes when consumers are down. Past the last bucket a quantile says only "more than that".
    public static let durationBuckets: [String: [Duration]] = [
        "hms_act_step_duration_seconds": [
            .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(60),
            .seconds(300), .seconds(900), .seconds(3_600), .seconds(4 * 3_600), .seconds(12 * 3_600),
            .seconds(24 * 3_600), .seconds(2 * 24 * 3_600), .seconds(5 * 24 * 3_600), .seconds(10 * 24 * 3_600),
        ],
        "hms_act_queue_wait_seconds": [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(300), .seconds(900),
        ],
    ]
}
