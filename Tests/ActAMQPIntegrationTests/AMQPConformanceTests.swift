import ActAMQP
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Behaviour of ActAMQP against a real RabbitMQ (`AMQP_URL`). Serialized: some tests freeze or kill the broker.
@Suite(.serialized)
struct AMQPConformanceTests {
    @Test func publishesAThousandWithConfirmsThenConsumesWithMultipleAcks() async throws {
        let queue = uniqueName("confirms")
        try await withClient { client in
            try await client.withConnection { try await $0.declareQueue(.init(queue)) }
            let messages = (0..<1000).map { message("m\($0)", to: queue) }
            let outcomes = try await client.publish(messages)
            #expect(outcomes.count == 1000)
            #expect(outcomes.allSatisfy { $0 == .confirmed })

            let consumer = try await client.consume(queue: queue, prefetch: 200)
            let received = try await withDeadline(20, "1,000 deliveries") { [consumer] in
                var iterator = consumer.makeAsyncIterator()
                var bodies: [String] = []
                while bodies.count < 1000, let delivery = try await iterator.next() {
                    bodies.append(String(decoding: delivery.body, as: UTF8.self))
                    // One ack per 100 deliveries, covering the 99 before it.
                    if bodies.count % 100 == 0 { try await client.ack(delivery.deliveryTag, multiple: true) }
                }
                return bodies
            }
            #expect(received == (0..<1000).map { "m\($0)" })
            try await client.cancel(consumer)
            let counts = try await client.withConnection { try await $0.declareQueue(.init(queue)) }
            #expect(counts.messageCount == 0, "every message was acked, none came back to the queue")
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func mandatoryUnroutableMessageIsReturnedNotConfirmed() async throws {
        let exchange = uniqueName("unroutable")
        let queue = uniqueName("routed")
        let topology = AMQPTopology(
            exchanges: [.init(exchange, kind: .direct, durable: false)], queues: [.init(queue, durable: false)],
            bindings: [.init(queue: queue, exchange: exchange, routingKey: "routed")])
        try await withClient(topology: topology) { client in
            let routed = AMQPMessage(body: Array("yes".utf8), exchange: exchange, routingKey: "routed")
            let unroutable = AMQPMessage(body: Array("no".utf8), exchange: exchange, routingKey: "nowhere")
            let outcomes = try await client.publish([routed, unroutable, routed, unroutable])
            #expect(outcomes[0] == .confirmed)
            #expect(outcomes[2] == .confirmed)
            for index in [1, 3] {
                guard case .returned(let code, let text) = outcomes[index] else {
                    Issue.record("message \(index) should be returned, got \(outcomes[index])")
                    continue
                }
                #expect(code == 312)
                #expect(text == "NO_ROUTE")
            }
            var notMandatory = unroutable
            notMandatory.mandatory = false
            #expect(try await client.publish(notMandatory) == .confirmed, "without mandatory the broker confirms silently")
            await cleanUp(client, queues: [queue], exchanges: [exchange])
        }
    }

    @Test func propertiesAndHeadersRoundTrip() async throws {
        let queue = uniqueName("properties")
        try await withClient { client in
            try await client.withConnection { try await $0.declareQueue(.init(queue, durable: false)) }
            let timestamp = Date(timeIntervalSince1970: 1_700_000_000)
            let headers: [String: AMQPFieldValue] = [
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "attempt": .int(3),
                "negative": .int(-42),
                "flag": .bool(true),
                "ratio": .double(0.25),
                "nested": .table(["a": .string("b"), "n": .int(1)]),
                "list": .array([.string("x"), .int(2), .bool(false)]),
                "raw": .bytes([0, 1, 2, 255]),
                "when": .timestamp(timestamp),
            ]
            let properties = AMQPProperties(
                contentType: "application/json", contentEncoding: "identity", headers: headers, persistent: true,
                priority: 5, correlationID: "run-1", replyTo: "reply-queue", expiration: "60000",
                messageID: "task-1:1", timestamp: timestamp, type: "noise.complaint.filed", appID: "hms-act")
            let body: [UInt8] = Array("{\"k\":\"v\"}".utf8)
            let sent = AMQPMessage(body: body, exchange: "", routingKey: queue, properties: properties)
            #expect(try await client.publish(sent) == .confirmed)

            let consumer = try await client.consume(queue: queue, prefetch: 10)
            let delivery = try #require(try await take(1, from: consumer).first)
            #expect(delivery.body == body)
            #expect(delivery.routingKey == queue)
            #expect(delivery.exchange == "")
            #expect(!delivery.redelivered)
            #expect(delivery.properties == properties)
            try await client.ack(delivery.deliveryTag)
            try await client.cancel(consumer)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func nackWithRequeueIsRedelivered() async throws {
        let queue = uniqueName("nack")
        try await withClient { client in
            try await client.withConnection { try await $0.declareQueue(.init(queue, durable: false)) }
            #expect(try await client.publish(message("again", to: queue)) == .confirmed)
            let consumer = try await client.consume(queue: queue, prefetch: 1)
            let first = try #require(try await take(1, from: consumer).first)
            #expect(!first.redelivered)
            try await client.nack(first.deliveryTag, requeue: true)
            let second = try #require(try await take(1, from: consumer).first)
            #expect(second.redelivered)
            #expect(second.body == first.body)
            try await client.ack(second.deliveryTag)
            try await client.cancel(consumer)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func rejectWithoutRequeueDeadLettersWithXDeath() async throws {
        let queue = uniqueName("work")
        let deadExchange = uniqueName("dead")
        let deadQueue = uniqueName("dlq")
        let topology = AMQPTopology(
            exchanges: [.init(deadExchange, kind: .topic, durable: false)],
            queues: [
                .init(queue, durable: false, deadLetterExchange: deadExchange),
                .init(deadQueue, durable: false),
            ],
            bindings: [.init(queue: deadQueue, exchange: deadExchange, routingKey: "#")])
        try await withClient(topology: topology) { client in
            #expect(try await client.publish(message("poison", to: queue)) == .confirmed)
            let consumer = try await client.consume(queue: queue, prefetch: 1)
            let delivery = try #require(try await take(1, from: consumer).first)
            try await client.reject(delivery.deliveryTag, requeue: false)

            let deadConsumer = try await client.consume(queue: deadQueue, prefetch: 1)
            let dead = try #require(try await take(1, from: deadConsumer).first)
            #expect(dead.body == Array("poison".utf8))
            let deaths = try #require(dead.properties.headers["x-death"]?.arrayValue)
            let death = try #require(deaths.first?.tableValue)
            #expect(death["queue"] == .string(queue))
            #expect(death["reason"] == .string("rejected"))
            #expect(death["count"] == .int(1))
            #expect(death["exchange"] == .string(""))
            try await client.ack(dead.deliveryTag)
            try await client.cancel(consumer)
            try await client.cancel(deadConsumer)
            await cleanUp(client, queues: [queue, deadQueue], exchanges: [deadExchange])
        }
    }

    @Test func unackedDeliveriesComeBackAfterTheConnectionDrops() async throws {
        let queue = uniqueName("redeliver")
        try await withClient { client in
            try await client.withConnection { try await $0.declareQueue(.init(queue)) }
            let outcomes = try await client.publish((0..<5).map { message("r\($0)", to: queue) })
            #expect(outcomes == Array(repeating: .confirmed, count: 5))
            let consumer = try await client.consume(queue: queue, prefetch: 10)
            let firstRound = try await take(5, from: consumer)
            #expect(firstRound.allSatisfy { !$0.redelivered })

            // Drop the TCP connection without closing AMQP: the broker requeues, the client reconnects and
            // restarts the consumer on its new connection.
            try await client.withConnection { await $0.abort() }
            do {
                try await client.ack(firstRound[4].deliveryTag, multiple: true)
                Issue.record("an ack for a dead connection must fail")
            } catch let error as AMQPError {
                #expect(error.code == .staleDeliveryTag || error.code == .connectionClosed)
            }
            let secondRound = try await take(5, from: consumer, within: 20)
            #expect(secondRound.allSatisfy { $0.redelivered })
            #expect(Set(secondRound.map(\.body)) == Set(firstRound.map(\.body)))
            #expect(await client.connectionCount >= 2)
            try await client.ack(secondRound[4].deliveryTag, multiple: true)
            try await client.cancel(consumer)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func quorumQueueWithDeliveryLimitDeadLettersAfterTheLimit() async throws {
        let queue = uniqueName("quorum")
        let deadExchange = uniqueName("qdead")
        let deadQueue = uniqueName("qdlq")
        let topology = AMQPTopology(
            exchanges: [.init(deadExchange, kind: .fanout)],
            queues: [
                .init(queue, kind: .quorum, deadLetterExchange: deadExchange, deliveryLimit: 2),
                .init(deadQueue),
            ],
            bindings: [.init(queue: deadQueue, exchange: deadExchange, routingKey: "")])
        try await withClient(topology: topology) { client in
            // Declaring again with the same arguments is accepted (idempotent redeclare after reconnects).
            try await client.withConnection {
                try await $0.declareQueue(.init(queue, kind: .quorum, deadLetterExchange: deadExchange, deliveryLimit: 2))
            }
            #expect(try await client.publish(message("flaky", to: queue)) == .confirmed)
            let consumer = try await client.consume(queue: queue, prefetch: 1)
            let deadConsumer = try await client.consume(queue: deadQueue, prefetch: 1)
            // Nack every delivery with requeue until the broker dead-letters the message after the limit.
            let deadLettered = try await withThrowingTaskGroup(of: AMQPDelivery?.self) { group -> AMQPDelivery? in
                group.addTask { [consumer] in
                    var iterator = consumer.makeAsyncIterator()
                    while let delivery = try await iterator.next() {
                        try await client.nack(delivery.deliveryTag, requeue: true)
                    }
                    return nil
                }
                group.addTask { [deadConsumer] in try await take(1, from: deadConsumer, within: 20).first }
                while let result = try await group.next() {
                    if let delivery = result {
                        group.cancelAll()
                        return delivery
                    }
                }
                return nil
            }
            let dead = try #require(deadLettered)
            #expect(dead.body == Array("flaky".utf8))
            let death = try #require(dead.properties.headers["x-death"]?.arrayValue?.first?.tableValue)
            #expect(death["queue"] == .string(queue))
            #expect(death["reason"] == .string("delivery_limit") || death["reason"] == .string("rejected"))
            try await client.ack(dead.deliveryTag)
            try await client.cancel(consumer)
            try await client.cancel(deadConsumer)
            await cleanUp(client, queues: [queue, deadQueue], exchanges: [deadExchange])
        }
    }

    @Test func channelErrorIsReportedAndTheConnectionStaysUsable() async throws {
        let queue = uniqueName("after-404")
        try await withClient { client in
            let connection = try await client.currentConnection()
            try await connection.declareQueue(.init(queue, durable: false))
            let missing = AMQPMessage(body: [1], exchange: uniqueName("missing"), routingKey: "x")
            // The broker closes the publisher channel: the message's outcome says so and why.
            guard case .channelClosed(let code, let text) = try await connection.publish(missing) else {
                Issue.record("publishing to a missing exchange must fail")
                return
            }
            #expect(code == 404)
            #expect(text.contains("NOT_FOUND"))
            // Same connection, new publisher channel.
            #expect(await connection.isOpen)
            #expect(try await connection.publish(message("ok", to: queue)) == .confirmed)
            #expect(try await client.currentConnection() === connection)

            // A declare error (406: inequivalent arguments) leaves the connection usable too.
            do {
                try await connection.declareQueue(.init(queue, durable: true))
                Issue.record("redeclaring with other arguments must fail")
            } catch let error as AMQPError {
                #expect(error.code == .channelClosed)
                #expect(error.replyCode == 406)
            }
            #expect(try await connection.declareQueue(.init(queue, durable: false)).messageCount == 1)
            await cleanUp(client, queues: [queue])
        }
    }

    /// hms-act attributes results and approvals to the `user_id` property (`amqp.actors`): that is sound only
    /// because RabbitMQ refuses a `user_id` that is not the publishing connection's user.
    @Test func theBrokerRefusesAUserIDThatIsNotTheConnectionsUser() async throws {
        let queue = uniqueName("user-id")
        let user = try TestBroker.configuration().user
        try await withClient { client in
            let connection = try await client.currentConnection()
            try await connection.declareQueue(.init(queue, durable: false))
            let spoofed = message("spoofed", to: queue, properties: AMQPProperties(userID: "officer-portal"))
            guard case .channelClosed(let code, let text) = try await connection.publish(spoofed) else {
                Issue.record("RabbitMQ accepted a user_id that is not the connection's user")
                return
            }
            #expect(code == 406)
            #expect(text.contains("user_id"), "\(text)")
            #expect(try await connection.publish(message("own", to: queue, properties: AMQPProperties(userID: user)))
                == .confirmed)
            let consumer = try await client.consume(queue: queue, prefetch: 10)
            let delivery = try #require(try await take(1, from: consumer).first)
            #expect(String(decoding: delivery.body, as: UTF8.self) == "own")
            #expect(delivery.properties.userID == user)
            try await client.ack(delivery.deliveryTag)
            try await client.cancel(consumer)
            #expect(try await connection.declareQueue(.init(queue, durable: false)).messageCount == 0,
                "the spoofed message never reached the queue")
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func messagesLargerThanAFrameAreSplitAndDelivered() async throws {
        let queue = uniqueName("large")
        // The smallest frame AMQP allows, so a 1 MiB body travels in ~256 body frames.
        try await withClient(try TestBroker.configuration(frameMax: 4096)) { client in
            let connection = try await client.currentConnection()
            #expect(await connection.frameMax == 4096)
            try await connection.declareQueue(.init(queue, durable: false))
            var generator = SystemRandomNumberGenerator()
            let body = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let headers: [String: AMQPFieldValue] = ["size": .int(Int64(body.count))]
            let sent = AMQPMessage(body: body, exchange: "", routingKey: queue, properties: .init(headers: headers))
            #expect(try await client.publish(sent) == .confirmed)
            let consumer = try await client.consume(queue: queue, prefetch: 1)
            let delivery = try #require(try await take(1, from: consumer).first)
            #expect(delivery.body == body)
            try await client.ack(delivery.deliveryTag)
            try await client.cancel(consumer)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test(.enabled(if: TestBroker.maxMessageSize != nil, "needs the broker's max_message_size"))
    func messageAboveTheBrokerMaximumIsRefused() async throws {
        let queue = uniqueName("too-large")
        let limit = try #require(TestBroker.maxMessageSize)
        try await withClient { client in
            let connection = try await client.currentConnection()
            try await connection.declareQueue(.init(queue, durable: false))
            let tooLarge = AMQPMessage(body: [UInt8](repeating: 7, count: limit + 1), exchange: "", routingKey: queue)
            // In a batch, the messages confirmed before the refused one keep `confirmed`: a caller retries
            // only the others (the outbox relay never publishes a confirmed row again).
            let outcomes = try await connection.publish([message("before", to: queue), tooLarge])
            #expect(outcomes.count == 2)
            guard case .channelClosed(let code, let text) = outcomes[1] else {
                Issue.record("a message above max_message_size must be refused, got \(outcomes)")
                return
            }
            #expect(code == 406)
            #expect(text.contains("max size"))
            #expect(outcomes[0] == .confirmed || outcomes[0] == .channelClosed(replyCode: code, replyText: text))
            #expect(try await connection.publish(message("small", to: queue)) == .confirmed)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test(.enabled(if: TestBroker.isOwnNode, "freezes the broker: only the node from HMS_STACK_DIR"))
    func heartbeatLossIsDetectedAndTheClientReconnects() async throws {
        let pid = try #require(TestBroker.brokerPID())
        let configuration = try TestBroker.configuration(heartbeat: .seconds(2), connectTimeout: .seconds(3))
        let queue = uniqueName("heartbeat")
        try await withClient(configuration, topology: AMQPTopology(queues: [.init(queue, durable: false)])) { client in
            let connection = try await client.currentConnection()
            #expect(await connection.heartbeatSeconds == 2)
            let frozenAt = ContinuousClock.now
            kill(pid, SIGSTOP)
            do {
                defer { kill(pid, SIGCONT) }
                // rabbitmq-c gives up after two silent heartbeat intervals (4 s).
                try await eventually(15, "heartbeat loss noticed") { await !connection.isOpen }
                let noticedAfter = ContinuousClock.now - frozenAt
                #expect(noticedAfter < .seconds(12), "noticed after \(noticedAfter)")
                #expect(noticedAfter >= .seconds(3), "noticed after \(noticedAfter)")
                // Publishing while the broker is frozen fails clearly instead of hanging.
                do {
                    _ = try await client.publish(message("frozen", to: queue))
                    Issue.record("publish must not succeed while the broker is frozen")
                } catch let error as AMQPError {
                    #expect(error.isConnectionLevel || error.code == .connectionClosed)
                }
            }
            try await eventually(60, "reconnected after SIGCONT") { await client.connectionCount >= 2 }
            #expect(try await client.publish(message("thawed", to: queue)) == .confirmed)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test(.enabled(if: TestBroker.isOwnNode, "kills the broker: only the node from HMS_STACK_DIR"))
    func brokerKilledAndRestartedClientReconnectsRedeclaresAndPublishes() async throws {
        let exchange = uniqueName("restart-x")
        let transientQueue = uniqueName("restart-transient")
        let durableQueue = uniqueName("restart-durable")
        let topology = AMQPTopology(
            exchanges: [.init(exchange, kind: .topic, durable: false)],
            queues: [.init(transientQueue, durable: false), .init(durableQueue)],
            bindings: [
                .init(queue: transientQueue, exchange: exchange, routingKey: "t.#"),
                .init(queue: durableQueue, exchange: "amq.topic", routingKey: durableQueue),
            ])
        let configuration = try TestBroker.configuration(heartbeat: .seconds(2), connectTimeout: .seconds(3))
        try await withClient(configuration, topology: topology) { client in
            let before = AMQPMessage(body: Array("before".utf8), exchange: "amq.topic", routingKey: durableQueue)
            #expect(try await client.publish(before) == .confirmed)
            let connection = try await client.currentConnection()

            let pid = try #require(TestBroker.brokerPID())
            kill(pid, SIGKILL)
            try await eventually(15, "broker death noticed") { await !connection.isOpen }
            try await TestBroker.startNode()
            try await eventually(60, "reconnected after restart") { await client.connectionCount >= 2 }

            // The transient exchange, queue and binding died with the node; the client declared them again.
            let viaTransient = AMQPMessage(body: Array("t".utf8), exchange: exchange, routingKey: "t.1")
            #expect(try await client.publish(viaTransient) == .confirmed)
            let after = AMQPMessage(body: Array("after".utf8), exchange: "amq.topic", routingKey: durableQueue)
            #expect(try await client.publish(after) == .confirmed)

            // The confirmed persistent message survived the crash.
            let consumer = try await client.consume(queue: durableQueue, prefetch: 10)
            let bodies = try await take(2, from: consumer).map { String(decoding: $0.body, as: UTF8.self) }
            #expect(bodies == ["before", "after"])
            try await client.cancel(consumer)
            await cleanUp(client, queues: [transientQueue, durableQueue], exchanges: [exchange])
        }
    }

    @Test func configurationParsesURLs() throws {
        let plain = try AMQPConfiguration(url: "amqp://us%40er:p%3Ass@rabbit.example:5673/%2f?heartbeat=5&frame_max=8192")
        #expect(plain.user == "us@er")
        #expect(plain.password == "p:ss")
        #expect(plain.host == "rabbit.example")
        #expect(plain.port == 5673)
        #expect(plain.vhost == "/")
        #expect(plain.heartbeat == .seconds(5))
        #expect(plain.frameMax == 8192)
        #expect(plain.tls == nil)
        #expect(!plain.description.contains("p:ss"))

        let secure = try AMQPConfiguration(url: "amqps://u:p@[::1]/prod?cacertfile=/etc/ca.pem&verify=verify_none")
        #expect(secure.port == 5671)
        #expect(secure.host == "::1")
        #expect(secure.vhost == "prod")
        #expect(secure.tls?.caCertificateFile == "/etc/ca.pem")
        #expect(secure.tls?.verifyPeer == false)
        #expect(try AMQPConfiguration(url: "amqp://localhost").vhost == "/")
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "http://x") }
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "amqp://h:99999/") }
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "amqp://h/%zz") }
    }

    @Test func wrongPasswordIsAnAuthenticationFailure() async throws {
        var configuration = try TestBroker.configuration()
        configuration.password = "definitely-wrong"
        do {
            _ = try await AMQPConnection.connect(configuration: configuration, logger: testLogger)
            Issue.record("login with a wrong password must fail")
        } catch let error as AMQPError {
            #expect(error.code == .authenticationFailed)
            #expect(!error.description.contains("definitely-wrong"))
        }
    }
}
