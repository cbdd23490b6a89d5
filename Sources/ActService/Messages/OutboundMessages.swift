public import ActEngine
public import ActPlaybook
public import ActStore
internal import Crypto

/// Builds the messages hms-act publishes (DESIGN.md §3): task messages on the tasks exchange (or an
/// agent's own queue) and governance events. Every message is persistent JSON with `message_id`,
/// `correlation_id` = run id, `type`, `timestamp`, `content_type` and a W3C `traceparent` header.
public struct OutboundMessages: Sendable {
    public var exchanges: ServiceConfiguration.AMQP.Exchanges
    /// The most bytes of earlier outputs a task's `context` carries (``ServiceConfiguration/Engine-swift.struct/taskContextBytes``); 0: no bound.
    public var taskContextBytes: Int

    public init(exchanges: ServiceConfiguration.AMQP.Exchanges, taskContextBytes: Int = 0) {
        self.exchanges = exchanges
        self.taskContextBytes = taskContextBytes
    }

    /// The routing key workers answer on for this assignee: `result.<label>`.
    public static func resultRoutingKey(for assignee: Assignee) -> String { "result." + assignee.label }

    /// The task message of one attempt. `message_id` is the task id + `#` + attempt: the worker's
    /// idempotency key.
    ///
    /// ```json
    /// {"type": "hms.task", "run_id": "wf_…", "playbook": "NoiseComplaint.v1", "step_id": "inspection",
    ///  "task_id": "wf_…/inspection/1", "attempt": 1, "assignee": "human.field_inspector",
    ///  "agent": "human.field_inspector", "deadline": "2026-11-22T10:00:00.000Z", "payload": {…},
    ///  "input": null, "context": {"steps": {…}, "result": …}, "compensation": false,
    ///  "reply_to": {"exchange": "hms.results", "routing_key": "result.human.field_inspector"}}
    /// ```
    public func task(_ dispatch: TaskDispatch, traceID: String, now: Instant) -> OutboxMessage {
        let (exchange, routingKey): (String, String) =
            switch dispatch.target {
            case .routingKey(let key): (exchanges.tasks, key)
            case .queue(let queue): ("", queue)
            case .pull, .http, .playbook: ("", "")  // kept in pull_tasks, or a child run: never published
            }
        let messageID = dispatch.idempotencyKey
        let traceparent = Self.traceparent(traceID: traceID, messageID: messageID)
        var body: [String: JSONValue] = [
            "type": "hms.task",
            "run_id": .string(dispatch.run.rawValue),
            "playbook": .string(dispatch.playbook.rawValue),
            "step_id": .string(dispatch.step.rawValue),
            "task_id": .string(dispatch.task.rawValue),
            "attempt": .int(dispatch.attempt),
            "assignee": .string(dispatch.assignee.label),
            "agent": dispatch.agent.map { .string($0.rawValue) } ?? .null,
            "deadline": dispatch.deadline.map { .string(Self.timestamp($0)) } ?? .null,
            "payload": dispatch.payload,
            "input": dispatch.input ?? .null,
            "context": Self.bounded(context: dispatch.context, limit: taskContextBytes, run: dispatch.run),
            "compensation": .bool(dispatch.isCompensation),
            "reply_to": [
                "exchange": .string(exchanges.results),
                "routing_key": .string(Self.resultRoutingKey(for: dispatch.assignee)),
            ],
        ]
        if dispatch.assignee.kind == .call {
            // What to call, for hms-act's own HTTP caller and for bridge workers alike.
            body["call"] = [
                "method": .string(dispatch.assignee.method ?? "POST"), "path": .string(dispatch.assignee.name),
                "traceparent": .string(traceparent),
            ]
        }
        var headers = [
            "traceparent": traceparent,
            "x-hms-run-id": dispatch.run.rawValue,
            "x-hms-step-id": dispatch.step.rawValue,
            "x-hms-task-id": dispatch.task.rawValue,
            "x-hms-attempt": String(dispatch.attempt),
            "x-hms-reply-to": Self.resultRoutingKey(for: dispatch.assignee),
        ]
        // The agent a task was routed to: what the outbox relay holds it back for under a `rate_limit`.
        if let agent = dispatch.agent { headers["x-hms-agent"] = agent.rawValue }
        // The run's priority: the AMQP priority of the message (AMQPMessage(outbox:)), for classic priority queues.
        if let priority = dispatch.priority { headers["x-hms-priority"] = String(priority) }
        return OutboxMessage(
            exchange: exchange, routingKey: routingKey, messageID: messageID,
            correlationID: dispatch.run.rawValue, type: "hms.task",
            headers: headers,
            body: JSONValue.object(body).canonicalEncoding, createdAt: now.millisecondsSinceEpoch)
    }

    /// `context` (`{"steps": {id: output}, "result": …}`) within about `limit` bytes of JSON: the largest
    /// of the step outputs and `result` are left out first, until the rest fits, and `omitted` lists what
    /// was left out and where to read it. A task message so stays well below the broker's message limit
    /// however large earlier AI outputs were.
    public static func bounded(context: JSONValue, limit: Int, run: RunID) -> JSONValue {
        guard limit > 0, context.approximateEncodedSize > limit, case .object(var members) = context else { return context }
        var steps: [String: JSONValue] = [:]
        if case .object(let outputs)? = members["steps"] { steps = outputs }
        var candidates = steps.map { (field: $0.key, size: $0.value.approximateEncodedSize + $0.key.utf8.count + 4) }
        if let result = members["result"], result != .null {
            candidates.append((field: "result", size: result.approximateEncodedSize))
        }
        candidates.sort { $0.size > $1.size || ($0.size == $1.size && $0.field < $1.field) }
        var omitted: [String] = []
        var size = context.approximateEncodedSize + 200  // what `omitted` adds
        for candidate in candidates where size > limit {
            omitted.append(candidate.field)
            size -= candidate.size
        }
        for field in omitted {
            if field == "result" && steps[field] == nil { members["result"] = .null } else { steps[field] = nil }
        }
        members["steps"] = .object(steps)
        members["omitted"] = [
            "fields": .array(omitted.sorted().map(JSONValue.string)),
            "reason": .string("earlier outputs above engine.task_context_bytes (\(limit) bytes) are left out of task messages"),
            "read": .string("GET /v1/runs/\(run.rawValue)"),
        ]
        return .object(members)
    }

    /// A governance event; its routing key is the kind (`sla.violation`, `metrics.step_started`, …).
    public func governance(_ event: GovernanceEvent, traceID: String) -> OutboxMessage {
        var body: [String: JSONValue] = [
            "type": .string(event.kind.rawValue),
            "run_id": .string(event.run.rawValue),
            "playbook": .string(event.playbook.rawValue),
            "at": .string(Self.timestamp(event.at)),
            "compensation": .bool(event.isCompensation),
        ]
        if let step = event.step { body["step_id"] = .string(step.rawValue) }
        if let task = event.task { body["task_id"] = .string(task.rawValue) }
        if let attempt = event.attempt { body["attempt"] = .int(attempt) }
        if let assignee = event.assignee { body["assignee"] = .string(assignee) }
        if let agent = event.agent { body["agent"] = .string(agent.rawValue) }
        if let duration = event.duration {
            body["duration_ms"] = .int(duration.milliseconds)
        }
        if let detail = event.detail { body["detail"] = .string(detail) }
        if let willRetry = event.willRetry { body["will_retry"] = .bool(willRetry) }
        let messageID = [
            event.kind.rawValue, event.run.rawValue, event.step?.rawValue ?? "-",
            event.task?.rawValue ?? "-", event.attempt.map(String.init) ?? "-", String(event.at.millisecondsSinceEpoch),
        ].joined(separator: "|")
        return OutboxMessage(
            exchange: exchanges.governance, routingKey: event.kind.rawValue,
            messageID: Self.digest(messageID, length: 32), correlationID: event.run.rawValue, type: event.kind.rawValue,
            headers: ["traceparent": Self.traceparent(traceID: traceID, messageID: messageID),
                "x-hms-run-id": event.run.rawValue],
            body: JSONValue.object(body).canonicalEncoding, createdAt: event.at.millisecondsSinceEpoch)
    }

    /// RFC 3339 UTC with milliseconds (see ``ActEngine/Instant/rfc3339``).
    public static func timestamp(_ instant: Instant) -> String { instant.rfc3339 }

    /// `00-<trace id>-<span id>-01`, the span id derived from the message id so a republished row keeps it.
    public static func traceparent(traceID: String, messageID: String) -> String {
        "00-\(traceID)-\(SpanData.spanID(messageID))-01"
    }

    /// The W3C trace id of a run: the trigger's own when it came with a valid `traceparent`, otherwise
    /// one derived from the run id.
    public static func traceID(runID: String, traceparent: String?) -> String {
        traceID(in: traceparent) ?? digest("trace|" + runID, length: 32)
    }

    /// The trace id of a valid W3C `traceparent` (lowercased), or `nil`.
    public static func traceID(in traceparent: String?) -> String? {
        guard let parts = traceparent?.split(separator: "-"), parts.count == 4, parts[1].count == 32,
            parts[1].allSatisfy(\.isHexDigit), parts[1] != Substring(String(repeating: "0", count: 32))
        else { return nil }
        return parts[1].lowercased()
    }

    /// The run a trigger starts: forwards to ``ActEngine/RunID/forTrigger(playbook:eventID:)``, which owns
    /// the formula.
    ///
    /// Kept only for callers outside the engine and service (the benchmark and the integration harness);
    /// new code calls `RunID.forTrigger` directly.
    public static func runID(playbook: String, eventID: String) -> RunID {
        RunID.forTrigger(playbook: playbook, eventID: eventID)
    }

    static func digest(_ text: String, length: Int) -> String {
        String(Array(SHA256.hash(data: Array(text.utf8))).hexString.prefix(length))
    }
}

extension JSONValue {
    /// About how many bytes the canonical encoding takes (exact for ASCII text without escapes), without
    /// encoding: enough to bound what a message carries.
    var approximateEncodedSize: Int {
        switch self {
        case .null: 4
        case .bool: 5
        case .number: 24
        case .string(let text): text.utf8.count + 2
        case .array(let elements): elements.reduce(2) { $0 + $1.approximateEncodedSize + 1 }
        case .object(let members): members.reduce(2) { $0 + $1.key.utf8.count + 4 + $1.value.approximateEncodedSize }
        }
    }
}
