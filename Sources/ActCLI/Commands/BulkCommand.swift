import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act bulk cancel|pause|resume|retry --playbook … [--wait]`, `hms-act bulk list|show|stop`.
struct BulkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bulk",
        abstract: "Cancel, pause, resume or retry every run a filter matches, in the background, rate-limited.",
        discussion: """
            The replicas work on it (after a restart another goes on from where it was). Examples:
              hms-act bulk cancel --playbook FTC-Complaint --status running --reason "duplicate campaign" --wait
              hms-act bulk retry --status incident --playbook payment_failed_flow --rate 50
              hms-act bulk show 3
              hms-act bulk stop 3
            """,
        subcommands: [Start.self, List.self, Show.self, Stop.self]
    )
}

extension BulkCommand {
    /// `hms-act bulk ACTION --filter…`.
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start", abstract: "Start a bulk operation (also: hms-act bulk cancel|pause|resume|retry …).",
            aliases: ["cancel", "pause", "resume", "retry"])

        @Argument(help: ArgumentHelp("cancel, pause, resume or retry (the incident each run waits on).", valueName: "action"))
        var action: String?
        @Option(help: "Only runs of this playbook id.")
        var playbook: String?
        @Option(help: "Only runs with this status (running, paused, incident, …).")
        var status: String?
        @Option(help: ArgumentHelp("Only runs with this business key.", valueName: "key"))
        var key: String?
        @Option(name: .customLong("created-after"), help: ArgumentHelp("Only runs created at or after (RFC 3339).", valueName: "time"))
        var createdAfter: String?
        @Option(name: .customLong("created-before"), help: ArgumentHelp("Only runs created before (RFC 3339).", valueName: "time"))
        var createdBefore: String?
        @Option(help: "Why, for each run's audit trail.")
        var reason: String?
        @Option(help: "At most this many runs a second (1–5000).")
        var rate = 200
        @Flag(help: "Wait until it is done, printing progress.")
        var wait = false
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                // `hms-act bulk cancel …` arrives here with the action as the command name.
                let invoked = CommandLine.arguments.dropFirst().drop { $0 != "bulk" }.dropFirst().first ?? "start"
                guard let action = invoked == "start" ? self.action : invoked,
                    ["cancel", "pause", "resume", "retry"].contains(action)
                else {
                    throw CLIError("name the action: hms-act bulk cancel|pause|resume|retry --playbook … (or --status …)")
                }
                var filter: [String: JSONValue] = [:]
                if let playbook { filter["playbook"] = .string(playbook) }
                if let status { filter["status"] = .string(status) }
                if let key { filter["key"] = .string(key) }
                if let createdAfter { filter["created_after"] = .string(createdAfter) }
                if let createdBefore { filter["created_before"] = .string(createdBefore) }
                var body: [String: JSONValue] = ["action": .string(action), "filter": .object(filter), "rate_per_second": .int(rate)]
                if let reason { body["reason"] = .string(reason) }
                let api = try client.client()
                var operation = try await api.post("/v1/bulk-operations", json: .object(body)).json()
                let id = Console.cell(operation["id"])
                if client.output == .table { print("bulk operation \(id): \(action) \(Console.compact(.object(filter)))") }
                while wait, operation["state"]?.stringValue == "running" {
                    try await Task.sleep(for: .seconds(1))
                    operation = try await api.get("/v1/bulk-operations/\(id)").json()
                    if client.output == .table { print(BulkCommand.progress(operation)) }
                }
                if client.output == .json { print(Console.pretty(operation)) }
                if wait, operation["state"]?.stringValue != "done" { throw ExitCode(1) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List bulk operations, newest first.")

        @Option(help: "running, done or stopped.")
        var state: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let answer = try await client.client().get("/v1/bulk-operations", query: [("state", state)]).json()
                switch client.output {
                case .json: print(Console.pretty(answer))
                case .table:
                    guard case .array(let operations)? = answer["bulk_operations"], !operations.isEmpty else {
                        print("no bulk operations")
                        return
                    }
                    print(Console.table(["ID", "ACTION", "STATE", "MATCHED", "APPLIED", "BY", "CREATED"], operations.map {
                        [Console.cell($0["id"]), Console.cell($0["action"]), Console.cell($0["state"]),
                         Console.cell($0["progress"]?["matched"]), Console.cell($0["progress"]?["applied"]),
                         Console.cell($0["requested_by"]), Console.cell($0["created_at"])]
                    }))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one bulk operation and its progress.")

        @Argument(help: "The operation's id.")
        var id: Int
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let operation = try await client.client().get("/v1/bulk-operations/\(id)").json()
                switch client.output {
                case .json: print(Console.pretty(operation))
                case .table:
                    print("""
                        bulk operation \(id): \(Console.cell(operation["action"])) \(Console.compact(operation["filter"] ?? .null))
                        requested by \(Console.cell(operation["requested_by"])) at \(Console.cell(operation["created_at"])), \
                        \(Console.cell(operation["rate_per_second"])) runs/s
                        \(BulkCommand.progress(operation))
                        """ + (operation["last_error"]?.stringValue.map { "\nlast error: \($0)" } ?? ""))
                }
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a running bulk operation; what it did stays done.")

        @Argument(help: "The operation's id.")
        var id: Int
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let operation = try await client.client().post("/v1/bulk-operations/\(id)/stop", json: [:]).json()
                switch client.output {
                case .json: print(Console.pretty(operation))
                case .table: print(BulkCommand.progress(operation))
                }
            }
        }
    }

    static func progress(_ operation: JSONValue) -> String {
        let progress = operation["progress"]
        return "\(Console.cell(operation["state"])): \(Console.cell(progress?["matched"])) runs, "
            + "\(Console.cell(progress?["applied"])) applied, \(Console.cell(progress?["ignored"])) ignored, "
            + "\(Console.cell(progress?["refused"])) refused"
    }
}
