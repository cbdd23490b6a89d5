public import ActEngine
public import ActPlaybook
public import ActStore

/// One thing a batch applies: a message from a queue, a due timer, or an operator's command.
public enum BatchInput: Sendable {
    /// A trigger event from `hms.events` (or `POST /v1/events`).
    case trigger(TriggerEvent)
    /// A result, signal or approval from `hms.results` (or the HTTP API).
    case worker(WorkerMessage, messageID: String?)
    /// A timer claimed by the scanner.
    case timer(TimerRow)
    /// An operator's pause, resume or cancel (HTTP, CLI or console); `key` makes a repeated request harmless;
    /// `reason` goes into the audit entry of a pause or resume (a cancel carries its own).
    case operatorCommand(runID: RunID, event: RunEvent, actor: String, key: String?, reason: String? = nil)
    /// Start a playbook explicitly, without a trigger binding (`POST /v1/runs`).
    case start(playbookID: String, event: TriggerEvent)
    /// A result, signal or approval refused because of who sent it (`amqp.actors`): only its audit entry.
    case refusedAttempt(RefusedAttempt, messageID: String?)
    /// Move a run to another playbook version (``RunMigration``), step ids renamed by `mapping`; `key` makes a
    /// repeat harmless.
    case migrate(runID: RunID, toVersion: Int64, mapping: [StepID: StepID], actor: String, key: String?)

    /// The inbox key that makes a repeat of this input change nothing; `nil` when claiming already
    /// guarantees it (timers are deleted when claimed).
    public var inboxKey: String? {
        switch self {
        case .trigger(let event): "event:" + event.id
        case .worker(let message, let messageID): message.inboxKey(messageID: messageID)
        case .timer: nil
        case .operatorCommand(_, _, _, let key, _): key.map { "command:" + $0 }
        case .migrate(_, _, _, _, let key): key.map { "migrate:" + $0 }
        case .start(let playbookID, let event): "start:\(playbookID):\(event.id)"
        // Its own key: a refused approval must not make the real one look like a repeat.
        case .refusedAttempt(let attempt, let messageID):
            "refused:\(attempt.brokerUser ?? "-"):\(attempt.claimedActor ?? "-"):"
                + attempt.message.inboxKey(messageID: messageID)
        }
    }

    var isRefusedAttempt: Bool {
        if case .refusedAttempt = self { return true }
        return false
    }

    /// The runs this input touches and must be locked, given the catalog (triggers create runs).
    public func runIDs(catalog: PlaybookCatalog) -> [RunID] {
        switch self {
        case .trigger(let event):
            return catalog.entries(forTrigger: event.type).map {
                RunID.forTrigger(playbook: $0.version.playbookID, eventID: event.id)
            }
        case .start(let playbookID, let event):
            return [RunID.forTrigger(playbook: playbookID, eventID: event.id)]
        case .worker(let message, _):
            switch message {
            case .taskResult(let result): return [TaskID(result.taskID).runID]
            case .signal(let runID, _, _): return [RunID(runID)]
            case .approval(let approval): return [RunID(approval.runID)]
            }
        case .timer(let row):
            // A sub-playbook's timer reads the other run of the pair too (BatchPlanner+Children.swift).
            return [RunID(row.runID)] + (BatchPlanner.Planning.otherRun(ofTimer: row).map { [$0] } ?? [])
        case .operatorCommand(let runID, _, _, _, _), .migrate(let runID, _, _, _, _):
            return [runID]
        case .refusedAttempt(let attempt, _):
            return [RunID(attempt.runID)]
        }
    }
}

/// What became of one input.
public enum BatchOutcome: Hashable, Sendable {
    /// Applied: state changed and/or messages were produced.
    case applied
    /// Already applied before (inbox), or it no longer applies (a late answer): acknowledged, no effect.
    case ignored(reason: String)
    /// It cannot be applied: dead-letter it with this reason.
    case rejected(reason: String)
    /// Refused because of who sent it (``BrokerIdentities``, a step's `allowed:`): the run's trail records the
    /// attempt, and it is dead-lettered with this reason (403 over HTTP).
    case forbidden(reason: String)
}
