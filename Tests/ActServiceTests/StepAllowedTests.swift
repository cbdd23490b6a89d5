import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// A step's `allowed:` (issue 13): a result or approval whose (authenticated) actor the step does not name is
/// refused, recorded in the run's trail with the step's patterns, and changes nothing else; the right actor
/// then applies as usual.
@Suite struct StepAllowedTests {
    static let t0 = Instant(millisecondsSinceEpoch: 1_700_000_000_000)

    static func planner() -> BatchPlanner {
        var review = TaskSpec(assignee: Assignee(kind: .human, name: "zoning"), requiresApproval: true)
        review.allowed = ["officer#*", "supervisor#4"]
        let playbook = Playbook(id: "Permit", triggers: ["PermitFiled"], steps: [
            Step(id: "zoningApproval", kind: .task(review), next: "notify"),
            Step(id: "notify", kind: .task(TaskSpec(assignee: Assignee(kind: .service, name: "email")))),
        ])
        var catalog = PlaybookCatalog()
        catalog.insert(version: PlaybookVersion(versionID: 1, playbookID: "Permit", checksum: "abc", source: "",
            model: [], triggers: ["PermitFiled"], registeredAt: 0), playbook: playbook)
        return BatchPlanner(catalog: catalog, engine: EngineConfiguration(), messages: OutboundMessages(exchanges: .init()))
    }

    static func result(_ task: String, agent: String?) -> BatchInput {
        .worker(.taskResult(.init(taskID: task, attempt: 1, outcome: .completed(output: [:]), agent: agent)), messageID: nil)
    }

    static func approval(_ run: String, actor: String, approved: Bool = true) -> BatchInput {
        .worker(.approval(.init(runID: run, stepID: "zoningApproval", approved: approved, actor: actor, reason: nil,
            payload: .null)), messageID: nil)
    }

    @Test func onlyTheNamedActorsAnswerAndApprove() throws {
        let planner = Self.planner()
        let started = try planner.plan([.init(.trigger(TriggerEvent(id: "e-1", type: "PermitFiled", payload: [:])))],
            runs: [:], now: Self.t0)
        var run = try #require(started.batch.runs.first)
        let task = try #require(started.batch.dispatchedTasks.first).taskID

        // A result that names nobody, then one from a clerk: both refused, both in the trail, nothing moves.
        for (agent, at) in [(nil, 1), ("clerk#7", 2)] as [(String?, Int64)] {
            let refused = try planner.plan([.init(Self.result(task, agent: agent))], runs: [run.runID: run],
                now: Self.t0 + .seconds(at))
            guard case .forbidden(let reason)? = refused.outcomes.first else {
                Issue.record("a result from \(agent ?? "nobody") was \(refused.outcomes)"); return
            }
            #expect(reason.contains("officer#*, supervisor#4"), "\(reason)")
            #expect(refused.batch.taskChanges.isEmpty && refused.batch.dispatchedTasks.isEmpty)
            let entry = try #require(refused.batch.audit.first?.entry)
            #expect(entry.kind == "attempt.refused" && entry.actor == (agent ?? "worker"))
            #expect(entry.data["allowed"] == ["officer#*", "supervisor#4"] && entry.data["task_id"] == .string(task))
            let after = try #require(refused.batch.runs.first)
            #expect(after.status == run.status && after.auditSequence == run.auditSequence + 1)
            run = after
        }
        let answered = try planner.plan([.init(Self.result(task, agent: "officer#9"))], runs: [run.runID: run],
            now: Self.t0 + .seconds(3))
        #expect(answered.outcomes == [.applied])
        run = try #require(answered.batch.runs.first)

        // The approval: supervisor#5 is not supervisor#4, and a refusal is as much an answer as an approval.
        for (actor, approved) in [("supervisor#5", true), ("clerk#7", false)] {
            let refused = try planner.plan([.init(Self.approval(run.runID, actor: actor, approved: approved))],
                runs: [run.runID: run], now: Self.t0 + .seconds(4))
            guard case .forbidden(let reason)? = refused.outcomes.first else {
                Issue.record("\(actor)'s answer was \(refused.outcomes)"); return
            }
            #expect(reason.contains("\(actor) may not \(approved ? "approve" : "refuse") step zoningApproval"), "\(reason)")
            #expect(refused.batch.dispatchedTasks.isEmpty)
            run = try #require(refused.batch.runs.first)
            #expect(run.status == "running")
        }
        let approved = try planner.plan([.init(Self.approval(run.runID, actor: "supervisor#4"))], runs: [run.runID: run],
            now: Self.t0 + .seconds(5))
        #expect(approved.outcomes == [.applied])
        #expect(approved.batch.dispatchedTasks.map(\.assignee) == ["svc.email"])
        // `notify` names nobody: any agent (or none) answers it.
        let notify = try #require(approved.batch.dispatchedTasks.first).taskID
        run = try #require(approved.batch.runs.first)
        let done = try planner.plan([.init(Self.result(notify, agent: nil))], runs: [run.runID: run], now: Self.t0 + .seconds(6))
        #expect(done.outcomes == [.applied])
        #expect(done.batch.runs.first?.status == "completed")
    }

    /// A refused answer frees its inbox key, so a corrected copy with the same message id still applies.
    @Test func aForbiddenAnswerReleasesItsInboxKey() throws {
        let planner = Self.planner()
        let started = try planner.plan([.init(.trigger(TriggerEvent(id: "e-2", type: "PermitFiled", payload: [:])))],
            runs: [:], now: Self.t0)
        let run = try #require(started.batch.runs.first)
        let forged = BatchInput.worker(.approval(.init(runID: run.runID, stepID: "zoningApproval", approved: true,
            actor: "clerk#7", reason: nil, payload: .null)), messageID: "m-9")
        let refused = try planner.plan([.init(forged)], runs: [run.runID: run], now: Self.t0 + .seconds(1))
        #expect(refused.batch.releasedInboxKeys == [try #require(forged.inboxKey)])
    }
}
