import ActPlaybook
public import ActPostgres
internal import Foundation
public import Logging

/// hms-act's durable state in PostgreSQL: playbook versions, runs, tasks, timers, the outbox, the inbox
/// and the audit trail. All SQL lives in ``StoreSQL``; every batch of writes commits in one transaction.
///
/// The tables live in ``schema`` (set as the connections' `search_path`); ``migrate()`` creates it.
public struct Store: Sendable {
    public let client: PostgresClient
    public let schema: String
    let logger: Logger

    /// - Parameters:
    ///   - client: A pool whose connections use `schema` as their search path.
    ///   - schema: The schema holding the tables (letters, digits, `_`).
    public init(client: PostgresClient, schema: String, logger: Logger) {
        self.client = client
        self.schema = schema
        self.logger = logger
    }

    // MARK: Playbooks

    /// Registers a playbook version. Registering the same source again returns the existing version:
    /// versions are immutable and identified by their checksum.
    ///
    /// - Returns: The version and whether this call created it.
    public func registerPlaybook(id: String, checksum: String, source: String, model: [UInt8], triggers: [String])
        async throws -> (version: PlaybookVersion, created: Bool)
    {
        try await client.withConnection { connection in
            let triggersJSON = JSONValue.array(triggers.map(JSONValue.string)).canonicalEncoding
            let inserted = try await connection.query(StoreSQL.insertPlaybookVersion, [
                PostgresBind(id), PostgresBind(checksum), PostgresBind(source), PostgresBind(PostgresJSON(bytes: model)),
                PostgresBind(PostgresJSON(bytes: triggersJSON)),
            ])
            let rows = try await connection.query(StoreSQL.playbookVersionByChecksum, [PostgresBind(id), PostgresBind(checksum)])
            guard let row = rows.first else {
                throw PostgresError.decodingFailed("the registered playbook version could not be read back")
            }
            return (try Self.playbookVersion(row), inserted.count == 1)
        }
    }

    /// Every version registered after `versionID`, oldest first.
    public func playbookVersions(after versionID: Int64 = 0) async throws -> [PlaybookVersion] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.playbookVersionsAfter, [PostgresBind(versionID)]).map(Self.playbookVersion)
        }
    }

    /// One version by id.
    public func playbookVersion(id versionID: Int64) async throws -> PlaybookVersion? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.playbookVersionByID, [PostgresBind(versionID)]).first.map(Self.playbookVersion)
        }
    }

    static func playbookVersion(_ row: PostgresRow) throws -> PlaybookVersion {
        let versionID: Int64 = try row.decode(column: 0)
        let triggersText: String = try row.decode(column: 5)
        let triggers: [String]
        do {
            triggers = try JSONDecoder().decode([String].self, from: Data(triggersText.utf8))
        } catch {
            // No triggers would silently stop the version from starting runs.
            throw StoreDataError(column: "playbook_versions.triggers", row: "playbook version \(versionID)",
                problem: "is not an array of strings")
        }
        return PlaybookVersion(
            versionID: versionID, playbookID: try row.decode(column: 1),
            checksum: try row.decode(column: 2), source: try row.decode(column: 3),
            model: Array((try row.decode(String.self, column: 4)).utf8), triggers: triggers,
            registeredAt: try row.decode(column: 6))
    }

    // MARK: Batches

    /// Runs `body` in one transaction on one pooled connection: claim inbox keys, lock runs, claim timers,
    /// then ``StoreTransaction/write(_:)`` the batch. Commits when `body` returns, rolls back when it throws.
    public func withTransaction<Result: Sendable>(_ body: (StoreTransaction) async throws -> Result)
        async throws -> Result
    {
        try await client.withTransaction { connection in
            try await body(StoreTransaction(connection: connection))
        }
    }

    // MARK: Health

    /// PostgreSQL's clock (`clock_timestamp()`), in milliseconds since the epoch: the clock deadlines
    /// are computed on and timers are claimed by.
    public func databaseTimeMilliseconds() async throws -> Int64 {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.databaseTime).first!.decode(Int64.self, column: 0)
        }
    }

    /// The server's `synchronous_commit` for our sessions. With `off`, a commit returns before its WAL is
    /// written, and a killed server loses commits whose messages were already acknowledged.
    public func synchronousCommit() async throws -> String {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.synchronousCommit).first!.decode(String.self, column: 0)
        }
    }

    /// Whether a connection can be had and answers.
    public func ping() async -> Bool {
        do {
            return try await client.withConnection { connection in
                try await connection.query(StoreSQL.ping).count == 1
            }
        } catch {
            return false
        }
    }
}
