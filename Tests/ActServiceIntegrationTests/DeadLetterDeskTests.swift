import ActAMQP
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// The dead-letter desk against the real broker and database: an event bound to hms-act before its playbook
/// exists is dead-lettered with the reason (not dropped); `collect` moves it into the database under the
/// operator's broker user; once the playbook is registered, `replay` publishes it again to where it was
/// first published and it starts its run, although hms-act had seen its id (a refused input leaves no inbox
/// key); a second replay is refused, and discard is recorded.
@Suite struct DeadLetterDeskTests {
    static let drill = """
        id: Drill.v1
        trigger: drill.requested
        steps:
          - id: check
            service: drill.check
        """

    @Test func aDeadLetteredTriggerIsCollectedAndStartsItsRunWhenReplayedAfterItsPlaybookIsRegistered() async throws {
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.ftc]) { _ in .complete(["ok": true]) } _: { system in
            let operatorBroker = try await AMQPConnection.connect(
                configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: TestEnvironment.logger("test.dead"))
            defer { Task { await operatorBroker.close() } }
            let pump = Task { try await operatorBroker.run() }
            defer { pump.cancel() }
            // The platform team binds the event type to hms-act's trigger queue before Drill.v1 is registered:
            // the events are dead-lettered with the reason, not dropped.
            let amqp = system.configuration.amqp
            try await system.emitWhenBound("ComplaintLogged", id: "warm-up")  // the replica declared its queues
            try await operatorBroker.bind(AMQPTopology.Binding(queue: amqp.queues.triggers, exchange: amqp.exchanges.events,
                routingKey: "drill.requested"))
            try await system.emit("drill.requested", id: "drill-1", payload: ["n": 1])
            try await system.emit("drill.requested", id: "drill-2", payload: ["n": 2])

            let store = system.store
            let deadQueue = system.configuration.amqp.queues.dead
            var ids: [Int64] = []
            for _ in 0..<200 where ids.count < 2 {
                ids += try await DeadLetterDesk.collect(from: deadQueue, on: operatorBroker, into: store, limit: 10,
                    now: { Int64(Date().timeIntervalSince1970 * 1_000) })
                if ids.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(ids.count == 2)
            let letters = try await store.listDeadLetters(status: .dead, limit: 10)
            let first = try #require(letters.first { $0.messageID == "drill-1" })
            #expect(first.exchange == system.configuration.amqp.exchanges.events && first.routingKey == "drill.requested")
            #expect(first.queue == system.configuration.amqp.queues.triggers)
            #expect(first.reason.hasPrefix("no registered playbook is triggered by drill.requested; register the playbook"))
            #expect(try JSONValue(parsing: first.body)["payload"] == ["n": 1])
            #expect(try await operatorBroker.messageCount(ofQueue: deadQueue) == 0)

            _ = try await PlaybookRegistrar.register(source: Self.drill, file: "drill.yaml", extraTriggers: [],
                agents: [], store: store, logger: TestEnvironment.logger("test.dead"))
            let run = System.runID(playbook: "Drill.v1", eventID: "drill-1")
            _ = try await DeadLetterDesk.replay(first.id, on: operatorBroker, store: store, actor: "ops#1",
                note: "playbook registered")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
            let replayed = try #require(try await store.deadLetter(id: first.id))
            #expect(replayed.status == .replayed && replayed.handledBy == "ops#1" && replayed.note == "playbook registered")

            // A replayed letter is not replayed twice; the other is discarded, with who and why.
            await #expect(throws: DeadLetterDesk.Failure.self) {
                _ = try await DeadLetterDesk.replay(first.id, on: operatorBroker, store: store, actor: "ops#1", note: nil)
            }
            let second = try #require(letters.first { $0.messageID == "drill-2" })
            try await DeadLetterDesk.discard(second.id, store: store, actor: "ops#2", note: "a drill")
            #expect(try await store.deadLetter(id: second.id)?.status == .discarded)
            #expect(try await store.listDeadLetters(status: .dead, limit: 10).isEmpty)
        }
    }
}
