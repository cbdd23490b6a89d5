import ActThreads
internal import CRabbitMQ
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One AMQP 0-9-1 connection to RabbitMQ over rabbitmq-c, with its channels.
///
/// The actor runs on its own thread (``SerialThreadExecutor``): every rabbitmq-c call, blocking or not,
/// happens there and never on the cooperative pool. Incoming frames are read by a *frame pump* that
/// ``run()`` drives; while the pump waits on the socket, any other call (a publish, an ack) wakes it, runs,
/// and the pump resumes. The pump also keeps heartbeats flowing and notices a silent broker.
///
/// Channels are managed for you: one publisher channel in confirm mode, one channel per consumer, one
/// channel for declarations. A channel error (e.g. 404) closes only that channel; the next call opens a
/// fresh one. A connection error ends the connection: every waiting call fails with
/// ``AMQPError/Code/connectionClosed`` and ``run()`` throws it. ``AMQPClient`` reconnects.
///
/// ``run()`` must be running (``AMQPClient`` does this) for publishes to see their confirms and consumers
/// their deliveries.
public actor AMQPConnection {
    /// A process-unique id; delivery tags remember it so an ack cannot reach a later connection.
    public nonisolated let id: UInt64
    nonisolated let executor: SerialThreadExecutor
    let configuration: AMQPConfiguration
    let logger: Logger

    /// The rabbitmq-c connection state; used only on `executor`'s thread (actor isolation guarantees it).
    private let state: amqp_connection_state_t
    private var socketFD: Int32 = -1
    /// Set once the connection is unusable; every later call throws it.
    private var failure: AMQPError?
    private var closedCleanly = false
    private var negotiatedHeartbeatSeconds: Int32 = 0
    private var negotiatedFrameMax: Int32 = 0
    private var channelMax: UInt16 = 2047

    private var openChannels: Set<UInt16> = []
    private var nextChannelID: UInt16 = 1
    private var controlChannel: UInt16?
    /// The publishes waiting for confirms, and which frame settles which (``PublisherConfirmsStateMachine``).
    private var confirms = Confirms()
    private var consumers: [String: ConsumerState] = [:]
    private var consumerByChannel: [UInt16: String] = [:]
    /// Scratch memory for the strings and tables of the call in progress.
    private let arena = CArena()

    private static let nextID = Atomic<UInt64>(1)

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private init(configuration: AMQPConfiguration, logger: Logger, executor: SerialThreadExecutor) throws {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.connectionFailed, replyText: "amqp_new_connection failed (out of memory)")
        }
        self.id = Self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.state = state
        self.executor = executor
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "amqp.connection.id"] = "\(id)"
        self.logger = logger
    }

    isolated deinit {
        // Runs on the connection thread after the last reference is gone, so no other job uses `state`.
        // Destroying also closes the socket; the thread then ends.
        amqp_destroy_connection(state)
        executor.shutdown()
    }

    /// Opens a connection: TCP (or TLS), AMQP handshake and login.
    ///
    /// - Throws: ``AMQPError`` with ``AMQPError/Code/connectionFailed``, ``AMQPError/Code/authenticationFailed``
    ///   or ``AMQPError/Code/timeout``.
    public static func connect(configuration: AMQPConfiguration, logger: Logger) async throws -> AMQPConnection {
        let executor: SerialThreadExecutor
        do {
            executor = try SerialThreadExecutor(name: "amqp-connection")
        } catch {
            // Out of threads or file descriptors: this connection fails, the process goes on.
            throw AMQPError(.connectionFailed, replyText: error.description)
        }
        let connection: AMQPConnection
        do {
            connection = try AMQPConnection(configuration: configuration, logger: logger, executor: executor)
        } catch {
            executor.shutdown()
            throw error
        }
        try await connection.open()
        return connection
    }

    // MARK: Lifecycle

    private func open() throws {
        let tls = configuration.tls
        guard let socket = tls == nil ? amqp_tcp_socket_new(state) : amqp_ssl_socket_new(state) else {
            throw AMQPError(.connectionFailed, replyText: "cannot create the socket")
        }
        if let tls {
            if let file = tls.caCertificateFile {
                let status = amqp_ssl_socket_set_cacert(socket, file)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.connectionFailed, replyText: "the CA file \(file) cannot be read as PEM "
                        + "certificates: point cacertfile (amqp.tls.ca_file) at the CA that signs the broker's certificate")
                }
            }
            switch (tls.clientCertificateFile, tls.clientKeyFile) {
            case (let certificate?, let key?):
                let status = amqp_ssl_socket_set_key(socket, certificate, key)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.connectionFailed, replyText: "the client certificate \(certificate) and key \(key) "
                        + "cannot be read as a matching PEM pair (certfile/keyfile, amqp.tls.cert_file/key_file)")
                }
            case (nil, nil):
                break
            case (_?, nil), (nil, _?):
                throw AMQPError(.invalidURL, replyText: "a client certificate needs both certfile and keyfile "
                    + "(amqp.tls.cert_file and amqp.tls.key_file), or neither")
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        }

        var connectTimeout = Self.timeval(configuration.connectTimeout)
        var rpcTimeout = Self.timeval(configuration.rpcTimeout)
        _ = amqp_set_handshake_timeout(state, &connectTimeout)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &connectTimeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            if let tls, let hint = Self.tlsHint(status, tls: tls) {
                throw AMQPError(.connectionFailed, replyText: "TLS to \(configuration.host):\(configuration.port): \(hint)")
            }
            throw Self.libraryError(status, status == AMQP_STATUS_TIMEOUT.rawValue ? .timeout : .connectionFailed, "connect")
        }

        var properties = arena.table(["connection_name": .string(configuration.connectionName)])
        defer { arena.deallocateAll() }
        let heartbeatSeconds = Int32(clamping: configuration.heartbeat.components.seconds)
        let reply = act_amqp_login_plain_with_properties(
            state, configuration.vhost, Int32(configuration.channelMax), Int32(configuration.frameMax),
            heartbeatSeconds, &properties, configuration.user, configuration.password)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            break
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == ACT_AMQP_CONNECTION_CLOSE_METHOD:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let code = close.reply_code
            // 403 ACCESS_REFUSED (bad credentials) or 530 NOT_ALLOWED (vhost) refuse the login.
            throw AMQPError(
                code == 403 || code == 530 ? .authenticationFailed : .connectionFailed, replyCode: code,
                replyText: CDecode.string(close.reply_text))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let error = reply.library_error
            // Without the authentication_failure_close capability a refused login is a closed socket.
            let code: AMQPError.Code =
                error == AMQP_STATUS_TIMEOUT.rawValue ? .timeout
                : error == AMQP_STATUS_CONNECTION_CLOSED.rawValue ? .authenticationFailed : .connectionFailed
            throw Self.libraryError(error, code, "login")
        default:
            throw AMQPError(.protocolError, replyText: "unexpected reply to login")
        }
        socketFD = amqp_get_sockfd(state)
        negotiatedHeartbeatSeconds = amqp_get_heartbeat(state)
        negotiatedFrameMax = amqp_get_frame_max(state)
        channelMax = UInt16(clamping: max(1, amqp_get_channel_max(state)))
        logger.debug(
            "amqp connection open",
            metadata: [
                "amqp.server": "\(configuration.host):\(configuration.port)",
                "amqp.heartbeat_seconds": "\(negotiatedHeartbeatSeconds)",
                "amqp.frame_max": "\(negotiatedFrameMax)",
            ])
    }

    /// True until the connection is closed or has failed.
    public var isOpen: Bool { failure == nil && !closedCleanly }

    /// The negotiated heartbeat interval in seconds (0: none).
    public var heartbeatSeconds: Int { Int(negotiatedHeartbeatSeconds) }

    /// The negotiated largest frame in bytes.
    public var frameMax: Int { Int(negotiatedFrameMax) }

    /// Runs the frame pump until the connection is closed (returns) or fails (throws), or the task is
    /// cancelled (returns; the connection stays open, call ``close()``).
    ///
    /// - Throws: the ``AMQPError`` that ended the connection.
    @concurrent public nonisolated func run() async throws {
        try await withTaskCancellationHandler {
            while !Task.isCancelled {
                guard try await pumpOnce() else { return }
            }
        } onCancel: {
            executor.wake()
        }
    }

    /// One pump step; false once the connection was closed cleanly.
    private func pumpOnce() throws -> Bool {
        if closedCleanly { return false }
        try pump(maxWaitMilliseconds: pumpInterval)
        expireBatches()
        return true
    }

    /// How long the pump may wait on the socket: a quarter heartbeat, at most 250 ms, so heartbeats go out
    /// on time and a publish deadline is checked four times a second.
    private var pumpInterval: Int32 {
        guard negotiatedHeartbeatSeconds > 0 else { return 250 }
        return min(250, negotiatedHeartbeatSeconds * 1000 / 4)
    }

    /// Closes the connection cleanly: waits briefly for outstanding confirms, closes every channel (unacked
    /// deliveries return to their queues), then the connection. Consumers end; waiting calls fail with
    /// ``AMQPError/Code/shutdown``.
    public func close() {
        guard isOpen else { return }
        let deadline = ContinuousClock.now + .seconds(5)
        while confirms.hasUnsettledBatches && failure == nil && ContinuousClock.now < deadline {
            try? pump(maxWaitMilliseconds: 50)
        }
        if failure == nil {
            for channel in openChannels.sorted() {
                _ = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
            }
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        closedCleanly = true
        finishAll(with: AMQPError(.shutdown, replyText: "connection closed by the client"), clean: true)
        logger.debug("amqp connection closed")
    }

    /// Drops the TCP connection without the AMQP close handshake, as a crash or a network failure would.
    /// The broker requeues unacked deliveries. Meant for tests and for cancelling a stuck connection.
    public func abort() {
        guard socketFD >= 0 else { return }
        _ = shutdown(socketFD, Int32(SHUT_RDWR))
        markDead(AMQPError(.connectionClosed, replyText: "connection aborted by the client"))
    }

    // MARK: Topology

    /// Declares exchanges, then queues, then bindings.
    public func declare(_ topology: AMQPTopology) throws {
        for exchange in topology.exchanges { try declareExchange(exchange) }
        for queue in topology.queues { _ = try declareQueue(queue) }
        for binding in topology.bindings { try bind(binding) }
    }

    /// Declares an exchange (idempotent when the arguments match), or checks that it exists (`passive`).
    public func declareExchange(_ exchange: AMQPTopology.Exchange) throws {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        _ = amqp_exchange_declare(
            state, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.name), exchange.passive ? 1 : 0,
            exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, 0, arena.table(exchange.arguments))
        try checkRPC(channel: channel, context: "exchange.declare")
    }

    /// Declares a queue (idempotent when the arguments match).
    ///
    /// - Returns: the number of ready messages and of consumers.
    @discardableResult
    public func declareQueue(_ queue: AMQPTopology.Queue) throws -> (messageCount: UInt32, consumerCount: UInt32) {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        let ok = amqp_queue_declare(
            state, channel, arena.bytes(queue.name), 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0,
            queue.autoDelete ? 1 : 0, arena.table(queue.declareArguments))
        try checkRPC(channel: channel, context: "queue.declare")
        guard let ok else { return (0, 0) }
        return (ok.pointee.message_count, ok.pointee.consumer_count)
    }

    /// The number of ready messages in an existing queue (a passive `queue.declare`, which changes nothing and
    /// needs no configure right; a missing queue is an ``AMQPError`` 404).
    public func messageCount(ofQueue name: String) throws -> UInt32 {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        let ok = amqp_queue_declare(state, channel, arena.bytes(name), 1, 0, 0, 0, amqp_empty_table)
        try checkRPC(channel: channel, context: "queue.declare (passive)")
        return ok?.pointee.message_count ?? 0
    }

    /// Binds a queue to an exchange.
    public func bind(_ binding: AMQPTopology.Binding) throws {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        _ = amqp_queue_bind(
            state, channel, arena.bytes(binding.queue), arena.bytes(binding.exchange), arena.bytes(binding.routingKey),
            arena.table(binding.arguments))
        try checkRPC(channel: channel, context: "queue.bind")
    }

    /// Deletes a queue. - Returns: the number of messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) throws -> UInt32 {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        let ok = amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try checkRPC(channel: channel, context: "queue.delete")
        return ok?.pointee.message_count ?? 0
    }

    /// Deletes an exchange.
    public func deleteExchange(_ name: String) throws {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        _ = amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try checkRPC(channel: channel, context: "exchange.delete")
    }

    /// Removes every ready message from a queue. - Returns: how many were removed.
    @discardableResult
    public func purgeQueue(_ name: String) throws -> UInt32 {
        let channel = try useControlChannel()
        defer { arena.deallocateAll() }
        let ok = amqp_queue_purge(state, channel, arena.bytes(name))
        try checkRPC(channel: channel, context: "queue.purge")
        return ok?.pointee.message_count ?? 0
    }

    // MARK: Publishing

    /// Publishes the messages on the publisher channel (confirm mode) and waits until the broker has settled
    /// every one of them.
    ///
    /// - Returns: one outcome per message, in order: confirmed, nacked, returned (mandatory and
    ///   unroutable), or channelClosed when the broker closed the channel before confirming it (a message
    ///   above `max_message_size`, a missing exchange): the others of the batch keep their outcomes.
    /// - Throws: ``AMQPError`` when the connection closes first (outcomes unknown: retry),
    ///   ``AMQPError/Code/timeout`` after ``AMQPConfiguration/confirmTimeout``, `CancellationError`.
    public func publish(_ messages: [AMQPMessage]) async throws -> [PublishOutcome] {
        guard !messages.isEmpty else { return [] }
        try ensureOpen()
        let channel = try usePublisherChannel()
        let waiter = Waiter<[PublishOutcome]>()
        let batch = confirms.published(messages, deadline: .now + configuration.confirmTimeout, waiter: waiter)
        defer { arena.deallocateAll() }
        for message in messages {
            let status = sendPublish(channel: channel, message)
            arena.deallocateAll()
            guard status == AMQP_STATUS_OK.rawValue else {
                // Fails every waiting batch, this one included.
                markDead(Self.libraryError(status, .connectionClosed, "basic.publish"))
                break
            }
        }
        // Fast path: wait for the confirms right here, on this thread, for up to `inlineConfirmWait`: a
        // confirm usually arrives within a millisecond, and this saves the hops through the pump task.
        // Other calls on this connection wait at most that long; after it the pump task takes over.
        let inlineDeadline = ContinuousClock.now + Self.inlineConfirmWait
        while confirms.isUnsettled(batch) && failure == nil && ContinuousClock.now < inlineDeadline {
            try? pump(maxWaitMilliseconds: 1, ignoringJobs: true)
        }
        if let ready = waiter.takeIfReady() { return try ready.get() }
        return try await waiter.wait()
    }

    /// How long ``publish(_:)-([AMQPMessage])`` waits for confirms on the connection thread before it
    /// suspends: 5 ms, the longest an ack or another publish queued behind it is delayed by it.
    private static let inlineConfirmWait = Duration.milliseconds(5)

    /// Publishes one message and waits for its confirm. See ``publish(_:)-([AMQPMessage])``.
    public func publish(_ message: AMQPMessage) async throws -> PublishOutcome {
        try await publish([message])[0]
    }

    private func sendPublish(channel: UInt16, _ message: AMQPMessage) -> Int32 {
        var properties = arena.properties(message.properties)
        let exchange = arena.bytes(message.exchange)
        let routingKey = arena.bytes(message.routingKey)
        return message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                state, channel, exchange, routingKey, message.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
    }

    private func usePublisherChannel() throws -> UInt16 {
        if let channel = confirms.channel { return channel }
        let channel = try openChannel()
        _ = amqp_confirm_select(state, channel)
        try checkRPC(channel: channel, context: "confirm.select")
        confirms.channelOpened(channel)
        return channel
    }

    /// Resumes the publishers of the batches an event settled.
    private func perform(_ action: Confirms.SettleAction) {
        switch action {
        case .none:
            break
        case .resolve(let settled):
            for batch in settled { batch.waiter.resume(returning: batch.outcomes) }
        }
    }

    /// Fails the publishers of the batches a connection failure or a deadline ended.
    private func perform(_ action: Confirms.FailAction, error: AMQPError) {
        switch action {
        case .none:
            break
        case .fail(let waiters):
            for waiter in waiters { waiter.resume(throwing: error) }
        }
    }

    private func expireBatches() {
        guard confirms.hasUnsettledBatches else { return }
        perform(
            confirms.deadlinePassed(now: .now),
            error: AMQPError(.timeout, replyText: "no publisher confirm within \(configuration.confirmTimeout)"))
    }

    // MARK: Consuming

    /// Starts a consumer on its own channel with the given prefetch, and returns its deliveries. The
    /// sequence ends when the consumer is cancelled or the connection closes cleanly, and throws when the
    /// channel or connection fails. Ack every delivery (``ack(_:multiple:)``) or nack/reject it.
    ///
    /// - Parameters:
    ///   - queue: the queue to consume from.
    ///   - prefetch: most unacked deliveries in flight (`basic.qos`); 0 means unlimited.
    ///   - consumerTag: the tag; nil lets the broker choose.
    public func consume(queue: String, prefetch: UInt16, consumerTag: String? = nil) throws -> AMQPConsumer {
        let tag = try startConsumer(queue: queue, prefetch: prefetch, consumerTag: consumerTag)
        return AMQPConsumer(source: .connection(self, tag))
    }

    func startConsumer(queue: String, prefetch: UInt16, consumerTag: String?) throws -> String {
        try ensureOpen()
        let channel = try openChannel()
        defer { arena.deallocateAll() }
        _ = amqp_basic_qos(state, channel, 0, prefetch, 0)
        try checkRPC(channel: channel, context: "basic.qos")
        let ok = amqp_basic_consume(
            state, channel, arena.bytes(queue), consumerTag.map { arena.bytes($0) } ?? amqp_empty_bytes, 0, 0, 0,
            amqp_empty_table)
        try checkRPC(channel: channel, context: "basic.consume")
        guard let ok else { throw AMQPError(.protocolError, replyText: "basic.consume-ok missing") }
        let tag = CDecode.string(ok.pointee.consumer_tag)
        consumers[tag] = ConsumerState(channel: channel, queue: queue)
        consumerByChannel[channel] = tag
        logger.debug("amqp consumer started", metadata: ["amqp.queue": "\(queue)", "amqp.consumer_tag": "\(tag)"])
        return tag
    }

    /// Every buffered delivery of a consumer, or (waiting for it) the next one the pump reads. Empty when
    /// the consumer ended cleanly. Handing out the whole buffer saves a thread hop per delivery.
    func nextDeliveries(consumerTag: String) async throws -> [AMQPDelivery] {
        guard var consumer = consumers[consumerTag] else {
            if let failure { throw failure }
            return []
        }
        let buffered = consumer.drain()
        if !buffered.isEmpty {
            consumers[consumerTag] = consumer
            return buffered
        }
        return try await nextDelivery(consumerTag: consumerTag).map { [$0] } ?? []
    }

    /// The next delivery for a consumer: buffered, or the next one the pump reads. Nil when it ended cleanly.
    func nextDelivery(consumerTag: String) async throws -> AMQPDelivery? {
        guard var consumer = consumers[consumerTag] else {
            if let failure { throw failure }
            return nil
        }
        if let delivery = consumer.popFirst() {
            consumers[consumerTag] = consumer
            return delivery
        }
        if let ending = consumer.ending {
            consumers[consumerTag] = nil
            if let error = ending { throw error }
            return nil
        }
        let waiter = Waiter<AMQPDelivery?>()
        consumer.waiter = waiter
        consumers[consumerTag] = consumer
        return try await waiter.wait()
    }

    /// Cancels a consumer and closes its channel; its unacked deliveries return to the queue.
    public func cancel(consumerTag: String) throws {
        guard let consumer = consumers[consumerTag] else { return }
        try ensureOpen()
        defer { arena.deallocateAll() }
        _ = amqp_basic_cancel(state, consumer.channel, arena.bytes(consumerTag))
        try checkRPC(channel: consumer.channel, context: "basic.cancel")
        _ = amqp_channel_close(state, consumer.channel, AMQP_REPLY_SUCCESS)
        openChannels.remove(consumer.channel)
        endConsumer(channel: consumer.channel, error: nil)
    }

    /// Acknowledges a delivery (with `multiple`, every earlier unacked delivery of its channel too).
    ///
    /// - Throws: ``AMQPError/Code/staleDeliveryTag`` for a delivery of another connection or a closed channel.
    public func ack(_ tag: AMQPDeliveryTag, multiple: Bool = false) throws {
        try checkTag(tag)
        try checkSend(amqp_basic_ack(state, tag.channel, tag.value, multiple ? 1 : 0), "basic.ack")
    }

    /// Negatively acknowledges a delivery: requeued (redelivered) or dead-lettered/dropped.
    public func nack(_ tag: AMQPDeliveryTag, multiple: Bool = false, requeue: Bool) throws {
        try checkTag(tag)
        try checkSend(
            amqp_basic_nack(state, tag.channel, tag.value, multiple ? 1 : 0, requeue ? 1 : 0), "basic.nack")
    }

    /// Rejects one delivery: requeued, or dead-lettered (with `x-death`) when the queue has a dead-letter exchange.
    public func reject(_ tag: AMQPDeliveryTag, requeue: Bool) throws {
        try checkTag(tag)
        try checkSend(amqp_basic_reject(state, tag.channel, tag.value, requeue ? 1 : 0), "basic.reject")
    }

    private func checkTag(_ tag: AMQPDeliveryTag) throws {
        try ensureOpen()
        guard tag.connectionID == id, openChannels.contains(tag.channel) else {
            throw AMQPError(.staleDeliveryTag, replyText: "delivery \(tag.value) belongs to a closed channel or connection")
        }
    }

    private func checkSend(_ status: Int32, _ context: String) throws {
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = Self.libraryError(status, .connectionClosed, context)
            markDead(error)
            throw error
        }
    }

    private func deliver(_ delivery: AMQPDelivery) {
        guard var consumer = consumers[delivery.consumerTag] else {
            logger.debug("amqp delivery for unknown consumer", metadata: ["amqp.consumer_tag": "\(delivery.consumerTag)"])
            return
        }
        if let waiter = consumer.waiter {
            consumer.waiter = nil
            consumers[delivery.consumerTag] = consumer
            if waiter.resume(returning: delivery) { return }
        }
        consumer.buffer.append(delivery)
        consumers[delivery.consumerTag] = consumer
    }

    private func endConsumer(channel: UInt16, error: AMQPError?) {
        guard let tag = consumerByChannel.removeValue(forKey: channel), var consumer = consumers[tag] else { return }
        consumer.ending = .some(error)
        if let waiter = consumer.waiter {
            consumer.waiter = nil
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
        if consumer.head == consumer.buffer.count {
            consumers[tag] = nil
            if error != nil { consumers[tag] = consumer }  // keep the error for the next `nextDelivery`
        } else {
            consumers[tag] = consumer
        }
    }

    // MARK: Channels

    private func openChannel() throws -> UInt16 {
        try ensureOpen()
        var candidate = nextChannelID
        var tries = 0
        while openChannels.contains(candidate) {
            candidate = candidate >= channelMax ? 1 : candidate + 1
            tries += 1
            if tries > Int(channelMax) { throw AMQPError(.protocolError, replyText: "no free channel") }
        }
        nextChannelID = candidate >= channelMax ? 1 : candidate + 1
        _ = amqp_channel_open(state, candidate)
        try checkRPC(channel: candidate, context: "channel.open")
        openChannels.insert(candidate)
        return candidate
    }

    private func useControlChannel() throws -> UInt16 {
        try ensureOpen()
        if let controlChannel { return controlChannel }
        let channel = try openChannel()
        controlChannel = channel
        return channel
    }

    /// The broker closed `channel`: acknowledge, and fail whatever used it.
    private func channelClosed(_ channel: UInt16, error: AMQPError) {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, channel, ACT_AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
        openChannels.remove(channel)
        if controlChannel == channel { controlChannel = nil }
        // Each batch keeps the outcomes the broker settled before closing the channel; the rest are
        // `channelClosed`, so a caller can tell what went through and retry only the others.
        perform(confirms.channelClosed(channel, replyCode: error.replyCode ?? 0, replyText: error.replyText ?? ""))
        endConsumer(channel: channel, error: error)
        logger.debug(
            "amqp channel closed by the broker",
            metadata: ["amqp.channel": "\(channel)", "amqp.reply_code": "\(error.replyCode ?? 0)"])
    }

    // MARK: Failure

    private func ensureOpen() throws {
        if let failure { throw failure }
        if closedCleanly { throw AMQPError(.shutdown, replyText: "connection closed by the client") }
    }

    /// The connection is unusable: fail every waiter and remember why.
    private func markDead(_ error: AMQPError) {
        guard failure == nil else { return }
        failure = error
        logger.debug("amqp connection failed", metadata: ["amqp.error": "\(error)"])
        finishAll(with: error, clean: false)
    }

    private func finishAll(with error: AMQPError, clean: Bool) {
        perform(confirms.connectionClosed(), error: error)
        for channel in Array(consumerByChannel.keys) { endConsumer(channel: channel, error: clean ? nil : error) }
        openChannels.removeAll()
        controlChannel = nil
    }

    /// Turns the reply of a synchronous method into an error, handling `channel.close` / `connection.close`.
    private func checkRPC(channel: UInt16, context: String) throws {
        let reply = amqp_get_rpc_reply(state)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == ACT_AMQP_CHANNEL_CLOSE_METHOD {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let error = Self.channelError(close)
                channelClosed(channel, error: error)
                throw error
            } else if reply.reply.id == ACT_AMQP_CONNECTION_CLOSE_METHOD {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                connectionClosedByBroker(close)
                throw failure ?? AMQPError(.connectionClosed)
            }
            let error = AMQPError(.protocolError, replyText: "unexpected reply to \(context)")
            markDead(error)
            throw error
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let error = Self.libraryError(reply.library_error, .connectionClosed, context)
            markDead(error)
            throw error
        default:
            let error = AMQPError(.protocolError, replyText: "no reply to \(context)")
            markDead(error)
            throw error
        }
    }

    private func connectionClosedByBroker(_ close: amqp_connection_close_t) {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, ACT_AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
        markDead(AMQPError(.connectionClosed, replyCode: close.reply_code, replyText: CDecode.string(close.reply_text)))
    }

    private static func channelError(_ close: amqp_channel_close_t) -> AMQPError {
        let text = CDecode.string(close.reply_text)
        // RabbitMQ refuses a message above `max_message_size` with 406 "... larger than configured max size ...".
        let code: AMQPError.Code = close.reply_code == 406 && text.contains("max size") ? .frameTooLarge : .channelClosed
        return AMQPError(code, replyCode: close.reply_code, replyText: text)
    }

    /// What a failed TLS handshake means and which setting fixes it; nil for other failures.
    static func tlsHint(_ status: Int32, tls: AMQPConfiguration.TLS) -> String? {
        let caFile = tls.caCertificateFile.map { "the CA file \($0)" } ?? "the system's default CAs (no cacertfile)"
        switch status {
        case AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue:
            return "the broker's certificate is not signed by a CA in \(caFile): set cacertfile (amqp.tls.ca_file) "
                + "to the CA that signed it"
        case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            return "the broker's certificate does not name this host: connect with a DNS name its subjectAltName "
                + "carries (rabbitmq-c matches DNS names only, not IP addresses)"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue, AMQP_STATUS_SSL_ERROR.rawValue:
            return "the TLS handshake failed (\(String(cString: amqp_error_string2(status)))): check that the port "
                + "is the broker's TLS listener and that \(caFile) signed its certificate"
        default:
            return nil
        }
    }

    static func libraryError(_ status: Int32, _ code: AMQPError.Code, _ context: String) -> AMQPError {
        let text = String(cString: amqp_error_string2(status))
        let mapped: AMQPError.Code = status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue ? .connectionClosed : code
        return AMQPError(mapped, replyText: "\(context): \(text)")
    }

    static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    // MARK: Frame pump

    /// Reads and dispatches frames: waits up to `maxWaitMilliseconds` for the socket (returning early when
    /// another call is queued on this connection), then handles what is available, at most 256 frames so a
    /// flood cannot starve other calls. Each read also lets rabbitmq-c send a due heartbeat and detect a
    /// missed one.
    func pump(maxWaitMilliseconds: Int32, ignoringJobs: Bool = false) throws {
        try ensureOpen()
        defer { if failure == nil { amqp_maybe_release_buffers(state) } }
        var firstReadMicroseconds = 0
        if amqp_frames_enqueued(state) == 0 && amqp_data_in_buffer(state) == 0 {
            let waited = executor.wait(
                forReadable: socketFD, timeoutMilliseconds: maxWaitMilliseconds, wakeForJobs: !ignoringJobs)
            // rabbitmq-c checks the receive-heartbeat deadline only when the read's own deadline is not
            // "immediate"; after an idle wait, read with 1 ms so a silent broker is noticed.
            if waited == .timedOut { firstReadMicroseconds = 1000 }
        }
        var handled = 0
        while handled < 256, try readFrame(timeoutMicroseconds: handled == 0 ? firstReadMicroseconds : 0) {
            handled += 1
        }
    }

    /// Reads one delivery or frame, waiting at most `timeoutMicroseconds` (0: not at all). False when
    /// nothing is available. Sends a heartbeat when one is due.
    private func readFrame(timeoutMicroseconds: Int) throws -> Bool {
        var envelope = amqp_envelope_t()
        var timeout = Glibc.timeval(tv_sec: 0, tv_usec: timeoutMicroseconds)
        let reply = amqp_consume_message(state, &envelope, &timeout, 0)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            defer { amqp_destroy_envelope(&envelope) }
            let delivery = AMQPDelivery(
                body: CDecode.bytes(envelope.message.body),
                exchange: CDecode.string(envelope.exchange),
                routingKey: CDecode.string(envelope.routing_key),
                deliveryTag: AMQPDeliveryTag(value: envelope.delivery_tag, channel: envelope.channel, connectionID: id),
                redelivered: envelope.redelivered != 0,
                consumerTag: CDecode.string(envelope.consumer_tag),
                properties: CDecode.properties(envelope.message.properties))
            deliver(delivery)
            return true
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_TIMEOUT.rawValue:
            return false
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue:
            // Not a delivery: rabbitmq-c put the frame back; take it and dispatch it.
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame(state, &frame)
            guard status == AMQP_STATUS_OK.rawValue else {
                let error = Self.libraryError(status, .connectionClosed, "read frame")
                markDead(error)
                throw error
            }
            try dispatch(frame)
            return failure == nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let error = Self.libraryError(reply.library_error, .connectionClosed, "read")
            markDead(error)
            throw error
        default:
            let error = AMQPError(.protocolError, replyText: "unexpected reply while reading")
            markDead(error)
            throw error
        }
    }

    private func dispatch(_ frame: amqp_frame_t) throws {
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
            logger.debug("amqp stray content frame ignored", metadata: ["amqp.channel": "\(frame.channel)"])
            return
        }
        let method = frame.payload.method
        switch method.id {
        case ACT_AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            perform(confirms.receivedAck(channel: frame.channel, tag: ack.delivery_tag, multiple: ack.multiple != 0))
        case ACT_AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            perform(confirms.receivedNack(channel: frame.channel, tag: nack.delivery_tag, multiple: nack.multiple != 0))
        case ACT_AMQP_BASIC_RETURN_METHOD:
            let info = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let replyCode = info.reply_code
            let replyText = CDecode.string(info.reply_text)
            let exchange = CDecode.string(info.exchange)
            let routingKey = CDecode.string(info.routing_key)
            var message = amqp_message_t()
            let reply = amqp_read_message(state, frame.channel, &message, 0)
            guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
                let error = Self.libraryError(reply.library_error, .connectionClosed, "read returned message")
                markDead(error)
                throw error
            }
            defer { amqp_destroy_message(&message) }
            if confirms.channel == frame.channel {
                let returned = Confirms.ReturnedMessage(
                    replyCode: replyCode, replyText: replyText, exchange: exchange, routingKey: routingKey,
                    messageID: CDecode.properties(message.properties).messageID, body: CDecode.bytes(message.body))
                if case .unmatched = confirms.receivedReturn(channel: frame.channel, returned) {
                    logger.debug("amqp basic.return for no pending publish", metadata: ["amqp.reply_code": "\(replyCode)"])
                }
            }
        case ACT_AMQP_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            channelClosed(frame.channel, error: Self.channelError(close))
        case ACT_AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            connectionClosedByBroker(close)
        case ACT_AMQP_BASIC_CANCEL_METHOD:
            // The broker cancelled a consumer (queue deleted, node down): end it; its channel stays open.
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = CDecode.string(cancel.consumer_tag)
            if let consumer = consumers[tag] {
                endConsumer(channel: consumer.channel, error: AMQPError(.consumerCancelled, replyText: "consumer \(tag) cancelled by the broker"))
            }
        case ACT_AMQP_CONNECTION_BLOCKED_METHOD:
            logger.info("amqp connection blocked by the broker (resource alarm)")
        case ACT_AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.info("amqp connection unblocked")
        default:
            logger.debug("amqp unexpected method ignored", metadata: ["amqp.method": "\(method.id)"])
        }
    }
}

// MARK: State

/// The confirm bookkeeping as the connection runs it: waiters resumed with one outcome per message.
private typealias Confirms = PublisherConfirmsStateMachine<Waiter<[PublishOutcome]>, ContinuousClock.Instant>

private struct ConsumerState {
    let channel: UInt16
    let queue: String
    var buffer: [AMQPDelivery] = []
    var head = 0
    var waiter: Waiter<AMQPDelivery?>?
    /// Set when the consumer ended: `.some(nil)` cleanly, `.some(error)` with an error.
    var ending: AMQPError??

    init(channel: UInt16, queue: String) {
        self.channel = channel
        self.queue = queue
    }

    mutating func drain() -> [AMQPDelivery] {
        guard head < buffer.count else { return [] }
        let result = head == 0 ? buffer : Array(buffer[head...])
        buffer.removeAll(keepingCapacity: true)
        head = 0
        return result
    }

    mutating func popFirst() -> AMQPDelivery? {
        guard head < buffer.count else { return nil }
        let delivery = buffer[head]
        head += 1
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            head = 0
        }
        return delivery
    }
}
