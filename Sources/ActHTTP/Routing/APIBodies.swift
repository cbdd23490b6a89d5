import ActPlaybook

// The request and acknowledgement bodies of the command routes (see http-contract.md and
// Resources/openapi.yaml). Responses with data are in ``API``.

/// `POST /v1/runs`.
struct StartRunRequest: Decodable {
    var playbook: String
    var payload: JSONValue?
    var id: String?
}

/// `POST /v1/runs/{id}/pause|resume|cancel` (the body is optional).
struct RunCommandRequest: Decodable {
    var reason: String?
    var actor: String?
}

/// `POST /v1/schedules/{playbook}/{schedule}/pause|resume`: `reason` is required (checked by the route, so that
/// its absence gets a problem saying what to send).
struct ScheduleCommandRequest: Decodable {
    var reason: String?
    var actor: String?
}

/// 202 of `POST /v1/schedules/{playbook}/{schedule}/trigger`.
struct ScheduleTriggerAccepted: Encodable {
    var runID: String
    var eventID: String
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case runID = "run_id", eventID = "event_id", outcome, reason }
}

/// `POST /v1/tasks/{id}/fail`.
struct FailTaskRequest: Decodable {
    var reason: String
    var retryable: Bool?
    var attempt: Int?
    var agent: String?
    /// The claim's lease, for a pull task: 409 when it no longer holds the task.
    var leaseID: String?

    enum CodingKeys: String, CodingKey { case reason, retryable, attempt, agent, leaseID = "lease_id" }
}

/// `POST /v1/tasks/claim`.
struct ClaimTasksRequest: Decodable {
    /// The pull agent's id (`ai.fraud-labeler`).
    var agent: String?
    /// The chapters' spelling of the same (`AI:fraud-labeler`).
    var actor: String?
    var maxTasks: Int?
    var leaseSeconds: Double?
    var waitSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case agent, actor, maxTasks = "max_tasks", leaseSeconds = "lease_seconds", waitSeconds = "wait_seconds"
    }
}

/// `POST /v1/tasks/{id}/heartbeat`.
struct HeartbeatRequest: Decodable {
    var leaseID: String
    var attempt: Int?
    var leaseSeconds: Double?

    enum CodingKeys: String, CodingKey { case leaseID = "lease_id", attempt, leaseSeconds = "lease_seconds" }
}

/// `POST /v1/runs/{id}/signals/{name}`.
struct SignalRequest: Decodable {
    var payload: JSONValue?
}

/// `POST /v1/signals/{name}`: a signal to the runs with a business key.
struct KeyedSignalRequest: Decodable {
    var key: JSONValue
    var playbook: String?
    var payload: JSONValue?
}

/// `POST /v1/callbacks/{run}/{step}`.
struct CallbackRequest: Decodable {
    /// Absent (an empty POST, as chapter 003's `waitFor` sends): approved.
    var approved: Bool?
    var actor: String?
    var reason: String?
    var payload: JSONValue?
}

/// `POST /v1/playbooks` with a JSON body (YAML bodies are the source itself).
struct RegisterPlaybookRequest: Decodable {
    var source: String
    var file: String?
    var triggers: [String]?
}

/// 202 of `POST /v1/events` and `POST /v1/runs`.
struct EventAccepted: Encodable {
    var eventID: String
    var type: String
    var runs: [String]
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case eventID = "event_id", type, runs, outcome, reason }
}

/// The last path segment of `POST /v1/incidents/{id}/…`.
enum IncidentActionName: String, CaseIterable, Sendable {
    case retry, skip, fail, resolve
}

/// `POST /v1/incidents/{id}/retry|skip|fail|resolve`.
struct IncidentActionRequest: Decodable {
    var reason: String?
    /// retry: a JSON merge patch on the step's input.
    var input: JSONValue?
    /// skip: the output the step is taken to have produced (`null` is an output too).
    var output: JSONValue?
    var hasOutput = false
    var actor: String?

    enum CodingKeys: String, CodingKey { case reason, input, output, actor }

    init(reason: String?, input: JSONValue? = nil, output: JSONValue? = nil, hasOutput: Bool = false) {
        self.reason = reason
        self.input = input
        self.output = output
        self.hasOutput = hasOutput
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        input = try c.decodeIfPresent(JSONValue.self, forKey: .input)
        hasOutput = c.contains(.output)
        output = hasOutput ? try c.decode(JSONValue.self, forKey: .output) : nil
        actor = try c.decodeIfPresent(String.self, forKey: .actor)
    }
}

/// 202 of `POST /v1/incidents/{id}/retry|skip|fail|resolve`.
struct IncidentActionAccepted: Encodable {
    var incidentID: Int64
    var runID: String?
    var action: String
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case incidentID = "incident_id", runID = "run_id", action, outcome, reason }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(incidentID, forKey: .incidentID)
        try c.encode(runID, forKey: .runID)
        try c.encode(action, forKey: .action)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(reason, forKey: .reason)
    }
}

/// `POST /v1/bulk-operations`.
struct BulkOperationRequest: Decodable {
    struct Filter: Decodable {
        var playbook: String?
        var status: String?
        var key: String?
        var createdAfter: String?
        var createdBefore: String?

        enum CodingKeys: String, CodingKey {
            case playbook, status, key, createdAfter = "created_after", createdBefore = "created_before"
        }
    }

    var action: String
    var filter: Filter?
    var reason: String?
    var ratePerSecond: Int?
    var actor: String?

    enum CodingKeys: String, CodingKey { case action, filter, reason, ratePerSecond = "rate_per_second", actor }
}

/// `POST /v1/playbook-migrations`.
struct MigrationRequest: Decodable {
    var fromVersion: Int64
    var toVersion: Int64
    var mapping: [String: String]?
    var dryRun: Bool?
    var ratePerSecond: Int?
    var reason: String?
    var actor: String?

    enum CodingKeys: String, CodingKey {
        case fromVersion = "from_version", toVersion = "to_version", mapping, dryRun = "dry_run"
        case ratePerSecond = "rate_per_second", reason, actor
    }
}

/// `POST /v1/runs/{id}/rewind`.
struct RewindRequest: Decodable {
    /// The top-level step to run again from.
    var step: String
    var reason: String?
    var actor: String?
}

/// 202 of `POST /v1/runs/{id}/pause|resume|cancel|rewind`.
struct RunCommandAccepted: Encodable {
    var runID: String
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case runID = "run_id", outcome, reason }
}

/// 202 of `POST /v1/tasks/{id}/complete|fail`.
struct TaskResultAccepted: Encodable {
    var taskID: String
    var attempt: Int
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case taskID = "task_id", attempt, outcome, reason }
}

/// 202 of `POST /v1/runs/{id}/signals/{name}`.
struct SignalAccepted: Encodable {
    var runID: String
    var signal: String
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case runID = "run_id", signal, outcome, reason }
}

/// 202 of `POST /v1/signals/{name}`: the outcome for each run the key reached.
struct KeyedSignalAccepted: Encodable {
    var signal: String
    var key: String
    var runs: [SignalAccepted]
}

/// 202 of `POST /v1/callbacks/{run}/{step}`.
struct CallbackAccepted: Encodable {
    var runID: String
    var stepID: String
    var outcome: String
    var reason: String?

    enum CodingKeys: String, CodingKey { case runID = "run_id", stepID = "step_id", outcome, reason }
}

/// `{"runs": …}`, `{"tasks": …}`, … : a list under one key.
struct Listing<Element: Encodable>: Encodable {
    var key: String
    var elements: [Element]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { self.stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(elements, forKey: Key(key))
    }
}

/// `POST /v1/playbooks/{id}/versions/{version}/state`.
struct VersionStateRequest: Decodable {
    var state: String
    var reason: String?
    var actor: String?
}

/// `POST /v1/playbooks/{id}/pin`: `version` must be given, a number to pin or null to unpin, so that an empty
/// object never unpins by accident.
struct PinRequest: Decodable {
    var version: Int64?
    var reason: String?
    var actor: String?

    enum CodingKeys: String, CodingKey { case version, reason, actor }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.version) else {
            throw DecodingError.keyNotFound(CodingKeys.version, DecodingError.Context(codingPath: [],
                debugDescription: "give the version to pin, or null to unpin"))
        }
        version = try container.decode(Int64?.self, forKey: .version)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        actor = try container.decodeIfPresent(String.self, forKey: .actor)
    }
}
