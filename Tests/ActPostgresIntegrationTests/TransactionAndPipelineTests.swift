import ActPostgres
import Testing

extension ActPostgresIntegration {
    @Suite("Transactions and pipelines")
    struct TransactionAndPipelineTests {
        struct Boom: Error {}

        static func count(_ connection: PostgresConnection, _ table: String) async throws -> Int {
            try await connection.query("SELECT count(*) FROM \(table)").first?.decode(Int.self, column: 0) ?? -1
        }

        @Test func transactionCommits() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY)")
                let returned = try await connection.withTransaction { connection in
                    try await connection.execute("INSERT INTO items VALUES ($1)", [1])
                    try await connection.execute("INSERT INTO items VALUES ($1)", [2])
                    return "done"
                }
                #expect(returned == "done")
                #expect(try await Self.count(connection, "items") == 2)
                #expect(await connection.isUsable)
            }
        }

        @Test func transactionRollsBackWhenBodyThrows() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY)")
                await #expect(throws: Boom.self) {
                    try await connection.withTransaction { connection in
                        try await connection.execute("INSERT INTO items VALUES ($1)", [1])
                        throw Boom()
                    }
                }
                #expect(try await Self.count(connection, "items") == 0)
                #expect(await connection.isUsable)
            }
        }

        @Test func transactionRollsBackOnServerErrorEvenWhenSwallowed() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY)")
                let thrown = await #expect(throws: PostgresError.self) {
                    try await connection.withTransaction { connection in
                        try await connection.execute("INSERT INTO items VALUES ($1)", [1])
                        do throws(PostgresError) {
                            try await connection.execute("INSERT INTO items VALUES ($1)", [1])
                        } catch {
                            #expect(error.isUniqueViolation)
                            #expect(error.constraintName == "items_pkey")
                        }
                    }
                }
                #expect(thrown?.code == .transactionState)
                #expect(try await Self.count(connection, "items") == 0)
            }
        }

        @Test func transactionsDoNotNest() async throws {
            try await TestDatabase.withConnection { connection in
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.withTransaction { connection in
                        try await connection.withTransaction { _ in 1 }
                    }
                }
                #expect(error?.code == .transactionState)
                #expect(await connection.isUsable)
            }
        }

        @Test func thousandInsertsInOnePipelinedTransaction() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY, label text)")
                let statements = (0..<1_000).map {
                    PostgresStatement("INSERT INTO items (id, label) VALUES ($1, $2)", [PostgresBind($0), PostgresBind("item \($0)")])
                }
                let results = try await connection.withTransaction { connection in
                    try await connection.pipeline(statements)
                }
                #expect(results.count == 1_000)
                #expect(results.allSatisfy { $0.affectedRows == 1 })
                #expect(try await Self.count(connection, "items") == 1_000)

                // Without an enclosing transaction the pipeline is atomic by itself, across sync points too,
                // and returns each statement's rows.
                let selects = try await connection.pipeline(
                    (0..<600).map { ("SELECT label FROM items WHERE id = $1", [PostgresBind($0)]) }
                )
                #expect(try selects[599].first?.decode(String.self, column: 0) == "item 599")
            }
        }

        @Test func errorMidPipelineReportsTheIndexAndRollsBack() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE items (id int8 PRIMARY KEY)")
                // 700 statements span three sync points; statement 517 repeats id 3.
                let ids = (0..<700).map { $0 == 517 ? 3 : $0 }
                let statements = ids.map { PostgresStatement("INSERT INTO items VALUES ($1)", [PostgresBind($0)]) }
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.pipeline(statements)
                }
                #expect(error?.statementIndex == 517)
                #expect(error?.isUniqueViolation == true)
                #expect(try await Self.count(connection, "items") == 0)
                #expect(await connection.isUsable)

                // Inside a transaction: the failure aborts it, and withTransaction rolls back.
                let inTransaction = await #expect(throws: PostgresError.self) {
                    try await connection.withTransaction { connection in
                        try await connection.execute("INSERT INTO items VALUES ($1)", [10_000])
                        _ = try await connection.pipeline(Array(statements.prefix(20)) + [statements[517]])
                    }
                }
                #expect(inTransaction?.statementIndex == 20)
                #expect(try await Self.count(connection, "items") == 0)
                #expect(await connection.isUsable)
            }
        }

        @Test func claimersWithSkipLockedNeverClaimARowTwice() async throws {
            let schema = "act_pg_test_claims"
            try await TestDatabase.withConnection { setup in
                try await TestDatabase.recreateSchema(schema, on: setup)
                try await setup.executeScript(
                    """
                    CREATE TABLE \(schema).jobs (id int8 PRIMARY KEY, claimed_by text);
                    INSERT INTO \(schema).jobs (id) SELECT generate_series(1, 300);
                    """
                )
            }
            let claim = """
                UPDATE \(schema).jobs SET claimed_by = $1
                WHERE id IN (
                    SELECT id FROM \(schema).jobs WHERE claimed_by IS NULL ORDER BY id LIMIT 7 FOR UPDATE SKIP LOCKED
                )
                RETURNING id
                """
            let claims = try await withThrowingTaskGroup(of: [Int].self) { group in
                for worker in ["a", "b"] {
                    group.addTask {
                        try await TestDatabase.withConnection { connection in
                            var mine: [Int] = []
                            while true {
                                let rows = try await connection.withTransaction { connection in
                                    try await connection.query(claim, [PostgresBind(worker)])
                                }
                                if rows.isEmpty { return mine }
                                mine += try rows.map { try $0.decode(Int.self, column: 0) }
                            }
                        }
                    }
                }
                var all: [[Int]] = []
                for try await claimed in group { all.append(claimed) }
                return all
            }
            let flat = claims.flatMap { $0 }
            #expect(flat.count == 300)
            #expect(Set(flat).count == 300)
            #expect(Set(claims[0]).isDisjoint(with: claims[1]))
            try await TestDatabase.withConnection { cleanup in
                try await cleanup.executeScript("DROP SCHEMA \(schema) CASCADE")
            }
        }
    }
}
