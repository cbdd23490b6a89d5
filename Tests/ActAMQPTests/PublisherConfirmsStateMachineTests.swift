@testable import ActAMQP
import Testing

/// Which publishes each broker frame, channel close, connection failure or deadline settles, and how: tables
/// of events and the actions they must produce. No broker; a manual clock.
@Suite struct PublisherConfirmsStateMachineTests {
    typealias Machine = PublisherConfirmsStateMachine<String, ManualClock.Instant>

    /// One input to the state machine; the publisher channel 1 is open when a table starts.
    enum Event: Sendable, CustomStringConvertible {
        /// Batch `name` publishes `messages`, with a deadline `timeout` from now.
        case publish(String, [AMQPMessage], timeout: Duration = .seconds(5))
        case ack(UInt64, multiple: Bool = false, channel: UInt16 = 1)
        case nack(UInt64, multiple: Bool = false, channel: UInt16 = 1)
        /// `basic.return` of `message` with 312 NO_ROUTE.
        case returned(AMQPMessage, channel: UInt16 = 1)
        case channelClosed(UInt16, replyCode: UInt16, replyText: String)
        case channelOpened(UInt16)
        case connectionClosed
        /// The clock moves on, then the deadline check runs.
        case advance(Duration)

        var description: String {
            switch self {
            case .publish(let name, let messages, let timeout): "publish \(name) ×\(messages.count) (\(timeout))"
            case .ack(let tag, let multiple, let channel): "ack \(tag)\(multiple ? " multiple" : "") on \(channel)"
            case .nack(let tag, let multiple, let channel): "nack \(tag)\(multiple ? " multiple" : "") on \(channel)"
            case .returned(let message, let channel): "return \(message.routingKey) on \(channel)"
            case .channelClosed(let channel, let code, _): "channel \(channel) closed \(code)"
            case .channelOpened(let channel): "channel \(channel) opened"
            case .connectionClosed: "connection closed"
            case .advance(let duration): "advance \(duration)"
            }
        }
    }

    /// What an event made the driver do.
    enum Effect: Hashable, Sendable {
        case resolved(String, [PublishOutcome])
        case failed([String])
        case returnRecorded
        case returnUnmatched
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var events: [Event]
        /// Every effect, in order; events without one add nothing.
        var effects: [Effect]
        var testDescription: String { name }
    }

    static func message(_ routingKey: String, id: String? = nil, mandatory: Bool = true) -> AMQPMessage {
        AMQPMessage(
            body: Array(routingKey.utf8), exchange: "x", routingKey: routingKey,
            properties: AMQPProperties(messageID: id), mandatory: mandatory)
    }

    static let a = message("a")
    static let b = message("b")
    static let noRoute = PublishOutcome.returned(replyCode: 312, replyText: "NO_ROUTE")

    static let cases: [Case] = [
        Case(
            name: "an ack confirms its message",
            events: [.publish("A", [a]), .ack(1)],
            effects: [.resolved("A", [.confirmed])]),
        Case(
            name: "a batch resolves only when its last message is settled",
            events: [.publish("A", [a, b]), .ack(2), .ack(1)],
            effects: [.resolved("A", [.confirmed, .confirmed])]),
        Case(
            name: "a multiple ack settles every tag up to its own, across batches",
            events: [.publish("A", [a, b]), .publish("B", [a]), .publish("C", [b]), .ack(3, multiple: true), .ack(4)],
            effects: [
                .resolved("A", [.confirmed, .confirmed]), .resolved("B", [.confirmed]), .resolved("C", [.confirmed]),
            ]),
        Case(
            name: "a multiple ack after a single one settles only what is left below it",
            events: [.publish("A", [a, b, a]), .ack(2), .ack(3, multiple: true)],
            effects: [.resolved("A", [.confirmed, .confirmed, .confirmed])]),
        Case(
            name: "a nack marks its message nacked and the others keep theirs",
            events: [.publish("A", [a, b]), .nack(1), .ack(2)],
            effects: [.resolved("A", [.nacked, .confirmed])]),
        Case(
            name: "a multiple nack nacks the whole range",
            events: [.publish("A", [a]), .publish("B", [b]), .nack(2, multiple: true)],
            effects: [.resolved("A", [.nacked]), .resolved("B", [.nacked])]),
        Case(
            name: "a return before its ack makes the message returned",
            events: [.publish("A", [a, b]), .returned(a), .ack(2, multiple: true)],
            effects: [.returnRecorded, .resolved("A", [noRoute, .confirmed])]),
        Case(
            name: "a nack after a return still means nacked",
            events: [.publish("A", [a]), .returned(a), .nack(1)],
            effects: [.returnRecorded, .resolved("A", [.nacked])]),
        Case(
            name: "a return for identical messages marks the oldest unsettled one",
            events: [.publish("A", [a]), .publish("B", [a]), .returned(a), .ack(1), .ack(2)],
            effects: [.returnRecorded, .resolved("A", [noRoute]), .resolved("B", [.confirmed])]),
        Case(
            name: "a return matches on message id too",
            events: [
                .publish("A", [message("k", id: "1"), message("k", id: "2")]), .returned(message("k", id: "2")),
                .ack(2, multiple: true),
            ],
            effects: [.returnRecorded, .resolved("A", [.confirmed, noRoute])]),
        Case(
            name: "a return for a message that was not mandatory matches nothing",
            events: [.publish("A", [message("a", mandatory: false)]), .returned(a), .ack(1)],
            effects: [.returnUnmatched, .resolved("A", [.confirmed])]),
        Case(
            name: "frames on another channel settle nothing",
            events: [.publish("A", [a]), .ack(1, channel: 9), .returned(a, channel: 9), .ack(1)],
            effects: [.returnUnmatched, .resolved("A", [.confirmed])]),
        Case(
            name: "a channel close keeps settled outcomes and marks the rest channelClosed",
            events: [
                .publish("A", [a, b, a]), .ack(1), .nack(2), .channelClosed(1, replyCode: 406, replyText: "too big"),
            ],
            effects: [.resolved("A", [.confirmed, .nacked, .channelClosed(replyCode: 406, replyText: "too big")])]),
        Case(
            name: "a channel close resolves every batch with unsettled tags, in publish order",
            events: [
                .publish("A", [a]), .publish("B", [a, b]), .ack(2),
                .channelClosed(1, replyCode: 404, replyText: "no exchange"),
            ],
            effects: [
                .resolved("A", [.channelClosed(replyCode: 404, replyText: "no exchange")]),
                .resolved("B", [.confirmed, .channelClosed(replyCode: 404, replyText: "no exchange")]),
            ]),
        Case(
            name: "another channel closing leaves the publishes alone",
            events: [.publish("A", [a]), .channelClosed(2, replyCode: 404, replyText: "no queue"), .ack(1)],
            effects: [.resolved("A", [.confirmed])]),
        Case(
            name: "a new channel after a close numbers its tags from 1 again",
            events: [
                .publish("A", [a, b]), .channelClosed(1, replyCode: 406, replyText: "x"), .channelOpened(3),
                .publish("B", [a]), .ack(1, channel: 1), .ack(1, channel: 3),
            ],
            effects: [
                .resolved(
                    "A",
                    [
                        .channelClosed(replyCode: 406, replyText: "x"), .channelClosed(replyCode: 406, replyText: "x"),
                    ]),
                .resolved("B", [.confirmed]),
            ]),
        Case(
            name: "a connection failure fails every unsettled batch",
            events: [.publish("A", [a]), .publish("B", [b]), .ack(1), .publish("C", [a]), .connectionClosed],
            effects: [.resolved("A", [.confirmed]), .failed(["B", "C"])]),
        Case(
            name: "a deadline fails only the batches whose time has come",
            events: [
                .publish("A", [a], timeout: .seconds(5)), .advance(.seconds(3)),
                .publish("B", [b], timeout: .seconds(5)), .advance(.seconds(1)), .advance(.seconds(1)),
                .advance(.seconds(2)), .advance(.seconds(1)),
            ],
            effects: [.failed(["A"]), .failed(["B"])]),
        Case(
            name: "a late ack for a timed-out batch settles nothing else",
            events: [
                .publish("A", [a], timeout: .seconds(1)), .publish("B", [b], timeout: .seconds(10)),
                .advance(.seconds(2)), .ack(1), .ack(2, multiple: true),
            ],
            effects: [.failed(["A"]), .resolved("B", [.confirmed])]),
    ]

    @Test(arguments: cases)
    func transitions(_ table: Case) {
        var machine = Machine()
        var clock = ManualClock()
        machine.channelOpened(1)
        var effects: [Effect] = []
        func record(_ action: Machine.SettleAction) {
            switch action {
            case .none: break
            case .resolve(let settled): effects += settled.map { .resolved($0.waiter, $0.outcomes) }
            }
        }
        func record(_ action: Machine.FailAction) {
            switch action {
            case .none: break
            case .fail(let waiters): effects.append(.failed(waiters))
            }
        }
        for event in table.events {
            switch event {
            case .publish(let name, let messages, let timeout):
                _ = machine.published(messages, deadline: clock.now.advanced(by: timeout), waiter: name)
            case .ack(let tag, let multiple, let channel):
                record(machine.receivedAck(channel: channel, tag: tag, multiple: multiple))
            case .nack(let tag, let multiple, let channel):
                record(machine.receivedNack(channel: channel, tag: tag, multiple: multiple))
            case .returned(let message, let channel):
                let returned = Machine.ReturnedMessage(
                    replyCode: 312, replyText: "NO_ROUTE", exchange: message.exchange, routingKey: message.routingKey,
                    messageID: message.properties.messageID, body: message.body)
                switch machine.receivedReturn(channel: channel, returned) {
                case .recorded: effects.append(.returnRecorded)
                case .unmatched: effects.append(.returnUnmatched)
                }
            case .channelClosed(let channel, let replyCode, let replyText):
                record(machine.channelClosed(channel, replyCode: replyCode, replyText: replyText))
            case .channelOpened(let channel):
                machine.channelOpened(channel)
            case .connectionClosed:
                record(machine.connectionClosed())
            case .advance(let duration):
                clock.advance(by: duration)
                record(machine.deadlinePassed(now: clock.now))
            }
        }
        #expect(effects == table.effects, "events: \(table.events)")
    }

    @Test func aBatchIsUnsettledUntilItsLastConfirm() {
        var machine = Machine()
        machine.channelOpened(5)
        #expect(machine.channel == 5)
        #expect(!machine.hasUnsettledBatches)
        let batch = machine.published([Self.a, Self.b], deadline: ManualClock().now, waiter: "A")
        #expect(machine.isUnsettled(batch))
        #expect(machine.hasUnsettledBatches)
        _ = machine.receivedAck(channel: 5, tag: 1, multiple: false)
        #expect(machine.isUnsettled(batch))
        _ = machine.receivedAck(channel: 5, tag: 2, multiple: false)
        #expect(!machine.isUnsettled(batch))
        #expect(!machine.hasUnsettledBatches)
    }

    @Test func aClosedChannelIsForgottenSoTheNextPublishOpensOne() {
        var machine = Machine()
        machine.channelOpened(1)
        _ = machine.channelClosed(1, replyCode: 406, replyText: "x")
        #expect(machine.channel == nil)
        machine.channelOpened(2)
        _ = machine.connectionClosed()
        #expect(machine.channel == nil)
    }

    @Test func aLongMultipleAckSettlesThousandsOfTagsAtOnce() {
        var machine = Machine()
        machine.channelOpened(1)
        let messages = Array(repeating: Self.a, count: 10_000)
        _ = machine.published(messages, deadline: ManualClock().now, waiter: "A")
        guard case .resolve(let settled) = machine.receivedAck(channel: 1, tag: 10_000, multiple: true) else {
            Issue.record("the batch did not resolve")
            return
        }
        #expect(settled.count == 1)
        #expect(settled[0].outcomes == Array(repeating: .confirmed, count: 10_000))
    }
}
