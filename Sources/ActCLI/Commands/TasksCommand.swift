import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act tasks list|complete|fail`: the HTTP side of the worker contract (chapter 001's polling worker,
/// chapter 004's `fetch_task` / `complete_task` / `fail_task`), for desks and for trying things by hand.
struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List open tasks and complete or fail them by hand.",
        subcommands: [List.self, Complete.self, Fail.self]
    )
}

extension TasksCommand {
    /// `hms-act tasks list [--actor A] [--limit N]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List open tasks, all or of one actor.")

        @Option(help: ArgumentHelp(
            "Only this actor's tasks: a label (human.investigator) or the AI:/HUMAN:/SVC: form (HUMAN:investigator).",
            valueName: "actor"))
        var actor: String?

        @Option(help: "How many tasks (1–500).")
        var limit: Int = 100

        @Option(help: "created (oldest first) or deadline (soonest first, no deadline last).")
        var sort = "created"

        @Option(help: ArgumentHelp("Continue after this cursor (the `next` of an earlier page).", valueName: "cursor"))
        var after: String?

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be between 1 and 500") }
            guard ["created", "deadline"].contains(sort) else { throw ValidationError("--sort must be created or deadline") }
        }

        func run() async throws {
            try await Console.reportingErrors {
                let api = try client.client()
                let answer = try await api.get("/v1/tasks", query: [
                    ("actor", actor), ("limit", String(limit)), ("sort", sort), ("after", after),
                ]).json()
                switch client.output {
                case .json:
                    print(Console.pretty(answer))
                case .table:
                    guard case .array(let tasks)? = answer["tasks"], !tasks.isEmpty else {
                        print("no open tasks" + (actor.map { " for \($0)" } ?? ""))
                        return
                    }
                    print(Console.table(
                        ["TASK", "ATTEMPT", "ASSIGNEE", "AGENT", "STATUS", "DEADLINE"],
                        tasks.map { task in
                            [
                                Console.cell(task["task_id"]), Console.cell(task["attempt"]), Console.cell(task["assignee"]),
                                Console.cell(task["agent"]), Console.cell(task["status"]), Console.cell(task["deadline"]),
                            ]
                        }))
                    if let next = answer["next"]?.stringValue {
                        print("more: hms-act tasks list --sort \(sort) --after '\(next)'")
                    }
                }
            }
        }
    }

    /// `hms-act tasks complete TASK [--output JSON] [--agent NAME] [--attempt N]`.
    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Complete a task with an output.",
            discussion: "Example: hms-act tasks complete 'wf_…/classify/1' --output '{\"severity\": \"High\"}' --agent labeler#1"
        )

        @Argument(help: ArgumentHelp("The task id (wf_…/step/visit), as `tasks list` shows it.", valueName: "task"))
        var taskID: String

        @Option(help: ArgumentHelp("The task's output as JSON (or @file.json); default {}.", valueName: "json"))
        var output: String?

        @Option(help: "Who did the work, shown in timelines (e.g. clerk#7).")
        var agent: String?

        @Option(help: "The attempt to complete; default the latest.")
        var attempt: Int?

        @Flag(help: "Print the server's answer as JSON.")
        var json = false

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await Console.reportingErrors {
                let api = try connection.client()
                var body: [String: JSONValue] = [
                    "output": try output.map { try Console.parseJSON($0, option: "--output") } ?? .object([:])
                ]
                if let agent { body["agent"] = .string(agent) }
                if let attempt { body["attempt"] = .int(attempt) }
                let answer = try await api.post(
                    "/v1/tasks/\(APIClient.encodeComponent(taskID))/complete", json: .object(body)
                ).json()
                RunControl.printOutcome(answer, format: json ? .json : .table) {
                    "completed \(taskID)#\(Console.cell($0["attempt"])): \(RunControl.outcome($0))"
                }
            }
        }
    }

    /// `hms-act tasks fail TASK --reason R [--no-retry] [--attempt N]`.
    struct Fail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fail a task; it is retried if its step allows, unless --no-retry."
        )

        @Argument(help: ArgumentHelp("The task id (wf_…/step/visit).", valueName: "task"))
        var taskID: String

        @Option(help: "Why it failed (shown in the timeline and the audit trail).")
        var reason: String

        @Flag(name: .customLong("no-retry"), help: "The failure is permanent: do not retry, go to on_failure or fail the run.")
        var noRetry = false

        @Option(help: "The attempt to fail; default the latest.")
        var attempt: Int?

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let api = try client.client()
                var body: [String: JSONValue] = ["reason": .string(reason), "retryable": .bool(!noRetry)]
                if let attempt { body["attempt"] = .int(attempt) }
                let answer = try await api.post(
                    "/v1/tasks/\(APIClient.encodeComponent(taskID))/fail", json: .object(body)
                ).json()
                RunControl.printOutcome(answer, format: client.output) {
                    "failed \(taskID)#\(Console.cell($0["attempt"])): \(RunControl.outcome($0))"
                }
            }
        }
    }
}
