public import ActAMQP
public import ActService
internal import Foundation
internal import Synchronization

/// The ``MessageBroker`` port in memory, with RabbitMQ's rules that hms-act relies on: topic routing
/// (`*`, `#`) and the default exchange, `mandatory` messages with no queue returned (312 NO_ROUTE), a
/// message above `maxMessageBytes` closing the channel (406) with every later message of its confirm batch
/// unsettled, prefetch, `multiple` acks, and redelivery (`redelivered` set) of what was unacknowledged
/// when the connection drops. ``faults`` makes a chosen call fail; ``dropConnection()`` and ``nackNext(_:)``
/// inject the rest.
public final class InMemoryBroker: MessageBroker, Sendable {
    /// The calls ``faults`` can make fail.
    public enum Call: Hashable, Sendable {
        case publish, subscribe, ack, bind
    }

    /// A message as a queue holds it.
    public struct Stored: Sendable {
        public var message: AMQPMessage
        public var redelivered: Bool
    }

    /// A consumer's waiting `next()` and what it now receives.
    private typealias Ready = (CheckedContinuation<[AMQPDelivery], any Error>, [AMQPDelivery])

    private struct Consumer {
        var queue: String
        var prefetch: Int
        var channel: UInt16
        var nextTag: UInt64 = 1
        /// Delivered and not acknowledged, by tag.
        var unacked: [(tag: UInt64, stored: Stored)] = []
        var waiter: CheckedContinuation<[AMQPDelivery], any Error>?
        var cancelled = false
    }

    private struct State {
        var queues: [String: [Stored]] = [:]
        var bindings: [AMQPTopology.Binding] = []
        var consumers: [String: Consumer] = [:]
        var connectionID: UInt64 = 1
        var connected = true
        var nextChannel: UInt16 = 1
        var nacks = 0
        /// Every message the broker confirmed, in order.
        var confirmed: [AMQPMessage] = []
    }

    /// Planned failures.
    public let faults = FaultPlan<Call>()
    /// The largest body accepted (RabbitMQ's `max_message_size`); 0 for no limit.
    public let maxMessageBytes: Int
    private let state = Mutex(State())

    /// - Parameters:
    ///   - queues: Queues that exist from the start.
    ///   - bindings: Bindings that exist from the start.
    public init(queues: [String] = [], bindings: [AMQPTopology.Binding] = [], maxMessageBytes: Int = 0) {
        self.maxMessageBytes = maxMessageBytes
        state.withLock { state in
            for queue in queues + bindings.map(\.queue) where state.queues[queue] == nil { state.queues[queue] = [] }
            state.bindings = bindings
        }
    }

    // MARK: Looking and injecting

    /// Every message the broker confirmed, in order.
    public var confirmed: [AMQPMessage] { state.withLock { $0.confirmed } }

    /// The messages waiting in `queue` (not delivered, or delivered and not acknowledged), in order.
    public func messages(in queue: String) -> [Stored] {
        state.withLock { state in
            let unacked = state.consumers.values.filter { $0.queue == queue }.flatMap { $0.unacked.map(\.stored) }
            return unacked + (state.queues[queue] ?? [])
        }
    }

    /// Declares a queue.
    public func declare(queue: String) {
        state.withLock { state in
            if state.queues[queue] == nil { state.queues[queue] = [] }
        }
    }

    /// The connection drops: every unacknowledged delivery goes back to the front of its queue, marked
    /// redelivered, and acks of earlier deliveries fail as stale. Consumers resume on the next connection.
    public func dropConnection() {
        let waiters = state.withLock { state -> [Ready] in
            state.connectionID += 1
            for (tag, var consumer) in state.consumers {
                let returned = consumer.unacked.map { Stored(message: $0.stored.message, redelivered: true) }
                state.queues[consumer.queue, default: []].insert(contentsOf: returned, at: 0)
                consumer.unacked = []
                state.consumers[tag] = consumer
            }
            return Self.deliverReady(&state)
        }
        for (waiter, deliveries) in waiters { waiter.resume(returning: deliveries) }
    }

    /// The next `count` published messages are nacked (the broker could not store them).
    public func nackNext(_ count: Int) {
        state.withLock { $0.nacks += count }
    }

    // MARK: MessageBroker

    public func publish(_ messages: [AMQPMessage]) async throws -> [PublishOutcome] {
        try faults.before(.publish)
        let (outcomes, waiters) = state.withLock { state in
            var outcomes: [PublishOutcome] = []
            var closed: (UInt16, String)?
            for message in messages {
                if let closed {
                    outcomes.append(.channelClosed(replyCode: closed.0, replyText: closed.1))
                    continue
                }
                if maxMessageBytes > 0, message.body.count > maxMessageBytes {
                    closed = (406, "PRECONDITION_FAILED - message size \(message.body.count) is larger than configured "
                        + "max size \(maxMessageBytes)")
                    outcomes.append(.channelClosed(replyCode: closed!.0, replyText: closed!.1))
                    continue
                }
                if state.nacks > 0 {
                    state.nacks -= 1
                    outcomes.append(.nacked)
                    continue
                }
                let queues = Self.route(message, state)
                if queues.isEmpty, message.mandatory {
                    outcomes.append(.returned(replyCode: 312, replyText: "NO_ROUTE"))
                    continue
                }
                for queue in queues {
                    state.queues[queue, default: []].append(Stored(message: message, redelivered: false))
                }
                state.confirmed.append(message)
                outcomes.append(.confirmed)
            }
            return (outcomes, Self.deliverReady(&state))
        }
        for (waiter, deliveries) in waiters { waiter.resume(returning: deliveries) }
        try faults.after(.publish)
        return outcomes
    }

    public func subscribe(queue: String, prefetch: UInt16, consumerTag: String) async throws -> any BrokerSubscription {
        try faults.before(.subscribe)
        try state.withLock { state in
            guard state.queues[queue] != nil else {
                throw AMQPError(.channelClosed, replyCode: 404, replyText: "NOT_FOUND - no queue '\(queue)'")
            }
            state.consumers[consumerTag] = Consumer(queue: queue, prefetch: prefetch == 0 ? Int.max : Int(prefetch),
                channel: state.nextChannel)
            state.nextChannel += 1
        }
        return Subscription(broker: self, tag: consumerTag)
    }

    public func ack(_ tag: AMQPDeliveryTag, multiple: Bool) async throws {
        try faults.before(.ack)
        let waiters = try state.withLock { state -> [Ready] in
            guard tag.connectionID == state.connectionID else {
                throw AMQPError(.staleDeliveryTag, replyText: "delivery \(tag.value) came on a connection that is gone")
            }
            guard let name = state.consumers.first(where: { $0.value.channel == tag.channel })?.key else { return [] }
            state.consumers[name]!.unacked.removeAll { multiple ? $0.tag <= tag.value : $0.tag == tag.value }
            return Self.deliverReady(&state)
        }
        for (waiter, deliveries) in waiters { waiter.resume(returning: deliveries) }
    }

    public func bind(_ bindings: [AMQPTopology.Binding]) async throws {
        try faults.before(.bind)
        state.withLock { state in
            for binding in bindings where !state.bindings.contains(binding) {
                state.bindings.append(binding)
                if state.queues[binding.queue] == nil { state.queues[binding.queue] = [] }
            }
        }
    }

    public func isConnected() async -> Bool {
        state.withLock { $0.connected }
    }

    // MARK: Routing and delivery

    private static func route(_ message: AMQPMessage, _ state: State) -> [String] {
        if message.exchange.isEmpty { return state.queues[message.routingKey] != nil ? [message.routingKey] : [] }
        var queues: [String] = []
        for binding in state.bindings where binding.exchange == message.exchange
            && topic(binding.routingKey, matches: message.routingKey) && !queues.contains(binding.queue)
        {
            queues.append(binding.queue)
        }
        return queues
    }

    /// AMQP topic matching: words separated by dots, `*` one word, `#` zero or more.
    public static func topic(_ pattern: String, matches key: String) -> Bool {
        func match(_ pattern: ArraySlice<Substring>, _ words: ArraySlice<Substring>) -> Bool {
            guard let first = pattern.first else { return words.isEmpty }
            if first == "#" {
                return (0...words.count).contains { match(pattern.dropFirst(), words.dropFirst($0)) }
            }
            guard let word = words.first, first == "*" || first == word else { return false }
            return match(pattern.dropFirst(), words.dropFirst())
        }
        return match(ArraySlice(pattern.split(separator: ".", omittingEmptySubsequences: false)),
            ArraySlice(key.split(separator: ".", omittingEmptySubsequences: false)))
    }

    /// Hands waiting consumers what their prefetch allows.
    private static func deliverReady(_ state: inout State) -> [Ready] {
        var ready: [Ready] = []
        for name in state.consumers.keys.sorted() {
            guard let waiter = state.consumers[name]?.waiter else { continue }
            let deliveries = take(name, &state)
            if !deliveries.isEmpty {
                state.consumers[name]?.waiter = nil
                ready.append((waiter, deliveries))
            }
        }
        return ready
    }

    private static func take(_ name: String, _ state: inout State) -> [AMQPDelivery] {
        guard var consumer = state.consumers[name], !consumer.cancelled else { return [] }
        var deliveries: [AMQPDelivery] = []
        while consumer.unacked.count < consumer.prefetch, let stored = state.queues[consumer.queue]?.first {
            state.queues[consumer.queue]!.removeFirst()
            let tag = consumer.nextTag
            consumer.nextTag += 1
            consumer.unacked.append((tag, stored))
            deliveries.append(AMQPDelivery(body: stored.message.body, exchange: stored.message.exchange,
                routingKey: stored.message.routingKey,
                deliveryTag: AMQPDeliveryTag(value: tag, channel: consumer.channel, connectionID: state.connectionID),
                redelivered: stored.redelivered, consumerTag: name, properties: stored.message.properties))
        }
        state.consumers[name] = consumer
        return deliveries
    }

    fileprivate func next(_ name: String) async throws -> [AMQPDelivery] {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Result<[AMQPDelivery], any Error>? in
                    guard let consumer = state.consumers[name], !consumer.cancelled else { return .success([]) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    let deliveries = Self.take(name, &state)
                    if !deliveries.isEmpty { return .success(deliveries) }
                    state.consumers[name]?.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.consumers[name]?.waiter = nil }
                return state.consumers[name]?.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    fileprivate func cancel(_ name: String) {
        let waiter = state.withLock { state -> CheckedContinuation<[AMQPDelivery], any Error>? in
            // What was delivered stays unacknowledged until acked or the connection drops, as in RabbitMQ.
            guard var consumer = state.consumers[name] else { return nil }
            consumer.cancelled = true
            let waiter = consumer.waiter
            consumer.waiter = nil
            state.consumers[name] = consumer
            return waiter
        }
        waiter?.resume(returning: [])
    }

    private struct Subscription: BrokerSubscription {
        let broker: InMemoryBroker
        let tag: String

        func next() async throws -> [AMQPDelivery] {
            try await broker.next(tag)
        }

        func cancel() async throws {
            broker.cancel(tag)
        }
    }
}
