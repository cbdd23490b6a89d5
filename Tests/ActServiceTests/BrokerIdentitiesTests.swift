import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// `amqp.actors`: a message on `hms.results` is attributed to the RabbitMQ user the broker validated, and
/// may only name an actor that user may act as. A refused one is recorded in its run's trail, and does not
/// make the real approval look like a repeat.
@Suite struct BrokerIdentitiesTests {
    static let identities = try! BrokerIdentities(entries: ["desk-portal=officer#*;clerk#7", "hms-demo-worker=AI:*"])

    static func approval(actor: String, approved: Bool = true) -> WorkerMessage {
        .approval(.init(runID: "wf_1", stepID: "zoningApproval", approved: approved, actor: actor, reason: nil,
            payload: .null))
    }

    @Test func entriesThatDoNotReadSayWhichAndWhy() {
        for (entry, mentions) in [
            ("desk-portal", "has no `=`"), ("=officer#*", "names no RabbitMQ user"),
            ("desk-portal=officer#*;", "empty actor pattern"), ("desk-portal=off*cer", "only a trailing *"),
        ] {
            let error = #expect(throws: BrokerIdentitiesError.self) { try BrokerIdentities(entries: [entry]) }
            #expect(error?.description.contains(mentions) == true, "\(entry): \(String(describing: error))")
            #expect(error?.description.contains("amqp.actors") == true)
        }
        var configuration = ServiceConfiguration()
        configuration.amqp.actors = ["desk-portal"]
        #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
    }

    @Test func withNoEntriesTheBodyIsTakenOnTrust() throws {
        let message = Self.approval(actor: "officer#4")
        #expect(try BrokerIdentities().authorize(message, userID: nil).get() == message)
    }

    @Test func anApprovalIsAcceptedOnlyFromAUserThatMayActAsItsActor() throws {
        let identities = Self.identities
        #expect(try identities.authorize(Self.approval(actor: "officer#4"), userID: "desk-portal").get()
            == Self.approval(actor: "officer#4"))
        #expect(try identities.authorize(Self.approval(actor: "clerk#7"), userID: "desk-portal").get()
            == Self.approval(actor: "clerk#7"))

        // The forged approval of the issue: worker credentials naming an officer.
        guard case .failure(let forged) = identities.authorize(Self.approval(actor: "officer#4"), userID: "hms-demo-worker")
        else { Issue.record("a worker released an officer's approval gate"); return }
        #expect(forged.reason.contains("hms-demo-worker") && forged.reason.contains("officer#4"))
        #expect(forged.brokerUser == "hms-demo-worker" && forged.claimedActor == "officer#4")

        for (actor, user) in [("clerk#70", "desk-portal"), ("officer#4", "someone"), ("officer#4", nil), ("officer#4", "")] {
            guard case .failure(let refused) = identities.authorize(Self.approval(actor: actor), userID: user) else {
                Issue.record("\(actor) from \(user ?? "no user_id") was accepted")
                continue
            }
            #expect(!refused.reason.isEmpty)
        }
    }

    @Test func aResultIsAttributedToItsBrokerUserAndMayNotNameAnotherAgent() throws {
        let identities = Self.identities
        let anonymous = WorkerMessage.taskResult(.init(taskID: "wf_1/classify/1", attempt: 1, outcome: .completed(output: [:])))
        guard case .taskResult(let attributed) = try identities.authorize(anonymous, userID: "hms-demo-worker").get() else {
            Issue.record("not a result"); return
        }
        #expect(attributed.agent == "hms-demo-worker")
        let named = WorkerMessage.taskResult(.init(taskID: "wf_1/classify/1", attempt: 1,
            outcome: .completed(output: [:]), agent: "AI:fraud-labeler"))
        #expect(try identities.authorize(named, userID: "hms-demo-worker").get() == named)
        let impostor = WorkerMessage.taskResult(.init(taskID: "wf_1/classify/1", attempt: 1,
            outcome: .completed(output: [:]), agent: "officer#4"))
        #expect(throws: RefusedAttempt.self) { try identities.authorize(impostor, userID: "hms-demo-worker").get() }
        let signal = WorkerMessage.signal(runID: "wf_1", name: "bank_updated", payload: .null)
        #expect(try identities.authorize(signal, userID: "desk-portal").get() == signal)
        #expect(throws: RefusedAttempt.self) { try identities.authorize(signal, userID: nil).get() }
    }

    @Test func entriesThatCannotBeReadRefuseEveryoneRatherThanNoOne() {
        #expect(BrokerIdentities.refusingEveryone.isEnforced)
        #expect(throws: RefusedAttempt.self) {
            try BrokerIdentities.refusingEveryone.authorize(Self.approval(actor: "officer#4"), userID: "desk-portal").get()
        }
    }

    /// The planner records a refused attempt in the run's chain and changes nothing else; the real approval
    /// afterwards has a different inbox key and applies.
    @Test func aRefusedApprovalIsInTheTrailAndTheRealOneStillApplies() throws {
        let playbook = Playbook(id: "Permit", triggers: ["PermitFiled"], steps: [
            Step(id: "zoningApproval", kind: .task(TaskSpec(assignee: Assignee(kind: .human, name: "zoning"),
                requiresApproval: true)), next: "notify"),
            Step(id: "notify", kind: .task(TaskSpec(assignee: Assignee(kind: .service, name: "email")))),
        ])
        var catalog = PlaybookCatalog()
        catalog.insert(version: PlaybookVersion(versionID: 1, playbookID: "Permit", checksum: "abc", source: "",
            model: [], triggers: ["PermitFiled"], registeredAt: 0), playbook: playbook)
        let planner = BatchPlanner(catalog: catalog, engine: EngineConfiguration(),
            messages: OutboundMessages(exchanges: .init()))
        let t0 = Instant(millisecondsSinceEpoch: 1_700_000_000_000)
        let started = try planner.plan([.init(.trigger(TriggerEvent(id: "e-1", type: "PermitFiled", payload: [:])))],
            runs: [:], now: t0)
        var run = try #require(started.batch.runs.first)
        let task = try #require(started.batch.dispatchedTasks.first)
        let answered = try planner.plan([.init(.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .completed(output: [:]))), messageID: nil))], runs: [run.runID: run], now: t0 + .seconds(1))
        run = try #require(answered.batch.runs.first)

        let forged = WorkerMessage.approval(.init(runID: run.runID, stepID: "zoningApproval", approved: true,
            actor: "officer#4", reason: nil, payload: .null))
        guard case .failure(let attempt) = Self.identities.authorize(forged, userID: "hms-demo-worker") else {
            Issue.record("the forged approval was accepted"); return
        }
        let refused = try planner.plan([.init(.refusedAttempt(attempt, messageID: "m-1"))], runs: [run.runID: run],
            now: t0 + .seconds(2))
        #expect(refused.outcomes == [.forbidden(reason: attempt.reason)])
        #expect(refused.batch.dispatchedTasks.isEmpty && refused.batch.taskChanges.isEmpty)
        let entry = try #require(refused.batch.audit.first?.entry)
        #expect(entry.kind == "attempt.refused" && entry.actor == "amqp:hms-demo-worker")
        #expect(entry.data["claimed_actor"] == "officer#4" && entry.data["step_id"] == "zoningApproval")
        let afterRefusal = try #require(refused.batch.runs.first)
        #expect(afterRefusal.status == run.status && afterRefusal.auditSequence == run.auditSequence + 1)

        let real = BatchInput.worker(.approval(.init(runID: run.runID, stepID: "zoningApproval", approved: true,
            actor: "officer#4", reason: nil, payload: .null)), messageID: "m-1")
        #expect(BatchInput.refusedAttempt(attempt, messageID: "m-1").inboxKey != real.inboxKey)
        let approved = try planner.plan([.init(real)], runs: [run.runID: afterRefusal], now: t0 + .seconds(3))
        #expect(approved.outcomes == [.applied])
        #expect(approved.batch.dispatchedTasks.map(\.assignee) == ["svc.email"])
    }
}
