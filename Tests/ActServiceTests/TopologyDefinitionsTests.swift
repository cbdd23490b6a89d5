import ActAMQP
import ActPlaybook
import ActService
import Foundation
import Testing

/// `deploy/rabbitmq/definitions.json` (what `rabbitmqctl import_definitions` loads in production and in the
/// local stack) must declare exactly what hms-act declares on every (re)connect: a queue or exchange with
/// other arguments makes the service's redeclaration fail with 406 PRECONDITION_FAILED.
@Suite struct TopologyDefinitionsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The parts of the definitions format that the file uses.
    struct Definitions: Decodable {
        struct Named: Decodable { var name: String }
        struct Exchange: Decodable {
            var name, vhost, type: String
            var durable, auto_delete, `internal`: Bool
            var arguments: [String: Argument]
        }
        struct Queue: Decodable {
            var name, vhost: String
            var durable, auto_delete: Bool
            var arguments: [String: Argument]
        }
        struct Binding: Decodable, Hashable {
            var source, vhost, destination, destination_type, routing_key: String
            var arguments: [String: Argument]
        }
        struct Policy: Decodable {
            var name, vhost, pattern: String
            var applyTo: String
            var priority: Int
            var definition: [String: Argument]
            enum CodingKeys: String, CodingKey {
                case name, vhost, pattern, priority, definition
                case applyTo = "apply-to"
            }
        }
        var vhosts: [Named]
        var exchanges: [Exchange]
        var queues: [Queue]
        var bindings: [Binding]
        var policies: [Policy]
        /// Users are not in the file: deploy/rabbitmq/create-users.sh creates them with passwords from the
        /// environment.
        var users: [Named]?
    }

    /// A queue or policy argument: text or an integer.
    enum Argument: Decodable, Hashable, CustomStringConvertible {
        case string(String)
        case int(Int64)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                self = .int(number)
            } else {
                self = .string(try container.decode(String.self))
            }
        }

        /// The argument as the service sends it; nil for kinds the definitions never carry.
        init?(_ field: AMQPFieldValue) {
            switch field {
            case .string(let text): self = .string(text)
            case .int(let number): self = .int(number)
            default: return nil
            }
        }

        var description: String {
            switch self {
            case .string(let text): "\"\(text)\""
            case .int(let number): "\(number)"
            }
        }
    }

    static func definitions() throws -> Definitions {
        let url = root.appendingPathComponent("deploy/rabbitmq/definitions.json")
        return try JSONDecoder().decode(Definitions.self, from: Data(contentsOf: url))
    }

    /// The virtual host of the default `amqp.url` (`%2f`, i.e. `/`).
    static let vhost = "/"

    @Test func exchangesAreTheServicesExchanges() throws {
        let definitions = try Self.definitions()
        let topology = ServiceConfiguration().topology(triggerTypes: [])
        #expect(definitions.vhosts.map(\.name) == [Self.vhost])
        #expect(definitions.users == nil, "users come from create-users.sh, with passwords from the environment")
        #expect(definitions.exchanges.map(\.name).sorted() == topology.exchanges.map(\.name).sorted())
        for exchange in topology.exchanges {
            let file = try #require(definitions.exchanges.first { $0.name == exchange.name })
            #expect(file.vhost == Self.vhost)
            #expect(file.type == exchange.kind.name, "\(exchange.name)")
            #expect(file.durable == exchange.durable, "\(exchange.name)")
            #expect(file.auto_delete == exchange.autoDelete, "\(exchange.name)")
            #expect(!file.`internal`, "\(exchange.name)")
            #expect(file.arguments == exchange.arguments.compactMapValues(Argument.init), "\(exchange.name)")
        }
    }

    @Test func queuesHaveTheServicesArguments() throws {
        let definitions = try Self.definitions()
        let topology = ServiceConfiguration().topology(triggerTypes: [])
        #expect(definitions.queues.map(\.name).sorted() == topology.queues.map(\.name).sorted())
        for queue in topology.queues {
            let file = try #require(definitions.queues.first { $0.name == queue.name })
            let declared = queue.declareArguments.compactMapValues(Argument.init)
            #expect(declared.count == queue.declareArguments.count, "\(queue.name): an argument the test cannot compare")
            #expect(file.vhost == Self.vhost)
            #expect(file.durable == queue.durable, "\(queue.name)")
            #expect(file.auto_delete == queue.autoDelete, "\(queue.name)")
            #expect(!queue.exclusive)
            #expect(file.arguments == declared, "\(queue.name): the file has \(file.arguments), the service declares \(declared)")
        }
        // The defaults the file was written for: quorum queues dead-lettering to hms.dead after 5 deliveries.
        let triggers = try #require(definitions.queues.first { $0.name == "hms-act.triggers" })
        #expect(triggers.arguments == ["x-queue-type": .string("quorum"), "x-dead-letter-exchange": .string("hms.dead"),
            "x-delivery-limit": .int(5)])
    }

    @Test func bindingsAreTheStaticOnesTriggersAreBoundByTheService() throws {
        let definitions = try Self.definitions()
        let configuration = ServiceConfiguration()
        let file = Set(definitions.bindings.map { AMQPTopology.Binding(queue: $0.destination, exchange: $0.source, routingKey: $0.routing_key) })
        #expect(definitions.bindings.allSatisfy { $0.destination_type == "queue" && $0.arguments.isEmpty && $0.vhost == Self.vhost })
        #expect(file == Set(configuration.topology(triggerTypes: []).bindings))

        // Trigger bindings follow the registered playbooks (any replica, any time, through the API): the
        // service makes them. For the sample playbooks they are exactly what it adds to the file's.
        let playbooks = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("playbooks").path)
            .filter { $0.hasSuffix(".yaml") }
        let triggers = try playbooks.flatMap {
            try PlaybookLoader.load(contentsOf: Self.root.appendingPathComponent("playbooks/\($0)").path).playbook.triggers
        }
        #expect(triggers.contains("noise.complaint.filed"))
        let runtime = Set(configuration.topology(triggerTypes: triggers).bindings)
        #expect(runtime.subtracting(file) == Set(triggers.map {
            AMQPTopology.Binding(queue: configuration.amqp.queues.triggers, exchange: configuration.amqp.exchanges.events, routingKey: $0)
        }))
        #expect(!file.contains { $0.exchange == configuration.amqp.exchanges.events })
    }

    @Test func thePoliciesDeadLetterConsumerQueuesNotTheServices() throws {
        let definitions = try Self.definitions()
        let amqp = ServiceConfiguration().amqp
        // Two policies on the same queues: RabbitMQ skips a policy with a key the queue type does not support
        // (classic queues have no delivery-limit), so classic queues get the first, quorum queues the second.
        let policies = definitions.policies.sorted { $0.priority < $1.priority }
        #expect(policies.map(\.name) == ["hms-consumer-queues", "hms-consumer-quorum-queues"])
        #expect(policies.map(\.definition) == [
            ["dead-letter-exchange": .string(amqp.exchanges.dead)],
            ["dead-letter-exchange": .string(amqp.exchanges.dead), "delivery-limit": .int(Int64(amqp.deliveryLimit))],
        ])
        #expect(policies.allSatisfy { $0.applyTo == "queues" && $0.vhost == Self.vhost })
        #expect(Set(policies.map(\.pattern)).count == 1)
        // x-queue-type cannot come from a policy: it is a declare argument only.
        #expect(policies.allSatisfy { $0.definition["queue-type"] == nil && $0.definition["x-queue-type"] == nil })
        let policy = policies[0]

        let pattern = try NSRegularExpression(pattern: policy.pattern)
        func matches(_ name: String) -> Bool {
            pattern.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
        // Workers' and listeners' queues: the demo worker's, an agent's own, the Python examples'.
        for name in ["demo-worker", "inspection.queue", "python-fraud-labeler", "governance.sla-violations"] {
            #expect(matches(name), "\(name) should get dead-lettering from the policy")
        }
        // hms-act's own queues carry their arguments; hms-act.dead must not dead-letter into itself.
        for name in [amqp.queues.triggers, amqp.queues.results, amqp.queues.dead, "amq.gen-123"] {
            #expect(!matches(name), "\(name) should not match the worker policy")
        }
    }
}
