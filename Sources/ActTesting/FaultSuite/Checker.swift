internal import ActEngine
internal import ActPlaybook
internal import ActService
public import ActStore

/// What a fault-suite run left behind, read from the store and the broker once everything settled.
public struct Observed: Sendable {
    /// Runs by id, with their status.
    public var runs: [String: String]
    /// Every task attempt.
    public var tasks: [TaskRow]
    /// Each run's audit chain, in sequence order.
    public var audit: [String: [AuditChain.StoredEntry]]
    /// Governance messages the broker confirmed: routing key and run id.
    public var governance: [(routingKey: String, runID: String?)]
    /// Outbox rows, timers and unacknowledged or waiting messages left.
    public var outboxLeft: Int
    public var timersLeft: Int
    public var messagesLeft: [String: Int]

    public init(runs: [String: String], tasks: [TaskRow], audit: [String: [AuditChain.StoredEntry]],
        governance: [(routingKey: String, runID: String?)], outboxLeft: Int, timersLeft: Int,
        messagesLeft: [String: Int])
    {
        self.runs = runs
        self.tasks = tasks
        self.audit = audit
        self.governance = governance
        self.outboxLeft = outboxLeft
        self.timersLeft = timersLeft
        self.messagesLeft = messagesLeft
    }
}

/// Proves, from the workload's scripts, the triggers whose publish was confirmed and what was left
/// behind, that nothing was lost or applied twice. Each check has a name; a violation says which run and
/// what differs.
public enum Checker {
    public struct Violation: Sendable, CustomStringConvertible {
        public var check: String
        public var detail: String
        public var description: String { "\(check): \(detail)" }

        public init(check: String, detail: String) {
            self.check = check
            self.detail = detail
        }
    }

    /// The checks, in the order they run (the names the report prints).
    public static let checks = [
        "one run per confirmed trigger", "outcome as scripted", "each transition once", "audit chains verify",
        "compensations in reverse order once", "breach recorded once and published", "nothing left behind",
    ]

    public static func check(_ workload: Workload, confirmed: Set<String>, _ observed: Observed) -> [Violation] {
        var violations: [Violation] = []
        func fail(_ check: String, _ detail: String) { violations.append(Violation(check: check, detail: detail)) }
        let runIDs = Dictionary(uniqueKeysWithValues: workload.scripts.map {
            ($0.eventID, OutboundMessages.runID(playbook: $0.kind.playbookID, eventID: $0.eventID).rawValue)
        })
        let expected = Set(workload.scripts.filter { confirmed.contains($0.eventID) }.compactMap { runIDs[$0.eventID] })
        let tasksByRun = Dictionary(grouping: observed.tasks, by: \.runID)

        // One run per confirmed trigger, and none for anything else.
        for run in expected.subtracting(observed.runs.keys).sorted() { fail(checks[0], "run \(run) never started") }
        for run in Set(observed.runs.keys).subtracting(expected).sorted() {
            fail(checks[0], "run \(run) has no confirmed trigger")
        }

        for script in workload.scripts where confirmed.contains(script.eventID) {
            guard let run = runIDs[script.eventID], let status = observed.runs[run] else { continue }
            let tasks = (tasksByRun[run] ?? []).sorted { ($0.createdAt, $0.taskID, $0.attempt) < ($1.createdAt, $1.taskID, $1.attempt) }
            let entries = observed.audit[run] ?? []

            // The outcome the script implies, through the steps it implies.
            if status != script.expectedStatus {
                fail(checks[1], "\(run) (\(script.kind)) is \(status), expected \(script.expectedStatus)")
            }
            var completedSteps: [String] = []
            for task in tasks where !task.isCompensation && task.status == .completed
                && !completedSteps.contains(task.stepID)
            {
                completedSteps.append(task.stepID)
            }
            if Set(completedSteps) != Set(script.expectedSteps) {
                fail(checks[1], "\(run) (\(script.kind)) completed steps \(completedSteps), expected \(script.expectedSteps)")
            }
            if script.kind == .retry {
                let attempts = tasks.filter { $0.stepID == "flaky" }.count
                if attempts != script.failures + 1 {
                    fail(checks[1], "\(run): step flaky had \(attempts) attempts, expected \(script.failures + 1)")
                }
            }

            // Each transition once: one start, each task attempt's result once, each timer once.
            var seen = Set<String>()
            for stored in entries {
                let entry = stored.entry
                let key: String? =
                    switch entry.kind {
                    case "run.started": "run.started"
                    case "task.completed", "task.failed":
                        "result \(entry.data["task_id"]?.stringValue ?? "?")#\(entry.data["attempt"].map { "\($0)" } ?? "?")"
                    default: entry.kind.hasPrefix("timer.") ? "\(entry.kind) \(entry.data.canonicalText)" : nil
                    }
                if let key, !seen.insert(key).inserted { fail(checks[2], "\(run): \(key) recorded twice") }
            }
            let dispatched = tasks.map { "\($0.taskID)#\($0.attempt)" }
            if Set(dispatched).count != dispatched.count { fail(checks[2], "\(run): a task attempt dispatched twice") }

            // The chain: contiguous, linked, hashes as written.
            let (findings, _) = AuditChain.verify(run: run, entries: entries)
            for finding in findings { fail(checks[3], "\(run): \(finding)") }

            // Compensations: newest completion first, each once. Their order is the audit chain's (the order
            // they were sent in): a task row's time is its batch's clock, which the database-clock sync may set a
            // millisecond back between two batches.
            var sent: [String: Int] = [:]
            for stored in entries {
                guard case .array(let effects)? = stored.entry.data["effects"] else { continue }
                for effect in effects {
                    if let key = effect["dispatch"]?.stringValue, sent[key] == nil { sent[key] = sent.count }
                }
            }
            let compensations = tasks.filter(\.isCompensation).sorted {
                (sent["\($0.taskID)#\($0.attempt)"] ?? .max) < (sent["\($1.taskID)#\($1.attempt)"] ?? .max)
            }
            if compensations.map(\.assignee) != script.expectedCompensations {
                fail(checks[4], "\(run): compensations \(compensations.map(\.assignee)), expected \(script.expectedCompensations)")
            }

            // A breach: once in the trail, at least once on the governance exchange.
            if script.kind == .breach {
                let recorded = entries.filter { $0.entry.kind == "timer.sla_breach" }.count
                if recorded != 1 { fail(checks[5], "\(run): the breach is in the audit trail \(recorded) times") }
                if !observed.governance.contains(where: { $0.routingKey == "sla.violation" && $0.runID == run }) {
                    fail(checks[5], "\(run): no sla.violation was published")
                }
            }
        }

        if observed.outboxLeft > 0 { fail(checks[6], "\(observed.outboxLeft) outbox rows left") }
        if observed.timersLeft > 0 { fail(checks[6], "\(observed.timersLeft) timers left") }
        for (queue, count) in observed.messagesLeft.sorted(by: { $0.key < $1.key }) where count > 0 {
            fail(checks[6], "\(count) messages left in \(queue)")
        }
        return violations
    }
}

extension JSONValue {
    /// Canonical JSON as text (for keys and messages).
    var canonicalText: String { String(decoding: canonicalEncoding, as: UTF8.self) }
}
