public import ActPlaybook

/// What workers, desks and portals send back on `hms.results`: a task's result, a signal that ends a
/// wait, or an approval that releases a `pause: true` step.
///
/// ```json
/// {"task_id": "wf_…/inspection/1", "attempt": 1, "status": "completed", "output": {"decibels": 71}}
/// {"task_id": "wf_…/inspection/1", "attempt": 2, "status": "failed", "reason": "meter broken", "retryable": true}
/// {"run_id": "wf_…", "signal": "bank_updated", "payload": {"iban": "…"}}
/// {"run_id": "wf_…", "step_id": "zoningApproval", "approved": true, "actor": "officer#4", "reason": "ok"}
/// ```
///
/// The kind is read from the AMQP `type` property (`hms.task.result`, `hms.signal`, `hms.approval`)
/// when set, and otherwise from the fields present.
public enum WorkerMessage: Hashable, Sendable {
    case taskResult(TaskResult)
    case signal(runID: String, name: String, payload: JSONValue)
    case approval(Approval)

    public struct TaskResult: Hashable, Sendable {
        public enum Outcome: Hashable, Sendable {
            case completed(output: JSONValue)
            case failed(reason: String, retryable: Bool)
        }

        public var taskID: String
        public var attempt: Int
        public var outcome: Outcome
        /// The agent that did the work, when it says (`inspector#3`); shown in timelines.
        public var agent: String?
        /// The W3C `traceparent` the result came with (its AMQP header, else a `traceparent` field): the
        /// worker's span, which the span of the result's application continues (``RunSpans``).
        public var traceparent: String?

        public init(taskID: String, attempt: Int, outcome: Outcome, agent: String? = nil, traceparent: String? = nil) {
            self.taskID = taskID
            self.attempt = attempt
            self.outcome = outcome
            self.agent = agent
            self.traceparent = traceparent
        }
    }

    public struct Approval: Hashable, Sendable {
        public var runID: String
        public var stepID: String
        public var approved: Bool
        public var actor: String
        public var reason: String?
        public var payload: JSONValue

        public init(runID: String, stepID: String, approved: Bool, actor: String, reason: String?, payload: JSONValue) {
            self.runID = runID
            self.stepID = stepID
            self.approved = approved
            self.actor = actor
            self.reason = reason
            self.payload = payload
        }
    }

    /// The inbox key that makes a repeated message harmless. Results are keyed by task, attempt and
    /// outcome rather than by `message_id`, so a worker that resends with a new id changes nothing.
    public func inboxKey(messageID: String?) -> String {
        switch self {
        case .taskResult(let result):
            let kind = switch result.outcome {
            case .completed: "completed"
            case .failed: "failed"
            }
            return "result:\(result.taskID)#\(result.attempt):\(kind)"
        case .signal(let runID, let name, _):
            return messageID.map { "signal:\($0)" } ?? "signal:\(runID):\(name)"
        case .approval(let approval):
            return "approval:\(approval.runID):\(approval.stepID)"
        }
    }

    /// The run this message is about, when the message names it directly (signals and approvals).
    public var runID: String? {
        switch self {
        case .taskResult: nil
        case .signal(let runID, _, _): runID
        case .approval(let approval): approval.runID
        }
    }

    /// A signal naming a business key instead of a run (`{"signal": "bank_updated", "key": "987"}`, optionally
    /// `"playbook"`): it goes to every running or paused run with that key (the playbook's `key:`, else its
    /// trigger event's id). Nil for any other message, including a signal that names its `run_id`.
    public struct KeyedSignal: Hashable, Sendable {
        public var key: String
        public var playbook: String?
        public var name: String
        public var payload: JSONValue

        public init(key: String, playbook: String?, name: String, payload: JSONValue) {
            self.key = key
            self.playbook = playbook
            self.name = name
            self.payload = payload
        }

        /// The keyed signal a parsed result body is, if it is one (`type` is the AMQP `type` property).
        init?(object: [String: JSONValue], type: String?) {
            guard type == "hms.signal" || (type == nil && object["signal"] != nil),
                object["run_id"] == nil || object["run_id"] == .null,
                let key = object["key"]?.stringValue ?? object["key"]?.numberValue.map({ JSONValue.number($0).caseKey }),
                !key.isEmpty,
                let name = object["signal"]?.stringValue ?? object["name"]?.stringValue, !name.isEmpty
            else { return nil }
            self.init(key: key, playbook: object["playbook"]?.stringValue, name: name, payload: object["payload"] ?? .null)
        }

        /// The signal to one of the runs the key reached; its inbox key is the message's and the run's.
        public func signal(to runID: String, messageID: String?) -> (WorkerMessage, messageID: String?) {
            (.signal(runID: runID, name: name, payload: payload), messageID.map { "\($0)@\(runID)" })
        }
    }

    /// What a message on the results queue is: one for a named run or task, or a signal by business key.
    public enum Reading: Hashable, Sendable {
        case message(WorkerMessage)
        case keyedSignal(KeyedSignal)
    }

    /// Reads a message from the results queue, parsing its body once.
    ///
    /// - Throws: ``MessageRejection`` saying which field is missing or wrong.
    public static func read(_ message: InboundMessage) throws(MessageRejection) -> Reading {
        let object = try parseBody(message)
        if let keyed = KeyedSignal(object: object, type: message.type) { return .keyedSignal(keyed) }
        return .message(try WorkerMessage(object: object, type: message.type,
            traceparent: message.headers["traceparent"]?.stringValue))
    }

    /// Reads a worker message.
    ///
    /// - Throws: ``MessageRejection`` saying which field is missing or wrong.
    public init(message: InboundMessage) throws(MessageRejection) {
        try self.init(object: try Self.parseBody(message), type: message.type,
            traceparent: message.headers["traceparent"]?.stringValue)
    }

    private static func parseBody(_ message: InboundMessage) throws(MessageRejection) -> [String: JSONValue] {
        guard message.body.count <= TriggerEvent.maximumBodySize else {
            throw MessageRejection("result body is \(message.body.count) bytes, above the limit of \(TriggerEvent.maximumBodySize)")
        }
        return try TriggerEvent.parseObject(message.body, what: "result")
    }

    private init(object: [String: JSONValue], type: String?, traceparent: String?) throws(MessageRejection) {
        let kind = type ?? (object["signal"] != nil ? "hms.signal"
            : object["approved"] != nil ? "hms.approval" : "hms.task.result")
        switch kind {
        case "hms.signal":
            guard let runID = object["run_id"]?.stringValue, !runID.isEmpty else {
                throw MessageRejection("signal has no `run_id` or `key`; add the id of the run to signal, or the "
                    + "business key of the runs to signal (their playbook's `key:`, else their trigger event's id)")
            }
            guard let name = object["signal"]?.stringValue ?? object["name"]?.stringValue, !name.isEmpty else {
                throw MessageRejection("signal has no `signal` name; add the name the wait listens for (until_signal)")
            }
            self = .signal(runID: runID, name: name, payload: object["payload"] ?? .null)
        case "hms.approval":
            guard let runID = object["run_id"]?.stringValue, let stepID = object["step_id"]?.stringValue else {
                throw MessageRejection("approval needs `run_id` and `step_id`")
            }
            guard case .bool(let approved)? = object["approved"] else {
                throw MessageRejection("approval needs `approved`: true or false")
            }
            guard let actor = object["actor"]?.stringValue, !actor.isEmpty else {
                throw MessageRejection("approval needs `actor`: who approved or refused, for the audit trail")
            }
            self = .approval(Approval(
                runID: runID, stepID: stepID, approved: approved, actor: actor,
                reason: object["reason"]?.stringValue, payload: object["payload"] ?? .null))
        case "hms.task.result":
            guard let taskID = object["task_id"]?.stringValue, !taskID.isEmpty else {
                throw MessageRejection("result has no `task_id`; copy `task_id` from the task message")
            }
            guard let attempt = object["attempt"]?.numberValue?.intValue, attempt >= 1, attempt < 1_000_000 else {
                throw MessageRejection("result has no valid `attempt`; copy `attempt` (1, 2, …) from the task message")
            }
            let outcome: TaskResult.Outcome
            switch object["status"]?.stringValue?.lowercased() {
            case "completed"?, "complete"?, "done"?, "ok"?, "success"?:
                outcome = .completed(output: object["output"] ?? .object([:]))
            case "failed"?, "fail"?, "error"?:
                var retryable = true
                if case .bool(let flag)? = object["retryable"] { retryable = flag }
                outcome = .failed(reason: object["reason"]?.stringValue ?? "no reason given", retryable: retryable)
            default:
                throw MessageRejection("result `status` must be \"completed\" or \"failed\"")
            }
            self = .taskResult(TaskResult(
                taskID: taskID, attempt: attempt, outcome: outcome, agent: object["agent"]?.stringValue,
                traceparent: traceparent ?? object["traceparent"]?.stringValue))
        default:
            throw MessageRejection("unknown message type \(kind); use hms.task.result, hms.signal or hms.approval")
        }
    }
}
