internal import ActPostgres
internal import Crypto
internal import Foundation
import Logging

/// Applies the numbered `.sql` migrations in `Migrations/` that the database has not seen yet, each in its
/// own transaction and recorded in `schema_migrations` with its checksum. Replicas starting together
/// serialise on an advisory lock, so each migration runs once.
struct Migrator {
    struct Migration {
        var version: Int
        var name: String
        var sql: String
        var checksum: String
    }

    /// The migrations shipped with this build, by version.
    static func bundled() throws -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError(reason: "the Migrations resource folder is missing from this build")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try files.map { file in
            guard let version = Int(file.prefix { $0.isNumber }) else {
                throw MigrationError(reason: "migration \(file) must start with its number, e.g. 0002_add_index.sql")
            }
            let sql = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let checksum = SHA256.hash(data: Array(sql.utf8)).map { String(format: "%02x", $0) }.joined()
            return Migration(version: version, name: file, sql: sql, checksum: checksum)
        }
    }

    struct MigrationError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }
}

extension Store {
    /// The migrations this build ships, oldest first, as their version and file name
    /// (`1`, `0001_initial.sql`): what ``migrate()`` applies, for `hms-act migrate` to report.
    ///
    /// - Throws: When the resource folder is missing from the build or a file name has no number.
    public static func bundledMigrations() throws -> [(version: Int, name: String)] {
        try Migrator.bundled().map { ($0.version, $0.name) }
    }
}

extension Store {
    /// Creates the schema if needed and applies pending migrations.
    ///
    /// - Returns: The versions applied by this call (empty when the schema was up to date).
    /// - Throws: When a migration fails (it is rolled back), or an applied migration's file changed since.
    @discardableResult
    public func migrate() async throws -> [Int] {
        let migrations = try Migrator.bundled()
        let schema = self.schema
        guard schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !schema.isEmpty else {
            throw Migrator.MigrationError(reason: "schema name \(schema) must be letters, digits and underscores")
        }
        let logger = self.logger
        return try await client.withConnection { connection in
            // Identifiers cannot be parameters; the name was checked above and is quoted here.
            try await connection.executeScript("SET search_path TO \"\(schema)\"")
            // `CREATE … IF NOT EXISTS` is not safe against a concurrent create of the same name: the loser can
            // fail with a unique violation in the catalog. Replicas (or a migration Job and a replica) starting
            // together on an empty database therefore create the schema and the bookkeeping table under the
            // same advisory lock as the migrations.
            try await connection.withTransaction { connection in
                try await connection.query(StoreSQL.migrationLock)
                try await connection.executeScript("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"")
                try await connection.execute(StoreSQL.createMigrationsTable)
            }
            var applied: [Int] = []
            for migration in migrations {
                let done: Bool = try await connection.withTransaction { connection in
                    try await connection.query(StoreSQL.migrationLock)
                    let rows = try await connection.query(StoreSQL.appliedMigrations)
                    var known: [Int: String] = [:]
                    for row in rows { known[try row.decode(Int.self, column: 0)] = try row.decode(String.self, column: 1) }
                    if let checksum = known[migration.version] {
                        guard checksum == migration.checksum else {
                            throw Migrator.MigrationError(reason: "migration \(migration.name) was changed after it was applied; "
                                + "never edit an applied migration, add a new one")
                        }
                        return false
                    }
                    try await connection.executeScript(migration.sql)
                    try await connection.execute(StoreSQL.recordMigration, [
                        PostgresBind(migration.version), PostgresBind(migration.name), PostgresBind(migration.checksum),
                    ])
                    return true
                }
                if done {
                    applied.append(migration.version)
                    logger.info("applied migration", metadata: ["db.migration": "\(migration.name)"])
                }
            }
            return applied
        }
    }

    /// The shipped migrations the database has not applied, without changing anything (a serving role that
    /// may not migrate checks this at start).
    public func pendingMigrations() async throws -> [Int] {
        let shipped = try Migrator.bundled().map(\.version)
        let schema = self.schema
        return try await client.withConnection { connection in
            let exists = try await connection.query(StoreSQL.migrationsTableExists, [PostgresBind(schema)])
            guard try exists.first?.decode(Bool.self, column: 0) == true else { return shipped }
            try await connection.executeScript("SET search_path TO \"\(schema)\"")
            let applied = Set(try await connection.query(StoreSQL.appliedMigrations).map { try $0.decode(Int.self, column: 0) })
            return shipped.filter { !applied.contains($0) }
        }
    }

    /// Grants `role` what `hms-act serve` needs and nothing more (docs/security.md, "Database roles"): the
    /// schema's tables to read and write, its sequences and functions; never UPDATE, DELETE or TRUNCATE of the
    /// audit trail, nor ownership, so it cannot alter a table or disable the append-only triggers. Idempotent;
    /// `hms-act migrate` runs it after the migrations when postgres.app_role is set.
    ///
    /// - Returns: `false`, changing nothing, when `role` is the role connected (it owns what it made).
    public func grantServingRights(to role: String) async throws -> Bool {
        guard !role.isEmpty, role.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw Migrator.MigrationError(reason: "postgres.app_role '\(role)' must be a role name of letters, digits, "
                + "_ and -")
        }
        let schema = self.schema
        return try await client.withConnection { connection in
            let same = try await connection.query("SELECT current_user = $1", [PostgresBind(role)])
            if try same.first?.decode(Bool.self, column: 0) == true { return false }
            try await connection.withTransaction { connection in
                try await connection.executeScript("SET LOCAL search_path TO \"\(schema)\"")
                try await connection.executeScript(StoreSQL.grantServingRights(schema: schema, role: role))
            }
            return true
        }
    }
}
