import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// `call:` steps hms-act performs itself: which calls it takes (the rest go to a bridge worker over AMQP),
/// the request it sends, what each answer means, and the settings' errors.
@Suite struct HTTPCallTests {
    static let t0 = Instant(millisecondsSinceEpoch: 1_700_000_000_000)

    static func planner(calls: CallScope, agents: [Agent] = []) -> BatchPlanner {
        let playbook = Playbook(id: "payments", triggers: ["payment_failed"], steps: [
            Step(id: "freeze", kind: .task(TaskSpec(assignee: Assignee(kind: .call, name: "/finance/freeze", method: "POST")))),
        ])
        var catalog = PlaybookCatalog()
        catalog.insert(version: PlaybookVersion(versionID: 1, playbookID: "payments", checksum: "abc", source: "",
            model: [], triggers: ["payment_failed"], registeredAt: 0), playbook: playbook)
        return BatchPlanner(catalog: catalog, engine: EngineConfiguration(agents: agents, calls: calls),
            messages: OutboundMessages(exchanges: .init()))
    }

    static func start(_ planner: BatchPlanner) throws -> BatchPlanner.Plan {
        try planner.plan([.init(.trigger(TriggerEvent(id: "e-987", type: "payment_failed", payload: ["id": 987])))],
            runs: [:], now: t0)
    }

    @Test func aConfiguredCallIsKeptForTheHTTPCallerAndNeverPublished() throws {
        let plan = try Self.start(Self.planner(calls: CallScope(all: false, services: ["finance"])))
        let task = try #require(plan.batch.dispatchedTasks.first)
        #expect(task.target == "http")
        #expect(!plan.batch.outbox.contains { $0.type == "hms.task" })
        let kept = try #require(plan.batch.pullTasks.first)
        #expect(kept.assignee == PullTask.httpCaller && kept.taskID == task.taskID)

        let call = try HTTPCall(message: kept.body, baseURLs: ["finance": "http://finance.svc:8080"], defaultBaseURL: "")
        #expect(call.method == "POST" && call.url == "http://finance.svc:8080/finance/freeze")
        #expect(try JSONValue(parsing: call.body) == ["id": 987])
        #expect(call.headers["Idempotency-Key"] == "\(task.taskID)#1")
        #expect(call.headers["X-HMS-Step-ID"] == "freeze" && call.headers["X-HMS-Run-ID"] == task.runID)
        #expect(call.headers["traceparent"]?.hasPrefix("00-") == true)
    }

    @Test func anUnconfiguredServiceOrAnAgentOfThatNameKeepsTheAMQPRoute() throws {
        for planner in [Self.planner(calls: CallScope(all: false, services: ["notify"])),
            Self.planner(calls: CallScope(all: true, services: []), agents: [Agent(id: "call.post.finance.freeze")])]
        {
            let plan = try Self.start(planner)
            #expect(plan.batch.pullTasks.isEmpty)
            let message = try #require(plan.batch.outbox.first { $0.type == "hms.task" })
            #expect(message.routingKey == "task.call.post.finance.freeze")
            // A bridge worker reads what to call from the message.
            let body = try JSONValue(parsing: message.body)
            #expect(body["call"]?["method"] == "POST" && body["call"]?["path"] == "/finance/freeze")
        }
    }

    static let message: [UInt8] = Array(#"""
        {"type": "hms.task", "task_id": "wf_1/freeze/1", "attempt": 2, "run_id": "wf_1", "step_id": "freeze",
         "payload": {"id": 987}, "input": {"account": "A-1"}, "call": {"method": "PUT", "path": "/finance/freeze"}}
        """#.utf8)

    @Test func theStepsInputIsTheBodyAndTheDefaultBaseURLServesEveryService() throws {
        let call = try HTTPCall(message: Self.message, baseURLs: [:], defaultBaseURL: "https://gateway.gov/api")
        #expect(call.method == "PUT" && call.url == "https://gateway.gov/api/finance/freeze")
        #expect(try JSONValue(parsing: call.body) == ["account": "A-1"])
        #expect(call.headers["Idempotency-Key"] == "wf_1/freeze/1#2" && call.headers["X-HMS-Attempt"] == "2")
        let unknown = #expect(throws: HTTPCall.Unperformable.self) {
            try HTTPCall(message: Self.message, baseURLs: ["notify": "http://n"], defaultBaseURL: "")
        }
        #expect(unknown?.description.contains("HMS_CALL_SERVICES=finance=http://") == true)
        #expect(throws: HTTPCall.Unperformable.self) {
            try HTTPCall(message: Array(#"{"task_id": "t", "attempt": 1}"#.utf8), baseURLs: [:], defaultBaseURL: "http://g")
        }
    }

    @Test func eachAnswerHasItsMeaning() throws {
        let call = try HTTPCall(message: Self.message, baseURLs: [:], defaultBaseURL: "http://g")
        func verdict(_ status: Int, _ body: String = "", _ headers: [String: String] = [:]) -> HTTPCall.Verdict {
            call.verdict(on: HTTPCallResponse(status: status, headers: headers, body: Array(body.utf8)))
        }
        #expect(verdict(200, #"{"frozen": true}"#) == .completed(output: ["frozen": true]))
        #expect(verdict(204) == .completed(output: ["status": 204]))
        #expect(verdict(201, "created") == .completed(output: ["status": 201, "body": "created"]))
        #expect(verdict(503, "down", ["retry-after": "7"]) == .tryAgain(reason: "PUT http://g/finance/freeze answered 503: down",
            after: .seconds(7)))
        #expect(verdict(429, "", ["retry-after": "3600"]) == .tryAgain(reason: "PUT http://g/finance/freeze answered 429",
            after: .seconds(60)))
        guard case .tryAgain = verdict(408) else { Issue.record("408 is worth another try"); return }
        #expect(verdict(404, #"{"error": "no route"}"#) == .failed(reason: #"PUT http://g/finance/freeze answered 404: {"error": "no route"}"#))
        guard case .failed(let redirect) = verdict(302, "", ["location": "http://other"]) else {
            Issue.record("a redirect is not followed"); return
        }
        #expect(redirect.contains("to http://other") && redirect.contains("base URL"))
        guard case .tryAgain = call.verdict(on: .timedOut(.milliseconds(300))) else { Issue.record("timeout"); return }
        guard case .tryAgain = call.verdict(on: .unreachable("connection refused")) else { Issue.record("refused"); return }
        guard case .failed = call.verdict(on: .bodyTooLarge(1_024)) else { Issue.record("too large"); return }
    }

    @Test func badCallSettingsSayWhatToWrite() throws {
        var configuration = ServiceConfiguration()
        configuration.calls.services = ["finance"]
        var error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("finance=http://finance.svc:8080") == true)
        configuration.calls.services = ["finance=ftp://files"]
        error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("not a base URL") == true)
        configuration.calls.services = ["finance=http://a", "finance=http://b"]
        error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("listed twice") == true)
        configuration.calls.services = ["finance=http://finance.svc:8080/"]
        configuration.calls.baseURL = "https://gateway.gov/api?x=1"
        error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("calls.base_url") == true)
        configuration.calls.baseURL = "https://gateway.gov/api/"
        try configuration.validate()
        #expect(try configuration.calls.serviceBaseURLs() == ["finance": "http://finance.svc:8080"])
        #expect(try configuration.calls.scope() == CallScope(all: true, services: ["finance"]))
        configuration.calls.rateLimits = ["finance=50/min", "notify=10/s"]
        try configuration.validate()
        #expect(try configuration.calls.serviceRateLimits()["finance"]?.interval == 1_200)
        configuration.calls.rateLimits = ["finance=fifty a minute"]
        error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description == "calls.rate_limits (env HMS_CALL_RATE_LIMITS): \"finance=fifty a minute\" is not "
            + "service=rate; write the first segment of the call's path and a rate, e.g. finance=50/min")
        configuration.calls.rateLimits = ["finance=5/s", "finance=6/s"]
        error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("listed twice") == true)
        configuration.calls.rateLimits = []
        configuration.calls.attempts = 0
        #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
    }
}
