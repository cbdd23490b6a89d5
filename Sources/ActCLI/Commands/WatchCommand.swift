import ActEngine
import ActPlaybook
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `hms-act watch RUN|PLAYBOOK [--last N] [--timeout SECONDS]`: follows runs until they finish, as the
/// chapters show it:
///
/// ```
/// 🛫 Workflow wf_9123 started
///   ✔ intake               by ai.auto_intake   (1.2 s)
///   ✔ assign_inspector     by clerk#7          (15 s)
/// 🏁 COMPLETED in 6 m 28 s – audit log id: wf_9123
/// ```
///
/// The child run of a sub-playbook step (`playbook:`) is drawn inline under its step, indented.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a run (or a playbook's newest runs) until it finishes.",
        discussion: """
            A `wf_…` argument names a run; anything else is a playbook id, whose newest --last runs are \
            followed. On a terminal the timeline is redrawn in place; otherwise only new lines are printed. \
            With -o json nothing is drawn and the final run detail is printed when the runs are over.
            Exit status: 0 completed, 1 failed, 2 cancelled, 3 --timeout reached.
            """
    )

    @Argument(help: ArgumentHelp("A run id (wf_…) or a playbook id (NoiseComplaint.v1).", valueName: "run-or-playbook"))
    var target: String

    @Option(name: .customLong("last"), help: "How many of the playbook's newest runs to follow.")
    var last: Int = 1

    @Option(name: .customLong("timeout"), help: ArgumentHelp("Give up after this many seconds (exit status 3).", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .customLong("interval"), help: ArgumentHelp("Seconds between polls.", valueName: "seconds"))
    var interval: Double = 0.5

    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard last >= 1, last <= 100 else { throw ValidationError("--last must be between 1 and 100") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
        guard interval >= 0.05 else { throw ValidationError("--interval must be at least 0.05 seconds") }
    }

    func run() async throws {
        var exitStatus: Int32 = 0
        try await Console.reportingErrors {
            let api = try client.client()
            let runIDs = try await resolveRuns(api)
            exitStatus = try await follow(runIDs, api: api)
        }
        if exitStatus != 0 { throw ExitCode(exitStatus) }
    }

    /// The runs to follow, oldest first.
    private func resolveRuns(_ api: APIClient) async throws -> [String] {
        if target.hasPrefix("wf_") { return [target] }
        var runs: [(id: String, created: Date?)] = []
        // Right after `emit` the run may take a moment to appear: look a few times before giving up.
        for attempt in 0..<6 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(500)) }
            let page = try await api.get("/v1/runs", query: [("playbook", target), ("limit", String(last))]).json()
            if case .array(let items)? = page["runs"] {
                runs = items.compactMap { item in
                    item["run_id"]?.stringValue.map { ($0, RunView.date(item["created_at"])) }
                }
            }
            if !runs.isEmpty { break }
        }
        if runs.isEmpty {
            // Not a playbook with runs: perhaps a run id without the usual prefix.
            do {
                _ = try await api.get("/v1/runs/" + APIClient.encodeComponent(target))
                return [target]
            } catch let error as APIError {
                guard error.status == 404 else { throw error }
                throw CLIError("""
                    no run '\(target)' and no runs of a playbook '\(target)' yet
                      Start one with `hms-act emit <event type> --data '{…}'`, or list runs with `hms-act runs list`.
                    """)
            }
        }
        return runs.sorted { ($0.created ?? .distantPast) < ($1.created ?? .distantPast) }.prefix(last).map(\.id)
    }

    /// The run with the child runs of its sub-playbook steps (and theirs, up to 5 levels) fetched.
    private func withChildren(_ run: RunView, api: APIClient, depth: Int) async throws -> RunView {
        var run = run
        guard depth <= 5 else { return run }
        for childID in run.tasks.compactMap(\.childRunID) where run.children[childID] == nil {
            // A child that could not start has no run: its step's failure says why.
            guard let detail = try? await api.get("/v1/runs/" + APIClient.encodeComponent(childID)).json() else { continue }
            run.children[childID] = try await withChildren(RunView(json: detail), api: api, depth: depth + 1)
        }
        return run
    }

    /// Polls until every run finished; returns the exit status.
    private func follow(_ runIDs: [String], api: APIClient) async throws -> Int32 {
        let terminal = isatty(STDOUT_FILENO) == 1
        let deadline = timeout.map { ContinuousClock.now + .milliseconds(Int64($0 * 1_000)) }
        var printed: Set<String> = []
        var drawnLines = 0
        while true {
            var views: [RunView] = []
            var details: [JSONValue] = []
            for id in runIDs {
                let detail = try await api.get("/v1/runs/" + APIClient.encodeComponent(id)).json()
                details.append(detail)
                views.append(try await withChildren(RunView(json: detail), api: api, depth: 1))
            }
            let now = Date()
            let lines = views.flatMap { WatchTimeline.lines(for: $0, now: now) }
            let finished = views.allSatisfy(\.isFinished)
            if client.output == .json {
                if finished { print(Console.pretty(details.count == 1 ? details[0] : .array(details))) }
            } else if terminal {
                var frame = drawnLines > 0 ? "\u{1B}[\(drawnLines)F\u{1B}[J" : ""
                frame += lines.map(\.text).joined(separator: "\n") + "\n"
                FileHandle.standardOutput.write(Data(frame.utf8))
                drawnLines = lines.count
            } else {
                for line in lines where line.printOnce && !printed.contains(line.key) {
                    printed.insert(line.key)
                    print(line.text)
                }
            }
            if finished {
                if views.contains(where: { $0.status == "failed" }) { return 1 }
                if views.contains(where: { $0.status == "cancelled" }) { return 2 }
                return 0
            }
            if let deadline, ContinuousClock.now >= deadline {
                Console.error("watch: --timeout of \(TimelineRenderer.format(.milliseconds(Int64((timeout ?? 0) * 1_000)))) reached; the run goes on")
                return 3
            }
            try await Task.sleep(for: .milliseconds(Int64(interval * 1_000)))
        }
    }
}

/// Turns a ``RunView`` into the lines `watch` draws. Pure, so it behaves the same on a terminal and in a log.
enum WatchTimeline {
    /// One line, with a key that says when it changed.
    struct Line: Equatable {
        /// Stable while the line means the same thing (the elapsed time of a running step does not count).
        var key: String
        var text: String
        /// Whether a log (not a terminal) should print it: final lines and lasting states, not ticking ones.
        var printOnce: Bool
    }

    static func lines(for run: RunView, now: Date) -> [Line] {
        let id = run.runID
        var lines = [Line(key: "\(id)|start", text: "🛫 Workflow \(id) started", printOnce: true)]
        let steps = run.steps.enumerated().sorted { a, b in
            let left = a.element.startedAt ?? .distantFuture, right = b.element.startedAt ?? .distantFuture
            return left != right ? left < right : a.offset < b.offset
        }.map(\.element)
        for step in steps {
            let prefix = "\(id)/\(step.stepID)/\(step.visit)"
            // Earlier failed attempts of this visit, each on its own line.
            let failedAttempts = run.tasks.filter { task in
                (task.taskID == prefix || task.taskID.hasPrefix(prefix + "/")) && task.status == "failed"
                    && (step.status != "failed" || task.attempt < (step.attempt ?? Int.max))
            }.sorted { $0.attempt < $1.attempt }
            for task in failedAttempts {
                let took = both(task.createdAt, task.updatedAt).map { $0.1.timeIntervalSince($0.0) }
                let text = row("✖", step.stepID, actor: task.agent ?? task.assignee ?? actor(step, run), seconds: took)
                    + " – " + (task.error ?? "failed") + " (attempt \(task.attempt))"
                lines.append(Line(key: "\(id)|task|\(task.taskID)#\(task.attempt)", text: text, printOnce: true))
            }
            // The child runs of a sub-playbook step, each attempt's, indented above the step's own line (which
            // ends when they do).
            let children = run.tasks.filter { ($0.taskID == prefix || $0.taskID.hasPrefix(prefix + "/")) && $0.childRunID != nil }
                .sorted { ($0.taskID, $0.attempt) < ($1.taskID, $1.attempt) }
            for task in children {
                guard let childID = task.childRunID, let child = run.children[childID] else { continue }
                for line in Self.lines(for: child, now: now) {
                    lines.append(Line(key: line.key, text: "      " + line.text, printOnce: line.printOnce))
                }
            }
            lines.append(line(for: step, run: run, now: now))
        }
        lines.append(contentsOf: footer(run, now: now))
        return lines
    }

    private static func line(for step: RunView.StepView, run: RunView, now: Date) -> Line {
        let key = "\(run.runID)|step|\(step.stepID)|\(step.visit)|\(step.status)"
        let who = actor(step, run)
        let took: Double? =
            step.durationMilliseconds.map { Double($0) / 1_000 }
            ?? both(step.startedAt, step.finishedAt).map { $0.1.timeIntervalSince($0.0) }
        let elapsed = step.startedAt.map { now.timeIntervalSince($0) }
        let breached = step.slaState == "breached"
        switch step.status {
        case "completed":
            let text = row("✔", step.stepID, actor: who, seconds: took) + (breached ? " – SLA breached" : "")
            return Line(key: key, text: text, printOnce: true)
        case "failed":
            let text = row("✖", step.stepID, actor: who, seconds: took) + " – " + (step.error ?? "failed")
            return Line(key: key, text: text, printOnce: true)
        case "timeout", "timed_out":
            let text = row("⏰", step.stepID, actor: who, seconds: took) + " – " + (step.error ?? "timed out")
            return Line(key: key, text: text, printOnce: true)
        case "skipped":
            return Line(key: key, text: "  ↷ " + pad(step.stepID, 21) + "skipped", printOnce: true)
        case "cancelled":
            return Line(key: key, text: "  · " + pad(step.stepID, 21) + "cancelled", printOnce: true)
        case "awaiting_approval":
            let text = row("⏸", step.stepID, actor: who, seconds: elapsed) + " – awaiting approval: hms-act approve \(run.runID) \(step.stepID)"
            return Line(key: key, text: text, printOnce: true)
        case "waiting":
            let text = row("⏳", step.stepID, actor: nil, seconds: elapsed) + " – waiting"
            return Line(key: key, text: text, printOnce: false)
        case "queued":
            let text = row("⏳", step.stepID, actor: nil, seconds: elapsed) + " – queued for a slot of its concurrency key"
            return Line(key: key + "|queued", text: text, printOnce: true)
        default:
            if breached {
                let text = row("⏰", step.stepID, actor: who, seconds: elapsed) + " – SLA breached, still running"
                return Line(key: key + "|breached", text: text, printOnce: true)
            }
            let attempt = (step.attempt ?? 1) > 1 ? " – attempt \(step.attempt ?? 1)" : ""
            let warning = step.slaState == "red" || step.slaState == "yellow" ? " – SLA \(step.slaState ?? "")" : ""
            return Line(key: key, text: row("⏳", step.stepID, actor: who, seconds: elapsed) + attempt + warning, printOnce: false)
        }
    }

    private static func footer(_ run: RunView, now: Date) -> [Line] {
        let id = run.runID
        let total = run.createdAt.map { (run.finishedAt ?? now).timeIntervalSince($0) }
        let took = total.map { " in " + format(seconds: $0) } ?? ""
        let audit = " – audit log id: \(id)"
        switch run.status {
        case "completed":
            return [Line(key: "\(id)|end", text: "🏁 COMPLETED\(took)\(audit)", printOnce: true)]
        case "failed":
            let reason = run.failureReason.map { " – \($0)" } ?? ""
            return [Line(key: "\(id)|end", text: "💥 FAILED\(took)\(reason)\(audit)", printOnce: true)]
        case "cancelled":
            let reason = run.failureReason.map { " – \($0)" } ?? ""
            return [Line(key: "\(id)|end", text: "🛑 CANCELLED\(took)\(reason)\(audit)", printOnce: true)]
        case "paused":
            return [Line(key: "\(id)|paused", text: "⏸ PAUSED – resume with: hms-act resume \(id)", printOnce: true)]
        case "queued":
            return [Line(key: "\(id)|queued", text: "⏳ QUEUED – waits for a slot of its concurrency key", printOnce: true)]
        case "compensating":
            let reason = run.failureReason.map { " – \($0)" } ?? ""
            return [Line(key: "\(id)|compensating", text: "↩ COMPENSATING\(reason)", printOnce: true)]
        case "incident":
            let text = "🚨 INCIDENT – waits for an operator: hms-act incidents list --run \(id)"
            return [Line(key: "\(id)|incident|\(run.updatedAt?.timeIntervalSince1970 ?? 0)", text: text, printOnce: true)]
        default:
            return [Line(key: "\(id)|running", text: "⏳ RUNNING\(took)", printOnce: false)]
        }
    }

    /// Who did a step: the worker that answered, else the routed agent, else the playbook's assignee.
    private static func actor(_ step: RunView.StepView, _ run: RunView) -> String? {
        let prefix = "\(run.runID)/\(step.stepID)/\(step.visit)"
        let latest = run.tasks.filter { $0.taskID == prefix || $0.taskID.hasPrefix(prefix + "/") }
            .max { $0.attempt < $1.attempt }
        return step.agent ?? latest?.agent ?? step.assignee ?? latest?.assignee
    }

    private static func row(_ symbol: String, _ step: String, actor: String?, seconds: Double?) -> String {
        var line = "  \(symbol) " + pad(step, 21)
        if let actor { line += "by " + pad(actor, 17) }
        if let seconds { line += "(\(format(seconds: seconds)))" }
        while line.last == " " { line.removeLast() }
        return line
    }

    static func format(seconds: Double) -> String {
        TimelineRenderer.format(.milliseconds(Int64(max(0, seconds) * 1_000)))
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

/// Both values, or nil.
private func both<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
