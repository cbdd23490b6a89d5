public import ActAMQP
public import ActPlaybook
public import ActStore
internal import Foundation

/// Dead letters for operators: `hms-act dead collect` moves what waits in the dead-letter queue into the
/// database (``DeadLetter``, one transaction, acknowledged only after it commits), where it is listed, shown,
/// replayed to the exchange and routing key it was first published to, or discarded; each of those is
/// recorded with who did it and why.
///
/// It runs under the operator's own broker user, not the service's: the service may neither read its
/// dead-letter queue nor publish events or results (deploy/rabbitmq, `LeastPrivilegeTests`).
public enum DeadLetterDesk {
    /// What went wrong, as a sentence with the fix.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Reading a dead letter

    /// A dead-lettered delivery as a row: where it was first published, the queue that gave up on it and
    /// why (hms-act's `x-hms-reason`, else the broker's `x-death`).
    public static func record(of delivery: AMQPDelivery, now: Int64) -> DeadLetter {
        let headers = delivery.properties.headers
        let death = headers["x-death"].flatMap { value -> [String: AMQPFieldValue]? in
            if case .array(let deaths) = value, case .table(let first)? = deaths.first { return first }
            return nil
        }
        var exchange = headers["x-hms-original-exchange"]?.stringValue
        var routingKey = delivery.routingKey
        var queue = headers["x-hms-original-queue"]?.stringValue
        var reason = headers["x-hms-reason"]?.stringValue
        if let death {
            exchange = exchange ?? death["exchange"]?.stringValue
            queue = queue ?? death["queue"]?.stringValue
            if case .array(let keys)? = death["routing-keys"], let first = keys.first?.stringValue { routingKey = first }
            if reason == nil {
                let why = death["reason"]?.stringValue ?? "dead-lettered"
                let count = death["count"]?.intValue.map { ", \($0) times" } ?? ""
                reason = "the broker dead-lettered it from \(queue ?? "a queue") (\(why)\(count))"
                    + (why == "delivery_limit" ? ": it was redelivered more than the queue's delivery limit, so "
                        + "applying it failed every time; read the service's logs for the error" : "")
            }
        }
        return DeadLetter(
            collectedAt: now, exchange: exchange ?? delivery.exchange, routingKey: routingKey, queue: queue,
            reason: reason ?? "no reason recorded", messageID: delivery.properties.messageID,
            properties: json(delivery.properties), body: delivery.body)
    }

    /// Properties and headers as JSON (bytes as base64, timestamps as seconds).
    static func json(_ properties: AMQPProperties) -> JSONValue {
        var object: [String: JSONValue] = [:]
        func set(_ key: String, _ value: String?) { if let value { object[key] = .string(value) } }
        set("content_type", properties.contentType)
        set("content_encoding", properties.contentEncoding)
        set("type", properties.type)
        set("message_id", properties.messageID)
        set("correlation_id", properties.correlationID)
        set("reply_to", properties.replyTo)
        set("app_id", properties.appID)
        set("user_id", properties.userID)
        if let timestamp = properties.timestamp { object["timestamp"] = .int(Int64(timestamp.timeIntervalSince1970)) }
        if let priority = properties.priority { object["priority"] = .int(Int64(priority)) }
        object["headers"] = .object(properties.headers.mapValues(json))
        return .object(object)
    }

    static func json(_ value: AMQPFieldValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .int(let number): .int(number)
        case .bool(let flag): .bool(flag)
        case .double(let number): JSONNumber(number).map(JSONValue.number) ?? .null
        case .table(let table): .object(table.mapValues(json))
        case .array(let items): .array(items.map(json))
        case .bytes(let bytes): .string(Data(bytes).base64EncodedString())
        case .timestamp(let date): .int(Int64(date.timeIntervalSince1970))
        case .void: .null
        }
    }

    /// The properties a replay publishes with: the original ones, without the user id (the broker accepts
    /// only the publisher's own) and without the headers the dead-lettering added.
    public static func replayProperties(_ json: JSONValue) -> AMQPProperties {
        func text(_ key: String) -> String? { json[key]?.stringValue }
        var headers: [String: AMQPFieldValue] = [:]
        if case .object(let stored)? = json["headers"] {
            for (name, value) in stored {
                let lower = name.lowercased()
                guard !lower.hasPrefix("x-hms-"), !lower.hasPrefix("x-death"), !lower.hasPrefix("x-first-death"),
                    !lower.hasPrefix("x-last-death"), lower != "x-delivery-count"
                else { continue }
                switch value {
                case .string(let text): headers[name] = .string(text)
                case .bool(let flag): headers[name] = .bool(flag)
                case .number(let number):
                    if let whole = number.intValue { headers[name] = .int(Int64(whole)) }
                default: continue
                }
            }
        }
        return AMQPProperties(
            contentType: text("content_type"), contentEncoding: text("content_encoding"), headers: headers,
            correlationID: text("correlation_id"), replyTo: text("reply_to"), messageID: text("message_id"),
            timestamp: json["timestamp"]?.numberValue?.intValue.map { Date(timeIntervalSince1970: Double($0)) },
            type: text("type"), appID: text("app_id"))
    }

    // MARK: Operations

    /// How long `collect` waits for the messages the queue counted.
    static let collectPatience = Duration.seconds(10)

    /// Moves up to `limit` messages waiting in `queue` into the database, then acknowledges them.
    ///
    /// - Returns: The new rows' ids. A crash between the commit and the acknowledgement collects those
    ///   messages again (two rows for one message; a replay of both is harmless: the inbox ignores repeats).
    public static func collect(from queue: String, on connection: AMQPConnection, into store: Store, limit: Int,
        now: @Sendable () -> Int64) async throws -> [Int64]
    {
        let waiting: UInt32
        do {
            waiting = try await connection.messageCount(ofQueue: queue)
        } catch let error as AMQPError {
            throw Failure("cannot read the dead-letter queue \(queue): \(error); it must exist (hms-act declares it "
                + "at start) and this broker user needs read rights on it (the operator's, not the service's)")
        }
        let wanted = Int(min(UInt32(max(1, limit)), waiting))
        guard wanted > 0 else { return [] }
        let tag = "hms-act-dead-collect-" + UUID().uuidString.prefix(8)
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(min(wanted, 1_000)), consumerTag: tag)
        // The counted messages arrive at once, unless another reader took some: then stop waiting. Cancelling
        // the consumer returns what it holds to the queue, so nothing is stored either.
        let gaveUp = Task {
            try await Task.sleep(for: collectPatience)
            try await connection.cancel(consumerTag: tag)
        }
        defer { gaveUp.cancel() }
        var letters: [DeadLetter] = []
        var lastTag: AMQPDeliveryTag?
        for try await delivery in consumer {
            letters.append(record(of: delivery, now: now()))
            lastTag = delivery.deliveryTag
            if letters.count == wanted { break }
        }
        gaveUp.cancel()
        guard letters.count == wanted else {
            throw Failure("\(queue) held fewer messages than it counted (another reader took some?); nothing was "
                + "collected and they are back in the queue; run collect again")
        }
        let ids = try await store.insertDeadLetters(letters)
        if let lastTag { try await connection.ack(lastTag, multiple: true) }
        return ids
    }

    /// Publishes dead letter `id` again to the exchange and routing key it was first published to (mandatory,
    /// confirmed), then marks it replayed by `actor`.
    ///
    /// - Throws: ``Failure`` when it is unknown or handled already, or when the broker refuses it or no queue
    ///   receives it (then it stays waiting).
    public static func replay(_ id: Int64, on connection: AMQPConnection, store: Store, actor: String, note: String?)
        async throws -> DeadLetter
    {
        let letter = try await waiting(id, store: store)
        let message = AMQPMessage(body: letter.body, exchange: letter.exchange, routingKey: letter.routingKey,
            properties: replayProperties(letter.properties), mandatory: true)
        switch try await connection.publish(message) {
        case .confirmed:
            break
        case .returned(let code, let text):
            throw Failure("no queue receives \(letter.exchange) \(letter.routingKey) (\(code) \(text)): bind one "
                + "first (for an event: register its playbook, or start hms-act so it binds the trigger), then replay "
                + "again; dead letter \(id) stays waiting")
        case .nacked:
            throw Failure("the broker refused the message (nack); replay again; dead letter \(id) stays waiting")
        case .channelClosed(let code, let text):
            throw Failure("the broker refused the message (\(code) \(text)): the exchange must exist and this user "
                + "needs write rights on it; dead letter \(id) stays waiting")
        }
        _ = try await store.handleDeadLetter(id: id, as: .replayed, actor: actor, note: note)
        return letter
    }

    /// Marks dead letter `id` discarded by `actor`; it is kept, and never replayed.
    public static func discard(_ id: Int64, store: Store, actor: String, note: String?) async throws {
        _ = try await waiting(id, store: store)
        guard try await store.handleDeadLetter(id: id, as: .discarded, actor: actor, note: note) else {
            throw Failure("dead letter \(id) was handled meanwhile")
        }
    }

    private static func waiting(_ id: Int64, store: Store) async throws -> DeadLetter {
        guard let letter = try await store.deadLetter(id: id) else {
            throw Failure("no dead letter \(id); list them with hms-act dead list")
        }
        guard letter.status == .dead else {
            throw Failure("dead letter \(id) was \(letter.status.rawValue) by \(letter.handledBy ?? "?")"
                + (letter.note.map { " (\($0))" } ?? "") + "; only a waiting one can be replayed or discarded")
        }
        return letter
    }
}
