import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act playbook …`: check playbooks and draw them, without a server.
struct PlaybookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playbook",
        abstract: "Validate, register and draw playbooks; choose the version new runs start on.",
        subcommands: [Validate.self, Register.self, Graph.self, Migrate.self, Versions.self, Pin.self, Unpin.self,
            Deprecate.self, Disable.self, Enable.self]
    )
}

extension PlaybookCommand {
    /// `hms-act playbook validate FILE… [-o text|json] [--agents DIR]`.
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check playbook files and list every problem with file, line, column and a fix.",
            discussion: "Exits with status 1 when any file has an error; warnings alone do not fail."
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text
            case json
        }

        @Argument(help: "Playbook files (YAML or JSON).")
        var files: [String]

        @Option(name: [.short, .customLong("output")], help: "Output format: text or json.")
        var output: Format = .text

        @Option(name: .customLong("agents"), help: "An agent folder (agents/*.json|yaml) to check assignees and skills against.")
        var agentDirectory: String?

        /// One file's outcome, as printed by `-o json`.
        struct Report: Encodable {
            var file: String
            var valid: Bool
            var diagnostics: [Diagnostic]
        }

        func run() async throws {
            var reports: [Report] = []
            var agents: [Agent] = []
            if let agentDirectory {
                do {
                    agents = try PlaybookLoader.loadAgentDirectory(agentDirectory)
                } catch {
                    reports.append(Report(file: agentDirectory, valid: false, diagnostics: error.diagnostics))
                }
            }
            for file in files {
                do {
                    let loaded = try PlaybookLoader.load(contentsOf: file)
                    let agentWarnings = agents.isEmpty
                        ? []
                        : loaded.playbook.validate(agents: agents).filter {
                            ["unknown-agent", "no-agent-with-skills"].contains($0.code)
                        }
                    reports.append(Report(file: file, valid: true, diagnostics: loaded.warnings + agentWarnings))
                } catch {
                    reports.append(Report(file: file, valid: false, diagnostics: error.diagnostics))
                }
            }
            switch output {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(reports)
                print(String(decoding: data, as: UTF8.self))
            case .text:
                for report in reports {
                    for diagnostic in report.diagnostics { print(diagnostic) }
                    print("\(report.valid ? "✔" : "✘") \(report.file)")
                }
                let errors = reports.flatMap(\.diagnostics).filter(\.isError).count
                let warnings = reports.flatMap(\.diagnostics).count - errors
                print("\(reports.count) file\(reports.count == 1 ? "" : "s"), \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")")
            }
            if reports.contains(where: { !$0.valid }) { throw ExitCode(1) }
        }
    }

    /// `hms-act playbook register FILE… [--trigger TYPE]…`: `POST /v1/playbooks` for each file.
    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register playbooks with the server (needs an admin token).",
            discussion: """
                Each file is sent as YAML; the server validates it and stores an immutable version (the same \
                source again returns the existing version). --trigger binds extra event types to it. Exits with \
                status 1 when any file is refused; the problems are listed with line and column.
                """
        )

        @Argument(help: "Playbook files (YAML or JSON).")
        var files: [String]

        @Option(name: .customLong("trigger"), help: ArgumentHelp("An event type that starts the playbook, besides its own trigger; repeat for several.", valueName: "type"))
        var triggers: [String] = []

        @OptionGroup var client: ClientOptions

        func run() async throws {
            var refused = 0
            try await Console.reportingErrors {
                let api = try client.client()
                var answers: [JSONValue] = []
                for file in files {
                    guard let data = FileManager.default.contents(atPath: file) else {
                        throw CLIError("cannot read '\(file)'")
                    }
                    let response: APIClient.Response
                    do {
                        if triggers.isEmpty {
                            response = try await api.post("/v1/playbooks", body: data, contentType: "application/yaml")
                        } else {
                            let body: JSONValue = [
                                "source": .string(String(decoding: data, as: UTF8.self)),
                                "file": .string((file as NSString).lastPathComponent),
                                "triggers": .array(triggers.map(JSONValue.string)),
                            ]
                            response = try await api.post("/v1/playbooks", json: body)
                        }
                    } catch let error as APIError {
                        guard error.status == 422 || error.status == 400 else { throw error }
                        refused += 1
                        Console.error("\(file): error: \(error)")
                        continue
                    }
                    let answer = try response.json()
                    answers.append(answer)
                    guard client.output == .table else { continue }
                    let checksum = answer["checksum"]?.stringValue.map { String($0.prefix(12)) } ?? "-"
                    var triggerList: [String] = []
                    if case .array(let items)? = answer["triggers"] { triggerList = items.compactMap(\.stringValue) }
                    let created = answer["created"] == .bool(true) ? "registered" : "already registered"
                    print("✔ \(file): \(Console.cell(answer["playbook"])) version \(Console.cell(answer["version"])) \(created)"
                        + " (sha256 \(checksum)…)"
                        + (triggerList.isEmpty ? "; no trigger: start it with POST /v1/runs" : "; triggered by \(triggerList.joined(separator: ", "))"))
                    if case .array(let warnings)? = answer["warnings"] {
                        for warning in warnings { print("  " + APIError.describe(diagnostic: warning)) }
                    }
                }
                if client.output == .json { print(Console.pretty(.array(answers))) }
            }
            if refused > 0 { throw ExitCode.failure }
        }
    }

    /// `hms-act playbook graph FILE`: the flow as a Mermaid `flowchart TD`.
    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a playbook's flow as a Mermaid flowchart (paste it into Markdown)."
        )

        @Argument(help: "A playbook file.")
        var file: String

        func run() async throws {
            do {
                let loaded = try PlaybookLoader.load(contentsOf: file)
                print(MermaidFlowchart.render(loaded.playbook))
            } catch {
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
                throw ExitCode(1)
            }
        }
    }
}

/// Draws a playbook as a Mermaid flowchart, in the style of the chapters' diagrams: tasks as boxes
/// (`id<br/>assignee`), switches as diamonds with case-labelled edges, parallel blocks as a fork and a
/// join, waits as rounded boxes, and `on_timeout` / `on_failure` as dotted labelled edges.
enum MermaidFlowchart {
    static func render(_ playbook: Playbook) -> String {
        var lines = ["flowchart TD"]
        let steps = playbook.steps
        var index: [StepID: String] = [:]
        for (offset, step) in steps.enumerated() where index[step.id] == nil { index[step.id] = "s\(offset)" }
        func node(_ id: StepID?) -> String? { id.flatMap { index[$0] } }

        let starts = playbook.triggers + (playbook.schedules ?? []).map { schedule in
            "⏰ \(schedule.spec)" + (schedule.timeZone == "UTC" ? "" : " \(schedule.timeZone)")
        }
        let limits = playbook.concurrency.map { ["runs \($0.summary)"] } ?? []
        lines.append("    start((\"\(label((starts.isEmpty ? ["start"] : starts) + limits))\"))")
        if let first = steps.first, let target = node(first.id) { lines.append("    start --> \(target)") }
        var needsEnd = false

        for (offset, step) in steps.enumerated() {
            let name = "s\(offset)"
            let following = offset + 1 < steps.count ? "s\(offset + 1)" : "done"
            var extra: [String] = []
            if let sla = step.sla { extra.append("SLA \(sla.duration)") }
            if step.retry.maxRetries > 0 { extra.append("retry ×\(step.retry.maxRetries)") }
            if let when = step.when { extra.append("when \(describe(when))") }
            if let compensate = step.compensate { extra.append("undo: \(compensate.written)") }
            func sequel() {
                let target = node(step.next) ?? following
                if target == "done" { needsEnd = true }
                lines.append("    \(name) --> \(target)")
            }
            switch step.kind {
            case .task(let spec):
                var parts = [step.id.rawValue, spec.assignee.displayName]
                if spec.mode == .fanOut { parts.append("fan-out") }
                if let forEach = spec.forEach { parts.append(forEach.summary) }
                if let concurrency = spec.concurrency { parts.append(concurrency.summary) }
                if spec.requiresApproval { parts.append("⏸ approval") }
                lines.append("    \(name)[\"\(label(parts + extra))\"]")
                sequel()
            case .choice(let choice):
                lines.append("    \(name){\"\(label([step.id.rawValue, choice.expressionSource] + extra))\"}")
                for item in choice.cases {
                    if let target = node(item.target) {
                        lines.append("    \(name) -->|\(escape(item.match))| \(target)")
                    }
                }
                if let target = node(choice.defaultTarget) { lines.append("    \(name) -->|default| \(target)") }
            case .parallel(let parallel):
                let join = "\(name)_join"
                lines.append("    \(name)[[\"\(label([step.id.rawValue, "parallel"] + extra))\"]]")
                for (branchOffset, branch) in parallel.branches.enumerated() {
                    let branchName = "\(name)_b\(branchOffset + 1)"
                    var parts = [branch.id.rawValue]
                    if case .task(let spec) = branch.kind { parts.append(spec.assignee.displayName) }
                    if let sla = branch.sla { parts.append("SLA \(sla.duration)") }
                    lines.append("    \(branchName)[\"\(label(parts))\"]")
                    lines.append("    \(name) --> \(branchName)")
                    lines.append("    \(branchName) --> \(join)")
                    if let target = node(branch.onTimeout) { lines.append("    \(branchName) -.->|timeout| \(target)") }
                    if let target = node(branch.onFailure) { lines.append("    \(branchName) -.->|failure| \(target)") }
                }
                let joinText = parallel.join == .allMustFinish ? "join: all finished" : "join: all"
                lines.append("    \(join)((\"\(joinText)\"))")
                let target = node(step.next) ?? following
                if target == "done" { needsEnd = true }
                lines.append("    \(join) --> \(target)")
            case .wait(let wait):
                var parts = [step.id.rawValue]
                parts.append(wait.duration.map { "wait \($0)" } ?? "wait")
                parts.append("or signal \(wait.signal)")
                lines.append("    \(name)([\"\(label(parts + extra))\"])")
                sequel()
            }
            if let target = node(step.onTimeout) { lines.append("    \(name) -.->|timeout| \(target)") }
            if let target = node(step.onFailure) { lines.append("    \(name) -.->|failure| \(target)") }
        }
        if needsEnd { lines.append("    done((\"end\"))") }
        return lines.joined(separator: "\n")
    }

    static func label(_ parts: [String]) -> String {
        parts.map(escape).joined(separator: "<br/>")
    }

    /// Mermaid entity codes for characters that would end or confuse a quoted label.
    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "\"": result += "#quot;"
            case "<": result += "#lt;"
            case ">": result += "#gt;"
            case "&": result += "#amp;"
            case "\n": result += " "
            default: result.append(character)
            }
        }
        return result
    }

    static func describe(_ expression: ActPlaybook.Expression) -> String {
        switch expression {
        case .literal(let value):
            switch value {
            case .string(let string): return "'\(string)'"
            case .null, .bool, .number, .array, .object: return value.caseKey.isEmpty ? value.typeName : value.caseKey
            }
        case .list(let items): return "[" + items.map(describe).joined(separator: ", ") + "]"
        case .path(let components): return components.joined(separator: ".")
        case .stepCondition(let id, let condition): return "step(\(id)).\(condition.rawValue)"
        case .not(let inner): return "not \(describe(inner))"
        case .and(let lhs, let rhs): return "(\(describe(lhs)) and \(describe(rhs)))"
        case .or(let lhs, let rhs): return "(\(describe(lhs)) or \(describe(rhs)))"
        case .compare(let op, let lhs, let rhs): return "\(describe(lhs)) \(op.rawValue) \(describe(rhs))"
        case .contains(let element, let collection): return "\(describe(element)) in \(describe(collection))"
        }
    }
}
