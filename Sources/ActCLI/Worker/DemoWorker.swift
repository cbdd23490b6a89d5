import ActAMQP
import ActPlaybook
import Foundation
import Logging
import ServiceLifecycle

/// A worker that answers hms-act's tasks the way the chapters' agents do, for demos and load tests.
///
/// It consumes task messages (DESIGN.md §3: `{"type": "hms.task", "task_id", "attempt", "assignee",
/// "reply_to": {…}, …}`), waits ``Settings/delay``, and publishes a result to `reply_to` — completed with
/// an output that fits the assignee, or failed at ``Settings/failureRate`` — then acks the task. Results
/// are acked only after their publisher confirm, so a crash repeats a result rather than losing it (hms-act
/// ignores the repeat).
///
/// Runs as a `Service` next to the ``AMQPClient`` it uses; on graceful shutdown it stops consuming and the
/// client closes the connection, returning unacked tasks to their queues.
struct DemoWorker: Service {
    /// How the worker answers.
    struct Settings: Sendable {
        /// Queues to consume: the worker's own and the agents' queues.
        var queues: [String]
        var prefetch: UInt16 = 20
        /// Time spent "working" on each task.
        var delay: Duration = .milliseconds(200)
        /// Share of attempts that fail (0…1), retryable.
        var failureRate: Double = 0
        /// `ai.fraud-labeler`'s answer; nil picks High or Low at random.
        var severity: String?
        /// Assignee labels left unanswered (`human.investigator`, to let an SLA breach happen).
        var skip: Set<String> = []
        /// Where results go when a task names no `reply_to`.
        var resultsExchange: String
        /// The connection's RabbitMQ user, sent as `user_id` (the broker checks it): hms-act's `amqp.actors`
        /// attributes results by it.
        var brokerUser: String?
    }

    let client: AMQPClient
    let settings: Settings
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for queue in settings.queues {
                        let consumer = try await client.consume(queue: queue, prefetch: settings.prefetch)
                        group.addTask { try await consume(consumer, queue: queue) }
                    }
                    try await group.waitForAll()
                }
            }
        } catch is CancellationError {
            // Graceful shutdown: the client closes the connection and unacked tasks return to their queues.
        }
        print("demo worker stopped")
    }

    private func consume(_ consumer: AMQPConsumer, queue: String) async throws {
        for try await delivery in consumer {
            try await handle(delivery, queue: queue)
        }
    }

    private func handle(_ delivery: AMQPDelivery, queue: String) async throws {
        guard let task = try? JSONValue(parsing: delivery.body),
            let taskID = task["task_id"]?.stringValue, let attempt = RunView.int(task["attempt"])
        else {
            print("✘ \(queue): not a task message (no task_id/attempt); rejected")
            try await client.reject(delivery.deliveryTag, requeue: false)
            return
        }
        let assignee = task["assignee"]?.stringValue ?? String(delivery.routingKey.trimmingPrefix("task."))
        if settings.skip.contains(assignee) {
            print("… \(taskID)#\(attempt)  \(assignee): skipped (--skip), left unanswered")
            try await client.ack(delivery.deliveryTag)
            return
        }
        try await Task.sleep(for: settings.delay)
        let answer = Self.answer(to: task, assignee: assignee, settings: settings)
        let exchange = task["reply_to"]?["exchange"]?.stringValue ?? settings.resultsExchange
        let routingKey = task["reply_to"]?["routing_key"]?.stringValue ?? "result.\(assignee)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(answer.body)
        var properties = AMQPProperties(
            contentType: "application/json", persistent: true,
            correlationID: task["run_id"]?.stringValue,
            messageID: "\(taskID)#\(attempt)/\(answer.failed ? "failed" : "completed")", timestamp: Date(),
            type: "hms.task.result", userID: settings.brokerUser, appID: "hms-act-demo-worker")
        // The task's trace context goes back with the result: hms-act's span of it continues the same trace.
        if let traceparent = delivery.properties.headers["traceparent"] { properties.headers["traceparent"] = traceparent }
        let message = AMQPMessage(body: Array(body), exchange: exchange, routingKey: routingKey, properties: properties,
            mandatory: true)
        switch try await client.publish(message) {
        case .confirmed:
            print(answer.line(taskID: taskID, attempt: attempt, assignee: assignee))
        case .returned(_, let text):
            print("✘ \(taskID)#\(attempt): the result was returned (\(text)): nothing is bound to \(routingKey) on \(exchange); is hms-act running?")
        case .nacked, .channelClosed:
            print("✘ \(taskID)#\(attempt): RabbitMQ refused the result; the task will come again")
            try await client.nack(delivery.deliveryTag, requeue: true)
            return
        }
        try await client.ack(delivery.deliveryTag)
    }

    /// A result and the line printed for it.
    struct Answer {
        var body: JSONValue
        var failed: Bool
        var agent: String

        func line(taskID: String, attempt: Int, assignee: String) -> String {
            if failed {
                return "✖ \(taskID)#\(attempt)  \(assignee) by \(agent): \(body["reason"]?.stringValue ?? "failed")"
            }
            return "✔ \(taskID)#\(attempt)  \(assignee) by \(agent) → \(Console.compact(body["output"] ?? .null))"
        }
    }

    /// What the chapters' agents would answer.
    ///
    /// `ai.fraud-labeler` → `{"severity": "High"|"Low"}`, `ai.classifier` → `{"category": "loud party"}`,
    /// `human.<desk>` → `{"decision": "done", "by": "<desk>#<n>"}`, anything else `{"ok": true}`.
    static func answer(to task: JSONValue, assignee: String, settings: Settings) -> Answer {
        let taskID = task["task_id"]?.stringValue ?? ""
        let attempt = RunView.int(task["attempt"]) ?? 1
        var agent = task["agent"]?.stringValue ?? assignee
        let output: JSONValue
        if assignee.hasPrefix("human.") {
            let desk = String(assignee.dropFirst("human.".count))
            agent = "\(desk)#\(Int.random(in: 1...9))"
            output = ["decision": "done", "by": .string(agent)]
        } else {
            switch assignee {
            case "ai.fraud-labeler":
                output = ["severity": .string(settings.severity ?? (Bool.random() ? "High" : "Low"))]
            case "ai.classifier":
                output = ["category": "loud party"]
            default:
                output = ["ok": true]
            }
        }
        var body: [String: JSONValue] = [
            "task_id": .string(taskID), "attempt": .int(attempt), "agent": .string(agent),
        ]
        let failed = settings.failureRate > 0 && Double.random(in: 0..<1) < settings.failureRate
        if failed {
            body["status"] = "failed"
            body["reason"] = .string("demo failure (--failure-rate \(settings.failureRate))")
            body["retryable"] = true
        } else {
            body["status"] = "completed"
            body["output"] = output
        }
        return Answer(body: .object(body), failed: failed, agent: agent)
    }
}
