import ActEngine
import ActPlaybook
import ArgumentParser
import Foundation

/// `hms-act simulate FILE [--event EVENT.json] [--script RESPONSES.yaml] [--agents DIR]`: runs a playbook
/// offline on a virtual clock (a 5-day wait takes microseconds) and prints the timeline `watch` would show.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a playbook offline against scripted workers and print its timeline.",
        discussion: """
            No server is needed. The event gives the trigger payload (the chapters' {"type", "id", "payload"}, \
            a CloudEvent with "data", or a bare object); the script says how workers answer, and when signals, \
            approvals and operator commands arrive (see examples/simulate/README.md). Unscripted tasks \
            complete after 1 s with {}.
            Exit status: 0 completed, 1 failed, 2 cancelled or stuck waiting.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case json
    }

    @Argument(help: "The playbook file (YAML or JSON).")
    var file: String

    @Option(name: .customLong("event"), help: ArgumentHelp("The trigger event as JSON.", valueName: "event.json"))
    var eventFile: String?

    @Option(name: .customLong("script"), help: ArgumentHelp("How the world answers, as YAML or JSON.", valueName: "responses.yaml"))
    var scriptFile: String?

    @Option(name: .customLong("agents"), help: ArgumentHelp("An agent folder (agents/*.json|yaml) to route by skills, shifts and queues.", valueName: "dir"))
    var agentDirectory: String?

    @Option(name: .customLong("run-id"), help: "The run id shown in the timeline.")
    var runID: String = "wf_sim"

    @Flag(name: .customLong("starts"), help: "Also show each dispatch (▶) and compensation start.")
    var showStarts = false

    @Flag(name: .customLong("offsets"), help: "Prefix each line with the time since the start (+4 h).")
    var showOffsets = false

    @Option(name: [.short, .customLong("output")], help: "Output format: text (the timeline) or json (the full report).")
    var output: Format = .text

    func run() async throws {
        var status: RunStatus = .completed
        try await Console.reportingErrors {
            let loaded = try PlaybookLoader.load(contentsOf: file)
            var script = SimulationScript()
            if let scriptFile {
                guard let data = FileManager.default.contents(atPath: scriptFile) else {
                    throw CLIError("cannot read the script file '\(scriptFile)'")
                }
                let text = String(decoding: data, as: UTF8.self)
                script = try PlaybookLoader.decode(SimulationScript.self, yaml: text, file: scriptFile)
            }
            if let eventFile {
                let event = try Self.readEvent(eventFile)
                script.payload = event.payload
                if let type = event.type, !loaded.playbook.triggers.isEmpty, !loaded.playbook.triggers.contains(type) {
                    Console.error("note: \(loaded.playbook.id) is triggered by \(loaded.playbook.triggers.joined(separator: ", ")), not \(type); simulating anyway")
                }
            }
            var configuration = EngineConfiguration()
            if let agentDirectory {
                configuration.agents = try PlaybookLoader.loadAgentDirectory(agentDirectory)
            }
            let report = Simulation(
                playbook: loaded.playbook, script: script, runID: RunID(runID), configuration: configuration
            ).run()
            switch output {
            case .text:
                print(TimelineRenderer(showStarts: showStarts, showOffsets: showOffsets).render(report), terminator: "")
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
            status = report.status
            if !report.status.isFinished {
                for hint in Self.hints(report, playbook: loaded.playbook) { Console.error("hint: " + hint) }
            }
        }
        switch status {
        case .completed: return
        case .failed: throw ExitCode(1)
        case .cancelled, .queued, .running, .paused, .compensating, .incident: throw ExitCode(2)
        }
    }

    /// What a stuck run waits for, and what to add to the script to move it on.
    static func hints(_ report: SimulationReport, playbook: Playbook) -> [String] {
        var hints: [String] = []
        if report.status == .paused {
            hints.append("the run is paused; add `controls: [{at: 1h, action: resume}]` to the script")
        }
        for record in report.state.steps where record.status.isActive {
            let id = record.step.rawValue
            switch record.status {
            case .awaitingApproval:
                hints.append("\(id) waits for a human decision; add `approvals: [{at: 1h, step: \(id), approve: true, actor: \"officer#2\"}]`")
            case .waiting:
                var signal = id
                if let step = playbook.steps.first(where: { $0.id == record.step }), case .wait(let wait) = step.kind {
                    signal = wait.signal
                }
                hints.append("\(id) waits for the signal \(signal) and has no duration; add `signals: [{at: 1d, name: \(signal)}]`")
            case .running:
                hints.append("\(id) waits for an answer that is scripted `no_answer`; give it one in `answers: {\(id): [{after: 1s}]}`")
            case .queued:
                // A lone run finds every slot free, so this only shows when the simulation stopped early.
                hints.append("\(id) waits for a slot of its concurrency key")
            case .completed, .failed, .timedOut, .skipped, .cancelled:
                break
            }
        }
        return hints
    }

    /// An event file: its type (when it says) and the payload the run starts with.
    struct Event {
        var type: String?
        var payload: JSONValue
    }

    /// Reads `{"type"|"name", "id", "payload"}`, a structured CloudEvent (`specversion` + `data`), or a bare
    /// payload object.
    static func readEvent(_ path: String) throws -> Event {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read the event file '\(path)'")
        }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: data)
        } catch {
            throw CLIError("\(path) is not valid JSON: \(error); an event looks like {\"type\": \"noise.complaint.filed\", \"payload\": {…}}")
        }
        guard case .object = json else {
            throw CLIError("\(path) must hold a JSON object: an event {\"type\", \"payload\"} or the payload itself")
        }
        let type = json["type"]?.stringValue ?? json["name"]?.stringValue
        if json["specversion"] != nil {
            return Event(type: type, payload: json["data"] ?? .object([:]))
        }
        if let payload = json["payload"], type != nil || json["id"] != nil || json["time"] != nil {
            return Event(type: type, payload: payload)
        }
        return Event(type: nil, payload: json)
    }
}
