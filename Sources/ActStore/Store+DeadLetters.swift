import ActPlaybook
internal import ActPostgres

/// Dead letters kept for operators (`dead_letters`, migration 0008).
extension Store {
    /// Stores collected dead letters in one statement.
    /// - Returns: Their new ids, in order.
    public func insertDeadLetters(_ letters: [DeadLetter]) async throws -> [Int64] {
        guard !letters.isEmpty else { return [] }
        var rows = JSONRows()
        for (ordinal, letter) in letters.enumerated() {
            rows.append([
                "collected_ms": .int(letter.collectedAt), "exchange": .string(letter.exchange),
                "routing_key": .string(letter.routingKey), "queue": .string(letter.queue),
                "reason": .string(letter.reason), "message_id": .string(letter.messageID),
                "properties": .json(letter.properties), "body": .hex(letter.body), "ordinal": .int(Int64(ordinal)),
            ])
        }
        return try await client.withConnection { connection in
            try await connection.query(StoreSQL.insertDeadLetters, [StoreTransaction.json(rows)]).map {
                try $0.decode(Int64.self, column: 0)
            }
        }
    }

    /// Dead letters newest first; of one status when given; `before` an id pages on.
    public func listDeadLetters(status: DeadLetter.Status?, before: Int64? = nil, limit: Int) async throws
        -> [DeadLetter]
    {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.listDeadLetters, [
                PostgresBind(status?.rawValue), PostgresBind(before), PostgresBind(max(1, min(limit, 1_000))),
            ]).map(Self.deadLetter)
        }
    }

    /// One dead letter.
    public func deadLetter(id: Int64) async throws -> DeadLetter? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.deadLetter, [PostgresBind(id)]).first.map(Self.deadLetter)
        }
    }

    /// Marks a waiting dead letter `replayed` or `discarded` by `actor`.
    /// - Returns: Whether it was waiting (false: handled already, or no such id).
    public func handleDeadLetter(id: Int64, as status: DeadLetter.Status, actor: String, note: String?) async throws
        -> Bool
    {
        try await client.withConnection { connection in
            !(try await connection.query(StoreSQL.handleDeadLetter, [PostgresBind(id), PostgresBind(status.rawValue),
                PostgresBind(actor), PostgresBind(note)]).isEmpty)
        }
    }

    private static func deadLetter(_ row: PostgresRow) throws -> DeadLetter {
        let id: Int64 = try row.decode(column: 0)
        let properties = try Self.json(try row.decode(String.self, column: 7), column: "dead_letters.properties",
            row: "dead letter \(id)")
        let statusText: String = try row.decode(column: 9)
        return DeadLetter(
            id: id, collectedAt: try row.decode(column: 1), exchange: try row.decode(column: 2),
            routingKey: try row.decode(column: 3), queue: try row.decode(column: 4), reason: try row.decode(column: 5),
            messageID: try row.decode(column: 6), properties: properties,
            body: try row.decode(column: 8),
            status: DeadLetter.Status(rawValue: statusText) ?? .dead, handledAt: try row.decode(column: 10),
            handledBy: try row.decode(column: 11), note: try row.decode(column: 12))
    }
}
