import ActEngine
import ActPlaybook
import Testing

/// `for_each:` in the engine: one task per item, at most `max_concurrency` in flight, results in item order,
/// failures counted against `tolerated_failures`, and the lists that end the step at once.
@Suite struct ForEachTests {
    static func scan(_ items: String = "payload.files", limit: Int = 2, tolerated: ForEach.FailureTolerance = .count(0),
        input: JSONValue? = nil, retry: Int = 0, assignee: Assignee = .ai("scanner")) -> Playbook
    {
        let forEach = ForEach(items: try! ExpressionParser.parse(items), itemsSource: items, maxConcurrency: limit,
            tolerated: tolerated)
        return Playbook(id: "Scan.v1", steps: [
            Step(id: "scan", kind: .task(TaskSpec(assignee: assignee, input: input, forEach: forEach)),
                retry: RetryPolicy(maxRetries: retry, backoff: .fixed, initial: .seconds(1))),
            task("file"),
        ])
    }

    static func dispatches(_ commands: [RunCommand]) -> [TaskDispatch] {
        commands.compactMap { if case .dispatchTask(let dispatch) = $0 { dispatch } else { nil } }
    }

    static func item(_ index: Int) -> TaskID { TaskID.item(run: "wf_m", step: "scan", visit: 1, index: index) }

    @Test func runsOneTaskPerItemAtMostTheLimitAtOnceAndKeepsTheOrder() throws {
        let files: JSONValue = ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf"]
        var (machine, started) = RunStateMachine.start(runID: "wf_m", playbook: Self.scan(), payload: ["files": files],
            now: t0)
        #expect(Self.dispatches(started).map(\.task) == [Self.item(0), Self.item(1)])
        #expect(Self.dispatches(started).map(\.input) == [["item": "a.pdf", "index": 0], ["item": "b.pdf", "index": 1]])
        // Items answer out of order; each answer starts the next item, never more than two in flight.
        var next = 2
        for index in [1, 0, 3, 2] {
            let commands = machine.handle(.taskCompleted(Self.item(index), attempt: 1, output: ["clean": .int(index)]),
                now: at(.seconds(Int64(index + 1))))
            let sent = Self.dispatches(commands).filter { $0.step == "scan" }
            if next < 5 {
                #expect(sent.map(\.task) == [Self.item(next)])
                next += 1
            }
            let open = machine.state.record("scan")?.tasks.count { $0.state == .inFlight } ?? 0
            #expect(open <= 2)
        }
        let last = machine.handle(.taskCompleted(Self.item(4), attempt: 1, output: ["clean": 4]), now: at(.seconds(9)))
        #expect(summary(last).contains("dispatch wf_m/file/1#1 → task.ai.file"))
        #expect(machine.state.record("scan")?.output == [
            "results": [["clean": 0], ["clean": 1], ["clean": 2], ["clean": 3], ["clean": 4]], "failed": [],
        ])
    }

    @Test func failuresWithinTheToleranceAreListedAndOneMoreFailsTheStep() throws {
        var (machine, _) = RunStateMachine.start(runID: "wf_m", playbook: Self.scan(limit: 10, tolerated: .count(1)),
            payload: ["files": ["a", "b", "c", "d"]], now: t0)
        _ = machine.handle(.taskFailed(Self.item(2), attempt: 1, reason: "virus found", retryable: false), now: at(.seconds(1)))
        #expect(machine.state.record("scan")?.status == .running)
        let failing = machine.handle(.taskFailed(Self.item(0), attempt: 1, reason: "unreadable", retryable: false),
            now: at(.seconds(2)))
        #expect(machine.state.record("scan")?.status == .failed)
        #expect(machine.state.record("scan")?.error
            == "for_each: 2 of 4 items failed, more than the 1 tolerated (tolerated_failures: 1); item 0: unreadable")
        // The items still in flight are abandoned; their late answers change nothing.
        let abandoned = summary(failing, taskStatuses: true).filter { $0.contains("cancelled") }
        #expect(abandoned.count == 2, "\(summary(failing, taskStatuses: true))")
        #expect(machine.handle(.taskCompleted(Self.item(1), attempt: 1, output: [:]), now: at(.seconds(3))).isEmpty)
        #expect(machine.state.status == .compensating || machine.state.status == .failed)
    }

    @Test func aPercentageToleranceRoundsDownAndTheOutputNamesTheFailedItems() throws {
        var (machine, _) = RunStateMachine.start(runID: "wf_m", playbook: Self.scan(limit: 10, tolerated: .percent(50)),
            payload: ["files": ["a", "b", "c", "d", "e"]], now: t0)
        for index in 0..<5 {
            let event: RunEvent = index < 2
                ? .taskFailed(Self.item(index), attempt: 1, reason: "bad \(index)", retryable: false)
                : .taskCompleted(Self.item(index), attempt: 1, output: .string("ok \(index)"))
            _ = machine.handle(event, now: at(.seconds(Int64(index + 1))))
        }
        #expect(machine.state.record("scan")?.output == [
            "results": [.null, .null, "ok 2", "ok 3", "ok 4"],
            "failed": [["index": 0, "error": "bad 0"], ["index": 1, "error": "bad 1"]],
        ])
    }

    @Test func anItemsRetryKeepsItsPlaceAndItsInput() throws {
        let playbook = Self.scan(limit: 1, input: ["file": "${item.name}", "n": "${index}", "case": "${payload.case}"], retry: 1)
        var (machine, started) = RunStateMachine.start(runID: "wf_m", playbook: playbook,
            payload: ["files": [["name": "a.pdf"], ["name": "b.pdf"]], "case": "C-7"], now: t0)
        #expect(Self.dispatches(started).first?.input == ["file": "a.pdf", "n": 0, "case": "C-7"])
        let failed = machine.handle(.taskFailed(Self.item(0), attempt: 1, reason: "timeout", retryable: true),
            now: at(.seconds(1)))
        #expect(Self.dispatches(failed).isEmpty)  // the retry holds the only slot
        let retried = machine.handle(.timerFired(.retry(Self.item(0), attempt: 2)), now: at(.seconds(2)))
        #expect(Self.dispatches(retried).map(\.idempotencyKey) == ["\(Self.item(0).rawValue)#2"])
        #expect(Self.dispatches(retried).first?.input == ["file": "a.pdf", "n": 0, "case": "C-7"])
        let second = machine.handle(.taskCompleted(Self.item(0), attempt: 2, output: [:]), now: at(.seconds(3)))
        #expect(Self.dispatches(second).first?.input == ["file": "b.pdf", "n": 1, "case": "C-7"])
    }

    @Test(arguments: [
        ("payload.files", ["files": []] as JSONValue, "completed", nil as String?),
        ("payload.files", ["files": "a.pdf"] as JSONValue, "failed", "for_each: payload.files is not a list (it is a string)"),
        ("payload.missing", [:] as JSONValue, "failed", "for_each: payload.missing is not a list (it is null)"),
        ("payload.files", ["files": ["x", "x", "x", "x"]] as JSONValue, "failed",
            "for_each: payload.files has 4 items; at most 3 are taken (engine.max_for_each_items)"),
    ])
    func listsThatEndTheStepAtOnce(items: String, payload: JSONValue, status: String, reason: String?) throws {
        let (machine, _) = RunStateMachine.start(runID: "wf_m", playbook: Self.scan(items), payload: payload, now: t0,
            configuration: EngineConfiguration(maxForEachItems: 3))
        let record = try #require(machine.state.record("scan"))
        #expect(record.status.rawValue == status)
        #expect(record.error == reason)
        if status == "completed" {
            #expect(record.output == ["results": [], "failed": []])
            #expect(machine.state.record("file")?.status == .running)
        }
    }

    @Test func anEmptyListInAParallelBranchLetsTheBlockJoin() throws {
        let forEach = ForEach(items: try ExpressionParser.parse("payload.files"), itemsSource: "payload.files")
        let playbook = Playbook(id: "P.v1", steps: [
            Step(id: "both", kind: .parallel(Parallel(branches: [
                Step(id: "scan", kind: .task(TaskSpec(assignee: .ai("scanner"), forEach: forEach))),
                task("check"),
            ]))),
        ])
        var (machine, _) = RunStateMachine.start(runID: "wf_p", playbook: playbook, payload: ["files": []], now: t0)
        #expect(machine.state.record("scan")?.status == .completed)
        _ = machine.handle(.taskCompleted("wf_p/check/1", attempt: 1, output: [:]), now: at(.seconds(1)))
        #expect(machine.state.status == .completed)
        #expect(machine.state.result == ["scan": ["results": [], "failed": []], "check": [:]])
    }

    @Test func eachItemOfASubPlaybookMapIsAChildRunOfItsOwn() throws {
        let playbook = Self.scan(limit: 3, input: ["address": "${item}"],
            assignee: Assignee(kind: .playbook, name: "SiteInspection.v1"))
        let (_, started) = RunStateMachine.start(runID: "wf_m", playbook: playbook,
            payload: ["files": ["Elm 1", "Oak 2"]], now: t0)
        let sent = Self.dispatches(started)
        #expect(sent.map(\.target) == [.playbook("SiteInspection.v1"), .playbook("SiteInspection.v1")])
        #expect(sent.map(\.input) == [["address": "Elm 1"], ["address": "Oak 2"]])
        #expect(Set(sent.map { TaskDispatch.childRunID(playbook: "SiteInspection.v1", task: $0.task, attempt: 1) }).count == 2)
    }
}
