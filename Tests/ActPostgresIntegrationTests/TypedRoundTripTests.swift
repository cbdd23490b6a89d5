import ActPostgres
import Foundation
import Testing

extension ActPostgresIntegration {
    @Suite("Typed parameters and rows")
    struct TypedRoundTripTests {
        static let createTable = """
            CREATE TEMP TABLE values_under_test (
                t text, i8 int8, i4 int4, b bool, f8 float8, u uuid, ts timestamptz, bin bytea, doc jsonb
            )
            """
        static let insert = "INSERT INTO values_under_test VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        static let select = "SELECT t, i8, i4, b, f8, u, ts, bin, doc FROM values_under_test"

        @Test func everyTypeRoundTrips() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query(Self.createTable)
                let text = "Grüße 👋 — 日本語 — \"quotes\" and 'apostrophes' and \\backslashes"
                let uuid = UUID()
                // PostgreSQL keeps microseconds: use a date that has exactly that precision.
                let date = Date(timeIntervalSince1970: 1_767_225_600.123456)
                let bytes: [UInt8] = [0, 1, 0, 255, 0, 0x5C, 0x78, 0]
                let json = PostgresJSON(#"{"name": "Zoë", "tags": ["a", "b"], "n": 1.5}"#)
                let inserted = try await connection.execute(
                    Self.insert,
                    [
                        PostgresBind(text), PostgresBind(Int.max), PostgresBind(Int32.min), PostgresBind(true),
                        PostgresBind(-1.25e-300), PostgresBind(uuid), PostgresBind(date), PostgresBind(bytes),
                        PostgresBind(json),
                    ]
                )
                #expect(inserted == 1)

                let rows = try await connection.query(Self.select)
                #expect(rows.count == 1)
                let row = try #require(rows.first)
                #expect(try row.decode(String.self, column: 0) == text)
                #expect(try row.decode(Int.self, column: 1) == Int.max)
                #expect(try row.decode(Int64.self, column: "i8") == Int64.max)
                #expect(try row.decode(Int32.self, column: 2) == Int32.min)
                #expect(try row.decode(Bool.self, column: 3) == true)
                #expect(try row.decode(Double.self, column: 4) == -1.25e-300)
                #expect(try row.decode(UUID.self, column: 5) == uuid)
                let decodedDate = try row.decode(Date.self, column: 6)
                #expect(abs(decodedDate.timeIntervalSince(date)) < 0.000_001)
                #expect(try row.decode([UInt8].self, column: 7) == bytes)
                #expect(try row.decode(Data.self, column: "bin") == Data(bytes))
                let decodedJSON = try row.decode(PostgresJSON.self, column: 8)
                let object = try JSONSerialization.jsonObject(with: Data(decodedJSON.bytes)) as? [String: Any]
                #expect(object?["name"] as? String == "Zoë")
            }
        }

        @Test func nullsDecodeAsOptionalsAndRefuseNonOptionals() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query(Self.createTable)
                try await connection.execute(
                    Self.insert,
                    [
                        PostgresBind(String?.none), PostgresBind(Int?.none), PostgresBind(Int32?.none),
                        PostgresBind(Bool?.none), PostgresBind(Double?.none), PostgresBind(UUID?.none),
                        PostgresBind(Date?.none), PostgresBind([UInt8]?.none), PostgresBind(PostgresJSON?.none),
                    ]
                )
                let row = try #require(try await connection.query(Self.select).first)
                #expect(try row.decode(String?.self, column: 0) == nil)
                #expect(try row.decode(Int?.self, column: 1) == nil)
                #expect(try row.decode(Int32?.self, column: 2) == nil)
                #expect(try row.decode(Bool?.self, column: 3) == nil)
                #expect(try row.decode(Double?.self, column: 4) == nil)
                #expect(try row.decode(UUID?.self, column: 5) == nil)
                #expect(try row.decode(Date?.self, column: 6) == nil)
                #expect(try row.decode([UInt8]?.self, column: 7) == nil)
                #expect(try row.decode(PostgresJSON?.self, column: 8) == nil)
                for column in 0..<9 { #expect(row.isNull(column: column)) }

                let error = #expect(throws: PostgresError.self) { try row.decode(String.self, column: 0) }
                #expect(error?.code == .decoding)
                #expect(error?.description.contains("NULL") == true)
            }
        }

        @Test func typeMismatchIsAClearDecodingError() async throws {
            try await TestDatabase.withConnection { connection in
                let row = try #require(try await connection.query("SELECT 'abc'::text AS word, 42 AS number").first)
                let error = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "word") }
                #expect(error?.code == .decoding)
                #expect(error?.description.contains("word") == true)
                #expect(try row.decode(Int.self, column: "number") == 42)
                #expect(throws: PostgresError.self) { try row.decode(UUID.self, column: "number") }
                #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "missing") }
            }
        }

        @Test func bigJSONBAndBigByteaRoundTrip() async throws {
            try await TestDatabase.withConnection { connection in
                // ~2 MB of JSON: far beyond a socket buffer, so sending and receiving take many reads and writes.
                let items = (0..<40_000).map { #"{"id": \#($0), "note": "ümlaut \#($0) 🚀"}"# }
                let json = PostgresJSON("[" + items.joined(separator: ",") + "]")
                let bytes = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                let row = try #require(
                    try await connection.query(
                        "SELECT jsonb_array_length($1), $1, length($2), $2",
                        [PostgresBind(json), PostgresBind(bytes)]
                    ).first
                )
                #expect(try row.decode(Int.self, column: 0) == 40_000)
                let decoded = try row.decode(PostgresJSON.self, column: 1)
                let array = try JSONSerialization.jsonObject(with: Data(decoded.bytes)) as? [[String: Any]]
                #expect(array?.count == 40_000)
                #expect(array?.last?["note"] as? String == "ümlaut 39999 🚀")
                #expect(try row.decode(Int.self, column: 2) == 1_000_000)
                #expect(try row.decode([UInt8].self, column: 3) == bytes)
            }
        }

        @Test func injectionAttemptStaysData() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE students (name text)")
                let hostile = "Robert'); DROP TABLE students; --"
                try await connection.execute("INSERT INTO students (name) VALUES ($1)", [PostgresBind(hostile)])
                let quoteAttack = "' OR '1'='1"
                let matches = try await connection.query("SELECT name FROM students WHERE name = $1", [PostgresBind(quoteAttack)])
                #expect(matches.isEmpty)
                let rows = try await connection.query("SELECT name FROM students")
                #expect(try rows.map { try $0.decode(String.self, column: 0) } == [hostile])
                let echoed = try await connection.query("SELECT $1::text", [PostgresBind("$1; SELECT 1; --")]).first
                #expect(try echoed?.decode(String.self, column: 0) == "$1; SELECT 1; --")
                // A NUL byte is refused by the server (text cannot hold it), not truncated on the way.
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT $1::text", [PostgresBind("before\0after")])
                }
                #expect(error?.sqlState == "22021")
            }
        }

        @Test func literalsAndTextParameters() async throws {
            try await TestDatabase.withConnection { connection in
                let row = try #require(
                    try await connection.query(
                        "SELECT $1::text, $2::int8, $3::bool, $4::float8, $5::text IS NULL, $6::interval",
                        ["literal", 7, false, 2.5, nil, .text("1 day 2 hours", type: .interval)]
                    ).first
                )
                #expect(try row.decode(String.self, column: 0) == "literal")
                #expect(try row.decode(Int.self, column: 1) == 7)
                #expect(try row.decode(Bool.self, column: 2) == false)
                #expect(try row.decode(Double.self, column: 3) == 2.5)
                #expect(try row.decode(Bool.self, column: 4) == true)
                #expect(try row.decode(String.self, column: 5) == "1 day 02:00:00")
            }
        }

        @Test func timestampsWithOffsetsAndPlainTimestamps() async throws {
            try await TestDatabase.withConnection { connection in
                let row = try #require(
                    try await connection.query(
                        """
                        SELECT '2024-02-29 23:59:59.5+05:30'::timestamptz, '1999-12-31 12:00:00'::timestamp,
                               '1969-07-20 20:17:40Z'::timestamptz
                        """
                    ).first
                )
                #expect(try row.decode(Date.self, column: 0) == Date(timeIntervalSince1970: 1_709_231_399.5))
                #expect(try row.decode(Date.self, column: 1) == Date(timeIntervalSince1970: 946_641_600))
                #expect(try row.decode(Date.self, column: 2) == Date(timeIntervalSince1970: -14_182_940))
            }
        }

        @Test func preparedStatementsAreReused() async throws {
            try await TestDatabase.withConnection { connection in
                try await connection.query("CREATE TEMP TABLE counters (n int4)")
                for n in 0..<5 {
                    try await connection.execute(.prepared("INSERT INTO counters (n) VALUES ($1)", [PostgresBind(n)]))
                }
                let prepared = try await connection.query(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                    ["INSERT INTO counters (n) VALUES ($1)"]
                )
                #expect(try prepared.first?.decode(Int.self, column: 0) == 1)
                let sum = try await connection.query(.prepared("SELECT sum(n)::int8 FROM counters"))
                #expect(try sum.first?.decode(Int.self, column: 0) == 10)
            }
        }
    }
}
