import ActPostgres

extension StoreSQL {
    static let ensureRateBucket = """
        INSERT INTO rate_buckets (rate_key, tokens) VALUES ($1, $2) ON CONFLICT (rate_key) DO NOTHING
        """
    static let lockRateBucket = """
        SELECT tokens, (extract(epoch FROM now() - refilled_at) * 1000)::float8 FROM rate_buckets
        WHERE rate_key = $1 FOR UPDATE
        """
    static let setRateBucket = "UPDATE rate_buckets SET tokens = $2, refilled_at = now() WHERE rate_key = $1"
    /// Makes outbox rows available again `ms` from now each, without counting an attempt (a row waiting for
    /// its rate is not failing).
    static let holdOutbox = """
        UPDATE outbox o SET available_at = now() + make_interval(secs => h.ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS h(id bigint, ms float8) WHERE o.outbox_id = h.id
        """
}

extension StoreTransaction {
    /// Takes up to `wanted` tokens from the bucket `key` (one every `interval` milliseconds, at most `burst`
    /// saved), under its row lock, by the database's clock.
    ///
    /// - Returns: The tokens granted, and for each row not granted (in order) how many milliseconds until its
    ///   token is due.
    public func takeRateTokens(key: String, wanted: Int, interval: Double, burst: Int) async throws
        -> (granted: Int, waits: [Double])
    {
        guard wanted > 0 else { return (0, []) }
        try await connection.execute(StoreSQL.ensureRateBucket, [PostgresBind(key), PostgresBind(Double(burst))])
        guard let row = try await connection.query(StoreSQL.lockRateBucket, [PostgresBind(key)]).first else {
            return (0, Array(repeating: interval, count: wanted))
        }
        let saved: Double = try row.decode(column: 0)
        let elapsed: Double = try row.decode(column: 1)
        let tokens = min(Double(burst), saved + max(elapsed, 0) / interval)
        let granted = min(wanted, Int(tokens.rounded(.down)))
        let left = tokens - Double(granted)
        try await connection.execute(StoreSQL.setRateBucket, [PostgresBind(key), PostgresBind(left)])
        let waits = (0..<(wanted - granted)).map { position in (Double(position) + 1 - left) * interval }
        return (granted, waits)
    }

    /// Holds outbox rows back: each available again after its wait (milliseconds), with no attempt counted.
    public func holdOutbox(_ rows: [(id: Int64, milliseconds: Double)]) async throws {
        guard !rows.isEmpty else { return }
        let json = "[" + rows.map { "{\"id\":\($0.id),\"ms\":\($0.milliseconds)}" }.joined(separator: ",") + "]"
        try await connection.execute(StoreSQL.holdOutbox, [PostgresBind(PostgresJSON(bytes: Array(json.utf8)))])
    }
}
