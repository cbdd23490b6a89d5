import ActEngine
import ActPlaybook
import ActStore
public import ActService
internal import Foundation
public import Hummingbird
public import Logging
public import Prometheus

/// Builds the router of the HTTP API: every route of the contract (http-contract.md, `/openapi.yaml`),
/// the chapters' aliases, bearer-token scopes and `problem+json` errors.
///
/// `/livez`, `/healthz` and `/readyz` are open; every other route, unknown ones included, needs a token.
///
/// - Parameters:
///   - controlPlane: What the routes act on (the ``Orchestrator`` in `serve`).
///   - tokens: `name:secret:scope+scope` entries (`ServiceConfiguration.http.tokens`).
///   - anonymous: Requests without a token act as `anonymous` with read and operate
///     (`ServiceConfiguration.http.anonymous`, loopback only, checked by `validate()`).
///   - metrics: The registry `/metrics` exposes.
///   - logger: For problems found while building (malformed token entries, a missing OpenAPI document).
public func buildRouter(
    controlPlane: some ControlPlane,
    tokens: [String],
    anonymous: Bool = false,
    metrics: PrometheusCollectorRegistry,
    spanExporter: SpanExporter? = nil,
    logger: Logger
) -> Router<APIRequestContext> {
    let routes = APIRoutes(controlPlane: controlPlane, metrics: metrics, openAPI: OpenAPIDocument.load(logger: logger))
    let router = Router(context: APIRequestContext.self)
    if let spanExporter { router.add(middleware: SpanMiddleware(exporter: spanExporter)) }
    router.add(middleware: ProblemMiddleware())

    // Probes: open, so that Kubernetes needs no token.
    router.get("/livez") { _, _ in try APIResponse.json(["status": "ok"]) }
    router.get("/healthz") { _, _ in try APIResponse.json(["status": "ok"]) }
    router.get("/readyz", use: routes.readiness)

    // The console: its own sessions (a cookie, not a bearer token) and HTML pages.
    let table = TokenTable(tokens, logger: logger)
    let anonymousPrincipal = anonymous ? Principal(name: "anonymous", scopes: [.read, .operate]) : nil
    addConsole(to: router, controlPlane: controlPlane, tokens: table, anonymous: anonymousPrincipal, api: routes,
        logger: logger)

    router.add(middleware: BearerAuthenticator(tokens: table, anonymous: anonymousPrincipal))

    let read = router.group().add(middleware: RequireScope(scope: .read))
    read.get("/metrics", use: routes.metrics)
    read.get("/openapi.yaml", use: routes.openAPIDocument)
    read.get("/v1/runs", use: routes.listRuns)
    read.get("/v1/runs/:id", use: routes.runDetail)
    read.get("/v1/tasks", use: routes.openTasks)
    read.get("/act/tasks", use: routes.chapterTasks)
    read.get("/v1/playbooks", use: routes.listPlaybooks)
    read.get("/v1/playbooks/:id", use: routes.playbookDetail)
    read.get("/v1/playbooks/:id/versions", use: routes.playbookVersions)
    read.get("/v1/agents", use: routes.agents)
    read.get("/v1/incidents", use: routes.incidents)
    read.get("/v1/incidents/:id", use: routes.incidentDetail)
    read.get("/v1/dead-letters", use: routes.deadLetters)
    read.get("/v1/bulk-operations", use: routes.bulkOperations)
    read.get("/v1/bulk-operations/:id", use: routes.bulkOperationDetail)
    read.get("/v1/dead-letters/:id", use: routes.deadLetterDetail)
    read.get("/v1/schedules", use: routes.schedules)

    let operate = router.group().add(middleware: RequireScope(scope: .operate))
    operate.post("/v1/events", use: routes.postEvent)
    operate.post("/act/events", use: routes.postEvent)
    operate.post("/v1/runs", use: routes.startRun)
    operate.post("/v1/runs/:id/pause") { try await routes.runCommand($0, $1, command: .pause) }
    operate.post("/v1/runs/:id/resume") { try await routes.runCommand($0, $1, command: .resume) }
    operate.post("/v1/runs/:id/cancel") { try await routes.runCommand($0, $1, command: .cancel) }
    operate.post("/v1/runs/:id/rewind", use: routes.rewind)
    operate.post("/v1/bulk-operations", use: routes.createBulkOperation)
    operate.post("/v1/playbook-migrations", use: routes.migratePlaybookVersion)
    operate.post("/v1/bulk-operations/:id/stop", use: routes.stopBulkOperation)
    operate.post("/v1/schedules/:playbook/:schedule/pause") { try await routes.pauseSchedule($0, $1, paused: true) }
    operate.post("/v1/schedules/:playbook/:schedule/resume") { try await routes.pauseSchedule($0, $1, paused: false) }
    operate.post("/v1/schedules/:playbook/:schedule/trigger", use: routes.triggerSchedule)
    for action in IncidentActionName.allCases {
        operate.post("/v1/incidents/:id/\(action.rawValue)") { try await routes.incidentAction($0, $1, action: action) }
    }
    operate.post("/v1/runs/:id/signals/:name", use: routes.signal)
    operate.post("/v1/signals/:name", use: routes.keyedSignal)
    operate.post("/v1/tasks/claim", use: routes.claimTasks)
    operate.post("/v1/tasks/:id/heartbeat", use: routes.heartbeat)
    for prefix in ["/v1/tasks", "/act/tasks"] {
        operate.post("\(prefix)/:id/complete", use: routes.completeTask)
        operate.post("\(prefix)/:id/fail", use: routes.failTask)
    }
    operate.post("/v1/callbacks/:run/:step", use: routes.callback)
    operate.post("/callbacks/:run/:step", use: routes.callback)

    let admin = router.group().add(middleware: RequireScope(scope: .admin))
    admin.post("/v1/playbooks", use: routes.registerPlaybook)
    admin.post("/v1/playbooks/:id/versions/:version/state", use: routes.setVersionState)
    admin.post("/v1/playbooks/:id/pin", use: routes.pinPlaybook)
    return router
}

/// The handlers, over one control plane.
struct APIRoutes<Plane: ControlPlane>: Sendable {
    typealias Context = APIRequestContext

    let controlPlane: Plane
    let metrics: PrometheusCollectorRegistry
    let openAPI: [UInt8]?

    // MARK: Probes and documents

    @Sendable func readiness(_ request: Request, context: Context) async throws -> Response {
        let readiness = await controlPlane.checkReadiness()
        return try APIResponse.json(readiness, status: readiness.isReady ? .ok : .serviceUnavailable)
    }

    @Sendable func metrics(_ request: Request, context: Context) async throws -> Response {
        var buffer: [UInt8] = []
        metrics.emit(into: &buffer)
        return APIResponse.bytes(buffer, contentType: "text/plain; version=0.0.4")
    }

    @Sendable func openAPIDocument(_ request: Request, context: Context) async throws -> Response {
        guard let openAPI else {
            throw APIProblem(.internalServerError, slug: "internal", title: "Internal server error",
                detail: "the OpenAPI document is missing from this build")
        }
        return APIResponse.bytes(openAPI, contentType: "application/yaml")
    }

    // MARK: Events and runs

    @Sendable func postEvent(_ request: Request, context: Context) async throws -> Response {
        let body = try await APIRequest.body(of: request, context: context)
        var headers: [String: JSONValue] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            if name.hasPrefix("ce-") || name == "traceparent" { headers[name] = .string(field.value) }
        }
        let message = InboundMessage(routingKey: "", contentType: request.headers[.contentType], headers: headers,
            body: body)
        let event = try TriggerEvent(message: message)
        return try await accept(event, input: .trigger(event), context: context)
    }

    @Sendable func startRun(_ request: Request, context: Context) async throws -> Response {
        let body: StartRunRequest = try await APIRequest.decode(request, context: context)
        guard !body.playbook.isEmpty else { throw APIProblem.badRequest("`playbook` must not be empty", field: "playbook") }
        let event = TriggerEvent(id: body.id ?? UUID().uuidString.lowercased(), type: "hms.run.start",
            source: context.principal?.name, payload: body.payload ?? .object([:]),
            traceparent: request.traceparent)
        return try await accept(event, input: .start(playbookID: body.playbook, event: event), context: context)
    }

    private func accept(_ event: TriggerEvent, input: BatchInput, context: Context) async throws -> Response {
        let result = try await submit(input)
        let (outcome, reason): (String, String?)
        switch result.outcome {
        case .applied: (outcome, reason) = ("applied", nil)
        case .ignored(let why): (outcome, reason) = ("ignored", why)
        case .rejected(let why), .forbidden(let why):  // a start names no step, so nobody is forbidden
            if case .start(let playbookID, _) = input {
                // Registered, but every version of it is disabled (GET /v1/playbooks/{id}/versions).
                if try await controlPlane.playbookVersions(id: playbookID) != nil {
                    throw APIProblem(.conflict, slug: "playbook-disabled", title: "Refused", detail: why)
                }
                throw APIProblem.notFound("no playbook \(playbookID) is registered; register it with POST /v1/playbooks",
                    slug: "playbook-not-found")
            }
            throw APIProblem(.badRequest, slug: "unreadable-message", title: "Unreadable message", detail: why)
        }
        return try APIResponse.json(EventAccepted(eventID: event.id, type: event.type,
            runs: result.runs.map(\.rawValue), outcome: outcome, reason: reason), status: .accepted)
    }

    @Sendable func listRuns(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        let status = query.get("status").flatMap { $0.isEmpty ? nil : $0 }
        if let status, RunStatus(rawValue: status) == nil {
            throw APIProblem.badRequest("`status` must be one of "
                + RunStatus.allCases.map(\.rawValue).joined(separator: ", "), field: "status")
        }
        var filter = RunFilter(status: status, playbookID: try APIRequest.textQuery("playbook", request),
            key: try APIRequest.textQuery("key", request))
        if let text = try APIRequest.textQuery("payload", request) {
            guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object(let members) = value,
                !members.isEmpty
            else {
                throw APIProblem.badRequest("`payload` must be a JSON object the runs' trigger payload contains, like "
                    + #"{"address": "123 Oak St"} (URL-encoded)"#, field: "payload")
            }
            filter.payload = value
        }
        filter.createdAfter = try Self.instant(try APIRequest.textQuery("created_after", request), field: "created_after")
        filter.createdBefore = try Self.instant(try APIRequest.textQuery("created_before", request),
            field: "created_before")
        let page = try await controlPlane.listRuns(filter, after: try APIRequest.textQuery("after", request),
            limit: try APIRequest.limit(request))
        return try APIResponse.json(page)
    }

    @Sendable func runDetail(_ request: Request, context: Context) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        guard let detail = try await controlPlane.runDetail(id: runID) else { throw Self.runNotFound(runID) }
        return try APIResponse.json(detail)
    }

    enum OperatorCommand {
        case pause, resume, cancel
    }

    func runCommand(_ request: Request, _ context: Context, command: OperatorCommand) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        let body: RunCommandRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        guard try await controlPlane.runSummary(id: runID) != nil else { throw Self.runNotFound(runID) }
        let event: RunEvent =
            switch command {
            case .pause: .pause
            case .resume: .resume
            case .cancel: .cancel(reason: body.reason ?? "cancelled by \(actor)")
            }
        let key = request.idempotencyKey.map { "\(runID.rawValue):\(command):\($0)" }
        let result = try await submit(.operatorCommand(runID: runID, event: event, actor: actor, key: key,
            reason: body.reason))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return try APIResponse.json(RunCommandAccepted(runID: runID.rawValue, outcome: outcome, reason: reason),
            status: .accepted)
    }

    @Sendable func signal(_ request: Request, context: Context) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        let name = try APIRequest.pathParameter("name", context: context)
        let body: SignalRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        guard try await controlPlane.runSummary(id: runID) != nil else { throw Self.runNotFound(runID) }
        let result = try await submit(.worker(.signal(runID: runID.rawValue, name: name, payload: body.payload ?? .null),
            messageID: request.idempotencyKey.map { "\(runID.rawValue):\(name):\($0)" }))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return try APIResponse.json(SignalAccepted(runID: runID.rawValue, signal: name, outcome: outcome, reason: reason),
            status: .accepted)
    }

    /// `POST /v1/signals/{name}`: the signal goes to every running or paused run whose business key is
    /// `key` (the playbook's `key:`, else the trigger event's id), of `playbook` when given. 404 when none.
    @Sendable func keyedSignal(_ request: Request, context: Context) async throws -> Response {
        let name = try APIRequest.pathParameter("name", context: context)
        let body: KeyedSignalRequest = try await APIRequest.decode(request, context: context)
        let key: String
        switch body.key {
        case .string(let text) where !text.isEmpty && !text.unicodeScalars.contains("\u{0}"): key = text
        case .number(let number): key = JSONValue.number(number).caseKey
        default:
            throw APIProblem.badRequest("`key` must be a non-empty string or a number: the business key of the runs to "
                + "signal (their playbook's `key:`, else their trigger event's id)", field: "key")
        }
        let runs = try await controlPlane.activeRunIDs(correlationKey: key, playbook: body.playbook)
        guard !runs.isEmpty else {
            throw APIProblem.notFound("no running or paused run has the key \(key)"
                + (body.playbook.map { " in playbook \($0)" } ?? "")
                + "; a run's key is its playbook's `key:` on the trigger's payload, else its trigger event's id",
                slug: "run-not-found")
        }
        let inputs = runs.map { run in
            BatchInput.worker(.signal(runID: run.rawValue, name: name, payload: body.payload ?? .null),
                messageID: request.idempotencyKey.map { "\(run.rawValue):\(name):\($0)" })
        }
        let results = try await controlPlane.submit(inputs)
        var accepted: [SignalAccepted] = []
        for (run, result) in zip(runs, results) {
            let (outcome, reason) = try Self.outcome(result.outcome)
            accepted.append(SignalAccepted(runID: run.rawValue, signal: name, outcome: outcome, reason: reason))
        }
        return try APIResponse.json(KeyedSignalAccepted(signal: name, key: key, runs: accepted), status: .accepted)
    }

    /// `POST /v1/callbacks/{run}/{step}` (and chapter 003's `/callbacks/{trace}/{step}`): `run` is the run id
    /// or the run's trace id; an empty body approves.
    @Sendable func callback(_ request: Request, context: Context) async throws -> Response {
        var runID = RunID(try APIRequest.pathParameter("run", context: context))
        let stepID = try APIRequest.pathParameter("step", context: context)
        let body: CallbackRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        if try await controlPlane.runSummary(id: runID) == nil {
            guard let traced = try await controlPlane.runID(traceID: runID.rawValue) else { throw Self.runNotFound(runID) }
            runID = traced
        }
        let result = try await submit(.worker(.approval(WorkerMessage.Approval(runID: runID.rawValue, stepID: stepID,
            approved: body.approved ?? true, actor: actor, reason: body.reason, payload: body.payload ?? .null)),
            messageID: nil))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return try APIResponse.json(CallbackAccepted(runID: runID.rawValue, stepID: stepID, outcome: outcome,
            reason: reason), status: .accepted)
    }

    // MARK: Tasks

    @Sendable func openTasks(_ request: Request, context: Context) async throws -> Response {
        let actor = try APIRequest.textQuery("actor", request)
        let sortText = try APIRequest.textQuery("sort", request) ?? "created"
        guard let order = Store.InboxOrder(rawValue: sortText) else {
            throw APIProblem.badRequest("`sort` must be created (oldest first) or deadline (soonest first)", field: "sort")
        }
        let after = try APIRequest.textQuery("after", request)
        do {
            let page = try await controlPlane.listOpenTasks(assignee: actor.map(Self.assigneeLabel), order: order,
                after: after, limit: try APIRequest.limit(request))
            return try APIResponse.json(page)
        } catch is StoreDataError {
            throw APIProblem.badRequest("`after` is not a cursor of this listing: pass the `next` of the previous page, "
                + "with the same sort", field: "after")
        }
    }

    /// `GET /act/tasks?actor=…`: chapter 001's worker loop as printed: a bare list, each task with an `id`
    /// that is safe in a URL (``ChapterTaskID``). For a pull agent (`delivery: pull`) the tasks are claimed,
    /// as by `POST /v1/tasks/claim` (the operate scope, a lease of `lease_seconds`, default 60), and the id
    /// carries the lease, so `POST /act/tasks/{id}/complete` with the bare output is lease-checked. For any
    /// other actor it lists the open tasks, like `GET /v1/tasks`.
    @Sendable func chapterTasks(_ request: Request, context: Context) async throws -> Response {
        let actor = try APIRequest.textQuery("actor", request)
        let limit = try APIRequest.limit(request)
        let label = actor.map(Self.assigneeLabel)
        var elements: [JSONValue] = []
        if let label, try await controlPlane.listAgents().contains(where: {
            $0.id == label && $0.delivery == Agent.Delivery.pull.rawValue
        }) {
            guard context.principal?.grants(.operate) == true else {
                throw APIProblem(.forbidden, slug: "insufficient-scope", title: "Forbidden",
                    detail: "\(label) is a pull agent, so GET /act/tasks claims its tasks: that needs a token with the "
                        + "operate scope", extensions: ["required_scope": "operate"])
            }
            try Self.requireAgent(label, context: context)
            let leaseText = request.uri.queryParameters.get("lease_seconds").map { String($0) }
            let leaseSeconds = try leaseText.map { text -> Double in
                guard let value = Double(text) else {
                    throw APIProblem.badRequest("`lease_seconds` must be a number of seconds from 1 to 86400",
                        field: "lease_seconds")
                }
                return value
            }
            let lease = try Self.seconds(leaseSeconds, field: "lease_seconds", default: 60, range: 1...86_400)
            for claimed in try await controlPlane.claimTasks(agent: label, limit: min(limit, 100), lease: lease,
                wait: .zero)
            {
                guard case .object(var element) = try Self.jsonValue(claimed) else { continue }
                element["id"] = .string(ChapterTaskID.encode(taskID: element["task_id"]?.stringValue ?? "",
                    attempt: element["attempt"]?.numberValue?.intValue ?? 1, leaseID: claimed.leaseID))
                elements.append(.object(element))
            }
        } else {
            for task in try await controlPlane.listOpenTasks(assignee: label, order: .created, after: nil, limit: limit).tasks {
                guard case .object(var element) = try Self.jsonValue(task) else { continue }
                element["id"] = .string(ChapterTaskID.encode(taskID: task.taskID, attempt: task.attempt, leaseID: nil))
                elements.append(.object(element))
            }
        }
        return try APIResponse.json(JSONValue.array(elements))
    }

    /// A response shape as a JSON value, encoded as the API encodes it.
    static func jsonValue(_ value: some Encodable) throws -> JSONValue {
        try JSONValue(parsing: Array(APIEncoding.encoder.encode(value)))
    }

    /// `POST /v1/tasks/claim`: leases open tasks of a pull agent (`delivery: pull`), long-polling up to
    /// `wait_seconds` when none is open.
    @Sendable func claimTasks(_ request: Request, context: Context) async throws -> Response {
        let body: ClaimTasksRequest = try await APIRequest.decode(request, context: context)
        let named = [body.agent, body.actor.map(Self.assigneeLabel)].compactMap { $0 }.filter { !$0.isEmpty }
        guard let agent = named.first, named.count == 1 || named[0] == named[1] else {
            throw APIProblem.badRequest(named.isEmpty
                ? "name the pull agent whose tasks to claim: {\"agent\": \"ai.fraud-labeler\"} (its id in agents/)"
                : "`agent` and `actor` name different agents; send one of them", field: "agent")
        }
        guard !agent.unicodeScalars.contains("\u{0}") else {
            throw APIProblem.badRequest("`agent` holds the character U+0000; remove it", field: "agent")
        }
        guard agent != PullTask.httpCaller else {
            throw APIProblem.badRequest("`\(agent)` is hms-act's own HTTP caller (the `call:` steps it performs); "
                + "name a pull agent from agents/", field: "agent")
        }
        let limit = body.maxTasks ?? 1
        guard (1...100).contains(limit) else {
            throw APIProblem.badRequest("`max_tasks` must be a whole number from 1 to 100", field: "max_tasks")
        }
        try Self.requireAgent(agent, context: context)
        let lease = try Self.seconds(body.leaseSeconds, field: "lease_seconds", default: 60, range: 1...86_400)
        let wait = try Self.seconds(body.waitSeconds, field: "wait_seconds", default: 0, range: 0...30)
        let tasks = try await controlPlane.claimTasks(agent: agent, limit: limit, lease: lease, wait: wait)
        return try APIResponse.json(Listing(key: "tasks", elements: tasks))
    }

    /// `POST /v1/tasks/{id}/heartbeat`: extends the caller's lease; 409 when it no longer holds it.
    @Sendable func heartbeat(_ request: Request, context: Context) async throws -> Response {
        let taskID = TaskID(try APIRequest.pathParameter("id", context: context))
        let body: HeartbeatRequest = try await APIRequest.decode(request, context: context)
        let lease = try Self.seconds(body.leaseSeconds, field: "lease_seconds", default: 60, range: 1...86_400)
        guard let latest = try await controlPlane.latestTaskAttempt(id: taskID) else {
            throw APIProblem.notFound("no task \(taskID); copy `task_id` from POST /v1/tasks/claim", slug: "task-not-found")
        }
        try Self.requireAgent(latest.assignee, context: context)
        let attempt = try Self.attempt(body.attempt.map { .int($0) }) ?? latest.attempt
        try await checkLease(body.leaseID, taskID: taskID, attempt: attempt, latest: latest)
        guard let extended = try await controlPlane.extendLease(taskID: taskID, attempt: attempt, leaseID: body.leaseID,
            lease: lease)
        else {
            throw Self.leaseConflict("task \(taskID) attempt \(attempt) is no longer open (answered, timed out or "
                + "cancelled); drop it", slug: "task-closed")
        }
        return try APIResponse.json(extended)
    }

    /// Refuses an answer or heartbeat under a lease the caller no longer holds (409).
    private func checkLease(_ leaseID: String, taskID: TaskID, attempt: Int, latest: API.Task) async throws {
        guard attempt == latest.attempt else {
            throw Self.leaseConflict("attempt \(attempt) of task \(taskID) is stale: the task is on attempt "
                + "\(latest.attempt); drop this one and claim again", slug: "stale-attempt")
        }
        guard let state = try await controlPlane.lease(taskID: taskID, attempt: attempt) else {
            throw Self.leaseConflict("task \(taskID) is not a pull task, so it has no lease; answer without `lease_id`",
                slug: "lease-mismatch")
        }
        guard state.leaseID == leaseID else {
            throw Self.leaseConflict("lease \(leaseID) no longer holds task \(taskID) attempt \(attempt): it expired "
                + "and the task was claimed again; drop it (the new holder answers), or claim with a longer "
                + "lease_seconds and send heartbeats", slug: "lease-lost")
        }
    }

    /// Refuses (403) a token bound to other agents (`:agents=` in its entry) the tasks of `agent`.
    static func requireAgent(_ agent: String, context: Context) throws {
        guard let principal = context.principal, !principal.mayActAs(agent: agent) else { return }
        let bound = (principal.agents ?? []).sorted().joined(separator: ", ")
        throw APIProblem(.forbidden, slug: "agent-not-allowed", title: "Forbidden",
            detail: "token \(principal.name) is bound to the agents \(bound), so it may not claim or answer the tasks "
                + "of \(agent); use that agent's token, or add it to this token's agents= in http.tokens")
    }

    static func leaseConflict(_ detail: String, slug: String) -> APIProblem {
        APIProblem(.conflict, slug: slug, title: "Conflict", detail: detail)
    }

    /// A duration in seconds from a body field, within `range`.
    static func seconds(_ value: Double?, field: String, default defaultSeconds: Double,
        range: ClosedRange<Double>) throws -> Duration
    {
        let seconds = value ?? defaultSeconds
        guard seconds.isFinite, range.contains(seconds) else {
            throw APIProblem.badRequest("`\(field)` must be a number of seconds from \(Int(range.lowerBound)) to "
                + "\(Int(range.upperBound))", field: field)
        }
        return .milliseconds(Int64((seconds * 1_000).rounded()))
    }

    @Sendable func completeTask(_ request: Request, context: Context) async throws -> Response {
        let reference = ChapterTaskID.decode(try APIRequest.pathParameter("id", context: context))
        let taskID = reference.taskID
        let body: JSONValue = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        guard case .object(let members) = body else {
            throw APIProblem.badRequest("the body must be a JSON object: {\"output\": {…}} or the output itself",
                field: "output")
        }
        var output = body
        var attempt = reference.attempt
        var agent: String?
        var leaseID = reference.leaseID
        if let wrapped = members["output"] {
            output = wrapped
            attempt = try Self.attempt(members["attempt"]) ?? attempt
            if let value = members["lease_id"], value != .null {
                guard let text = value.stringValue else { throw APIProblem.badRequest("`lease_id` must be a string", field: "lease_id") }
                leaseID = text
            }
            if let value = members["agent"], value != .null {
                guard let text = value.stringValue else { throw APIProblem.badRequest("`agent` must be a string", field: "agent") }
                agent = text
            }
        }
        return try await taskResult(taskID, attempt: attempt, agent: agent, leaseID: leaseID,
            outcome: .completed(output: output), context: context)
    }

    @Sendable func failTask(_ request: Request, context: Context) async throws -> Response {
        let reference = ChapterTaskID.decode(try APIRequest.pathParameter("id", context: context))
        let taskID = reference.taskID
        let body: FailTaskRequest = try await APIRequest.decode(request, context: context)
        if let attempt = body.attempt, attempt < 1 { throw APIProblem.badRequest("`attempt` must be 1 or more", field: "attempt") }
        return try await taskResult(taskID, attempt: body.attempt ?? reference.attempt, agent: body.agent,
            leaseID: body.leaseID ?? reference.leaseID,
            outcome: .failed(reason: body.reason, retryable: body.retryable ?? true), context: context)
    }

    /// Applies an answer. With `leaseID` (a pull task's claim), the lease must still be the task's and the
    /// attempt the latest, else 409; without, the answer applies as any other (an operator's, by hand).
    private func taskResult(_ taskID: TaskID, attempt: Int?, agent: String?, leaseID: String? = nil,
        outcome: WorkerMessage.TaskResult.Outcome, context: Context) async throws -> Response
    {
        let agent = try Self.actor(claiming: agent, field: "agent", context: context)
        guard let latest = try await controlPlane.latestTaskAttempt(id: taskID) else {
            throw APIProblem.notFound("no task \(taskID); copy `task_id` from GET /v1/tasks", slug: "task-not-found")
        }
        try Self.requireAgent(latest.assignee, context: context)
        let attempt = attempt ?? latest.attempt
        if let leaseID { try await checkLease(leaseID, taskID: taskID, attempt: attempt, latest: latest) }
        let result = try await submit(.worker(.taskResult(WorkerMessage.TaskResult(taskID: taskID.rawValue,
            attempt: attempt, outcome: outcome, agent: agent)), messageID: nil))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return try APIResponse.json(TaskResultAccepted(taskID: taskID.rawValue, attempt: attempt, outcome: outcome,
            reason: reason), status: .accepted)
    }

    // MARK: Playbooks, agents, incidents

    @Sendable func registerPlaybook(_ request: Request, context: Context) async throws -> Response {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let source: String
        var file: String?
        var triggers: [String] = []
        if contentType.hasPrefix("application/json") {
            let body: RegisterPlaybookRequest = try await APIRequest.decode(request, context: context)
            source = body.source
            file = body.file
            triggers = body.triggers ?? []
        } else {
            let bytes = try await APIRequest.body(of: request, context: context)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw APIProblem.badRequest("the playbook is not UTF-8 text")
            }
            source = text
        }
        guard !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIProblem.badRequest("the playbook source is empty; send YAML or {\"source\": \"…\"}", field: "source")
        }
        let registration = try await controlPlane.registerPlaybook(source: source, file: file, triggers: triggers)
        return try APIResponse.json(registration, status: registration.created ? .created : .ok)
    }

    @Sendable func listPlaybooks(_ request: Request, context: Context) async throws -> Response {
        try APIResponse.json(Listing(key: "playbooks", elements: try await controlPlane.listPlaybooks()))
    }

    @Sendable func playbookDetail(_ request: Request, context: Context) async throws -> Response {
        let id = try APIRequest.pathParameter("id", context: context)
        guard let detail = try await controlPlane.playbookDetail(id: id) else {
            throw APIProblem.notFound("no playbook \(id) is registered", slug: "playbook-not-found")
        }
        return try APIResponse.json(detail)
    }

    /// `GET /v1/playbooks/{id}/versions`: every version with its state and pin, and which one new runs start on.
    @Sendable func playbookVersions(_ request: Request, context: Context) async throws -> Response {
        let id = try APIRequest.pathParameter("id", context: context)
        guard let versions = try await controlPlane.playbookVersions(id: id) else { throw Self.playbookNotFound(id) }
        return try APIResponse.json(versions)
    }

    /// `POST /v1/playbooks/{id}/versions/{version}/state`: `active`, `deprecated` or `disabled`.
    @Sendable func setVersionState(_ request: Request, context: Context) async throws -> Response {
        let id = try APIRequest.pathParameter("id", context: context)
        let versionText = try APIRequest.pathParameter("version", context: context)
        guard let version = Int64(versionText), version > 0 else {
            throw APIProblem.badRequest("a version is a whole number, like 3; list them with GET /v1/playbooks/\(id)/versions",
                field: "version")
        }
        let body: VersionStateRequest = try await APIRequest.decode(request, context: context)
        guard let state = VersionState(rawValue: body.state) else {
            throw APIProblem.badRequest("`state` must be active, deprecated or disabled, not '\(body.state)'", field: "state")
        }
        return try await control(id, .state(version: version, state), reason: body.reason, claimedActor: body.actor,
            context: context)
    }

    /// `POST /v1/playbooks/{id}/pin`: `{"version": 3}` pins, `{"version": null}` unpins.
    @Sendable func pinPlaybook(_ request: Request, context: Context) async throws -> Response {
        let id = try APIRequest.pathParameter("id", context: context)
        let body: PinRequest = try await APIRequest.decode(request, context: context)
        if let version = body.version, version <= 0 {
            throw APIProblem.badRequest("`version` is a version number above 0 (or null to unpin), not \(version)",
                field: "version")
        }
        return try await control(id, .pin(version: body.version), reason: body.reason, claimedActor: body.actor,
            context: context)
    }

    private func control(_ id: String, _ change: PlaybookControlChange, reason: String?, claimedActor: String?,
        context: Context) async throws -> Response
    {
        let actor = try Self.actor(claiming: claimedActor, field: "actor", context: context)
        if let reason, reason.unicodeScalars.contains("\u{0}") {
            throw APIProblem.badRequest("`reason` holds the character U+0000; remove it", field: "reason")
        }
        guard try await controlPlane.playbookVersions(id: id) != nil else { throw Self.playbookNotFound(id) }
        do {
            try await controlPlane.controlPlaybook(id: id, change: change, actor: actor, reason: reason)
        } catch let problem as PlaybookControls.Problem {
            switch problem {
            case .unknownVersion(let text):
                throw APIProblem.notFound(text, slug: "playbook-version-not-found")
            case .conflict(let text):
                throw APIProblem(.conflict, slug: "playbook-version-conflict", title: "Refused", detail: text)
            }
        }
        guard let versions = try await controlPlane.playbookVersions(id: id) else { throw Self.playbookNotFound(id) }
        return try APIResponse.json(versions)
    }

    static func playbookNotFound(_ id: String) -> APIProblem {
        APIProblem.notFound("no playbook \(id) is registered; list them with GET /v1/playbooks", slug: "playbook-not-found")
    }

    @Sendable func agents(_ request: Request, context: Context) async throws -> Response {
        try APIResponse.json(Listing(key: "agents", elements: try await controlPlane.listAgents()))
    }

    @Sendable func incidents(_ request: Request, context: Context) async throws -> Response {
        let status = try APIRequest.textQuery("status", request) ?? "open"
        guard ["open", "resolved", "all"].contains(status) else {
            throw APIProblem.badRequest("`status` must be open, resolved or all", field: "status")
        }
        let before = try Self.beforeID(request, what: "an incident id")
        let page = try await controlPlane.listIncidents(status: status, runID: try APIRequest.textQuery("run", request),
            kind: try APIRequest.textQuery("kind", request), before: before,
            limit: try APIRequest.limit(request, default: 100))
        return try APIResponse.json(page)
    }

    @Sendable func incidentDetail(_ request: Request, context: Context) async throws -> Response {
        let id = try Self.incidentID(context)
        guard let incident = try await controlPlane.incident(id: id) else { throw Self.incidentNotFound(id) }
        return try APIResponse.json(incident)
    }

    /// `POST /v1/incidents/{id}/retry|skip|fail|resolve`: an incident holding its run is answered through the
    /// run (retry, skip, fail); any other is marked resolved once its cause is fixed.
    func incidentAction(_ request: Request, _ context: Context, action: IncidentActionName) async throws -> Response {
        let id = try Self.incidentID(context)
        let body: IncidentActionRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        let accepted = try await answerIncident(id, action: action, actor: actor, body: body,
            key: request.idempotencyKey.map { "incident:\(id):\(action.rawValue):\($0)" })
        return try APIResponse.json(accepted, status: action == .resolve ? .ok : .accepted)
    }

    /// Answers an incident for `actor` (the API's route and the console's form): an incident holding its run
    /// through the run (retry, skip, fail), any other marked resolved.
    ///
    /// - Throws: ``APIProblem`` when the incident is unknown, already resolved, or the action does not fit it.
    func answerIncident(_ id: Int64, action: IncidentActionName, actor: String, body: IncidentActionRequest,
        key: String?) async throws -> IncidentActionAccepted
    {
        guard let incident = try await controlPlane.incident(id: id) else { throw Self.incidentNotFound(id) }
        if let resolution = incident.resolution {
            throw APIProblem(.conflict, slug: "incident-resolved", title: "Already resolved",
                detail: "incident \(id) was resolved (\(resolution.action)) by \(resolution.actor) at \(resolution.at)")
        }
        if action == .resolve {
            if incident.holdsRun {
                throw APIProblem(.conflict, slug: "incident-holds-run", title: "The incident holds its run",
                    detail: "incident \(id) holds run \(incident.runID ?? "?"): answer it with retry, skip or fail")
            }
            guard try await controlPlane.resolveIncident(id: id, actor: actor, reason: body.reason) else {
                throw APIProblem(.conflict, slug: "incident-resolved", title: "Already resolved",
                    detail: "incident \(id) was resolved meanwhile")
            }
            return IncidentActionAccepted(incidentID: id, runID: incident.runID, action: "resolve", outcome: "applied",
                reason: nil)
        }
        guard incident.holdsRun, let runID = incident.runID, case .object(let detail) = incident.detail,
            case .string(let step)? = detail["step_id"], case .number(let visitNumber)? = detail["visit"],
            let visit = visitNumber.intValue
        else {
            throw APIProblem(.conflict, slug: "incident-holds-no-run", title: "No run waits on the incident",
                detail: "incident \(id) (\(incident.kind)) holds no run, so there is nothing to \(action.rawValue); fix "
                    + "its cause (docs/operations.md) and resolve it with POST /v1/incidents/\(id)/resolve")
        }
        if body.input != nil, action != .retry {
            throw APIProblem.badRequest("`input` patches the step's input on retry only", field: "input")
        }
        let engineAction: IncidentAction
        switch action {
        case .retry: engineAction = .retry(input: body.input)
        case .skip:
            guard body.hasOutput else {
                throw APIProblem.badRequest("`output` is required: the output the step is taken to have produced "
                    + "(`{}` for none); later steps read it as steps.\(step)", field: "output")
            }
            engineAction = .skip(output: body.output ?? .null)
        case .fail, .resolve: engineAction = .fail
        }
        let event = RunEvent.incidentAction(engineAction, step: StepID(step), visit: visit, actor: actor,
            reason: body.reason)
        let result = try await submit(.operatorCommand(runID: RunID(runID), event: event, actor: actor, key: key))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return IncidentActionAccepted(incidentID: id, runID: runID, action: action.rawValue, outcome: outcome,
            reason: reason)
    }

    /// `POST /v1/runs/{id}/rewind`: run a finished run (or one waiting on a step's incident) again from a step.
    @Sendable func rewind(_ request: Request, context: Context) async throws -> Response {
        let runID = RunID(try APIRequest.pathParameter("id", context: context))
        let body: RewindRequest = try await APIRequest.decode(request, context: context)
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        guard !body.step.isEmpty else {
            throw APIProblem.badRequest("`step` must name the top-level step to run again from", field: "step")
        }
        guard try await controlPlane.runSummary(id: runID) != nil else { throw Self.runNotFound(runID) }
        let key = request.idempotencyKey.map { "\(runID.rawValue):rewind:\($0)" }
        let result = try await submit(.operatorCommand(runID: runID,
            event: .rewind(to: StepID(body.step), actor: actor, reason: body.reason), actor: actor, key: key))
        let (outcome, reason) = try Self.outcome(result.outcome)
        return try APIResponse.json(RunCommandAccepted(runID: runID.rawValue, outcome: outcome, reason: reason),
            status: .accepted)
    }

    /// `GET /v1/dead-letters`: what `hms-act dead collect` moved into the database (replay and discard are
    /// the CLI's: they need the operator's broker user, which the service does not hold).
    @Sendable func deadLetters(_ request: Request, context: Context) async throws -> Response {
        let status = try APIRequest.textQuery("status", request) ?? "dead"
        guard ["dead", "replayed", "discarded", "all"].contains(status) else {
            throw APIProblem.badRequest("`status` must be dead, replayed, discarded or all", field: "status")
        }
        let before = try Self.beforeID(request, what: "a dead letter id")
        return try APIResponse.json(try await controlPlane.listDeadLetters(status: status == "all" ? nil : status,
            before: before, limit: try APIRequest.limit(request, default: 100)))
    }

    @Sendable func deadLetterDetail(_ request: Request, context: Context) async throws -> Response {
        let id = try Self.numericID(context, what: "a dead letter id", listing: "/v1/dead-letters")
        guard let letter = try await controlPlane.deadLetter(id: id) else {
            throw APIProblem.notFound("no dead letter \(id); collect them with hms-act dead collect, list them with "
                + "GET /v1/dead-letters?status=all", slug: "dead-letter-not-found")
        }
        return try APIResponse.json(letter)
    }

    // MARK: Bulk operations

    /// `POST /v1/bulk-operations`: a command over every run a filter matches, worked on by the replicas.
    @Sendable func createBulkOperation(_ request: Request, context: Context) async throws -> Response {
        let body: BulkOperationRequest = try await APIRequest.decode(request, context: context)
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        guard let action = BulkOperation.Action(rawValue: body.action), action != .migrate else {
            throw APIProblem.badRequest("`action` must be cancel, pause, resume or retry (moving runs to another "
                + "playbook version is POST /v1/playbook-migrations)", field: "action")
        }
        let written = body.filter
        func text(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        var filter = BulkOperation.Filter(playbook: text(written?.playbook), status: text(written?.status),
            key: text(written?.key))
        if let status = filter.status, RunStatus(rawValue: status) == nil {
            throw APIProblem.badRequest("`filter.status` must be one of "
                + RunStatus.allCases.map(\.rawValue).joined(separator: ", "), field: "filter.status")
        }
        filter.createdAfter = try Self.instant(written?.createdAfter, field: "filter.created_after")
        filter.createdBefore = try Self.instant(written?.createdBefore, field: "filter.created_before")
        guard !filter.isEmpty else {
            throw APIProblem.badRequest("`filter` must name at least one of playbook, status, key, created_after, "
                + "created_before: a bulk operation over every run is refused", field: "filter")
        }
        let rate = body.ratePerSecond ?? 200
        guard (1...5_000).contains(rate) else {
            throw APIProblem.badRequest("`rate_per_second` must be 1 to 5000 runs a second", field: "rate_per_second")
        }
        let created = try await controlPlane.createBulkOperation(BulkOperation(action: action, filter: filter,
            reason: text(body.reason), requestedBy: actor, ratePerSecond: rate))
        return try APIResponse.json(created, status: .accepted)
    }

    /// `POST /v1/playbook-migrations`: what moving the active runs of one version to another would do (the
    /// default, `dry_run`), or the move itself as a bulk operation, refused while any run would be stranded.
    @Sendable func migratePlaybookVersion(_ request: Request, context: Context) async throws -> Response {
        let body: MigrationRequest = try await APIRequest.decode(request, context: context)
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        guard body.fromVersion != body.toVersion else {
            throw APIProblem.badRequest("`from_version` and `to_version` are the same version", field: "to_version")
        }
        var mapping: [StepID: StepID] = [:]
        for (old, new) in body.mapping ?? [:] {
            guard !old.isEmpty, !new.isEmpty else {
                throw APIProblem.badRequest("`mapping` maps old step ids to new ones: {\"intake\": \"triage\"}",
                    field: "mapping")
            }
            mapping[StepID(old)] = StepID(new)
        }
        let rate = body.ratePerSecond ?? 200
        guard (1...5_000).contains(rate) else {
            throw APIProblem.badRequest("`rate_per_second` must be 1 to 5000 runs a second", field: "rate_per_second")
        }
        guard var plan = try await controlPlane.planMigration(from: body.fromVersion, to: body.toVersion,
            mapping: mapping)
        else {
            throw APIProblem.notFound("playbook version \(body.fromVersion) or \(body.toVersion) is not registered; list "
                + "them with GET /v1/playbooks/{id}", slug: "playbook-not-found")
        }
        guard body.dryRun == false else { return try APIResponse.json(plan) }
        guard plan.refusedCount == 0 else {
            let refused = JSONValue.array(plan.refused.map { refusal -> JSONValue in
                ["run_id": .string(refusal.runID), "reason": .string(refusal.reason)]
            })
            throw APIProblem(.conflict, slug: "runs-would-be-stranded", title: "Runs would be stranded",
                detail: "\(plan.refusedCount) of \(plan.active) active runs cannot move to version \(body.toVersion) "
                    + "(first: \(plan.refused.first?.reason ?? "")); nothing was changed. Map their steps, or let them "
                    + "pass those steps, then try again",
                extensions: ["refused": refused, "refused_count": .int(Int64(plan.refusedCount))])
        }
        var parameters: [String: JSONValue] = ["to_version": .int(body.toVersion)]
        parameters["mapping"] = .object(plan.mapping.mapValues(JSONValue.string))
        plan.operation = try await controlPlane.createBulkOperation(BulkOperation(action: .migrate,
            filter: BulkOperation.Filter(version: body.fromVersion), parameters: .object(parameters),
            reason: body.reason, requestedBy: actor, ratePerSecond: rate))
        plan.dryRun = false
        return try APIResponse.json(plan, status: .accepted)
    }

    @Sendable func bulkOperations(_ request: Request, context: Context) async throws -> Response {
        var state: BulkOperation.State?
        if let text = try APIRequest.textQuery("state", request) {
            guard let parsed = BulkOperation.State(rawValue: text) else {
                throw APIProblem.badRequest("`state` must be running, done or stopped", field: "state")
            }
            state = parsed
        }
        let operations = try await controlPlane.listBulkOperations(state: state,
            limit: try APIRequest.limit(request, default: 50))
        return try APIResponse.json(Listing(key: "bulk_operations", elements: operations))
    }

    @Sendable func bulkOperationDetail(_ request: Request, context: Context) async throws -> Response {
        let id = try Self.bulkID(context)
        guard let operation = try await controlPlane.bulkOperation(id: id) else { throw Self.bulkNotFound(id) }
        return try APIResponse.json(operation)
    }

    @Sendable func stopBulkOperation(_ request: Request, context: Context) async throws -> Response {
        let id = try Self.bulkID(context)
        let body: RunCommandRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        guard try await controlPlane.bulkOperation(id: id) != nil else { throw Self.bulkNotFound(id) }
        guard try await controlPlane.stopBulkOperation(id: id, actor: actor) else {
            throw APIProblem(.conflict, slug: "bulk-operation-finished", title: "Not running",
                detail: "bulk operation \(id) is not running (done or stopped already)")
        }
        guard let operation = try await controlPlane.bulkOperation(id: id) else { throw Self.bulkNotFound(id) }
        return try APIResponse.json(operation)
    }

    static func bulkID(_ context: Context) throws -> Int64 {
        try numericID(context, what: "a bulk operation id", listing: "/v1/bulk-operations")
    }

    /// The path's `{id}` of a numbered thing (an incident, a dead letter, a bulk operation), or 400.
    static func numericID(_ context: Context, what: String, listing: String) throws -> Int64 {
        let text = try APIRequest.pathParameter("id", context: context)
        guard let id = Int64(text), id > 0 else {
            throw APIProblem.badRequest("\(what) is a whole number, like 7; list them with GET \(listing)", field: "id")
        }
        return id
    }

    /// The `before` cursor of a listing ordered by id, newest first (the `next` of the previous page).
    static func beforeID(_ request: Request, what: String) throws -> Int64? {
        guard let text = try APIRequest.textQuery("before", request) else { return nil }
        guard let id = Int64(text), id > 0 else {
            throw APIProblem.badRequest("`before` must be \(what) (the `next` of the previous page)", field: "before")
        }
        return id
    }

    static func bulkNotFound(_ id: Int64) -> APIProblem {
        APIProblem.notFound("no bulk operation \(id); list them with GET /v1/bulk-operations",
            slug: "bulk-operation-not-found")
    }

    /// An RFC 3339 instant as milliseconds since the epoch.
    static func instant(_ text: String?, field: String) throws -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) ?? plain.date(from: text) else {
            throw APIProblem.badRequest("`\(field)` must be an RFC 3339 time, like 2026-12-01T00:00:00Z", field: field)
        }
        return Int64((date.timeIntervalSince1970 * 1_000).rounded())
    }

    static func incidentID(_ context: Context) throws -> Int64 {
        try numericID(context, what: "an incident id", listing: "/v1/incidents")
    }

    static func incidentNotFound(_ id: Int64) -> APIProblem {
        APIProblem.notFound("no incident \(id); list them with GET /v1/incidents?status=all", slug: "incident-not-found")
    }

    // MARK: Schedules

    /// `GET /v1/schedules[?playbook=…]`: every schedule of the playbooks' current versions and where it stands.
    @Sendable func schedules(_ request: Request, context: Context) async throws -> Response {
        let schedules = try await controlPlane.listSchedules(playbook: try APIRequest.textQuery("playbook", request))
        return try APIResponse.json(Listing(key: "schedules", elements: schedules))
    }

    /// `POST /v1/schedules/{playbook}/{schedule}/pause|resume` with `{"reason": "…"}`: a paused schedule skips
    /// its fires; a resumed one goes on from now without making up the fires it skipped. Answers the schedule.
    func pauseSchedule(_ request: Request, _ context: Context, paused: Bool) async throws -> Response {
        let (playbook, schedule) = try Self.scheduleReference(context)
        let body: ScheduleCommandRequest = try await APIRequest.decode(request, context: context, emptyAs: "{}")
        let actor = try Self.actor(claiming: body.actor, field: "actor", context: context)
        let verb = paused ? "paused" : "resumed"
        guard let reason = body.reason?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty else {
            throw APIProblem.badRequest("`reason` is required: say why the schedule is \(verb), for the record, "
                + #"like {"reason": "billing freeze until Monday"}"#, field: "reason")
        }
        guard !reason.unicodeScalars.contains("\u{0}") else {
            throw APIProblem.badRequest("`reason` holds the character U+0000; remove it", field: "reason")
        }
        guard let updated = try await controlPlane.setSchedulePaused(playbook: playbook, schedule: schedule,
            paused: paused, actor: actor, reason: reason)
        else { throw Self.scheduleNotFound(playbook: playbook, schedule: schedule) }
        context.logger.notice(paused ? "schedule paused by an operator" : "schedule resumed by an operator",
            metadata: [
                "playbook.id": "\(playbook)", "schedule.id": "\(schedule)", "actor": "\(actor)", "reason": "\(reason)",
            ])
        return try APIResponse.json(updated)
    }

    /// `POST /v1/schedules/{playbook}/{schedule}/trigger`: one run at once, whatever the schedule's `overlap`
    /// and pause (``ScheduleTrigger``); `Idempotency-Key` makes a repeat start nothing new.
    @Sendable func triggerSchedule(_ request: Request, context: Context) async throws -> Response {
        let (playbook, schedule) = try Self.scheduleReference(context)
        let actor = try Self.actor(claiming: nil, field: "actor", context: context)
        guard let triggered = try await controlPlane.triggerSchedule(playbook: playbook, schedule: schedule,
            key: request.idempotencyKey)
        else { throw Self.scheduleNotFound(playbook: playbook, schedule: schedule) }
        let (outcome, reason): (String, String?)
        switch triggered.submission.outcome {
        case .applied: (outcome, reason) = ("applied", nil)
        case .ignored(let why): (outcome, reason) = ("ignored", why)
        case .rejected(let why), .forbidden(let why):
            // The schedule's row outlives its playbook's last enabled version until the next sync (10 s); the
            // reason says which version to enable.
            throw APIProblem(.conflict, slug: "playbook-disabled", title: "Refused", detail: why)
        }
        let runID = triggered.submission.runs.first ?? RunID.forTrigger(playbook: playbook, eventID: triggered.eventID)
        context.logger.notice("schedule triggered by hand", metadata: [
            "playbook.id": "\(playbook)", "schedule.id": "\(schedule)", "actor": "\(actor)",
            "run.id": "\(runID.rawValue)", "outcome": "\(outcome)",
        ])
        return try APIResponse.json(ScheduleTriggerAccepted(runID: runID.rawValue, eventID: triggered.eventID,
            outcome: outcome, reason: reason), status: .accepted)
    }

    /// The path's `{playbook}` and `{schedule}`.
    static func scheduleReference(_ context: Context) throws -> (playbook: String, schedule: String) {
        (try APIRequest.pathParameter("playbook", context: context),
            try APIRequest.pathParameter("schedule", context: context))
    }

    static func scheduleNotFound(playbook: String, schedule: String) -> APIProblem {
        APIProblem.notFound("playbook \(playbook) has no schedule \(schedule) (or no such playbook is registered); "
            + "list the schedules with GET /v1/schedules?playbook=\(playbook), or all of them with GET /v1/schedules",
            slug: "schedule-not-found")
    }

    // MARK: Helpers

    func submit(_ input: BatchInput) async throws -> SubmissionResult {
        guard let result = try await controlPlane.submit([input]).first else { throw APIProblem.notApplied }
        return result
    }

    /// `applied`/`ignored` with the reason; a rejection (a state this replica cannot read) is a 409, a caller a
    /// step's `allowed:` does not name a 403 `not-allowed`.
    static func outcome(_ outcome: BatchOutcome) throws -> (String, String?) {
        switch outcome {
        case .applied: return ("applied", nil)
        case .ignored(let reason): return ("ignored", reason)
        case .rejected(let reason):
            throw APIProblem(.conflict, slug: "rejected", title: "Rejected", detail: reason)
        case .forbidden(let reason):
            // A step's `allowed:` names someone else; the run's trail recorded the attempt.
            throw APIProblem(.forbidden, slug: "not-allowed", title: "Forbidden", detail: reason)
        }
    }

    /// The actor of a command: the authenticated principal, never a name the body supplies (issue 13).
    ///
    /// A body may still name the actor (older clients send `actor`/`agent`), but only as the principal
    /// itself; any other name is a 403 `actor-mismatch` problem and nothing is applied. There is no
    /// delegation: to act as `officer#4`, call with `officer#4`'s token.
    ///
    /// - Parameters:
    ///   - claimed: The body's `actor` or `agent`; `nil` or empty when it names none.
    ///   - field: The body field it came from, for the problem's `errors`.
    /// - Throws: ``APIProblem`` 403 when `claimed` names someone else; 401 when the route is open (a bug).
    static func actor(claiming claimed: String?, field: String, context: Context) throws -> String {
        guard let principal = context.principal else {
            throw APIProblem(.unauthorized, slug: "unauthorized", title: "Unauthorized",
                detail: "send Authorization: Bearer <token>", headers: [.wwwAuthenticate: "Bearer realm=\"hms-act\""])
        }
        guard let claimed, !claimed.isEmpty, claimed != principal.name else { return principal.name }
        throw APIProblem(.forbidden, slug: "actor-mismatch", title: "Forbidden",
            detail: "the body names `\(field)` \(claimed), but the token is \(principal.name)'s: the actor of a "
                + "command is the caller the token identifies. Remove `\(field)` from the body, or call with "
                + "\(claimed)'s own token",
            extensions: [
                "principal": .string(principal.name), "claimed": .string(claimed),
                "errors": [["field": .string(field), "message": .string("must be omitted or equal \(principal.name)")]],
            ])
    }

    static func runNotFound(_ runID: RunID) -> APIProblem {
        APIProblem.notFound("no run \(runID); list runs with GET /v1/runs", slug: "run-not-found")
    }

    static func attempt(_ value: JSONValue?) throws -> Int? {
        guard let value, value != .null else { return nil }
        guard let attempt = value.numberValue?.intValue, attempt >= 1, attempt < 1_000_000 else {
            throw APIProblem.badRequest("`attempt` must be an integer, 1 or more", field: "attempt")
        }
        return attempt
    }

    /// The assignee label of an actor as the chapters write it: `AI:fraud-labeler` → `ai.fraud-labeler`,
    /// `HUMAN:x` → `human.x`, `SVC:x` → `svc.x`; labels (`ai.x`) and topics stay as they are.
    static func assigneeLabel(_ actor: String) -> String {
        guard let colon = actor.firstIndex(of: ":") else { return actor }
        let name = actor[actor.index(after: colon)...]
        switch actor[..<colon].lowercased() {
        case "ai": return "ai." + name
        case "human": return "human." + name
        case "svc": return "svc." + name
        default: return actor
        }
    }
}

/// Reading requests: bodies within the limit, JSON bodies, path parameters and `limit`.
enum APIRequest {
    /// The body, at most ``APIRequestContext/maximumBodySize`` bytes (413 beyond, before reading when the
    /// `Content-Length` says so).
    static func body(of request: Request, context: APIRequestContext) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > context.maxUploadSize {
            throw APIProblem.bodyTooLarge
        }
        var buffer = try await request.body.collect(upTo: context.maxUploadSize)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// The body decoded as JSON; an empty body reads as `emptyAs` when given.
    static func decode<Value: Decodable>(_ request: Request, context: APIRequestContext, emptyAs: String? = nil)
        async throws -> Value
    {
        var bytes = try await body(of: request, context: context)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            guard let emptyAs else { throw APIProblem.badRequest("the body is empty; send a JSON object") }
            bytes = Array(emptyAs.utf8)
        }
        if Value.self == JSONValue.self {  // a whole JSON body: read every number exactly, not through `Decimal`
            do {
                if let value = try JSONValue(parsing: bytes) as? Value { return value }
            } catch {
                throw DecodingError.dataCorrupted(
                    DecodingError.Context(codingPath: [], debugDescription: "The given data was not valid JSON: \(error)"))
            }
        }
        return try JSONDecoder().decode(Value.self, from: Data(bytes))
    }

    /// A path parameter, percent-decoded (task ids contain `/` and arrive as `%2F`).
    static func pathParameter(_ name: String, context: APIRequestContext) throws -> String {
        guard let raw = context.parameters.get(name), let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw APIProblem.badRequest("the path parameter `\(name)` is not valid percent-encoding", field: name)
        }
        return decoded
    }

    /// A text query parameter; `nil` when absent or empty.
    ///
    /// - Throws: ``APIProblem`` (400) when it holds U+0000, which PostgreSQL cannot store or compare: without
    ///   this check the database's refusal came back as a body error for a query parameter.
    static func textQuery(_ name: String, _ request: Request) throws -> String? {
        guard let text = request.uri.queryParameters.get(name), !text.isEmpty else { return nil }
        guard !text.unicodeScalars.contains("\u{0}") else {
            throw APIProblem.badRequest("`\(name)` holds the character U+0000 (%00); remove it", field: name)
        }
        return text
    }

    /// `limit`: 1 to 500, `default` when absent.
    static func limit(_ request: Request, default defaultLimit: Int = 50) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit"), !text.isEmpty else { return defaultLimit }
        guard let limit = Int(text), (1...500).contains(limit) else {
            throw APIProblem.badRequest("`limit` must be a whole number from 1 to 500", field: "limit")
        }
        return limit
    }
}

/// Writing responses.
enum APIResponse {
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let bytes = try APIEncoding.encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func bytes(_ bytes: [UInt8], contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension Request {
    /// `Idempotency-Key`: makes a repeated command change nothing.
    var idempotencyKey: String? { headers[.init("Idempotency-Key")!] }
    /// A W3C `traceparent` the run continues.
    var traceparent: String? { headers[.init("traceparent")!] }
}

/// The `id` of a task in `GET /act/tasks`: chapter 001's worker builds `/act/tasks/{id}/complete` from it
/// without encoding, and task ids contain `/`. `t_` + base64url of `task id \n attempt \n lease id`, so the
/// answer also names its attempt and, for a claimed task, its lease. Any other path id is a task id.
enum ChapterTaskID {
    static func encode(taskID: String, attempt: Int, leaseID: String?) -> String {
        let raw = Data("\(taskID)\n\(attempt)\n\(leaseID ?? "")".utf8).base64EncodedString()
        return "t_" + raw.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> (taskID: TaskID, attempt: Int?, leaseID: String?) {
        guard text.hasPrefix("t_") else { return (TaskID(text), nil, nil) }
        var base64 = String(text.dropFirst(2)).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8) else {
            return (TaskID(text), nil, nil)
        }
        let parts = decoded.split(separator: "\n", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let attempt = Int(parts[1]), attempt >= 1 else {
            return (TaskID(text), nil, nil)
        }
        return (TaskID(String(parts[0])), attempt, parts[2].isEmpty ? nil : String(parts[2]))
    }
}
