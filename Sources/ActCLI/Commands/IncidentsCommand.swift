import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act incidents list|show|retry|skip|fail|resolve`: what needs an operator, and the answers.
struct IncidentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "List incidents and answer them: retry, skip or fail a run's failed step; resolve the others.",
        discussion: """
            A run incident (step_failed, compensation_failed; HOLDS yes) holds its run in status `incident` until
            it is answered with retry, skip or fail. Other incidents (unroutable_task, unpublishable_message,
            poison_timer) hold nothing: fix the cause (docs/operations.md), then resolve them.
            Examples:
              hms-act incidents list --run wf_…
              hms-act incidents retry 7 --input '{"carrier": "ups"}' --reason "carrier back"
              hms-act incidents skip 7 --output '{"shipped": true}' --reason "sent by hand"
              hms-act incidents fail 7 --reason "order withdrawn"
              hms-act incidents resolve 9 --reason "queue bound"
            """,
        subcommands: [List.self, Show.self, Retry.self, Skip.self, Fail.self, Resolve.self]
    )
}

extension IncidentsCommand {
    /// `hms-act incidents list [--status open|resolved|all] [--run R] [--kind K]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List incidents, newest first (open ones by default).")

        @Option(help: "open, resolved or all.")
        var status: String = "open"
        @Option(help: ArgumentHelp("Only incidents of this run.", valueName: "run"))
        var run: String?
        @Option(help: ArgumentHelp("Only incidents of this kind (step_failed, unroutable_task, …).", valueName: "kind"))
        var kind: String?
        @Option(help: "How many (1–1000).")
        var limit: Int = 100
        @Option(help: ArgumentHelp("Continue below this incident id (the `next` of an earlier page).", valueName: "id"))
        var before: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard ["open", "resolved", "all"].contains(status) else {
                throw ValidationError("--status must be open, resolved or all")
            }
            guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
        }

        func run() async throws {
            try await Console.reportingErrors {
                let page = try await client.client().get("/v1/incidents", query: [
                    ("status", status), ("run", run), ("kind", kind), ("limit", String(limit)), ("before", before),
                ]).json()
                switch client.output {
                case .json:
                    print(Console.pretty(page))
                case .table:
                    guard case .array(let incidents)? = page["incidents"], !incidents.isEmpty else {
                        print("no \(status == "all" ? "" : status + " ")incidents")
                        return
                    }
                    let rows = incidents.map { incident in
                        [
                            Console.cell(incident["id"]), Console.cell(incident["kind"]), Console.cell(incident["run_id"]),
                            Console.cell(incident["detail"]?["step_id"]), incident["holds_run"] == true ? "yes" : "no",
                            Console.cell(incident["status"]), Console.cell(incident["created_at"]),
                            IncidentsCommand.reason(incident),
                        ]
                    }
                    print(Console.table(["ID", "KIND", "RUN", "STEP", "HOLDS", "STATUS", "CREATED", "REASON"], rows))
                    if let next = page["next"]?.stringValue { print("more: hms-act incidents list --before \(next)") }
                }
            }
        }
    }

    /// `hms-act incidents show ID`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one incident with its detail and resolution.")

        @Argument(help: "The incident id.")
        var id: Int
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let incident = try await client.client().get("/v1/incidents/\(id)").json()
                switch client.output {
                case .json:
                    print(Console.pretty(incident))
                case .table:
                    var lines = [
                        "incident  \(Console.cell(incident["id"])) (\(Console.cell(incident["kind"])))",
                        "run       \(Console.cell(incident["run_id"]))" + (incident["holds_run"] == true ? " (waits on it)" : ""),
                        "status    \(Console.cell(incident["status"]))",
                        "created   \(Console.cell(incident["created_at"]))",
                        "detail    \(Console.compact(incident["detail"] ?? .null))",
                    ]
                    if let resolution = incident["resolution"], resolution != .null {
                        lines.append("resolved  \(Console.cell(resolution["action"])) by \(Console.cell(resolution["actor"])) "
                            + "at \(Console.cell(resolution["at"]))"
                            + (resolution["reason"]?.stringValue.map { " – \($0)" } ?? ""))
                    } else if incident["holds_run"] == true {
                        lines.append("answer    hms-act incidents retry|skip|fail \(id) --reason …")
                    } else {
                        lines.append("answer    fix the cause, then hms-act incidents resolve \(id) --reason …")
                    }
                    print(lines.joined(separator: "\n"))
                }
            }
        }
    }

    /// What the answering commands take.
    struct AnswerOptions: ParsableArguments {
        @Argument(help: "The incident id.")
        var id: Int
        @Option(help: "Why, kept with the resolution and in the run's audit trail.")
        var reason: String?
        @OptionGroup var client: ClientOptions

        /// `POST /v1/incidents/{id}/{action}` and the outcome.
        func send(_ action: String, extra: [String: JSONValue] = [:]) async throws {
            var body = extra
            if let reason { body["reason"] = .string(reason) }
            let answer = try await client.client().post("/v1/incidents/\(id)/\(action)", json: .object(body)).json()
            RunControl.printOutcome(answer, format: client.output) {
                "\(action) incident \(id)" + ($0["run_id"]?.stringValue.map { " of \($0)" } ?? "") + ": "
                    + RunControl.outcome($0)
            }
        }
    }

    /// `hms-act incidents retry ID [--input JSON]`.
    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the failed step again (a new visit), or send the failed compensation again.")

        @OptionGroup var options: AnswerOptions
        @Option(help: ArgumentHelp("A JSON merge patch on the step's input (or @file.json); null removes a key.",
            valueName: "json"))
        var input: String?

        func run() async throws {
            try await Console.reportingErrors {
                var extra: [String: JSONValue] = [:]
                if let input { extra["input"] = try Console.parseJSON(input, option: "--input") }
                try await options.send("retry", extra: extra)
            }
        }
    }

    /// `hms-act incidents skip ID --output JSON`.
    struct Skip: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Go on as if the step completed with --output (it is not compensated later); "
                + "for a compensation, as if it was undone by hand.")

        @OptionGroup var options: AnswerOptions
        @Option(help: ArgumentHelp("The output later steps read as steps.<id> (or @file.json); {} for none.",
            valueName: "json"))
        var output: String

        func run() async throws {
            try await Console.reportingErrors {
                try await options.send("skip", extra: ["output": try Console.parseJSON(output, option: "--output")])
            }
        }
    }

    /// `hms-act incidents fail ID`.
    struct Fail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give up: the run fails and compensates (a failed compensation stays failed; the others run).")

        @OptionGroup var options: AnswerOptions

        func run() async throws { try await Console.reportingErrors { try await options.send("fail") } }
    }

    /// `hms-act incidents resolve ID`.
    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark an incident that holds no run resolved, once its cause is fixed.")

        @OptionGroup var options: AnswerOptions

        func run() async throws { try await Console.reportingErrors { try await options.send("resolve") } }
    }

    /// The reason in an incident's detail, shortened for a table.
    static func reason(_ incident: JSONValue) -> String {
        let text = incident["detail"]?["reason"]?.stringValue ?? incident["detail"]?["error"]?.stringValue ?? ""
        return text.count > 60 ? String(text.prefix(59)) + "…" : (text.isEmpty ? "-" : text)
    }
}

/// `hms-act rewind RUN --from STEP [--reason TEXT]`: run a run again from a step, keeping what came before.
struct RewindCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewind",
        abstract: "Run a finished run (or one waiting on a step's incident) again from a top-level step.",
        discussion: """
            The step and the steps written after it run again as new visits; the outputs of the steps before it
            are kept. Refused when the run is still active, never reached the step, or a step it would keep was
            compensated (rewind to that step or earlier).
            Example: hms-act rewind wf_… --from ship --reason "parcel lost"
            """
    )

    @Argument(help: ArgumentHelp("The run id (wf_…).", valueName: "run"))
    var runID: String
    @Option(help: ArgumentHelp("The top-level step to run again from.", valueName: "step"))
    var from: String
    @Option(help: "Why, for the audit trail.")
    var reason: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await Console.reportingErrors {
            var body: [String: JSONValue] = ["step": .string(from)]
            if let reason { body["reason"] = .string(reason) }
            let answer = try await client.client().post("/v1/runs/\(APIClient.encodeComponent(runID))/rewind",
                json: .object(body)).json()
            RunControl.printOutcome(answer, format: client.output) { "rewind \(runID) to \(from): \(RunControl.outcome($0))" }
        }
    }
}
