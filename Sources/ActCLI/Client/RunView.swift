import ActPlaybook
import Foundation

/// A run as `GET /v1/runs/{id}` describes it, read leniently: a missing or unexpected field becomes nil
/// instead of failing the whole answer, so an older or newer server still renders.
struct RunView: Sendable {
    var runID: String
    var playbook: String
    var status: String
    var createdAt: Date?
    var updatedAt: Date?
    var finishedAt: Date?
    var failureStep: String?
    var failureReason: String?
    var steps: [StepView]
    var tasks: [TaskView]
    /// The child runs of its sub-playbook steps that were fetched too, by run id (`watch` draws them inline).
    var children: [String: RunView] = [:]

    /// One visit of one step.
    struct StepView: Sendable {
        var stepID: String
        var visit: Int
        var status: String
        var startedAt: Date?
        var finishedAt: Date?
        var durationMilliseconds: Int64?
        var assignee: String?
        var agent: String?
        var attempt: Int?
        var error: String?
        /// `none`, `green`, `yellow`, `red` or `breached`.
        var slaState: String?
    }

    /// One attempt of one task.
    struct TaskView: Sendable {
        var taskID: String
        var attempt: Int
        var stepID: String?
        var status: String
        var agent: String?
        var assignee: String?
        var error: String?
        var createdAt: Date?
        var updatedAt: Date?
        /// The child run a sub-playbook attempt started.
        var childRunID: String?
    }

    init(json: JSONValue) {
        runID = json["run_id"]?.stringValue ?? "?"
        playbook = json["playbook"]?.stringValue ?? "?"
        status = json["status"]?.stringValue ?? "unknown"
        createdAt = Self.date(json["created_at"])
        updatedAt = Self.date(json["updated_at"])
        finishedAt = Self.date(json["finished_at"])
        failureStep = json["failure"]?["step"]?.stringValue
        failureReason = json["failure"]?["reason"]?.stringValue
        if case .array(let items)? = json["steps"] {
            steps = items.map { item in
                StepView(
                    stepID: item["step_id"]?.stringValue ?? "?", visit: Self.int(item["visit"]) ?? 1,
                    status: item["status"]?.stringValue ?? "unknown", startedAt: Self.date(item["started_at"]),
                    finishedAt: Self.date(item["finished_at"]), durationMilliseconds: Self.int(item["duration_ms"]).map(Int64.init),
                    assignee: item["assignee"]?.stringValue, agent: item["agent"]?.stringValue,
                    attempt: Self.int(item["attempt"]), error: item["error"]?.stringValue,
                    slaState: item["sla"]?["state"]?.stringValue)
            }
        } else {
            steps = []
        }
        if case .array(let items)? = json["tasks"] {
            tasks = items.map { item in
                TaskView(
                    taskID: item["task_id"]?.stringValue ?? "?", attempt: Self.int(item["attempt"]) ?? 1,
                    stepID: item["step_id"]?.stringValue, status: item["status"]?.stringValue ?? "unknown",
                    agent: item["agent"]?.stringValue, assignee: item["assignee"]?.stringValue,
                    error: item["error"]?.stringValue, createdAt: Self.date(item["created_at"]),
                    updatedAt: Self.date(item["updated_at"]), childRunID: item["child_run_id"]?.stringValue)
            }
        } else {
            tasks = []
        }
    }

    /// Whether the run is over.
    var isFinished: Bool { ["completed", "failed", "cancelled"].contains(status) }

    static func int(_ value: JSONValue?) -> Int? {
        value?.numberValue?.intValue
    }

    /// An RFC 3339 time, with or without fractional seconds.
    static func date(_ value: JSONValue?) -> Date? {
        guard let text = value?.stringValue else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
