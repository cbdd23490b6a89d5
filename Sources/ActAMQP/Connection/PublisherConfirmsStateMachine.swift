/// The publisher-confirm bookkeeping of one connection: which publishes a `basic.ack`, a `basic.nack`, a
/// `basic.return`, a channel close, a connection failure or a deadline settles, and with which outcome.
///
/// Pure and synchronous: no I/O, no clock, no continuation. ``AMQPConnection`` feeds it what the broker sent
/// and the current time, and resumes the waiters the returned actions name. `Waiter` is whatever the driver
/// resumes (a `Waiter<[PublishOutcome]>` there, a string in tests); `Instant` is the clock's instant.
///
/// The rules (AMQP 0-9-1 with RabbitMQ's confirm extension):
/// - After `confirm.select` the channel numbers publishes 1, 2, 3, … (the delivery tags).
/// - `basic.ack` (or `basic.nack`) with `multiple` settles every unsettled tag up to and including its tag;
///   without, only its tag. A nack means the broker refused the message: ``PublishOutcome/nacked``.
/// - A mandatory message that no queue took comes back as `basic.return` *before* its ack; the ack then
///   settles it as ``PublishOutcome/returned(replyCode:replyText:)``. The return carries no tag, so it belongs
///   to the oldest unsettled mandatory message with the same exchange, routing key, message id and body
///   (identical messages to one destination route alike, so which of them is marked does not matter).
/// - A batch resolves when its last message is settled, with one outcome per message, in order.
/// - The broker closing the channel resolves every batch: settled messages keep their outcome, the rest
///   become ``PublishOutcome/channelClosed(replyCode:replyText:)``.
/// - A connection failure fails every batch (outcomes unknown); a batch whose deadline passes fails alone.
struct PublisherConfirmsStateMachine<Waiter, Instant: InstantProtocol> {
    /// Names one ``published(_:deadline:waiter:)`` call.
    struct BatchID: Hashable, Sendable {
        let value: UInt64
    }

    /// A batch every message of which is settled: resume `waiter` with `outcomes`.
    struct Settled {
        var waiter: Waiter
        var outcomes: [PublishOutcome]
    }

    /// What the broker sent back with a `basic.return`, as far as matching it to a publish needs.
    struct ReturnedMessage: Hashable, Sendable {
        var replyCode: UInt16
        var replyText: String
        var exchange: String
        var routingKey: String
        var messageID: String?
        var body: [UInt8]
    }

    enum State {
        /// No confirm-mode channel: the next publish opens one (``channelOpened(_:)``).
        case noChannel
        /// A confirm-mode channel is open, with the publishes still waiting on it.
        case confirming(Channel)
    }

    struct Channel {
        let id: UInt16
        /// The tag the next publish gets (tags start at 1 after `confirm.select`).
        var nextTag: UInt64 = 1
        /// The lowest tag that may still be unsettled; a `multiple` settle starts here.
        var oldestTag: UInt64 = 1
        /// Unsettled tags and the message each one is. A tag of a batch that timed out stays until settled.
        var pending: [UInt64: MessageRef] = [:]
        /// Unsettled tags the broker returned, with the outcome their ack will give them.
        var returned: [UInt64: PublishOutcome] = [:]
        var batches: [BatchID: Batch] = [:]

        init(id: UInt16) { self.id = id }
    }

    struct MessageRef {
        let batch: BatchID
        let index: Int
    }

    struct Batch {
        let messages: [AMQPMessage]
        var outcomes: [PublishOutcome?]
        var remaining: Int
        let deadline: Instant
        let waiter: Waiter
    }

    private(set) var state: State = .noChannel
    private var nextBatchID: UInt64 = 1

    init() {}

    // MARK: Queries

    /// The confirm-mode channel, when one is open.
    var channel: UInt16? {
        switch state {
        case .noChannel: nil
        case .confirming(let channel): channel.id
        }
    }

    /// Whether any batch waits for confirms.
    var hasUnsettledBatches: Bool {
        switch state {
        case .noChannel: false
        case .confirming(let channel): !channel.batches.isEmpty
        }
    }

    /// Whether `batch` still waits for confirms (false once resolved, failed or timed out).
    func isUnsettled(_ batch: BatchID) -> Bool {
        switch state {
        case .noChannel: false
        case .confirming(let channel): channel.batches[batch] != nil
        }
    }

    // MARK: Events

    /// `confirm.select-ok` arrived on a new channel: publishes go there from now on.
    mutating func channelOpened(_ id: UInt16) {
        guard case .noChannel = state else {
            preconditionFailure("a second confirm-mode channel was opened while \(String(describing: channel)) is open")
        }
        state = .confirming(Channel(id: id))
    }

    /// The messages are about to be sent, in order, on the confirm-mode channel; each takes the next tag.
    ///
    /// - Returns: the batch, to ask ``isUnsettled(_:)`` about.
    mutating func published(_ messages: [AMQPMessage], deadline: Instant, waiter: Waiter) -> BatchID {
        let id = BatchID(value: nextBatchID)
        nextBatchID += 1
        let opened: Void? = modifyChannel { channel in
            for index in messages.indices {
                channel.pending[channel.nextTag] = MessageRef(batch: id, index: index)
                channel.nextTag += 1
            }
            channel.batches[id] = Batch(
                messages: messages,
                outcomes: Array(repeating: nil, count: messages.count),
                remaining: messages.count,
                deadline: deadline,
                waiter: waiter
            )
        }
        precondition(opened != nil, "publish without a confirm-mode channel; call channelOpened first")
        return id
    }

    /// What a `basic.ack` or `basic.nack` settles.
    enum SettleAction {
        /// Nothing resolved yet (or the frame was for another channel).
        case none
        /// Resume each waiter with its outcomes.
        case resolve([Settled])
    }

    /// `basic.ack` arrived on `channel`.
    mutating func receivedAck(channel: UInt16, tag: UInt64, multiple: Bool) -> SettleAction {
        settle(channel: channel, tag: tag, multiple: multiple, nacked: false)
    }

    /// `basic.nack` arrived on `channel`.
    mutating func receivedNack(channel: UInt16, tag: UInt64, multiple: Bool) -> SettleAction {
        settle(channel: channel, tag: tag, multiple: multiple, nacked: true)
    }

    /// What a `basic.return` did.
    enum ReturnAction {
        /// Marked the message it belongs to; its ack will settle it as returned.
        case recorded
        /// It matches no unsettled mandatory publish (or came on another channel): log it.
        case unmatched
    }

    /// `basic.return` (with its content) arrived on `channel`.
    mutating func receivedReturn(channel id: UInt16, _ returned: ReturnedMessage) -> ReturnAction {
        guard case .confirming(let channel) = state, channel.id == id else { return .unmatched }
        for tag in channel.pending.keys.sorted() where channel.returned[tag] == nil {
            guard let ref = channel.pending[tag], let batch = channel.batches[ref.batch] else { continue }
            let message = batch.messages[ref.index]
            if message.mandatory && message.exchange == returned.exchange && message.routingKey == returned.routingKey
                && message.properties.messageID == returned.messageID && message.body == returned.body
            {
                modifyChannel { channel in
                    channel.returned[tag] = .returned(replyCode: returned.replyCode, replyText: returned.replyText)
                }
                return .recorded
            }
        }
        return .unmatched
    }

    /// The broker closed `channel` (`channel.close`). When it was the confirm-mode channel, every batch
    /// resolves: settled messages keep their outcome, the others become `channelClosed`; the next publish
    /// opens a new channel.
    mutating func channelClosed(_ id: UInt16, replyCode: UInt16, replyText: String) -> SettleAction {
        guard case .confirming(let channel) = state, channel.id == id else { return .none }
        state = .noChannel
        let closed = PublishOutcome.channelClosed(replyCode: replyCode, replyText: replyText)
        let settled = channel.batches.sorted { $0.key.value < $1.key.value }.map { _, batch in
            Settled(waiter: batch.waiter, outcomes: batch.outcomes.map { $0 ?? closed })
        }
        return settled.isEmpty ? .none : .resolve(settled)
    }

    /// What a connection failure or a deadline fails.
    enum FailAction {
        case none
        /// Fail each waiter (with the connection's error, or a timeout).
        case fail([Waiter])
    }

    /// The connection failed or was closed: every batch fails, since nobody can tell what the broker stored.
    mutating func connectionClosed() -> FailAction {
        guard case .confirming(let channel) = state else { return .none }
        state = .noChannel
        let waiters = channel.batches.sorted { $0.key.value < $1.key.value }.map(\.value.waiter)
        return waiters.isEmpty ? .none : .fail(waiters)
    }

    /// The time is `now`: every batch whose deadline has come fails with a timeout. Their tags stay pending,
    /// so that a late ack settles nothing else.
    mutating func deadlinePassed(now: Instant) -> FailAction {
        guard case .confirming(let channel) = state else { return .none }
        let expired = channel.batches.filter { $0.value.deadline <= now }.sorted { $0.key.value < $1.key.value }
        guard !expired.isEmpty else { return .none }
        modifyChannel { channel in
            for (id, _) in expired { channel.batches[id] = nil }
        }
        return .fail(expired.map(\.value.waiter))
    }

    // MARK: Settling

    private mutating func settle(channel id: UInt16, tag: UInt64, multiple: Bool, nacked: Bool) -> SettleAction {
        guard self.channel == id else { return .none }
        var settled: [Settled] = []
        modifyChannel { channel in
            var next = multiple ? channel.oldestTag : tag
            while next <= tag {
                defer { next += 1 }
                guard let ref = channel.pending.removeValue(forKey: next) else { continue }
                let returned = channel.returned.removeValue(forKey: next)
                // The batch is gone when it timed out; the tag is settled all the same.
                guard var batch = channel.batches[ref.batch], batch.outcomes[ref.index] == nil else { continue }
                batch.outcomes[ref.index] = nacked ? .nacked : (returned ?? .confirmed)
                batch.remaining -= 1
                if batch.remaining == 0 {
                    channel.batches[ref.batch] = nil
                    // Every outcome is set once `remaining` reaches 0; `.nacked` only satisfies the type.
                    settled.append(Settled(waiter: batch.waiter, outcomes: batch.outcomes.map { $0 ?? .nacked }))
                } else {
                    channel.batches[ref.batch] = batch
                }
            }
            while channel.oldestTag < channel.nextTag && channel.pending[channel.oldestTag] == nil {
                channel.oldestTag += 1
            }
        }
        return settled.isEmpty ? .none : .resolve(settled)
    }

    /// Changes the open channel in place; nil (and `body` does not run) when none is open.
    ///
    /// The state holds no second reference while `body` runs, so the channel's dictionaries are not copied
    /// on write (a copy per ack would make settling O(pending)).
    @discardableResult
    private mutating func modifyChannel<Result>(_ body: (inout Channel) -> Result) -> Result? {
        guard case .confirming(var channel) = state else { return nil }
        state = .noChannel
        defer { state = .confirming(channel) }
        return body(&channel)
    }
}
