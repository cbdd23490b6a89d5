import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

/// A pull agent's task (`delivery: pull`) is kept for claiming, never put in the outbox: nothing can come
/// back unroutable, raise an incident or hold the outbox lag up.
@Suite struct PullDeliveryTests {
    @Test func aPullAgentsTaskHasNoOutboxRowAndKeepsItsMessage() throws {
        let playbook = Playbook(id: "FTC", triggers: ["ComplaintLogged"], steps: [
            Step(id: "classify", kind: .task(TaskSpec(assignee: Assignee(kind: .ai, name: "fraud-labeler"))), next: "notify"),
            Step(id: "notify", kind: .task(TaskSpec(assignee: Assignee(kind: .service, name: "email")))),
        ])
        var catalog = PlaybookCatalog()
        catalog.insert(version: PlaybookVersion(versionID: 1, playbookID: "FTC", checksum: "abc", source: "",
            model: [], triggers: ["ComplaintLogged"], registeredAt: 0), playbook: playbook)
        let planner = BatchPlanner(catalog: catalog,
            engine: EngineConfiguration(agents: [Agent(id: "ai.fraud-labeler", delivery: .pull)]),
            messages: OutboundMessages(exchanges: .init()))
        let t0 = Instant(millisecondsSinceEpoch: 1_700_000_000_000)
        let started = try planner.plan([.init(.trigger(TriggerEvent(id: "e-1", type: "ComplaintLogged",
            payload: ["complaint_id": "C-1"])))], runs: [:], now: t0)
        let task = try #require(started.batch.dispatchedTasks.first)
        #expect(task.target == "pull" && task.agentID == "ai.fraud-labeler")
        #expect(!started.batch.outbox.contains { $0.type == "hms.task" }, "a pull task was published")
        let pulled = try #require(started.batch.pullTasks.first)
        #expect(pulled.taskID == task.taskID && pulled.attempt == 1 && pulled.assignee == "ai.fraud-labeler")
        let message = try JSONValue(parsing: pulled.body)
        #expect(message["type"] == "hms.task" && message["payload"]?["complaint_id"] == "C-1")

        // The next step's agent is not a pull agent: its task is published as before.
        let run = try #require(started.batch.runs.first)
        let answered = try planner.plan([.init(.worker(.taskResult(.init(taskID: task.taskID, attempt: 1,
            outcome: .completed(output: [:]))), messageID: nil))], runs: [run.runID: run], now: t0 + .seconds(1))
        #expect(answered.batch.pullTasks.isEmpty)
        #expect(answered.batch.outbox.contains { $0.type == "hms.task" && $0.routingKey == "task.svc.email" })
    }
}
