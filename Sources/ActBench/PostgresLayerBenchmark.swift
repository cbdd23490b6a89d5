import ActPostgres
import Logging

/// Measures the PostgreSQL layer alone, against a real server: how fast single-row commits, pipelined batches
/// and prepared statements in one transaction go.
///
/// Run it against a server with durable settings (not the test stack's `fsync=off`), or the commit figures
/// mean nothing. It creates, fills and drops the table `act_bench_postgres_layer`.
///
/// - Parameters:
///   - configuration: the server to measure.
///   - rows: rows inserted by each of the three measurements.
///   - logger: receives progress at debug level.
/// - Returns: `postgres.single_row_commits` (commits/s), `postgres.pipelined_batch_rows` (rows/s, 100 rows per
///   commit) and `postgres.prepared_rows_one_transaction` (rows/s).
func runPostgresLayerBenchmark(
    configuration: PostgresConfiguration,
    rows: Int,
    logger: Logger
) async throws -> [LayerBenchmarkFigure] {
    let rows = max(1, rows)
    let connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
    do {
        let figures = try await measure(on: connection, rows: rows, logger: logger)
        try await connection.executeScript(PostgresLayerBenchmarkSQL.dropTable)
        await connection.close()
        return figures
    } catch {
        await connection.close()
        throw error
    }
}

/// The layer benchmark's own SQL. It measures the client (libpq and ActPostgres) on a scratch table of its
/// own, not hms-act's schema, so it stays here rather than in ActStore, where every query on the schema lives.
private enum PostgresLayerBenchmarkSQL {
    static let createTable = """
        DROP TABLE IF EXISTS act_bench_postgres_layer;
        CREATE TABLE act_bench_postgres_layer (id int8 PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL);
        """
    static let truncate = "TRUNCATE act_bench_postgres_layer"
    static let insert = "INSERT INTO act_bench_postgres_layer (id, payload, created_at) VALUES ($1, $2, now())"
    static let dropTable = "DROP TABLE IF EXISTS act_bench_postgres_layer"
}

/// Rows per commit in the batched measurement: the batch size DESIGN.md §5 has the service aim for.
private let rowsPerBatch = 100

private func measure(on connection: PostgresConnection, rows: Int, logger: Logger) async throws -> [LayerBenchmarkFigure] {
    let clock = ContinuousClock()
    let payload = String(repeating: "x", count: 64)
    func binds(_ id: Int) -> [PostgresBind] { [PostgresBind(id), PostgresBind(payload)] }

    try await connection.executeScript(PostgresLayerBenchmarkSQL.createTable)

    // 1. One INSERT per transaction (autocommit): bounded by the commit's WAL flush.
    let single = try await clock.measure {
        for id in 0..<rows {
            try await connection.execute(PostgresLayerBenchmarkSQL.insert, binds(id))
        }
    }
    logger.debug("postgres layer benchmark: single-row commits done")

    // 2. Pipelined batches: each batch is BEGIN + 100 INSERTs + COMMIT in one round trip.
    try await connection.execute(PostgresLayerBenchmarkSQL.truncate)
    let batched = try await clock.measure {
        var start = 0
        while start < rows {
            let end = min(rows, start + rowsPerBatch)
            try await connection.pipeline((start..<end).map { PostgresStatement(PostgresLayerBenchmarkSQL.insert, binds($0)) })
            start = end
        }
    }
    logger.debug("postgres layer benchmark: pipelined batches done")

    // 3. A prepared INSERT executed row by row inside one transaction: one round trip per row, one commit.
    try await connection.execute(PostgresLayerBenchmarkSQL.truncate)
    let prepared = try await clock.measure {
        try await connection.withTransaction { connection in
            for id in 0..<rows {
                try await connection.execute(.prepared(PostgresLayerBenchmarkSQL.insert, binds(id)))
            }
        }
    }
    logger.debug("postgres layer benchmark: prepared statements done")

    return [
        LayerBenchmarkFigure(name: "postgres.single_row_commits", value: benchRate(rows, single), unit: "commits/s"),
        LayerBenchmarkFigure(name: "postgres.pipelined_batch_rows", value: benchRate(rows, batched), unit: "rows/s"),
        LayerBenchmarkFigure(
            name: "postgres.prepared_rows_one_transaction",
            value: benchRate(rows, prepared),
            unit: "rows/s"
        ),
    ]
}
