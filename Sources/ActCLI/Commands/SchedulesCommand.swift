import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act schedules list|pause|resume|trigger`: the playbooks' schedules (`schedules:`), and the operator's
/// hand on them (`/v1/schedules`, docs/operations.md "Schedules").
struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "List playbook schedules; pause, resume or trigger one.",
        discussion: """
            A paused schedule skips its fires; resuming goes on from now and does not
            make them up. Triggering starts one run at once, whatever the schedule's
            overlap policy or pause, and leaves its fires alone.
            Examples:
              hms-act schedules list --playbook Billing.v1
              hms-act schedules pause Billing.v1 nightly --reason "billing freeze"
              hms-act schedules resume Billing.v1 nightly --reason "freeze lifted"
              hms-act schedules trigger Billing.v1 nightly --idempotency-key rerun-1
            """,
        subcommands: [List.self, Pause.self, Resume.self, Trigger.self]
    )
}

extension SchedulesCommand {
    /// `hms-act schedules list [--playbook P]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the schedules of every playbook's current version, with their next and last fire.")

        @Option(help: ArgumentHelp("Only this playbook's schedules.", valueName: "playbook"))
        var playbook: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let answer = try await client.client().get("/v1/schedules", query: [("playbook", playbook)]).json()
                switch client.output {
                case .json:
                    print(Console.pretty(answer))
                case .table:
                    guard case .array(let schedules)? = answer["schedules"], !schedules.isEmpty else {
                        print(playbook.map { "playbook \($0) has no schedules" } ?? "no schedules")
                        return
                    }
                    print(SchedulesCommand.table(schedules))
                }
            }
        }
    }

    /// What `pause` and `resume` take.
    struct PauseOptions: ParsableArguments {
        @Argument(help: "The playbook id, e.g. Billing.v1.")
        var playbook: String
        @Argument(help: "The schedule's id (hms-act schedules list shows them).")
        var schedule: String
        @Option(help: "Why, for the record (required).")
        var reason: String
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ValidationError("--reason must say why, e.g. --reason \"billing freeze until Monday\"")
            }
        }

        /// `POST /v1/schedules/{playbook}/{schedule}/{action}` and the schedule afterwards.
        func send(_ action: String) async throws {
            try await Console.reportingErrors {
                let answer = try await client.client().post(SchedulesCommand.path(playbook, schedule, action),
                    json: ["reason": .string(reason)]).json()
                switch client.output {
                case .json:
                    print(Console.pretty(answer))
                case .table:
                    print(SchedulesCommand.table([answer]))
                }
            }
        }
    }

    /// `hms-act schedules pause PLAYBOOK SCHEDULE --reason R`.
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause a schedule: its fires are skipped until it is resumed.")

        @OptionGroup var options: PauseOptions

        func run() async throws { try await options.send("pause") }
    }

    /// `hms-act schedules resume PLAYBOOK SCHEDULE --reason R`.
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a paused schedule from now; the fires it skipped are not made up.")

        @OptionGroup var options: PauseOptions

        func run() async throws { try await options.send("resume") }
    }

    /// `hms-act schedules trigger PLAYBOOK SCHEDULE [--idempotency-key K]`.
    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start one run of a schedule now, whatever its overlap policy or pause.")

        @Argument(help: "The playbook id, e.g. Billing.v1.")
        var playbook: String
        @Argument(help: "The schedule's id (hms-act schedules list shows them).")
        var schedule: String
        @Option(help: ArgumentHelp("Sent as Idempotency-Key: triggering again with the same key starts nothing new.",
            valueName: "key"))
        var idempotencyKey: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let answer = try await client.client().post(SchedulesCommand.path(playbook, schedule, "trigger"),
                    json: nil, headers: idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:]).json()
                RunControl.printOutcome(answer, format: client.output) {
                    "trigger \(playbook)/\(schedule) → \(Console.cell($0["run_id"])): \(RunControl.outcome($0))"
                }
            }
        }
    }

    /// `/v1/schedules/{playbook}/{schedule}/{action}`, each segment percent-encoded.
    static func path(_ playbook: String, _ schedule: String, _ action: String) -> String {
        "/v1/schedules/\(APIClient.encodeComponent(playbook))/\(APIClient.encodeComponent(schedule))/\(action)"
    }

    /// Schedules as a table: one row each, with who paused it.
    static func table(_ schedules: [JSONValue]) -> String {
        let rows = schedules.map { schedule in
            [
                Console.cell(schedule["playbook"]), Console.cell(schedule["schedule_id"]),
                Console.cell(schedule["spec"]), Console.cell(schedule["overlap"]), Console.cell(schedule["next_fire_at"]),
                Console.cell(schedule["last_fire_at"]), Console.cell(schedule["last_run_id"]),
                "\(Console.cell(schedule["started"]))/\(Console.cell(schedule["skipped"]))",
                schedule["paused"] == .bool(true) ? "paused by " + Console.cell(schedule["paused_by"]) : "active",
            ]
        }
        let header = [
            "PLAYBOOK", "SCHEDULE", "SPEC", "OVERLAP", "NEXT FIRE", "LAST FIRE", "LAST RUN", "STARTED/SKIPPED", "STATE",
        ]
        return Console.table(header, rows)
    }
}
