import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act runs list|get`: what runs exist and where each one is.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List runs and show one run's steps.",
        subcommands: [List.self, Get.self]
    )
}

extension RunsCommand {
    /// `hms-act runs list [--status S] [--playbook P] [--key K] [--limit N]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List runs, newest first.",
            discussion: "Statuses: running, paused, compensating, incident, completed, failed, cancelled."
        )

        @Option(help: "Only runs with this status.")
        var status: String?

        @Option(help: "Only runs of this playbook id.")
        var playbook: String?
        @Option(help: ArgumentHelp("Only runs with this business key (the playbook's `key:`, else the trigger event's id).",
            valueName: "key"))
        var key: String?

        @Option(help: ArgumentHelp("Only runs whose trigger payload contains this JSON object (or @file.json).",
            valueName: "json"))
        var payload: String?
        @Option(name: .customLong("created-after"), help: ArgumentHelp("Only runs created at or after (RFC 3339).",
            valueName: "time"))
        var createdAfter: String?
        @Option(name: .customLong("created-before"), help: ArgumentHelp("Only runs created before (RFC 3339).",
            valueName: "time"))
        var createdBefore: String?

        @Option(help: "How many runs (1–500).")
        var limit: Int = 50

        @Option(help: ArgumentHelp("Continue after this cursor (the `next` of an earlier page).", valueName: "cursor"))
        var after: String?

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be between 1 and 500") }
        }

        func run() async throws {
            try await Console.reportingErrors {
                let api = try client.client()
                let payloadText = try payload.map { Console.compact(try Console.parseJSON($0, option: "--payload")) }
                let page = try await api.get("/v1/runs", query: [
                    ("status", status), ("playbook", playbook), ("key", key), ("payload", payloadText),
                    ("created_after", createdAfter), ("created_before", createdBefore), ("limit", String(limit)),
                    ("after", after),
                ]).json()
                switch client.output {
                case .json:
                    print(Console.pretty(page))
                case .table:
                    guard case .array(let runs)? = page["runs"], !runs.isEmpty else {
                        print("no runs" + (playbook.map { " of \($0)" } ?? "") + (status.map { " with status \($0)" } ?? ""))
                        return
                    }
                    let rows = runs.map { run in
                        [
                            Console.cell(run["run_id"]), Console.cell(run["playbook"]), Console.cell(run["status"]),
                            Console.cell(run["created_at"]), RunsCommand.took(run),
                        ]
                    }
                    print(Console.table(["RUN", "PLAYBOOK", "STATUS", "CREATED", "TOOK"], rows))
                    if let next = page["next"]?.stringValue {
                        print("more: hms-act runs list --after \(next)")
                    }
                }
            }
        }
    }

    /// `hms-act runs get RUN`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one run: status, steps, open tasks.")

        @Argument(help: ArgumentHelp("The run id (wf_…).", valueName: "run"))
        var runID: String

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let api = try client.client()
                let detail = try await api.get("/v1/runs/" + APIClient.encodeComponent(runID)).json()
                switch client.output {
                case .json:
                    print(Console.pretty(detail))
                case .table:
                    print(RunsCommand.describe(detail))
                }
            }
        }
    }

    /// How long a run took (or has been going), from its summary's times.
    static func took(_ run: JSONValue) -> String {
        guard let created = RunView.date(run["created_at"]) else { return "-" }
        let end = RunView.date(run["finished_at"]) ?? Date()
        return WatchTimeline.format(seconds: end.timeIntervalSince(created))
    }

    /// A run detail as a few labelled lines and a step table.
    static func describe(_ detail: JSONValue) -> String {
        var lines: [String] = []
        func field(_ label: String, _ value: String) {
            lines.append(label.padding(toLength: 10, withPad: " ", startingAt: 0) + value)
        }
        field("run", Console.cell(detail["run_id"]))
        field("playbook", Console.cell(detail["playbook"]) + (detail["playbook_version"].map { " (version \(Console.cell($0)))" } ?? ""))
        field("status", Console.cell(detail["status"]))
        field("trigger", Console.cell(detail["trigger"]))
        field("trace", Console.cell(detail["trace_id"]))
        field("created", Console.cell(detail["created_at"]))
        field("finished", Console.cell(detail["finished_at"]))
        if let failure = detail["failure"], failure != .null {
            field("failure", "\(Console.cell(failure["step"])): \(Console.cell(failure["reason"]))")
        }
        if let incident = detail["incident"], incident != .null {
            field("incident", "\(Console.cell(incident["kind"])) at \(Console.cell(incident["step_id"])): "
                + "\(Console.cell(incident["reason"])) – answer: hms-act incidents list --run \(Console.cell(detail["run_id"]))")
        }
        if let result = detail["result"], result != .null { field("result", Console.compact(result)) }
        field("payload", Console.cell(detail["payload"]))
        if case .array(let steps)? = detail["steps"], !steps.isEmpty {
            lines.append("")
            let rows = steps.map { step -> [String] in
                let duration = RunView.int(step["duration_ms"]).map { WatchTimeline.format(seconds: Double($0) / 1_000) } ?? "-"
                let who = step["agent"].flatMap(\.stringValue) ?? Console.cell(step["assignee"])
                let note = step["error"]?.stringValue ?? (step["output"].map { $0 == .null ? "" : Console.compact($0) } ?? "")
                return [
                    Console.cell(step["step_id"]), Console.cell(step["visit"]), Console.cell(step["status"]), who,
                    Console.cell(step["attempt"]), duration, Console.cell(step["sla"]?["state"]), note,
                ]
            }
            lines.append(Console.table(["STEP", "VISIT", "STATUS", "BY", "ATTEMPT", "TOOK", "SLA", "OUTPUT / ERROR"], rows))
        }
        if case .array(let tasks)? = detail["tasks"] {
            let open = tasks.filter { !["completed", "failed", "cancelled", "timeout", "superseded"].contains($0["status"]?.stringValue ?? "") }
            if !open.isEmpty {
                lines.append("")
                lines.append(Console.table(["OPEN TASK", "ATTEMPT", "ASSIGNEE", "STATUS", "DEADLINE"], open.map { task in
                    [Console.cell(task["task_id"]), Console.cell(task["attempt"]), Console.cell(task["assignee"]),
                        Console.cell(task["status"]), Console.cell(task["deadline"])]
                }))
            }
        }
        return lines.joined(separator: "\n")
    }
}
