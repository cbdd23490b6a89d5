import ActPlaybook
import ArgumentParser
import Foundation

extension PlaybookCommand {
    /// `hms-act playbook migrate --from-version N --to-version M [--map old=new …] [--apply]`.
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the active runs of one playbook version to another (a dry run unless --apply).",
            discussion: """
                Versions are the numbers `hms-act playbook register` printed (GET /v1/playbooks/{id}). Step ids map to \
                themselves unless --map renames them. The dry run lists every run that cannot move (at a step the new \
                version lacks, or that would lose a compensate:) with the reason; --apply refuses while there is one, \
                and otherwise moves them in the background (hms-act bulk show ID).
                Example: hms-act playbook migrate --from-version 3 --to-version 4 --map review=check --apply
                """)

        @Option(name: .customLong("from-version"), help: "The version the runs are on.")
        var fromVersion: Int
        @Option(name: .customLong("to-version"), help: "The version to move them to.")
        var toVersion: Int
        @Option(name: .customLong("map"), help: ArgumentHelp("Rename a step: old=new (repeatable).", valueName: "old=new"))
        var mappings: [String] = []
        @Flag(help: "Move them (without it: only report).")
        var apply = false
        @Option(help: "At most this many runs a second (1–5000).")
        var rate = 200
        @Option(help: "Why, for each run's audit trail.")
        var reason: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                var mapping: [String: JSONValue] = [:]
                for pair in mappings {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                        throw CLIError("--map takes old=new, like --map review=check; not '\(pair)'")
                    }
                    mapping[parts[0]] = .string(parts[1])
                }
                var body: [String: JSONValue] = [
                    "from_version": .int(Int64(fromVersion)), "to_version": .int(Int64(toVersion)),
                    "mapping": .object(mapping), "dry_run": .bool(!apply), "rate_per_second": .int(Int64(rate)),
                ]
                if let reason { body["reason"] = .string(reason) }
                let plan = try await client.client().post("/v1/playbook-migrations", json: .object(body)).json()
                switch client.output {
                case .json: print(Console.pretty(plan))
                case .table:
                    print("version \(fromVersion) → \(toVersion): \(Console.cell(plan["active"])) active runs, "
                        + "\(Console.cell(plan["movable"])) can move, \(Console.cell(plan["refused_count"])) cannot")
                    if case .array(let refused)? = plan["refused"] {
                        for refusal in refused { print("  ✘ \(Console.cell(refusal["run_id"])): \(Console.cell(refusal["reason"]))") }
                    }
                    if let operation = plan["operation"]?["id"], operation != .null {
                        print("moving them: bulk operation \(Console.cell(operation)) (hms-act bulk show \(Console.cell(operation)))")
                    } else if !apply {
                        print("dry run: nothing changed; add --apply to move them")
                    }
                }
            }
        }
    }
}
