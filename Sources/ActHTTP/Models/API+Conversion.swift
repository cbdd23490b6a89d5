public import ActEngine
public import ActPlaybook
public import ActStore
internal import Foundation

// Conversions from the store's rows and the engine's state into the API's shapes. They are public so
// that every ``ControlPlane`` (the real one and the in-memory fake of the tests) builds the same JSON.

extension API {
    /// RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.000Z`) from milliseconds since the epoch.
    public static func timestamp(_ milliseconds: Int64) -> String {
        Instant(millisecondsSinceEpoch: milliseconds).rfc3339
    }

    static func timestamp(_ instant: Instant) -> String { instant.rfc3339 }
}

extension API.RunSummary {
    /// A run from a list query of the store.
    public init(_ summary: ActStore.RunSummary) {
        self.init(runID: summary.runID, playbook: summary.playbookID, status: summary.status, traceID: summary.traceID,
            trigger: summary.triggerType, createdAt: API.timestamp(summary.createdAt),
            updatedAt: API.timestamp(summary.updatedAt), finishedAt: summary.finishedAt.map(API.timestamp))
    }

    /// A run from its row.
    public init(_ row: RunRow) {
        self.init(runID: row.runID, playbook: row.playbookID, status: row.status, traceID: row.traceID,
            trigger: row.triggerType, createdAt: API.timestamp(row.createdAt), updatedAt: API.timestamp(row.updatedAt),
            finishedAt: row.finishedAt.map(API.timestamp))
    }
}

extension API.Task {
    /// A task attempt from its row.
    public init(_ row: TaskRow) {
        self.init(taskID: row.taskID, attempt: row.attempt, runID: row.runID, stepID: row.stepID,
            assignee: row.assignee, agent: row.agentID, target: row.target, status: row.status.rawValue,
            deadline: row.deadline.map(API.timestamp), warnAt: row.warnAt.map(API.timestamp),
            compensation: row.isCompensation, createdAt: API.timestamp(row.createdAt),
            updatedAt: API.timestamp(row.updatedAt), output: row.output, error: row.error,
            childRunID: row.target.hasPrefix("playbook:")
                ? TaskDispatch.childRunID(playbook: PlaybookID(String(row.target.dropFirst("playbook:".count))),
                    task: TaskID(rawValue: row.taskID), attempt: row.attempt).rawValue
                : nil)
    }
}

extension API.TimelineEntry {
    /// An audit entry.
    public init(_ stored: AuditChain.StoredEntry) {
        self.init(seq: stored.entry.sequence, at: API.timestamp(stored.entry.at), kind: stored.entry.kind,
            actor: stored.entry.actor, data: stored.entry.data)
    }
}

extension API.SLA {
    /// The SLA light of a step visit.
    ///
    /// The deadline comes from the record; the warning point is the deadline minus the SLA plus the
    /// warning offset, exactly where the engine scheduled the warning timer. A finished visit is judged at
    /// its finish, an active one at `now`; a reported breach is `breached` whatever the time.
    public init(record: StepRecord, sla: ActPlaybook.SLA?, slaWarningFraction: Double, now: Instant) {
        guard let deadline = record.deadline else {
            self.init(state: .none, deadline: nil, warnAt: nil)
            return
        }
        var warnAt: Instant?
        if let sla {
            let offset = sla.warningOffset(defaultFraction: slaWarningFraction)
            if offset > .zero, offset < sla.duration {
                warnAt = Instant(millisecondsSinceEpoch: deadline.millisecondsSinceEpoch - sla.duration.milliseconds)
                    + offset
            }
        }
        let at = record.finishedAt ?? now
        let state: State
        if record.slaBreached {
            state = .breached
        } else if at >= deadline {
            state = .red
        } else if record.slaWarned || warnAt.map({ at >= $0 }) == true {
            state = .yellow
        } else {
            state = .green
        }
        self.init(state: state, deadline: API.timestamp(deadline), warnAt: warnAt.map(API.timestamp))
    }
}

extension API.RunDetail {
    /// Everything about one run, from its row, the tasks and audit trail the store keeps for it, and the
    /// playbook version it runs.
    ///
    /// - Parameters:
    ///   - playbook: The run's playbook version (assignees and SLAs of steps); `nil` when unknown here.
    ///   - now: The instant SLA lights are judged at.
    /// - Throws: A decoding error when the stored state cannot be read.
    public init(row: RunRow, playbook: Playbook?, tasks: [TaskRow], audit: [AuditChain.StoredEntry],
        slaWarningFraction: Double, now: Instant) throws
    {
        let state = try JSONDecoder().decode(RunState.self, from: Data(row.state))
        var stepsByID: [StepID: ActPlaybook.Step] = [:]
        for step in playbook?.steps ?? [] {
            stepsByID[step.id] = step
            if case .parallel(let block) = step.kind {
                for branch in block.branches { stepsByID[branch.id] = branch }
            }
        }
        let steps = state.steps.map { record -> API.Step in
            let step = stepsByID[record.step]
            var assignee: String?
            if case .task(let spec)? = step?.kind { assignee = spec.assignee.label }
            let latest = record.tasks.max { $0.attempt < $1.attempt }
            return API.Step(stepID: record.step.rawValue, visit: record.visit, status: record.status.rawValue,
                startedAt: API.timestamp(record.startedAt), finishedAt: record.finishedAt.map(API.timestamp),
                durationMS: record.finishedAt.map { ($0 - record.startedAt).milliseconds },
                assignee: assignee, agent: latest?.agent?.rawValue, attempt: latest?.attempt, error: record.error,
                output: record.output,
                sla: API.SLA(record: record, sla: step?.sla, slaWarningFraction: slaWarningFraction, now: now))
        }
        self.init(summary: API.RunSummary(row), playbookVersion: row.versionID, payload: state.payload,
            result: state.result, failure: state.failure.map { API.Failure(step: $0.step?.rawValue, reason: $0.reason) },
            incident: state.incident.map { incident in
                [
                    "kind": .string(incident.kind.rawValue), "step_id": .string(incident.step.rawValue),
                    "visit": .int(incident.visit), "reason": .string(incident.reason),
                    "at": .string(API.timestamp(incident.at)),
                    "task_id": incident.task.map { .string($0.rawValue) } ?? .null,
                    "attempt": incident.attempt.map { .int($0) } ?? .null,
                ]
            },
            steps: steps, tasks: tasks.map(API.Task.init), timeline: audit.map(API.TimelineEntry.init),
            parent: state.parent.map { parent in
                [
                    "run_id": .string(parent.run.rawValue), "task_id": .string(parent.task.rawValue),
                    "attempt": .int(parent.attempt), "depth": .int(parent.depth),
                ]
            })
    }
}

extension API.PlaybookSummary {
    /// A registered version and its model.
    public init(version: PlaybookVersion, playbook: Playbook) {
        self.init(playbook: version.playbookID, version: version.versionID, checksum: version.checksum,
            triggers: version.triggers, registeredAt: API.timestamp(version.registeredAt),
            description: playbook.description, steps: playbook.steps.count)
    }
}

extension API.Agent {
    /// An agent of the registry, judged on shift at `now`.
    public init(_ agent: ActPlaybook.Agent, now: Instant) {
        // A pull agent is never published to: it has neither a queue nor a routing key.
        var queue: String?
        var routingKey: String?
        if agent.delivery == .push {
            queue = agent.queue
            routingKey = agent.queue == nil ? (agent.routingKey ?? "task." + agent.id.rawValue) : agent.routingKey
        }
        self.init(id: agent.id.rawValue, skills: agent.skills, shift: agent.shift?.description, queue: queue,
            routingKey: routingKey, delivery: agent.delivery.rawValue,
            onShift: agent.shift?.contains(epochMilliseconds: now.millisecondsSinceEpoch) ?? true)
    }
}

extension API.Incident {
    /// An incident row.
    public init(_ incident: ActStore.Incident) {
        self.init(id: incident.incidentID, kind: incident.kind, runID: incident.runID, detail: incident.detail,
            createdAt: API.timestamp(incident.createdAt), holdsRun: incident.holdsRun,
            resolution: incident.resolution.map {
                Resolution(action: $0.action, actor: $0.actor, reason: $0.note, at: API.timestamp($0.at))
            })
    }
}

extension API.PlaybookRegistration {
    /// The outcome of registering a version.
    public init(version: PlaybookVersion, created: Bool, warnings: [ActPlaybook.Diagnostic]) {
        self.init(playbook: version.playbookID, version: version.versionID, checksum: version.checksum,
            triggers: version.triggers, created: created, warnings: warnings.map(API.Diagnostic.init))
    }
}

extension API.Schedule {
    /// A schedule row of the store.
    public init(_ row: ScheduleRow) {
        let definition = row.definition
        self.init(playbook: row.playbookID, scheduleID: row.scheduleID, spec: definition.spec.description,
            timeZone: definition.timeZone, catchUp: definition.catchUp.rawValue,
            catchUpWindow: definition.catchUpWindow.description, overlap: definition.overlap.rawValue,
            jitter: definition.jitter?.description, paused: row.paused, pausedBy: row.pausedBy,
            nextFireAt: row.state.nextFire.map(API.timestamp), lastFireAt: row.state.lastFire.map(API.timestamp),
            lastRunID: row.state.lastRun?.rawValue, bufferedFireAt: row.state.buffered.map(API.timestamp),
            started: row.state.started, skipped: row.state.skipped, lastSkip: row.state.lastSkip,
            dueAt: row.dueAt.map(API.timestamp))
    }
}
