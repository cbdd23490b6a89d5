import ActPlaybook
import ArgumentParser
import Foundation

/// The operator's commands on one run: `pause`, `resume`, `cancel`, `signal` and `approve`.
enum RunControl {
    /// `POST /v1/runs/{run}/{action}` with `{"reason", "actor"}`; prints the outcome.
    ///
    /// The server records the token's principal as the actor; `actor` is sent only when given, and the
    /// server refuses it (403 `actor-mismatch`) unless it is that principal.
    static func send(
        _ action: String, run: String, reason: String?, actor: String?, client: ClientOptions
    ) async throws {
        let api = try client.client()
        var body: [String: JSONValue] = [:]
        if let reason { body["reason"] = .string(reason) }
        if let actor { body["actor"] = .string(actor) }
        let answer = try await api.post(
            "/v1/runs/\(APIClient.encodeComponent(run))/\(action)", json: .object(body)
        ).json()
        printOutcome(answer, format: client.output) { "\(action) \(run): \(RunControl.outcome($0))" }
    }

    /// Prints an answer as JSON or as one line made by `line`, with the server's `reason` when there is one.
    static func printOutcome(_ answer: JSONValue, format: OutputFormat, line: (JSONValue) -> String) {
        switch format {
        case .json:
            print(Console.pretty(answer))
        case .table:
            print(line(answer) + (answer["reason"]?.stringValue.map { " – \($0)" } ?? ""))
        }
    }

    /// The `outcome` of an answer (`applied`, `ignored`, …); `accepted` when the server says none.
    static func outcome(_ answer: JSONValue) -> String {
        answer["outcome"]?.stringValue ?? "accepted"
    }
}

/// What `pause`, `resume` and `cancel` take: the run, why and who (for the audit trail), and the API client.
struct RunActionOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("The run id (wf_…).", valueName: "run"))
    var runID: String
    @Option(help: "Why, for the audit trail.")
    var reason: String?
    @Option(help: "Who, for the audit trail: only the token's own name is accepted (the default is that name).")
    var actor: String?
    @OptionGroup var client: ClientOptions

    /// Sends `action` for the run and prints the outcome.
    func send(_ action: String) async throws {
        try await Console.reportingErrors {
            try await RunControl.send(action, run: runID, reason: reason, actor: actor, client: client)
        }
    }
}

/// `hms-act pause RUN [--reason TEXT]`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Pause a run: answers still count, but no new task is dispatched until resumed."
    )

    @OptionGroup var options: RunActionOptions

    func run() async throws { try await options.send("pause") }
}

/// `hms-act resume RUN [--reason TEXT]`.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a paused run: held tasks are dispatched."
    )

    @OptionGroup var options: RunActionOptions

    func run() async throws { try await options.send("resume") }
}

/// `hms-act cancel RUN [--reason TEXT]`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a run; completed steps with `compensate:` are undone."
    )

    @OptionGroup var options: RunActionOptions

    func run() async throws { try await options.send("cancel") }
}

/// `hms-act signal RUN NAME [--payload JSON]`, or `hms-act signal --key KEY [--playbook P] NAME`: ends a wait
/// early (chapter 002's new bank details), in one run or in every running run with a business key.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Send a named signal to a run, or to the runs with a business key, e.g. to end a wait early.",
        discussion: """
            Examples:
              hms-act signal wf_… wait_for_fix --payload '{"iban": "DE89…"}'
              hms-act signal --key 987 --playbook payment_failed_flow wait_for_fix
            A run's business key is its playbook's `key:` on the trigger's payload, else its trigger event's id.
            """
    )

    @Argument(help: ArgumentHelp("The run id (wf_…), then the signal name; with --key, only the signal name.",
        valueName: "run"))
    var first: String
    @Argument(help: ArgumentHelp("The signal name the wait listens for (by default the wait step's id).", valueName: "name"))
    var second: String?
    @Option(help: ArgumentHelp("Signal every running run with this business key instead of naming a run.", valueName: "key"))
    var key: String?
    @Option(help: ArgumentHelp("With --key: only runs of this playbook.", valueName: "playbook"))
    var playbook: String?
    @Option(help: ArgumentHelp("The signal's payload as JSON (or @file.json).", valueName: "json"))
    var payload: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if key == nil && second == nil {
            throw ValidationError("name the run and the signal (hms-act signal wf_… wait_for_fix), or give --key")
        }
        if key != nil && second != nil {
            throw ValidationError("with --key, give only the signal name (the key finds the runs)")
        }
        if key == nil && playbook != nil { throw ValidationError("--playbook goes with --key") }
    }

    func run() async throws {
        try await Console.reportingErrors {
            let api = try client.client()
            var body: [String: JSONValue] = [:]
            if let payload { body["payload"] = try Console.parseJSON(payload, option: "--payload") }
            guard let key else {
                let (runID, name) = (first, second ?? "")
                let answer = try await api.post(
                    "/v1/runs/\(APIClient.encodeComponent(runID))/signals/\(APIClient.encodeComponent(name))",
                    json: .object(body)
                ).json()
                RunControl.printOutcome(answer, format: client.output) { "signal \(name) → \(runID): \(RunControl.outcome($0))" }
                return
            }
            let name = first
            body["key"] = .string(key)
            if let playbook { body["playbook"] = .string(playbook) }
            let answer = try await api.post("/v1/signals/\(APIClient.encodeComponent(name))", json: .object(body)).json()
            RunControl.printOutcome(answer, format: client.output) { answer in
                guard case .array(let runs)? = answer["runs"] else { return "signal \(name): no run" }
                return runs.map { "signal \(name) → \($0["run_id"]?.stringValue ?? "?"): \(RunControl.outcome($0))" }
                    .joined(separator: "\n")
            }
        }
    }
}

/// `hms-act approve RUN STEP [--reason R] [--refuse]`: the human decision on a `pause: true` step, recorded
/// under the token's principal.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve (or with --refuse, refuse) a step that waits for a human decision (`pause: true`)."
    )

    @Argument(help: ArgumentHelp("The run id (wf_…).", valueName: "run"))
    var runID: String
    @Argument(help: "The step waiting for approval, e.g. zoningApproval.")
    var step: String
    @Option(help: "Who decides: only the token's own name is accepted (the default is that name).")
    var actor: String?
    @Option(help: "Why.")
    var reason: String?
    @Flag(help: "Refuse instead of approve (the run fails and compensates).")
    var refuse = false
    @Option(help: ArgumentHelp("Extra data for the step's output, as JSON (or @file.json).", valueName: "json"))
    var payload: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await Console.reportingErrors {
            let api = try client.client()
            var body: [String: JSONValue] = ["approved": .bool(!refuse)]
            if let actor { body["actor"] = .string(actor) }
            if let reason { body["reason"] = .string(reason) }
            if let payload { body["payload"] = try Console.parseJSON(payload, option: "--payload") }
            let answer = try await api.post(
                "/v1/callbacks/\(APIClient.encodeComponent(runID))/\(APIClient.encodeComponent(step))",
                json: .object(body)
            ).json()
            RunControl.printOutcome(answer, format: client.output) {
                "\(refuse ? "refused" : "approved") \(step) of \(runID): \(RunControl.outcome($0))"
            }
        }
    }
}
