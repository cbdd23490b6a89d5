import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

@Suite struct BatchPlannerTests {
    static let ftc = Playbook(
        id: "FTC-Complaint", triggers: ["ComplaintLogged"],
        steps: [
            Step(id: "classify", kind: .task(TaskSpec(assignee: Assignee(kind: .ai, name: "fraud-labeler"))),
                next: "severity_branch"),
            Step(id: "severity_branch", kind: .choice(Choice(expression: .path(["result", "severity"]),
                expressionSource: "result.severity",
                cases: [.init(match: "High", target: "human_review"), .init(match: "Low", target: "notify_citizen")]))),
            Step(id: "human_review", kind: .task(TaskSpec(assignee: Assignee(kind: .human, name: "investigator"))),
                next: "notify_citizen", onTimeout: "escalate", sla: SLA(duration: .hours(4))),
            Step(id: "escalate", kind: .task(TaskSpec(assignee: Assignee(kind: .human, name: "supervisor")))),
            Step(id: "notify_citizen", kind: .task(TaskSpec(assignee: Assignee(kind: .service, name: "email-svc")))),
        ])

    static func planner() -> BatchPlanner {
        var catalog = PlaybookCatalog()
        catalog.insert(version: PlaybookVersion(versionID: 1, playbookID: "FTC-Complaint", checksum: "abc", source: "",
            model: [], triggers: ["ComplaintLogged"], registeredAt: 0), playbook: ftc)
        return BatchPlanner(catalog: catalog, engine: EngineConfiguration(),
            messages: OutboundMessages(exchanges: .init()))
    }

    static let event = TriggerEvent(id: "e-1", type: "ComplaintLogged", payload: ["complaintId": "C-42"])
    static let t0 = Instant(millisecondsSinceEpoch: 1_700_000_000_000)

    @Test func triggerStartsOneRunAndDispatchesTheFirstTask() throws {
        let plan = try Self.planner().plan([.init(.trigger(Self.event))], runs: [:], now: Self.t0)
        #expect(plan.outcomes == [.applied])
        let run = try #require(plan.batch.runs.first)
        #expect(run.runID == RunID.forTrigger(playbook: "FTC-Complaint", eventID: "e-1").rawValue)
        #expect(plan.batch.dispatchedTasks.map(\.assignee) == ["ai.fraud-labeler"])
        let task = try #require(plan.batch.outbox.first { $0.type == "hms.task" })
        #expect(task.exchange == "hms.tasks")
        #expect(task.routingKey == "task.ai.fraud-labeler")
        #expect(task.correlationID == run.runID)
        #expect(task.headers["traceparent"]?.hasPrefix("00-\(run.traceID)-") == true)
        #expect(plan.batch.outbox.contains { $0.routingKey == "metrics.step_started" })
        // Every governance message in the outbox is listed for the metrics recorded after the commit.
        #expect(plan.emitted.map(\.kind.rawValue) == plan.batch.outbox.filter { $0.exchange == "hms.governance" }
            .map(\.routingKey))
        #expect(plan.emitted.map(\.kind) == [.stepStarted])
        #expect(plan.batch.audit.map(\.entry.kind) == ["run.started"])
        #expect(plan.batch.audit.first?.entry.sequence == 1)
    }

    @Test func aRepeatedTriggerInTheSameBatchStartsNothingNew() throws {
        let plan = try Self.planner().plan([.init(.trigger(Self.event)), .init(.trigger(Self.event))], runs: [:], now: Self.t0)
        #expect(plan.outcomes.first == .applied)
        #expect(plan.batch.runs.count == 1)
        guard case .ignored = plan.outcomes.last else {
            Issue.record("expected the second trigger to be ignored, got \(plan.outcomes)")
            return
        }
    }

    /// A trigger nobody takes: ignored over HTTP (the caller is told), refused from the trigger queue (it is
    /// dead-lettered, to be replayed once the playbook exists). A refused input leaves its inbox key free, so
    /// the replayed copy is not taken for a repeat; an ignored one keeps it.
    @Test func anUnclaimedTriggerFromTheQueueIsRefusedAndItsInboxKeyReleased() throws {
        var event = TriggerEvent(id: "e-9", type: "nobody.listens", payload: [:])
        let overHTTP = try Self.planner().plan([.init(.trigger(event))], runs: [:], now: Self.t0)
        #expect(overHTTP.outcomes == [.ignored(reason: "no registered playbook is triggered by nobody.listens")])
        #expect(overHTTP.batch.releasedInboxKeys.isEmpty)
        event.arrivedOnTriggerQueue = true
        let queued = try Self.planner().plan([.init(.trigger(event))], runs: [:], now: Self.t0)
        guard case .rejected(let reason) = queued.outcomes.first else {
            Issue.record("expected a refusal, got \(queued.outcomes)")
            return
        }
        #expect(reason.contains("hms-act dead replay"))
        #expect(queued.batch.releasedInboxKeys == ["event:e-9"])
        // A repeat (not fresh) releases nothing: the first copy's key is not this batch's to free.
        let repeated = try Self.planner().plan([.init(.trigger(event), fresh: false)], runs: [:], now: Self.t0)
        #expect(repeated.batch.releasedInboxKeys.isEmpty)
    }

    @Test func resultsAdvanceTheRunAndSLATimersAreScheduled() throws {
        let planner = Self.planner()
        let first = try planner.plan([.init(.trigger(Self.event))], runs: [:], now: Self.t0)
        let run = try #require(first.batch.runs.first)
        let task = try #require(first.batch.dispatchedTasks.first)
        let result = WorkerMessage.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .completed(output: ["severity": "High"])))
        let second = try planner.plan([.init(.worker(result, messageID: nil))], runs: [run.runID: run],
            now: Self.t0 + .seconds(2))
        #expect(second.outcomes == [.applied])
        #expect(second.batch.dispatchedTasks.map(\.assignee) == ["human.investigator"])
        #expect(second.batch.taskChanges.map(\.status) == [.completed])
        #expect(Set(second.batch.scheduledTimers.map(\.kind)) == ["sla_warning", "sla_breach"])
        let review = try #require(second.batch.dispatchedTasks.first)
        #expect(review.deadline == (Self.t0 + .seconds(2) + .hours(4)).millisecondsSinceEpoch)
        let updated = try #require(second.batch.runs.first)
        #expect(updated.auditSequence == 2)
        // The same result again is a late duplicate: no effect.
        let third = try planner.plan([.init(.worker(result, messageID: nil))], runs: [run.runID: updated],
            now: Self.t0 + .seconds(3))
        guard case .ignored = third.outcomes.first else {
            Issue.record("expected the duplicate result to be ignored, got \(third.outcomes)")
            return
        }
        #expect(third.batch.isEmpty)
    }

    @Test func aResultForAnUnknownRunIsRejectedWithAReason() throws {
        let result = WorkerMessage.taskResult(.init(taskID: "wf_nope/classify/1", attempt: 1, outcome: .completed(output: [:])))
        let plan = try Self.planner().plan([.init(.worker(result, messageID: nil))], runs: [:], now: Self.t0)
        guard case .rejected(let reason) = plan.outcomes.first else {
            Issue.record("expected a rejection, got \(plan.outcomes)")
            return
        }
        #expect(reason.contains("wf_nope"))
    }

    @Test func aStateThatCannotBeReadRejectsTheInputAndSaysWhereWithoutTheValues() throws {
        let planner = Self.planner()
        let first = try planner.plan([.init(.trigger(Self.event))], runs: [:], now: Self.t0)
        var run = try #require(first.batch.runs.first)
        let task = try #require(first.batch.dispatchedTasks.first)
        run.state = Array(#"{"runID": "x", "status": "secret-value"}"#.utf8)
        let result = WorkerMessage.taskResult(.init(taskID: task.taskID, attempt: 1, outcome: .completed(output: [:])))
        let plan = try planner.plan([.init(.worker(result, messageID: nil))], runs: [run.runID: run],
            now: Self.t0 + .seconds(1))
        guard case .rejected(let reason) = plan.outcomes.first else {
            Issue.record("expected a rejection, got \(plan.outcomes)")
            return
        }
        #expect(reason.hasPrefix("run \(run.runID) has a state this version of hms-act cannot read ("))
        #expect(!reason.contains("secret-value"))
        // Nothing is written but the release of its inbox key: after the rollout, its replay applies.
        var rest = plan.batch
        rest.releasedInboxKeys = []
        #expect(rest.isEmpty)
        #expect(plan.batch.releasedInboxKeys == [BatchInput.worker(result, messageID: nil).inboxKey])
    }

    @Test func inboxDuplicatesAreIgnored() throws {
        let plan = try Self.planner().plan([.init(.trigger(Self.event), fresh: false)], runs: [:], now: Self.t0)
        #expect(plan.batch.isEmpty)
    }

    @Test func auditChainContinuesAcrossBatches() throws {
        let planner = Self.planner()
        let first = try planner.plan([.init(.trigger(Self.event))], runs: [:], now: Self.t0)
        let run = try #require(first.batch.runs.first)
        let task = try #require(first.batch.dispatchedTasks.first)
        let second = try planner.plan([.init(.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .completed(output: ["severity": "Low"]))), messageID: nil))], runs: [run.runID: run],
            now: Self.t0 + .seconds(1))
        let entries = first.batch.audit + second.batch.audit
        #expect(AuditChain.verify(run: run.runID, entries: entries).findings.isEmpty)
    }
}
