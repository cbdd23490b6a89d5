public import ActAMQP
import ActPlaybook
public import ActStore
internal import Foundation

extension InboundMessage {
    /// Reads what hms-act needs from a delivery.
    public init(delivery: AMQPDelivery) {
        self.init(
            exchange: delivery.exchange, routingKey: delivery.routingKey,
            contentType: delivery.properties.contentType, type: delivery.properties.type,
            messageID: delivery.properties.messageID, correlationID: delivery.properties.correlationID,
            timestamp: delivery.properties.timestamp.map { Int64($0.timeIntervalSince1970) },
            headers: delivery.properties.headers.mapValues(JSONValue.init(field:)), body: delivery.body,
            userID: delivery.properties.userID)
    }
}

extension JSONValue {
    /// An AMQP table value as JSON: bytes become base64 text, timestamps RFC 3339 seconds.
    init(field: AMQPFieldValue) {
        switch field {
        case .string(let text): self = .string(text)
        case .int(let number): self = .int(number)
        case .bool(let flag): self = .bool(flag)
        case .double(let number): self = JSONNumber(number).map(JSONValue.number) ?? .null  // NaN, ±infinity
        case .table(let table): self = .object(table.mapValues(JSONValue.init(field:)))
        case .array(let items): self = .array(items.map(JSONValue.init(field:)))
        case .bytes(let bytes): self = .string(Data(bytes).base64EncodedString())
        case .timestamp(let date): self = .int(Int64(date.timeIntervalSince1970.rounded(.down)))
        case .void: self = .null
        }
    }
}

extension AMQPMessage {
    /// The broker message for an outbox row: persistent, `mandatory`, with all the contract's properties.
    public init(outbox message: OutboxMessage) {
        self.init(
            body: message.body, exchange: message.exchange, routingKey: message.routingKey,
            properties: AMQPProperties(
                contentType: message.contentType,
                headers: message.headers.mapValues(AMQPFieldValue.string),
                persistent: true,
                priority: message.headers["x-hms-priority"].flatMap { UInt8($0) },
                correlationID: message.correlationID,
                messageID: message.messageID,
                timestamp: Date(timeIntervalSince1970: Double(message.createdAt) / 1_000),
                type: message.type,
                appID: "hms-act"),
            mandatory: true)
    }
}

extension ServiceConfiguration {
    /// What hms-act declares on every (re)connect: its exchanges, its own queues (dead-lettering to
    /// `hms.dead`) and their bindings. Trigger bindings come from the registered playbooks.
    public func topology(triggerTypes: [String]) -> AMQPTopology {
        let exchanges = amqp.exchanges
        let queues = amqp.queues
        let kind: AMQPTopology.Queue.Kind = amqp.queueType == "classic" ? .classic : .quorum
        func queue(_ name: String) -> AMQPTopology.Queue {
            AMQPTopology.Queue(name, kind: kind, deadLetterExchange: exchanges.dead,
                deliveryLimit: kind == .quorum ? amqp.deliveryLimit : nil)
        }
        return AMQPTopology(
            exchanges: [exchanges.events, exchanges.tasks, exchanges.results, exchanges.governance, exchanges.dead].map {
                AMQPTopology.Exchange($0, kind: .topic)
            },
            queues: [queue(queues.triggers), queue(queues.results),
                AMQPTopology.Queue(queues.dead, kind: kind)],
            bindings: [
                AMQPTopology.Binding(queue: queues.results, exchange: exchanges.results, routingKey: "result.#"),
                AMQPTopology.Binding(queue: queues.dead, exchange: exchanges.dead, routingKey: "#"),
            ] + triggerTypes.map {
                AMQPTopology.Binding(queue: queues.triggers, exchange: exchanges.events, routingKey: $0)
            })
    }
}
