import ActAMQP
import ActService
import ActTesting
import Foundation
import Testing

/// The stack's broker has the production topology (deploy/rabbitmq/definitions.json) and the
/// least-privilege users of deploy/rabbitmq/create-users.sh. These tests check both directions of the
/// permission model: each user can do its job, and what it should not do is refused with 403 ACCESS_REFUSED.
///
/// Everything published here uses routing keys nothing is bound to, so no queue (and no demo run after the
/// tests) ever sees these messages; the declarations are those hms-act and the demo worker make anyway.
@Suite struct LeastPrivilegeTests {
    static let configuration = ServiceConfiguration()
    static var exchanges: ServiceConfiguration.AMQP.Exchanges { configuration.amqp.exchanges }
    static var queues: ServiceConfiguration.AMQP.Queues { configuration.amqp.queues }

    /// A routing key no binding matches (`result.#` and `task.#` bindings do not match it either).
    static func unroutableKey() -> String { "least-privilege-test.\(UUID().uuidString.lowercased())" }

    static func message(to exchange: String, key: String = unroutableKey()) -> AMQPMessage {
        AMQPMessage(body: Array(#"{"test": "least privilege"}"#.utf8), exchange: exchange, routingKey: key,
            properties: AMQPProperties(contentType: "application/json"), mandatory: false)
    }

    /// Runs `body` on a connection as `user`; a fresh connection per check, so that a refused operation
    /// (which closes its channel) cannot affect the next one.
    static func withConnection<T: Sendable>(
        as user: TestEnvironment.AMQPUser, _ body: (AMQPConnection) async throws -> T
    ) async throws -> T {
        var amqp = try AMQPConfiguration(url: try TestEnvironment.amqpURL(user))
        amqp.connectionName = "hms-act least-privilege test (\(user))"
        let connection = try await AMQPConnection.connect(configuration: amqp,
            logger: TestEnvironment.logger("test.amqp.\(user)"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await connection.run() }
            defer { group.cancelAll() }
            do {
                let result = try await body(connection)
                await connection.close()
                return result
            } catch {
                await connection.close()
                throw error
            }
        }
    }

    /// A publish the broker refused (it closes the channel) as the error it carries.
    static func published(_ outcome: PublishOutcome) throws {
        if case .channelClosed(let code, let text) = outcome { throw AMQPError(.channelClosed, replyCode: code, replyText: text) }
    }

    /// Expects `operation`, run as `user`, to be refused with 403 ACCESS_REFUSED.
    static func expectRefused(
        as user: TestEnvironment.AMQPUser, _ what: Comment, sourceLocation: SourceLocation = #_sourceLocation,
        _ operation: @escaping @Sendable (AMQPConnection) async throws -> Void
    ) async throws {
        let outcome: Result<Void, any Error> = try await withConnection(as: user) { connection in
            do {
                try await operation(connection)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success:
            Issue.record("\(user) was allowed to \(what)", sourceLocation: sourceLocation)
        case .failure(let error):
            #expect((error as? AMQPError)?.replyCode == 403, "\(user) may not \(what), but the error was \(error)",
                sourceLocation: sourceLocation)
        }
    }

    // MARK: hms-act

    @Test func theServiceDeclaresTheImportedTopologyConsumesAndPublishes() async throws {
        // The same declarations `hms-act serve` makes on every (re)connect: equivalent to the imported
        // definitions (else 406) and within the user's rights (else 403). The trigger binding is the demo's.
        let topology = Self.configuration.topology(triggerTypes: ["noise.complaint.filed"])
        try await Self.withConnection(as: .service) { connection in
            try await connection.declare(topology)
            for queue in [Self.queues.triggers, Self.queues.results] {
                let tag = "least-privilege-test-\(UUID().uuidString.lowercased())"
                _ = try await connection.consume(queue: queue, prefetch: 1, consumerTag: tag)
                try await connection.cancel(consumerTag: tag)
            }
            // Tasks (to a routing key and to an agent's own queue through the default exchange) and governance
            // events. (Writing to hms.dead was needed above already: declaring a queue that dead-letters to an
            // exchange needs write on it; a test message there would land in hms-act.dead, bound with `#`.)
            let outcomes = try await connection.publish([
                Self.message(to: Self.exchanges.tasks), Self.message(to: ""), Self.message(to: Self.exchanges.governance),
            ])
            #expect(outcomes == Array(repeating: .confirmed, count: 3))
        }
    }

    @Test func theServiceMayNotPublishEventsOrResultsNorTouchOthersQueues() async throws {
        try await Self.expectRefused(as: .service, "publish on \(Self.exchanges.events)") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.events)))
        }
        try await Self.expectRefused(as: .service, "publish on \(Self.exchanges.results)") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.results)))
        }
        try await Self.expectRefused(as: .service, "declare a worker's queue") {
            try await $0.declareQueue(AMQPTopology.Queue("demo-worker"))
        }
        try await Self.expectRefused(as: .service, "read its dead-letter queue (operators do)") {
            _ = try await $0.consume(queue: Self.queues.dead, prefetch: 1)
        }
    }

    // MARK: Workers

    @Test func theWorkerUsesItsOwnQueueAndAnswersOnResults() async throws {
        // What `hms-act worker --demo` declares: the exchanges only checked (passive), its own queue bound.
        let topology = AMQPTopology(
            exchanges: [.init(Self.exchanges.tasks, passive: true), .init(Self.exchanges.results, passive: true)],
            queues: [.init("demo-worker"), .init("inspection.queue")],
            bindings: [.init(queue: "demo-worker", exchange: Self.exchanges.tasks, routingKey: "task.#")])
        try await Self.withConnection(as: .worker) { connection in
            try await connection.declare(topology)
            let tag = "least-privilege-test-\(UUID().uuidString.lowercased())"
            _ = try await connection.consume(queue: "inspection.queue", prefetch: 1, consumerTag: tag)
            try await connection.cancel(consumerTag: tag)
            #expect(try await connection.publish(Self.message(to: Self.exchanges.results)) == .confirmed)
        }
    }

    @Test func theWorkerMayNotReachBeyondItsQueues() async throws {
        try await Self.expectRefused(as: .worker, "declare (and so could delete) \(Self.exchanges.tasks)") {
            try await $0.declareExchange(.init(Self.exchanges.tasks))
        }
        try await Self.expectRefused(as: .worker, "publish tasks") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.tasks)))
        }
        try await Self.expectRefused(as: .worker, "publish events") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.events)))
        }
        try await Self.expectRefused(as: .worker, "read hms-act's results queue") {
            _ = try await $0.consume(queue: Self.queues.results, prefetch: 1)
        }
        try await Self.expectRefused(as: .worker, "declare a queue that is not its own") {
            try await $0.declareQueue(AMQPTopology.Queue("least-privilege-test-other-worker"))
        }
        try await Self.expectRefused(as: .worker, "bind the events exchange into its queue") {
            try await $0.bind(.init(queue: "demo-worker", exchange: Self.exchanges.events, routingKey: "#"))
        }
    }

    // MARK: Event publishers

    @Test func thePublisherOnlyPublishesEvents() async throws {
        let outcome = try await Self.withConnection(as: .publisher) { connection in
            try await connection.publish(Self.message(to: Self.exchanges.events))
        }
        #expect(outcome == .confirmed)
        try await Self.expectRefused(as: .publisher, "publish tasks") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.tasks)))
        }
        try await Self.expectRefused(as: .publisher, "publish results") {
            try Self.published(await $0.publish(Self.message(to: Self.exchanges.results)))
        }
        try await Self.expectRefused(as: .publisher, "declare a queue") {
            try await $0.declareQueue(AMQPTopology.Queue("least-privilege-test-publisher"))
        }
    }
}
