import ActEngine
import ActPlaybook

/// 2024-05-14T10:00:00Z, the instant every test run starts at.
let t0 = SimulationScript.defaultStart

func at(_ span: TimeSpan) -> Instant { t0 + span }

extension Assignee {
    static func ai(_ name: String) -> Assignee { Assignee(kind: .ai, name: name) }
    static func human(_ name: String) -> Assignee { Assignee(kind: .human, name: name) }
    static func svc(_ name: String) -> Assignee { Assignee(kind: .service, name: name) }
    static func call(_ method: String, _ path: String) -> Assignee {
        Assignee(kind: .call, name: path, method: method, written: "\(method) \(path)")
    }
    static func topic(_ name: String) -> Assignee { Assignee(kind: .topic, name: name) }
}

/// A task step; its assignee defaults to `ai.<id>` (routing key `task.ai.<id>`).
func task(
    _ id: StepID,
    _ assignee: Assignee? = nil,
    retry: Int = 0,
    backoff: TimeSpan = .seconds(1),
    sla: TimeSpan? = nil,
    warning: TimeSpan? = nil,
    next: StepID? = nil,
    onFailure: StepID? = nil,
    onTimeout: StepID? = nil,
    when: Expression? = nil,
    compensate: Assignee? = nil,
    approval: Bool = false,
    fanOut: Bool = false,
    skills: [String] = [],
    concurrency: Concurrency? = nil
) -> Step {
    var spec = TaskSpec(
        assignee: assignee ?? .ai(id.rawValue), skills: skills, mode: fanOut ? .fanOut : .single,
        requiresApproval: approval
    )
    spec.concurrency = concurrency
    return Step(
        id: id,
        kind: .task(spec),
        when: when, next: next, onFailure: onFailure, onTimeout: onTimeout,
        retry: RetryPolicy(maxRetries: retry, backoff: .exponential, initial: backoff),
        sla: sla.map { SLA(duration: $0, warning: warning) },
        compensate: compensate
    )
}

func wait(_ id: StepID, _ duration: TimeSpan?, signal: String? = nil, next: StepID? = nil, onTimeout: StepID? = nil)
    -> Step
{
    Step(id: id, kind: .wait(Wait(duration: duration, signal: signal ?? id.rawValue)), next: next, onTimeout: onTimeout)
}

func choice(
    _ id: StepID, _ path: [String], _ cases: [(String, StepID)], default target: StepID? = nil,
    onFailure: StepID? = nil
) -> Step {
    Step(
        id: id,
        kind: .choice(
            Choice(
                expression: .path(path), expressionSource: path.joined(separator: "."),
                cases: cases.map { Choice.Case(match: $0.0, target: $0.1) }, defaultTarget: target
            )
        ),
        onFailure: onFailure
    )
}

func parallel(
    _ id: StepID, _ branches: [Step], join: Parallel.JoinPolicy = .allMustSucceed, onFailure: StepID? = nil
) -> Step {
    Step(id: id, kind: .parallel(Parallel(branches: branches, join: join)), onFailure: onFailure)
}

/// One-line summaries of commands, so tables compare whole command lists exactly and readably.
///
/// Task status changes are left out unless `taskStatuses` (`TaskStatusTests` checks them), so the tables
/// of flows stay about the flow.
func summary(_ commands: [RunCommand], taskStatuses: Bool = false) -> [String] {
    commands.compactMap { command in
        switch command {
        case .dispatchTask(let d):
            let target: String
            switch d.target {
            case .routingKey(let key): target = key
            case .queue(let queue): target = "queue:" + queue
            case .pull: target = "pull"
            case .http: target = "http"
            case .playbook(let id): target = "playbook:" + id.rawValue
            }
            return "dispatch \(d.idempotencyKey) → \(target)" + (d.isCompensation ? " (compensation)" : "")
        case .scheduleTimer(let id, let kind, let due):
            return "schedule \(id) \(kind.rawValue) +\(due - t0)"
        case .cancelTimer(let id):
            return "cancel \(id)"
        case .emit(let e):
            let retry = e.willRetry == true ? " retry" : ""
            let compensation = e.isCompensation ? " (compensation)" : ""
            return "emit \(e.kind.rawValue) \(e.step?.rawValue ?? "-")\(retry)\(compensation)"
        case .audit(let a):
            return "audit \(a.kind.rawValue) \(a.step?.rawValue ?? "-")"
        case .runFinished(let status):
            return "finished \(status.rawValue)"
        case .taskStatusChanged(let update):
            guard taskStatuses else { return nil }
            return "task \(update.task)#\(update.attempt) \(update.status.rawValue)"
        case .incidentOpened(let incident, let holdsRun):
            return "incident \(incident.kind.rawValue) \(incident.step)" + (holdsRun ? " holds" : "")
        case .incidentClosed(let resolution, _):
            return "incident closed \(resolution)"
        case .askSlot(let claim, let step, let visit):
            return "ask slot \(claim.key) \(step)#\(visit)"
        case .leaveSlot(let claim, let step, let visit):
            return "leave slot \(claim.key) \(step)#\(visit)"
        }
    }
}

extension Array where Element == RunCommand {
    var dispatches: [TaskDispatch] {
        compactMap { if case .dispatchTask(let d) = $0 { d } else { nil } }
    }
    var governance: [GovernanceEvent] {
        compactMap { if case .emit(let e) = $0 { e } else { nil } }
    }
}

// MARK: - The five chapter playbooks, built exactly as their YAML

enum Chapters {
    /// Chapter 000, `playbooks/noise_complaint.yaml`.
    static let noiseComplaint = Playbook(
        id: "NoiseComplaint.v1",
        description: "Handle citizen noise complaints",
        triggers: ["noise.complaint.filed"],
        steps: [
            task("intake", .ai("auto_intake")),
            task("triage", .ai("classifier")),
            task("assign_inspector", .human("dispatcher")),
            task("inspection", .human("field_inspector"), retry: 2),
            task("resolution", .ai("compose_response")),
        ]
    )

    /// Chapter 000, `agents/human.field_inspector.json`.
    static let fieldInspector = Agent(
        id: "human.field_inspector", skills: ["noise-meter", "photos"],
        shift: Shift(startMinute: 8 * 60, endMinute: 22 * 60), queue: "inspection.queue"
    )

    /// Chapter 001, `workflows/ftc_complaint.yml`.
    static let ftcComplaint = Playbook(
        id: "FTC-Complaint",
        triggers: ["ComplaintLogged"],
        steps: [
            task(
                "classify", Assignee(kind: .ai, name: "fraud-labeler", written: "AI:fraud-labeler"),
                next: "severity_branch"
            ),
            choice("severity_branch", ["result", "severity"], [("High", "human_review"), ("Low", "notify_citizen")]),
            task(
                "human_review", Assignee(kind: .human, name: "investigator", written: "HUMAN:investigator"),
                sla: .hours(4), next: "notify_citizen", onTimeout: "escalate"
            ),
            task("escalate", Assignee(kind: .human, name: "supervisor", written: "HUMAN:supervisor")),
            task("notify_citizen", Assignee(kind: .service, name: "email-svc", written: "SVC:email-svc")),
        ]
    )

    /// Chapter 002, `workflows/payment_failed.yaml`.
    static let paymentFailed = Playbook(
        id: "payment_failed_flow",
        triggers: ["payment_failed"],
        steps: [
            task("freeze_payments", .call("POST", "/finance/freeze")),
            parallel(
                "notify_citizen",
                [
                    task("notify_citizen.1", .call("POST", "/notify/email")),
                    task("notify_citizen.2", .call("POST", "/notify/sms")),
                ]
            ),
            task("create_ticket", .call("POST", "/helpdesk/ticket")),
            wait("wait_for_fix", .days(5)),
            task("escalate", .call("POST", "/hitl/escalate"), when: .stepCondition("wait_for_fix", .timeout)),
        ]
    )

    /// Chapter 003, `workflows/permit-renewal.yaml` (as meant: three services, a refund compensating the charge).
    static let permitRenewal = Playbook(
        id: "permit-renewal",
        steps: [
            task("uploadDocs", .svc("fileSvc.upload")),
            task("chargeFee", .svc("achSvc.charge"), compensate: .svc("achSvc.refund")),
            task("updatePermitDB", .svc("permitSvc.update")),
        ]
    )

    /// Chapter 003's permit renewal with its `zoningApproval` step (`pause: true`).
    static let permitRenewalWithApproval = Playbook(
        id: "permit-renewal",
        steps: [
            task("uploadDocs", .svc("fileSvc.upload")),
            task("chargeFee", .svc("achSvc.charge"), compensate: .svc("achSvc.refund")),
            task("zoningApproval", .svc("zoningPortal.approve"), approval: true),
            task("updatePermitDB", .svc("permitSvc.update")),
        ]
    )

    /// Chapter 004, `workflows/epa_waste_registration.py`.
    static let epaWasteRegistration = Playbook(
        id: "epa_waste_reg",
        steps: [
            task("collect_form", .topic("collect_form"), sla: .minutes(5)),
            task("validate_tax_id", .topic("validate_tax_id"), sla: .minutes(2)),
            task("charge_fee", .topic("charge_fee"), sla: .minutes(1)),
            task("assign_inspector", .topic("assign_inspector"), sla: .hours(48)),
        ]
    )
}
