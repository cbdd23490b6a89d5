import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act playbook versions|pin|unpin|deprecate|disable|enable`: which version of a playbook new runs start
/// on (`/v1/playbooks/{id}/versions`, docs/operations.md "Pinning, deprecating and disabling versions").
extension PlaybookCommand {
    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every version of a playbook with its state and pin, and which one new runs start on.")

        @Argument(help: "The playbook id, e.g. NoiseComplaint.v1.")
        var playbook: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await Console.reportingErrors {
                let answer = try await client.client()
                    .get("/v1/playbooks/\(APIClient.encodeComponent(playbook))/versions").json()
                PlaybookVersionsOutput.print(answer, output: client.output)
            }
        }
    }

    struct Pin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pin the version new runs of a playbook start on (instead of the newest active one).",
            discussion: "Example: hms-act playbook pin NoiseComplaint.v1 3 --reason \"v4 sends wrong letters\"")

        @Argument(help: "The playbook id.")
        var playbook: String
        @Argument(help: "The version to pin (hms-act playbook versions ID lists them).")
        var version: Int64
        @Option(help: "Why, for the record.")
        var reason: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await PlaybookVersionsOutput.change(playbook, path: "pin", body: ["version": .int(version)],
                reason: reason, client: client)
        }
    }

    struct Unpin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unpin a playbook: new runs start on its newest active version again.")

        @Argument(help: "The playbook id.")
        var playbook: String
        @Option(help: "Why, for the record.")
        var reason: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await PlaybookVersionsOutput.change(playbook, path: "pin", body: ["version": .null], reason: reason,
                client: client)
        }
    }

    /// The arguments of `deprecate`, `disable` and `enable`.
    struct VersionTarget: ParsableArguments {
        @Argument(help: "The playbook id.")
        var playbook: String
        @Argument(help: "The version (hms-act playbook versions ID lists them).")
        var version: Int64
        @Option(help: "Why, for the record.")
        var reason: String?
        @OptionGroup var client: ClientOptions

        func set(_ state: String) async throws {
            try await PlaybookVersionsOutput.change(playbook, path: "versions/\(version)/state",
                body: ["state": .string(state)], reason: reason, client: client)
        }
    }

    struct Deprecate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deprecate a version: new runs start on it only when it is pinned or no version is active.")

        @OptionGroup var target: VersionTarget

        func run() async throws { try await target.set("deprecated") }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a version: no new run starts on it; runs already on it go on.")

        @OptionGroup var target: VersionTarget

        func run() async throws { try await target.set("disabled") }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a deprecated or disabled version active again.")

        @OptionGroup var target: VersionTarget

        func run() async throws { try await target.set("active") }
    }
}

/// Sending a change and printing a playbook's versions.
enum PlaybookVersionsOutput {
    static func change(_ playbook: String, path: String, body: [String: JSONValue], reason: String?,
        client: ClientOptions) async throws
    {
        try await Console.reportingErrors {
            var body = body
            if let reason { body["reason"] = .string(reason) }
            let answer = try await client.client()
                .post("/v1/playbooks/\(APIClient.encodeComponent(playbook))/\(path)", json: .object(body)).json()
            print(answer, output: client.output)
        }
    }

    static func print(_ answer: JSONValue, output: OutputFormat) {
        switch output {
        case .json:
            Swift.print(Console.pretty(answer))
        case .table:
            let current = answer["current"].flatMap { $0 == .null ? nil : Console.cell($0) }
            Swift.print("\(Console.cell(answer["playbook"])): new runs start on "
                + (current.map { "version \($0)" } ?? "no version (every version is disabled)"))
            Swift.print("VERSION  STATE       PINNED  REGISTERED                CHANGED BY")
            guard case .array(let versions)? = answer["versions"] else { return }
            for version in versions {
                let marker = version["current"] == .bool(true) ? "*" : " "
                Swift.print((Console.cell(version["version"]) + marker).padding(toLength: 9, withPad: " ", startingAt: 0)
                    + Console.cell(version["state"]).padding(toLength: 12, withPad: " ", startingAt: 0)
                    + (version["pinned"] == .bool(true) ? "yes" : "-").padding(toLength: 8, withPad: " ", startingAt: 0)
                    + Console.cell(version["registered_at"]).padding(toLength: 26, withPad: " ", startingAt: 0)
                    + (version["changed_by"].map(Console.cell) ?? "-")
                    + (version["reason"].map { " (\(Console.cell($0)))" } ?? ""))
            }
        }
    }
}
