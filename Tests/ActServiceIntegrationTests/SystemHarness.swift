import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// What a test worker does with one task.
enum Answer: Sendable {
    case complete(JSONValue)
    case fail(String, retryable: Bool)
    /// No answer: the task waits (an investigator who never replies).
    case ignore
}

/// A task message as workers receive it.
struct TaskMessage: Sendable {
    var body: JSONValue
    var routingKey: String
    var taskID: String { body["task_id"]?.stringValue ?? "" }
    var stepID: String { body["step_id"]?.stringValue ?? "" }
    var runID: String { body["run_id"]?.stringValue ?? "" }
    var assignee: String { body["assignee"]?.stringValue ?? "" }
    var attempt: Int {
        body["attempt"]?.numberValue?.intValue ?? 0
    }
    var isCompensation: Bool { body["compensation"] == .bool(true) }
}

/// Everything published on the governance exchange and to the tasks exchange, in arrival order.
final class Recorder: Sendable {
    struct Message: Sendable {
        var routingKey: String
        var body: JSONValue
        var headers: [String: AMQPFieldValue]
    }

    private let messages = Mutex<[Message]>([])

    func append(_ message: Message) { messages.withLock { $0.append(message) } }
    var all: [Message] { messages.withLock { $0 } }

    func count(_ routingKey: String, run: String? = nil) -> Int {
        all.filter { $0.routingKey == routingKey && (run == nil || $0.body["run_id"]?.stringValue == run) }.count
    }

    /// Waits until `predicate` holds over the recorded messages, or fails the test after `timeout`.
    func wait(_ what: String, timeout: Duration = .seconds(30), until predicate: ([Message]) -> Bool,
        sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws
    {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if predicate(all) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out waiting for \(what); saw \(all.map(\.routingKey))", sourceLocation: sourceLocation)
        throw CancellationError()
    }
}

/// One or more `hms-act` replicas on a schema and exchange names of their own, a worker answering tasks, and
/// recorders of the governance exchange and of every task message.
struct System: Sendable {
    let configuration: ServiceConfiguration
    let runtimes: [ServiceRuntime]
    let governance: Recorder
    let tasks: Recorder
    let worker: AMQPClient
    /// The folder holding the test's playbooks (for an `hms-act serve` process started by a test).
    let playbooksDirectory: String

    /// The first replica's orchestrator (tests with in-process replicas only).
    var orchestrator: Orchestrator { runtimes[0].orchestrator }
    /// The first replica's PostgreSQL store (runs, tasks, incidents to look at).
    var store: Store { runtimes[0].store }

    /// Publishes a trigger on the events exchange as the chapters' plain JSON (with AMQP `headers`).
    func emit(_ type: String, id: String = UUID().uuidString, payload: JSONValue = [:],
        headers: [String: AMQPFieldValue] = [:]) async throws
    {
        let body: JSONValue = ["type": .string(type), "id": .string(id), "payload": payload]
        let outcome = try await worker.publish(AMQPMessage(body: body.canonicalEncoding,
            exchange: configuration.amqp.exchanges.events, routingKey: type,
            properties: AMQPProperties(contentType: "application/json", headers: headers, messageID: id)))
        #expect(outcome == .confirmed, "trigger \(type) was not routed: \(outcome)")
    }

    /// Publishes a trigger, retrying while no queue is bound to its type yet (a starting `hms-act serve`
    /// binds its trigger queue once connected). A returned message was not enqueued, so retrying is safe.
    func emitWhenBound(_ type: String, id: String, payload: JSONValue = [:], timeout: Duration = .seconds(60)) async throws {
        let body: JSONValue = ["type": .string(type), "id": .string(id), "payload": payload]
        let message = AMQPMessage(body: body.canonicalEncoding, exchange: configuration.amqp.exchanges.events,
            routingKey: type, properties: AMQPProperties(contentType: "application/json", messageID: id))
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try await worker.publish(message) != .confirmed {
            guard clock.now < deadline else {
                Issue.record("no queue was bound to \(type) within \(timeout)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Publishes raw bytes on the events exchange.
    func emitRaw(_ routingKey: String, body: [UInt8], contentType: String = "application/json") async throws {
        _ = try await worker.publish(AMQPMessage(body: body, exchange: configuration.amqp.exchanges.events,
            routingKey: routingKey, properties: AMQPProperties(contentType: contentType)))
    }

    /// Publishes a worker message on the results exchange.
    func reply(_ body: JSONValue, routingKey: String = "result.test") async throws {
        _ = try await worker.publish(AMQPMessage(body: body.canonicalEncoding,
            exchange: configuration.amqp.exchanges.results, routingKey: routingKey,
            properties: AMQPProperties(contentType: "application/json")))
    }

    /// Waits for the run to finish and returns its governance end event's routing key.
    @discardableResult
    func waitForEnd(of run: String, timeout: Duration = .seconds(30)) async throws -> String {
        try await governance.wait("the end of run \(run)", timeout: timeout) { messages in
            messages.contains { $0.routingKey.hasPrefix("run.") && $0.body["run_id"]?.stringValue == run }
        }
        return governance.all.first { $0.routingKey.hasPrefix("run.") && $0.body["run_id"]?.stringValue == run }!.routingKey
    }

    /// Waits until the run's state says a wait step is waiting (so a signal finds it listening).
    func waitUntilWaiting(_ run: String) async throws {
        for _ in 0..<500 {
            if let row = try await store.run(id: run), String(decoding: row.state, as: UTF8.self).contains("\"waiting\"") {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("run \(run) never reached its wait")
    }

    /// The run started by the event with this id for this playbook.
    static func runID(playbook: String, eventID: String) -> String {
        OutboundMessages.runID(playbook: playbook, eventID: eventID).rawValue
    }
}

enum SystemHarness {
    /// Runs `body` against a live system: `replicas` hms-act runtimes sharing one schema, the given playbooks
    /// (YAML sources) and agents, and a worker answering every task with `answer`. Stops everything after.
    static func run(
        playbooks: [String],
        agents: [Agent] = [],
        replicas: Int = 1,
        configure: (inout ServiceConfiguration) -> Void = { _ in },
        wallClock: @escaping @Sendable () -> Instant = Orchestrator.wallClock,
        answer: @escaping @Sendable (TaskMessage) -> Answer,
        _ body: @escaping @Sendable (System) async throws -> Void
    ) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        var configuration = ServiceConfiguration()
        configuration.amqp.url = TestEnvironment.amqpURL
        configuration.amqp.queueType = "classic"
        configuration.amqp.prefetch = 200
        configuration.amqp.exchanges = .init()
        configuration.amqp.exchanges.events = "t\(suffix).events"
        configuration.amqp.exchanges.tasks = "t\(suffix).tasks"
        configuration.amqp.exchanges.results = "t\(suffix).results"
        configuration.amqp.exchanges.governance = "t\(suffix).governance"
        configuration.amqp.exchanges.dead = "t\(suffix).dead"
        configuration.amqp.queues.triggers = "t\(suffix).triggers"
        configuration.amqp.queues.results = "t\(suffix).results"
        configuration.amqp.queues.dead = "t\(suffix).dead"
        configuration.postgres.url = TestEnvironment.postgresURL
        configuration.postgres.schema = "s_\(suffix)"
        configuration.engine.timerPollMilliseconds = 100
        configuration.audit.signingKeyText = AuditSigningKey.generate().base64
        configure(&configuration)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hms-act-\(suffix)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (index, source) in playbooks.enumerated() {
            try source.write(toFile: "\(directory)/\(index).yaml", atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let logger = TestEnvironment.logger("test.system")
        var runtimes: [ServiceRuntime] = []
        for replica in 0..<replicas {
            runtimes.append(try await ServiceRuntime.make(configuration: configuration, agents: agents,
                registerPlaybooksFrom: replica == 0 ? directory : nil, logger: logger, wallClock: wallClock))
        }
        // Without an in-process replica, the schema is created by the test's own `hms-act serve` process;
        // the recorders' topology (declared below) already covers the exchanges it publishes to.
        let exchanges = configuration.amqp.exchanges
        let workerQueue = "t\(suffix).worker"
        let governanceQueue = "t\(suffix).governance-all"
        let tapQueue = "t\(suffix).tasks-all"
        // The trigger bindings too: the worker may connect and publish before a replica has declared them,
        // and a trigger nobody has bound yet comes back unroutable (a race that failed tests on a busy machine).
        let triggers = playbooks.flatMap { (try? PlaybookLoader.load(yaml: $0, file: nil))?.playbook.triggers ?? [] }
        var topology = configuration.topology(triggerTypes: triggers)
        // Quorum like hms-act's own when the broker is a cluster (a classic queue is gone while its node is down).
        let kind: AMQPTopology.Queue.Kind = configuration.amqp.queueType == "quorum" ? .quorum : .classic
        topology.queues += [AMQPTopology.Queue(workerQueue, kind: kind), AMQPTopology.Queue(governanceQueue, kind: kind),
            AMQPTopology.Queue(tapQueue, kind: kind)]
        topology.bindings += [
            AMQPTopology.Binding(queue: workerQueue, exchange: exchanges.tasks, routingKey: "task.#"),
            AMQPTopology.Binding(queue: tapQueue, exchange: exchanges.tasks, routingKey: "#"),
            AMQPTopology.Binding(queue: governanceQueue, exchange: exchanges.governance, routingKey: "#"),
        ]
        let worker = AMQPClient(configuration: try AMQPConfiguration(url: configuration.amqp.url), topology: topology,
            logger: logger)
        let system = System(configuration: configuration, runtimes: runtimes, governance: Recorder(), tasks: Recorder(),
            worker: worker, playbooksDirectory: directory)

        let services: [any Service] = [worker] + runtimes.flatMap(\.services)
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                try await consume(worker, queue: governanceQueue) { delivery, body in
                    system.governance.append(.init(routingKey: delivery.routingKey, body: body,
                        headers: delivery.properties.headers))
                }
            }
            tasks.addTask {
                try await consume(worker, queue: tapQueue) { delivery, body in
                    system.tasks.append(.init(routingKey: delivery.routingKey, body: body,
                        headers: delivery.properties.headers))
                }
            }
            tasks.addTask {
                try await consume(worker, queue: workerQueue) { delivery, body in
                    let task = TaskMessage(body: body, routingKey: delivery.routingKey)
                    let reply: JSONValue
                    switch answer(task) {
                    case .ignore: return
                    case .complete(let output):
                        reply = ["task_id": .string(task.taskID), "attempt": .int(task.attempt),
                            "status": "completed", "output": output]
                    case .fail(let reason, let retryable):
                        reply = ["task_id": .string(task.taskID), "attempt": .int(task.attempt),
                            "status": "failed", "reason": .string(reason), "retryable": .bool(retryable)]
                    }
                    let replyTo = body["reply_to"]?["routing_key"]?.stringValue ?? "result.test"
                    _ = try await worker.publish(AMQPMessage(body: reply.canonicalEncoding, exchange: exchanges.results,
                        routingKey: replyTo, properties: AMQPProperties(contentType: "application/json")))
                }
            }
            do {
                try await body(system)
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                try? await TestDatabase.drop(configuration.postgres.schema)
                throw error
            }
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
        }
        try? await TestDatabase.drop(configuration.postgres.schema)
    }

    /// Consumes a queue, decoding JSON bodies (numbers exactly, as a worker reading the bytes sees them),
    /// acking each message after `handle`.
    private static func consume(_ client: AMQPClient, queue: String,
        _ handle: @Sendable (AMQPDelivery, JSONValue) async throws -> Void) async throws
    {
        let consumer = try await client.consume(queue: queue, prefetch: 100)
        for try await delivery in consumer {
            let body = (try? JSONValue(parsing: delivery.body)) ?? .null
            try await handle(delivery, body)
            do {
                try await client.ack(delivery.deliveryTag)
            } catch {
                // The delivery's connection is gone (a broker fault under test): the broker gives it again and
                // the recorders take the repeat. Ending here stopped recording for the rest of the test, and
                // broker-closes-connections then missed governance messages that were published.
            }
        }
    }
}

/// The most intervals `[start, end)` open at one instant (an end and a start at the same instant do not
/// overlap): how many tasks or runs went at once, from their recorded instants.
func mostAtOnce(_ intervals: [(start: Int64, end: Int64)]) -> Int {
    var edges: [(at: Int64, change: Int)] = []
    for interval in intervals { edges += [(interval.start, 1), (interval.end, -1)] }
    edges.sort { $0.at != $1.at ? $0.at < $1.at : $0.change < $1.change }
    var open = 0
    var most = 0
    for (_, change) in edges {
        open += change
        most = max(most, open)
    }
    return most
}
