import ActEngine
import ActPlaybook
import ActService
import ActStore
internal import Foundation
import Hummingbird
import Logging

/// Adds the console (`/ui`, docs/console.md) to `router`: server-rendered pages over the same control plane
/// as the API, for human desks (the task inbox) and operators (runs, incidents, dead letters, playbooks).
///
/// The sign-in page and the static files are open; every other page needs a session
/// (``ConsoleSessionMiddleware``), acts with its token's scopes (reading needs `read`, every form `operate`),
/// and records the signed-in person as the actor of what it does.
func addConsole<Plane: ControlPlane>(to router: Router<APIRequestContext>, controlPlane: Plane, tokens: TokenTable,
    anonymous: Principal?, api: APIRoutes<Plane>, logger: Logger)
{
    guard let pages = ConsolePages.load(logger: logger) else {
        router.get("/ui/**") { _, _ -> Response in
            throw APIProblem(.internalServerError, slug: "internal", title: "Internal server error",
                detail: "the console's templates are missing from this installation")
        }
        return
    }
    let routes = ConsoleRoutes(controlPlane: controlPlane, tokens: tokens, anonymous: anonymous, api: api, pages: pages)
    let open = router.group("/ui")
    open.get("/static/console.css") { _, _ in consoleAsset(pages.stylesheet, type: "text/css; charset=utf-8") }
    open.get("/static/console.js") { _, _ in consoleAsset(pages.script, type: "text/javascript; charset=utf-8") }
    open.get("/login", use: routes.signInPage)
    open.post("/login", use: routes.signIn)

    let ui = router.group("/ui").add(middleware: ConsoleSessionMiddleware(controlPlane: controlPlane, tokens: tokens,
        anonymous: anonymous, pages: pages))
    ui.get("") { _, _ in Response(status: .seeOther, headers: [.location: "/ui/runs"]) }
    ui.post("/logout", use: routes.signOut)
    ui.get("/runs", use: routes.runs)
    ui.get("/runs/:id", use: routes.run)
    ui.get("/runs/:id/live", use: routes.runLive)
    ui.get("/runs/:id/events", use: routes.runEvents)
    for action in ["pause", "resume", "cancel", "signal", "rewind"] {
        ui.post("/runs/:id/\(action)") { try await routes.runAction($0, $1, action: action) }
    }
    ui.get("/tasks", use: routes.inbox)
    ui.get("/tasks/:id", use: routes.task)
    for action in ["claim", "release", "complete", "fail", "approve", "refuse"] {
        ui.post("/tasks/:id/\(action)") { try await routes.taskAction($0, $1, action: action) }
    }
    ui.get("/incidents", use: routes.incidents)
    ui.get("/incidents/:id", use: routes.incident)
    for action in IncidentActionName.allCases {
        ui.post("/incidents/:id/\(action.rawValue)") { try await routes.incidentAction($0, $1, action: action) }
    }
    ui.get("/dead-letters", use: routes.deadLetters)
    ui.get("/dead-letters/:id", use: routes.deadLetter)
    ui.get("/playbooks", use: routes.playbooks)
    ui.get("/playbooks/:id", use: routes.playbook)
    ui.get("/validate", use: routes.validatePage)
    ui.post("/validate", use: routes.validate)
}

private func consoleAsset(_ bytes: [UInt8], type: String) -> Response {
    Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=300"],
        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// The console's handlers.
struct ConsoleRoutes<Plane: ControlPlane>: Sendable {
    typealias Context = APIRequestContext

    let controlPlane: Plane
    let tokens: TokenTable
    let anonymous: Principal?
    let api: APIRoutes<Plane>
    let pages: ConsolePages

    // MARK: Signing in

    @Sendable func signInPage(_ request: Request, context: Context) async throws -> Response {
        try pages.page("login", signInValues(request, message: nil), context: context)
    }

    private func signInValues(_ request: Request, message: String?) -> [String: Any] {
        var values: [String: Any] = ["title": "Sign in", "next": Self.safeNext(request.uri.queryParameters.get("next"))]
        if let message { values["message"] = message }
        if anonymous != nil { values["anonymous"] = true }
        return values
    }

    @Sendable func signIn(_ request: Request, context: Context) async throws -> Response {
        let form = try await ConsoleForm(request, context: context)
        var failed = signInValues(request, message: nil)
        failed["next"] = Self.safeNext(form["next"])
        if ConsoleSessions.isCrossSite(request) {
            failed["message"] = "Refused: the sign-in form was sent from another site."
            return try pages.page("login", failed, context: context, status: .forbidden)
        }
        let secure = ConsoleSessions.isSecureTransport(request)
        guard secure || ConsoleSessions.isLoopbackHost(request) else {
            failed["message"] = "The console signs in over HTTPS only (or on this machine's loopback address): "
                + "put TLS in front of hms-act, with X-Forwarded-Proto: https from the ingress."
            return try pages.page("login", failed, context: context, status: .forbidden)
        }
        let tokenName: String
        let tokenDigest: [UInt8]
        if let token = form.text("token") {
            guard let entry = tokens.entry(presenting: Array(token.utf8)) else {
                failed["message"] = "That token is not valid. Paste a token from http.tokens (ask your administrator)."
                return try pages.page("login", failed, context: context, status: .unauthorized)
            }
            guard entry.principal.grants(.read) else {
                failed["message"] = "That token has no read scope, so it cannot use the console."
                return try pages.page("login", failed, context: context, status: .forbidden)
            }
            (tokenName, tokenDigest) = (entry.principal.name, entry.digest)
        } else if form["anonymous"] != nil, let anonymous {
            (tokenName, tokenDigest) = (anonymous.name, [])
        } else {
            failed["message"] = "Paste your API token to sign in."
            return try pages.page("login", failed, context: context, status: .unauthorized)
        }
        let secret = ConsoleSessions.randomSecret()
        try await controlPlane.createConsoleSession(digest: APITokenEntry.digest(ofSecret: Array(secret.utf8)),
            tokenName: tokenName, tokenDigest: tokenDigest, csrfToken: ConsoleSessions.randomSecret(),
            lifetime: ConsoleSessions.lifetime)
        var response = Response(status: .seeOther, headers: [.location: Self.safeNext(form["next"])])
        response.setCookie(ConsoleSessions.cookie(secret, secure: secure || !ConsoleSessions.isLoopbackHost(request),
            maxAge: Int(ConsoleSessions.lifetime.components.seconds)))
        return response
    }

    @Sendable func signOut(_ request: Request, context: Context) async throws -> Response {
        if let session = context.consoleSession { try await controlPlane.deleteConsoleSession(digest: session.digest) }
        var response = Response(status: .seeOther, headers: [.location: "/ui/login"])
        response.setCookie(ConsoleSessions.cookie("", secure: ConsoleSessions.isSecureTransport(request), maxAge: 0))
        return response
    }

    /// A path inside the console to go to after signing in; anything else (another site) goes to the runs.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.hasPrefix("/ui/login")
        else { return "/ui/runs" }
        return next
    }

    // MARK: Runs

    @Sendable func runs(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        func text(_ name: String) -> String? {
            query.get(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var problems: [String] = []
        var filter = RunFilter(status: text("status"), playbookID: text("playbook"), key: text("key"))
        if let status = filter.status, RunStatus(rawValue: status) == nil {
            problems.append("Status \(status) is not one of " + RunStatus.allCases.map(\.rawValue).joined(separator: ", "))
            filter.status = nil
        }
        if let payload = text("payload") {
            if let value = try? JSONValue(parsing: Array(payload.utf8)), case .object(let members) = value, !members.isEmpty {
                filter.payload = value
            } else {
                problems.append("Payload must be a JSON object the runs' payload contains, like {\"address\": \"12 Elm St\"}")
            }
        }
        for (field, label) in [("from", "From"), ("to", "To")] {
            guard let value = text(field) else { continue }
            guard let instant = Self.instant(dateOrTime: value) else {
                problems.append("\(label) must be a date (2026-12-01) or a time (2026-12-01T09:30)")
                continue
            }
            if field == "from" { filter.createdAfter = instant } else { filter.createdBefore = instant }
        }
        let page: API.RunPage
        do {
            page = try await controlPlane.listRuns(filter, after: text("after"), limit: 50)
        } catch is StoreDataError {
            return try pages.error(.badRequest, "That page link is stale. Start again from the first page.",
                context: context)
        }
        let lights = try await controlPlane.runLights(runIDs: page.runs.map(\.runID))
        let playbooks = try await controlPlane.listPlaybooks().map(\.playbook)
        var values: [String: Any] = [
            "title": "Runs",
            "runs": page.runs.map { run -> [String: Any] in
                let light = lights[run.runID] ?? "none"
                return ["id": run.runID, "playbook": run.playbook, "status": run.status, "trigger": run.trigger ?? "—",
                    "created": Self.shortTime(run.createdAt), "updated": Self.shortTime(run.updatedAt),
                    "light": light, "lightLabel": Self.lightLabel(light)]
            },
            "statuses": RunStatus.allCases.map { ["value": $0.rawValue, "selected": $0.rawValue == filter.status] },
            "playbooks": playbooks.map { ["value": $0, "selected": $0 == filter.playbookID] },
            "key": text("key") ?? "", "payload": text("payload") ?? "", "from": text("from") ?? "",
            "to": text("to") ?? "", "problems": problems,
        ]
        if page.runs.isEmpty { values["empty"] = true }
        if let next = page.next {
            var items = [("after", next)]
            for name in ["status", "playbook", "key", "payload", "from", "to"] {
                if let value = text(name) { items.append((name, value)) }
            }
            values["nextPage"] = "/ui/runs?" + items.map { "\($0)=\(ConsoleForm.percentEncode($1))" }.joined(separator: "&")
        }
        return try pages.page("runs", values, context: context, section: "runs")
    }

    @Sendable func run(_ request: Request, context: Context) async throws -> Response {
        let (values, _) = try await runValues(request, context: context)
        return try pages.page("run", values, context: context, section: "runs")
    }

    /// The live part of a run's page alone (the script swaps it in when the run changes).
    @Sendable func runLive(_ request: Request, context: Context) async throws -> Response {
        var (values, _) = try await runValues(request, context: context)
        values["csrf"] = context.consoleSession?.csrfToken ?? ""
        values["canOperate"] = context.principal?.grants(.operate) ?? false
        return pages.html(try pages.render("run-live", values))
    }

    /// Server-sent events for a run's page: `change` whenever what the page shows changes (a step, a task, an
    /// audit entry, or an SLA light as time passes); checked every second; ends when the run has finished.
    @Sendable func runEvents(_ request: Request, context: Context) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        guard let first = try await controlPlane.runDetail(id: runID) else {
            return try pages.error(.notFound, "There is no run \(runID).", context: context)
        }
        // A finished run changes no more: 204 tells EventSource to stop reconnecting.
        if Self.finished.contains(first.summary.status) { return Response(status: .noContent) }
        let plane = controlPlane
        let body = ResponseBody { writer in
            var last = ""
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            for _ in 0..<3_600 {
                guard let detail = try await plane.runDetail(id: runID) else { break }
                let print = Self.fingerprint(detail)
                if print != last {
                    if !last.isEmpty { try await writer.write(ByteBuffer(string: "event: change\ndata: \(print)\n\n")) }
                    last = print
                } else {
                    try await writer.write(ByteBuffer(string: ": idle\n\n"))
                }
                if Self.finished.contains(detail.summary.status) { break }
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    static var finished: Set<String> { ["completed", "failed", "cancelled"] }

    static func fingerprint(_ detail: API.RunDetail) -> String {
        let steps = detail.steps.map { "\($0.stepID):\($0.visit):\($0.status):\($0.sla.state.rawValue)" }
        let text = [detail.summary.status, String(detail.timeline.count), String(detail.tasks.count)] + steps
        return Array(APITokenEntry.digest(ofSecret: Array(text.joined(separator: "|").utf8)).prefix(8)).hexString
    }

    private func runValues(_ request: Request, context: Context) async throws -> ([String: Any], API.RunDetail) {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        guard let detail = try await controlPlane.runDetail(id: runID) else {
            throw APIProblem.notFound("There is no run \(runID). Find runs on the Runs page.", slug: "run-not-found")
        }
        let playbook = try await controlPlane.playbook(versionID: detail.playbookVersion)
        var marks: [String: PlaybookDiagram.StepMark] = [:]
        for step in detail.steps { marks[step.stepID] = .init(status: step.status, light: step.sla.state.rawValue) }
        let findings = try await controlPlane.verifyRunChain(id: runID)
        let status = detail.summary.status
        let active = ["running", "paused", "incident"].contains(status)
        var values: [String: Any] = [
            "title": "Run \(runID.rawValue)",
            "id": runID.rawValue, "playbook": detail.summary.playbook, "version": detail.playbookVersion,
            "status": status, "trigger": detail.summary.trigger ?? "—", "traceID": detail.summary.traceID,
            "created": Self.shortTime(detail.summary.createdAt), "updated": Self.shortTime(detail.summary.updatedAt),
            "finished": detail.summary.finishedAt.map(Self.shortTime) ?? "—",
            "payload": Self.pretty(detail.payload),
            "diagram": playbook.map { PlaybookDiagram.svg($0, marks: marks) } ?? "",
            "steps": detail.steps.map { step -> [String: Any] in
                [
                    "id": step.stepID, "visit": step.visit, "status": step.status, "assignee": step.assignee ?? "—",
                    "agent": step.agent ?? "—", "attempt": step.attempt.map(String.init) ?? "—",
                    "started": Self.shortTime(step.startedAt), "finished": step.finishedAt.map(Self.shortTime) ?? "—",
                    "light": step.sla.state.rawValue, "lightLabel": Self.lightLabel(step.sla.state.rawValue),
                    "deadline": step.sla.deadline.map(Self.shortTime) ?? "—",
                    "output": step.output.flatMap { $0 == .null ? nil : Self.pretty($0) } ?? "", "error": step.error ?? "",
                ]
            },
            "tasks": detail.tasks.map { task -> [String: Any] in
                // A sub-playbook's attempt is done by its child run: the link goes there, not to a desk.
                let href = task.childRunID.map { "/ui/runs/" + ConsoleForm.segment($0) }
                    ?? "/ui/tasks/" + ConsoleForm.segment(task.taskID)
                return ["id": task.taskID, "href": href, "attempt": task.attempt,
                    "step": task.stepID, "assignee": task.assignee,
                    "status": task.status, "deadline": task.deadline.map(Self.shortTime) ?? "—",
                    "open": task.status == "dispatched" || task.childRunID != nil]
            },
            "timeline": detail.timeline.map { entry -> [String: Any] in
                ["seq": entry.seq, "at": Self.shortTime(entry.at), "kind": entry.kind, "actor": entry.actor,
                    "data": entry.data == .null || entry.data == .object([:]) ? "" : Self.compact(entry.data)]
            },
            "verified": findings.isEmpty, "findings": findings,
            "canPause": status == "running", "canResume": status == "paused", "canCancel": active,
            "canSignal": active, "canRewind": ["completed", "failed", "cancelled", "incident"].contains(status),
            "rewindSteps": (playbook?.steps ?? []).map { ["id": $0.id.rawValue] },
            "live": ["running", "paused", "incident", "compensating"].contains(status),
        ]
        if let result = detail.result { values["result"] = Self.pretty(result) }
        if let parent = detail.parent?["run_id"]?.stringValue {
            values["parent"] = ["id": parent, "href": "/ui/runs/" + ConsoleForm.segment(parent),
                "step": detail.parent?["task_id"]?.stringValue ?? ""]
        }
        if let failure = detail.failure { values["failure"] = (failure.step.map { "\($0): " } ?? "") + failure.reason }
        if let notice = request.uri.queryParameters.get("notice") { values["notice"] = String(notice) }
        return (values, detail)
    }

    func runAction(_ request: Request, _ context: Context, action: String) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        guard let principal = try requireOperate(context) else {
            return try pages.error(.forbidden, "Your token may read but not act: ask for one with the operate scope.",
                context: context)
        }
        let form = context.consoleForm ?? ConsoleForm(encoded: "")
        let back = "/ui/runs/\(ConsoleForm.segment(runID.rawValue))"
        guard try await controlPlane.runSummary(id: runID) != nil else {
            return try pages.error(.notFound, "There is no run \(runID).", context: context)
        }
        let reason = form.text("reason")
        let input: BatchInput
        switch action {
        case "pause", "resume", "cancel", "rewind":
            guard let reason else { return redirect(back, notice: "Give a reason: it goes into the audit trail.") }
            switch action {
            case "pause": input = .operatorCommand(runID: runID, event: .pause, actor: principal.name, key: nil, reason: reason)
            case "resume": input = .operatorCommand(runID: runID, event: .resume, actor: principal.name, key: nil, reason: reason)
            case "cancel": input = .operatorCommand(runID: runID, event: .cancel(reason: reason), actor: principal.name, key: nil)
            default:
                guard let step = form.text("step") else { return redirect(back, notice: "Choose the step to retry from.") }
                input = .operatorCommand(runID: runID, event: .rewind(to: StepID(step), actor: principal.name, reason: reason),
                    actor: principal.name, key: nil)
            }
        default:
            guard let name = form.text("name") else { return redirect(back, notice: "Name the signal to send.") }
            var payload = JSONValue.null
            if let text = form.text("payload") {
                guard let value = try? JSONValue(parsing: Array(text.utf8)) else {
                    return redirect(back, notice: "The signal's payload is not JSON; write an object like {\"ok\": true}.")
                }
                payload = value
            }
            input = .worker(.signal(runID: runID.rawValue, name: name, payload: payload), messageID: nil)
        }
        return redirect(back, notice: try await outcomeNotice(input, done: "\(action.capitalized) applied."))
    }

    // MARK: Tasks

    @Sendable func inbox(_ request: Request, context: Context) async throws -> Response {
        guard let principal = context.principal else { throw APIProblem.notFound("sign in first", slug: "unauthorized") }
        var tasks: [API.Task] = []
        if let agents = principal.agents {
            for agent in agents.sorted() {
                tasks += try await controlPlane.listOpenTasks(assignee: agent, order: .deadline, after: nil, limit: 200).tasks
            }
        } else {
            tasks = try await controlPlane.listOpenTasks(assignee: nil, order: .deadline, after: nil, limit: 200).tasks
        }
        tasks.sort { ($0.deadline ?? "~", $0.createdAt) < ($1.deadline ?? "~", $1.createdAt) }
        let claims = try await controlPlane.deskClaims(taskIDs: tasks.map(\.taskID))
        let now = API.timestamp(Instant(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000)))
        var values: [String: Any] = [
            "title": "Inbox",
            "tasks": tasks.map { task -> [String: Any] in
                let claim = claims.first { $0.taskID == task.taskID && $0.attempt == task.attempt }
                let light = Self.light(deadline: task.deadline, warnAt: task.warnAt, now: now)
                return ["id": task.taskID, "href": "/ui/tasks/" + ConsoleForm.segment(task.taskID), "attempt": task.attempt,
                    "run": task.runID, "step": task.stepID,
                    "assignee": task.assignee, "deadline": task.deadline.map(Self.shortTime) ?? "none",
                    "light": light, "lightLabel": Self.lightLabel(light),
                    "claimedBy": claim?.claimedBy ?? "", "mine": claim?.claimedBy == principal.name]
            },
            "agents": principal.agents.map { $0.sorted().joined(separator: ", ") } ?? "every agent",
        ]
        if tasks.isEmpty { values["empty"] = true }
        return try pages.page("tasks", values, context: context, section: "tasks")
    }

    @Sendable func task(_ request: Request, context: Context) async throws -> Response {
        let taskID = TaskID(try APIRequest.pathParameter("id", context: context))
        guard let principal = context.principal, let task = try await controlPlane.latestTaskAttempt(id: taskID) else {
            return try pages.error(.notFound, "There is no task \(taskID). Open the inbox for the open ones.",
                context: context)
        }
        let claim = try await controlPlane.deskClaims(taskIDs: [task.taskID]).first { $0.attempt == task.attempt }
        let detail = try await controlPlane.runDetail(id: RunID(task.runID))
        let spec = try await taskSpec(of: task, version: detail?.playbookVersion)
        let approval = spec?.requiresApproval ?? false
        let open = task.status == "dispatched"
        let mayAct = principal.grants(.operate) && principal.mayActAs(agent: task.assignee)
        let heldByOther = claim != nil && claim?.claimedBy != principal.name
        var values: [String: Any] = [
            "title": "Task \(task.stepID)",
            "id": task.taskID, "href": "/ui/tasks/" + ConsoleForm.segment(task.taskID), "attempt": task.attempt,
            "run": task.runID, "step": task.stepID,
            "assignee": task.assignee, "status": task.status, "deadline": task.deadline.map(Self.shortTime) ?? "none",
            "payload": detail.map { Self.pretty($0.payload) } ?? "", "open": open,
            "claimedBy": claim?.claimedBy ?? "", "claimed": claim != nil, "mine": claim?.claimedBy == principal.name,
            "canClaim": open && mayAct && claim == nil, "canRelease": open && claim?.claimedBy == principal.name,
            "canAnswer": open && mayAct && !heldByOther, "approval": approval,
            "mayAct": mayAct,
        ]
        if let output = task.output { values["output"] = Self.pretty(output) }
        if let form = spec?.form, !form.isEmpty {
            values["form"] = form.map { field -> [String: Any] in
                [
                    "name": "field_" + field.name, "id": "field-" + field.name, "label": field.label,
                    "required": field.required, "kind_" + field.kind.rawValue: true,
                    "options": field.options.map { ["value": $0] },
                ]
            }
            values["hasForm"] = true
        }
        if let notice = request.uri.queryParameters.get("notice") { values["notice"] = String(notice) }
        return try pages.page("task", values, context: context, section: "tasks")
    }

    /// The playbook step a task belongs to (a parallel branch too), when it is a task step.
    private func taskSpec(of task: API.Task, version: Int64?) async throws -> TaskSpec? {
        guard let version, let playbook = try await controlPlane.playbook(versionID: version) else { return nil }
        let step = playbook.steps.flatMap { step -> [Step] in
            if case .parallel(let parallel) = step.kind { return [step] + parallel.branches }
            return [step]
        }.first { $0.id.rawValue == task.stepID }
        if case .task(let spec)? = step?.kind { return spec }
        return nil
    }

    /// A task's output from its step's `form:` fields (`field_<name>` in the posted form); the problem, in
    /// words, when a value is missing or of the wrong kind.
    static func output(from form: ConsoleForm, fields: [FormField]) -> Result<JSONValue, FormProblem> {
        var output: [String: JSONValue] = [:]
        for field in fields {
            let text = form.text("field_" + field.name)
            switch field.kind {
            case .boolean:
                output[field.name] = .bool(text != nil)
                continue
            case .text, .textarea, .number, .choice:
                guard let text else {
                    if field.required { return .failure(FormProblem("\(field.label) is required.")) }
                    continue
                }
                switch field.kind {
                case .number:
                    guard let value = try? JSONValue(parsing: Array(text.utf8)), case .number = value else {
                        return .failure(FormProblem("\(field.label) must be a number, like 42 or 3.5."))
                    }
                    output[field.name] = value
                case .choice:
                    guard field.options.contains(text) else {
                        return .failure(FormProblem("\(field.label) must be one of " + field.options.joined(separator: ", ") + "."))
                    }
                    output[field.name] = .string(text)
                default:
                    output[field.name] = .string(text)
                }
            }
        }
        return .success(.object(output))
    }

    struct FormProblem: Error { let message: String; init(_ message: String) { self.message = message } }

    func taskAction(_ request: Request, _ context: Context, action: String) async throws -> Response {
        let taskID = TaskID(try APIRequest.pathParameter("id", context: context))
        guard let principal = try requireOperate(context) else {
            return try pages.error(.forbidden, "Your token may read but not act: ask for one with the operate scope.",
                context: context)
        }
        guard let task = try await controlPlane.latestTaskAttempt(id: taskID) else {
            return try pages.error(.notFound, "There is no task \(taskID).", context: context)
        }
        guard principal.mayActAs(agent: task.assignee) else {
            return try pages.error(.forbidden, "This task is for \(task.assignee); your token may act only for "
                + (principal.agents?.sorted().joined(separator: ", ") ?? "—") + ".", context: context)
        }
        let form = context.consoleForm ?? ConsoleForm(encoded: "")
        let back = "/ui/tasks/\(ConsoleForm.segment(task.taskID))"
        let attempt = Int(form["attempt"] ?? "") ?? task.attempt
        guard attempt == task.attempt, task.status == "dispatched" else {
            return redirect(back, notice: "This task is no longer open (attempt \(task.attempt) is \(task.status)).")
        }
        let claim = try await controlPlane.deskClaims(taskIDs: [task.taskID]).first { $0.attempt == attempt }
        switch action {
        case "claim":
            guard let holder = try await controlPlane.claimDeskTask(id: taskID, attempt: attempt, actor: principal.name)
            else { return redirect(back, notice: "This task is no longer open.") }
            return redirect(back, notice: holder.claimedBy == principal.name
                ? "You hold this task." : "\(holder.claimedBy) holds this task already.")
        case "release":
            let released = try await controlPlane.releaseDeskTask(id: taskID, attempt: attempt, actor: principal.name)
            return redirect(back, notice: released ? "Released: a colleague may take it." : "You did not hold this task.")
        default:
            if let claim, claim.claimedBy != principal.name {
                return redirect(back, notice: "\(claim.claimedBy) holds this task: only they may answer it.")
            }
        }
        let input: BatchInput
        switch action {
        case "complete":
            var output = JSONValue.object([:])
            let detail = try await controlPlane.runDetail(id: RunID(task.runID))
            if let fields = try await taskSpec(of: task, version: detail?.playbookVersion)?.form, !fields.isEmpty {
                switch Self.output(from: form, fields: fields) {
                case .success(let value): output = value
                case .failure(let problem): return redirect(back, notice: problem.message)
                }
            } else if let text = form.text("output") {
                guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object = value else {
                    return redirect(back, notice: "The output must be a JSON object, like {\"verdict\": \"noise confirmed\"}.")
                }
                output = value
            }
            input = .worker(.taskResult(WorkerMessage.TaskResult(taskID: task.taskID, attempt: attempt,
                outcome: .completed(output: output), agent: principal.name)), messageID: nil)
        case "fail":
            guard let reason = form.text("reason") else { return redirect(back, notice: "Say why the task failed.") }
            input = .worker(.taskResult(WorkerMessage.TaskResult(taskID: task.taskID, attempt: attempt,
                outcome: .failed(reason: reason, retryable: form["retryable"] != nil), agent: principal.name)),
                messageID: nil)
        default:
            let approved = action == "approve"
            guard let reason = form.text("reason") else {
                return redirect(back, notice: "Give a reason for the \(approved ? "approval" : "refusal").")
            }
            input = .worker(.approval(WorkerMessage.Approval(runID: task.runID, stepID: task.stepID, approved: approved,
                actor: principal.name, reason: reason, payload: .null)), messageID: nil)
        }
        let notice = try await outcomeNotice(input, done: action == "complete" ? "Completed." : "\(action.capitalized)d.")
        _ = try await controlPlane.releaseDeskTask(id: taskID, attempt: attempt, actor: principal.name)
        return redirect("/ui/runs/\(ConsoleForm.segment(task.runID))", notice: notice)
    }

    // MARK: Incidents and dead letters

    @Sendable func incidents(_ request: Request, context: Context) async throws -> Response {
        let status = request.uri.queryParameters.get("status").map { String($0) } ?? "open"
        let page = try await controlPlane.listIncidents(status: ["open", "resolved", "all"].contains(status) ? status : "open",
            runID: nil, kind: nil, before: request.uri.queryParameters.get("before").flatMap { Int64($0) }, limit: 100)
        var values: [String: Any] = [
            "title": "Incidents",
            "incidents": page.incidents.map { incident -> [String: Any] in
                ["id": incident.id, "kind": incident.kind, "run": incident.runID ?? "", "status": incident.status,
                    "created": Self.shortTime(incident.createdAt), "holdsRun": incident.holdsRun,
                    "summary": Self.compact(incident.detail)]
            },
            "status_" + status: true,
        ]
        if page.incidents.isEmpty { values["empty"] = true }
        return try pages.page("incidents", values, context: context, section: "incidents")
    }

    @Sendable func incident(_ request: Request, context: Context) async throws -> Response {
        let id = Int64(try APIRequest.pathParameter("id", context: context)) ?? -1
        guard let incident = try await controlPlane.incident(id: id) else {
            return try pages.error(.notFound, "There is no incident \(id).", context: context)
        }
        var values: [String: Any] = [
            "title": "Incident \(id)", "id": id, "kind": incident.kind, "run": incident.runID ?? "",
            "status": incident.status, "created": Self.shortTime(incident.createdAt), "detail": Self.pretty(incident.detail),
            "holdsRun": incident.holdsRun, "open": incident.resolution == nil,
        ]
        if let resolution = incident.resolution {
            values["resolution"] = "\(resolution.action) by \(resolution.actor) at \(Self.shortTime(resolution.at))"
                + (resolution.reason.map { ": \($0)" } ?? "")
        }
        if let notice = request.uri.queryParameters.get("notice") { values["notice"] = String(notice) }
        return try pages.page("incident", values, context: context, section: "incidents")
    }

    func incidentAction(_ request: Request, _ context: Context, action: IncidentActionName) async throws -> Response {
        let id = Int64(try APIRequest.pathParameter("id", context: context)) ?? -1
        guard let principal = try requireOperate(context) else {
            return try pages.error(.forbidden, "Your token may read but not act: ask for one with the operate scope.",
                context: context)
        }
        let form = context.consoleForm ?? ConsoleForm(encoded: "")
        let back = "/ui/incidents/\(id)"
        guard let reason = form.text("reason") else { return redirect(back, notice: "Give a reason: it goes into the audit trail.") }
        var body = IncidentActionRequest(reason: reason)
        if action == .skip {
            let text = form.text("output") ?? "{}"
            guard let output = try? JSONValue(parsing: Array(text.utf8)) else {
                return redirect(back, notice: "The output must be JSON, like {} or {\"checked\": true}.")
            }
            (body.output, body.hasOutput) = (output, true)
        }
        do {
            let accepted = try await api.answerIncident(id, action: action, actor: principal.name, body: body, key: nil)
            return redirect(back, notice: accepted.outcome == "applied"
                ? "\(action.rawValue.capitalized) applied." : "Nothing changed: \(accepted.reason ?? accepted.outcome).")
        } catch let problem as APIProblem {
            return redirect(back, notice: problem.detail.isEmpty ? problem.title : problem.detail)
        }
    }

    @Sendable func deadLetters(_ request: Request, context: Context) async throws -> Response {
        let page = try await controlPlane.listDeadLetters(status: nil,
            before: request.uri.queryParameters.get("before").flatMap { Int64($0) }, limit: 100)
        var values: [String: Any] = [
            "title": "Dead letters",
            "letters": page.deadLetters.map { letter -> [String: Any] in
                ["id": letter.id, "status": letter.status, "reason": letter.reason, "routingKey": letter.routingKey,
                    "queue": letter.queue ?? "—", "collected": Self.shortTime(letter.collectedAt)]
            },
        ]
        if page.deadLetters.isEmpty { values["empty"] = true }
        return try pages.page("dead-letters", values, context: context, section: "dead")
    }

    @Sendable func deadLetter(_ request: Request, context: Context) async throws -> Response {
        let id = Int64(try APIRequest.pathParameter("id", context: context)) ?? -1
        guard let letter = try await controlPlane.deadLetter(id: id) else {
            return try pages.error(.notFound, "There is no dead letter \(id).", context: context)
        }
        let values: [String: Any] = [
            "title": "Dead letter \(id)", "id": id, "status": letter.status, "reason": letter.reason,
            "exchange": letter.exchange, "routingKey": letter.routingKey, "queue": letter.queue ?? "—",
            "messageID": letter.messageID ?? "—", "collected": Self.shortTime(letter.collectedAt),
            "properties": Self.pretty(letter.properties), "body": Self.pretty(letter.body),
            "handled": letter.handledBy.map { "\(letter.status) by \($0)" + (letter.note.map { ": \($0)" } ?? "") } ?? "",
        ]
        return try pages.page("dead-letter", values, context: context, section: "dead")
    }

    // MARK: Playbooks

    @Sendable func playbooks(_ request: Request, context: Context) async throws -> Response {
        let list = try await controlPlane.listPlaybooks()
        let values: [String: Any] = [
            "title": "Playbooks",
            "playbooks": list.map { playbook -> [String: Any] in
                ["id": playbook.playbook, "version": playbook.version, "steps": playbook.steps,
                    "triggers": playbook.triggers.joined(separator: ", "), "description": playbook.description ?? "",
                    "registered": Self.shortTime(playbook.registeredAt)]
            },
        ]
        return try pages.page("playbooks", values, context: context, section: "playbooks")
    }

    @Sendable func playbook(_ request: Request, context: Context) async throws -> Response {
        let id = try APIRequest.pathParameter("id", context: context)
        guard let versions = try await controlPlane.playbookVersions(id: id),
            let detail = try await controlPlane.playbookDetail(id: id)
        else {
            return try pages.error(.notFound, "There is no playbook \(id).", context: context)
        }
        let shown = versions.current ?? detail.summary.version
        let parsed = try await controlPlane.playbook(versionID: shown)
        let values: [String: Any] = [
            "title": "Playbook \(id)", "id": id, "current": versions.current.map(String.init) ?? "none (all disabled)",
            "pinned": versions.pinned.map(String.init) ?? "no", "shown": shown,
            "diagram": parsed.map { PlaybookDiagram.svg($0) } ?? "",
            "versions": versions.versions.map { version -> [String: Any] in
                ["version": version.version, "state": version.state, "pinned": version.pinned, "current": version.current,
                    "registered": Self.shortTime(version.registeredAt), "changedBy": version.changedBy ?? "",
                    "reason": version.reason ?? ""]
            },
            "source": detail.source,
        ]
        return try pages.page("playbook", values, context: context, section: "playbooks")
    }

    @Sendable func validatePage(_ request: Request, context: Context) async throws -> Response {
        try pages.page("validate", ["title": "Validate a playbook", "source": ""], context: context, section: "playbooks")
    }

    /// Checks a pasted playbook as registering would (the agent registry included), registering nothing.
    @Sendable func validate(_ request: Request, context: Context) async throws -> Response {
        let form = context.consoleForm ?? ConsoleForm(encoded: "")
        let source = form["source"] ?? ""
        var values: [String: Any] = ["title": "Validate a playbook", "source": source, "checked": true]
        let diagnostics = try await controlPlane.checkPlaybook(source: source, file: "pasted.yaml")
        values["diagnostics"] = diagnostics.map { diagnostic -> [String: Any] in
            ["severity": diagnostic.severity, "code": diagnostic.code, "message": diagnostic.message,
                "fix": diagnostic.fix ?? "",
                "position": diagnostic.line.map { "\($0):\(diagnostic.column ?? 1)" } ?? "—"]
        }
        values["valid"] = !diagnostics.contains { $0.severity == "error" }
        values["warnings"] = !diagnostics.isEmpty
        return try pages.page("validate", values, context: context, section: "playbooks")
    }

    // MARK: Helpers

    /// The principal when it may act (`operate`); `nil` for a read-only one.
    private func requireOperate(_ context: Context) throws -> Principal? {
        guard let principal = context.principal else {
            throw APIProblem(.unauthorized, slug: "unauthorized", title: "Unauthorized", detail: "sign in first")
        }
        return principal.grants(.operate) ? principal : nil
    }

    private func outcomeNotice(_ input: BatchInput, done: String) async throws -> String {
        guard let result = try await controlPlane.submit([input]).first else { return "Nothing was applied; try again." }
        switch result.outcome {
        case .applied: return done
        case .ignored(let reason): return "Nothing changed: \(reason)."
        case .rejected(let reason), .forbidden(let reason): return "Refused: \(reason)."
        }
    }

    private func redirect(_ path: String, notice: String) -> Response {
        Response(status: .seeOther, headers: [.location: path + "?notice=" + ConsoleForm.percentEncode(notice)])
    }

    static func lightLabel(_ light: String) -> String {
        switch light {
        case "green": "on time"
        case "yellow": "past warning"
        case "red": "past deadline"
        case "breached": "breached"
        default: "no SLA"
        }
    }

    static func light(deadline: String?, warnAt: String?, now: String) -> String {
        guard let deadline else { return "none" }
        if deadline <= now { return "red" }
        if (warnAt ?? deadline) <= now { return "yellow" }
        return "green"
    }

    /// `2026-12-04T10:00:00.000Z` → `2026-12-04 10:00:00`.
    static func shortTime(_ timestamp: String) -> String {
        String(timestamp.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// A date (`2026-12-01`, midnight UTC) or a time (`2026-12-01T09:30`, UTC) as Unix milliseconds.
    static func instant(dateOrTime text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        for (format, suffix) in [([.withFullDate] as ISO8601DateFormatter.Options, ""),
            ([.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate] as ISO8601DateFormatter.Options, ""),
            ([.withInternetDateTime] as ISO8601DateFormatter.Options, ""),
            ([.withInternetDateTime] as ISO8601DateFormatter.Options, ":00Z")]
        {
            formatter.formatOptions = format
            if let date = formatter.date(from: text + suffix) { return Int64(date.timeIntervalSince1970 * 1_000) }
        }
        return nil
    }

    static func pretty(_ value: JSONValue) -> String {
        guard let data = try? JSONEncoder().encode(value),
            let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return compact(value) }
        return String(decoding: pretty, as: UTF8.self)
    }

    static func compact(_ value: JSONValue) -> String {
        String(decoding: value.canonicalEncoding, as: UTF8.self)
    }
}
