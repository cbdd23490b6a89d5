import ActPlaybook
import ActPostgres

/// The console's own state (`/ui`, docs/console.md): browser sessions and desk claims on open tasks.
extension Store {
    /// A signed-in browser: which configured token it signed in with, and its CSRF token.
    public struct ConsoleSession: Hashable, Sendable {
        /// The name of the token (`alice`).
        public var tokenName: String
        /// SHA-256 of the token's secret: the exact entry of `http.tokens` (two entries may share a name).
        public var tokenDigest: [UInt8]
        public var csrfToken: String
        /// Unix milliseconds.
        public var expiresAt: Int64

        public init(tokenName: String, tokenDigest: [UInt8], csrfToken: String, expiresAt: Int64) {
            self.tokenName = tokenName
            self.tokenDigest = tokenDigest
            self.csrfToken = csrfToken
            self.expiresAt = expiresAt
        }
    }

    /// Who holds an open task in the console's inbox.
    public struct DeskClaim: Hashable, Sendable {
        public var taskID: String
        public var attempt: Int
        public var claimedBy: String
        /// Unix milliseconds.
        public var claimedAt: Int64

        public init(taskID: String, attempt: Int, claimedBy: String, claimedAt: Int64) {
            self.taskID = taskID
            self.attempt = attempt
            self.claimedBy = claimedBy
            self.claimedAt = claimedAt
        }
    }

    /// Records a session whose cookie secret has SHA-256 `digest`, valid for `lifetimeMilliseconds` from the
    /// database's clock; removes the sessions that have expired while at it.
    public func createConsoleSession(digest: [UInt8], tokenName: String, tokenDigest: [UInt8], csrfToken: String,
        lifetimeMilliseconds: Int64) async throws
    {
        try await client.withConnection { connection in
            _ = try await connection.execute(StoreSQL.deleteExpiredConsoleSessions, [])
            _ = try await connection.execute(StoreSQL.insertConsoleSession, [
                PostgresBind(digest), PostgresBind(tokenName), PostgresBind(tokenDigest), PostgresBind(csrfToken),
                PostgresBind(lifetimeMilliseconds),
            ])
        }
    }

    /// The unexpired session whose cookie secret has SHA-256 `digest`.
    public func consoleSession(digest: [UInt8]) async throws -> ConsoleSession? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.consoleSession, [PostgresBind(digest)]).first.map { row in
                ConsoleSession(tokenName: try row.decode(column: 0), tokenDigest: try row.decode(column: 1),
                    csrfToken: try row.decode(column: 2), expiresAt: try row.decode(column: 3))
            }
        }
    }

    /// Ends a session (signing out).
    public func deleteConsoleSession(digest: [UInt8]) async throws {
        try await client.withConnection { connection in
            _ = try await connection.execute(StoreSQL.deleteConsoleSession, [PostgresBind(digest)])
        }
    }

    /// Claims an open task attempt for `actor`, unless someone holds it already.
    ///
    /// - Returns: Who holds it afterwards (`actor` when the claim was taken or was already theirs); `nil` when
    ///   the attempt is not open (answered, timed out, cancelled, or no such task).
    public func claimDeskTask(taskID: String, attempt: Int, actor: String) async throws -> DeskClaim? {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.claimDeskTask, [PostgresBind(taskID), PostgresBind(attempt),
                PostgresBind(actor)]).first.map(Self.deskClaim)
        }
    }

    /// Releases `actor`'s claim on a task attempt; false when `actor` did not hold it.
    public func releaseDeskTask(taskID: String, attempt: Int, actor: String) async throws -> Bool {
        try await client.withConnection { connection in
            try await connection.execute(StoreSQL.releaseDeskTask, [PostgresBind(taskID), PostgresBind(attempt),
                PostgresBind(actor)]) > 0
        }
    }

    /// The claims on the given task ids (every attempt), by task id and attempt.
    public func deskClaims(taskIDs: [String]) async throws -> [DeskClaim] {
        guard !taskIDs.isEmpty else { return [] }
        return try await client.withConnection { connection in
            try await connection.query(StoreSQL.deskClaims, [
                PostgresBind(PostgresJSON(bytes: JSONValue.array(taskIDs.map(JSONValue.string)).canonicalEncoding)),
            ]).map(Self.deskClaim)
        }
    }

    /// Verifies one run's audit chain (each entry's hash over its predecessor's, ``AuditChain``) against the
    /// head the run row records: what the console shows next to a run's trail. Checkpoints and their signatures
    /// are `hms-act audit verify`'s, over every run.
    ///
    /// - Returns: Every finding; empty when the chain is intact.
    public func verifyRunChain(runID: String) async throws -> [AuditChain.Finding] {
        // The run row first: every entry up to the head it records was committed with it, so a trail that
        // grew meanwhile is no finding.
        guard let run = try await run(id: runID) else { return [] }
        let entries = try await client.withConnection { connection in
            try await connection.query(StoreSQL.runAuditChain, [PostgresBind(runID)]).map(Self.auditEntry)
        }
        var findings = AuditChain.verify(run: runID, entries: entries).findings
        let recorded = entries.first { $0.entry.sequence == run.auditSequence }
        if run.auditSequence > 0, recorded?.hash != run.auditHead {
            findings.append(AuditChain.Finding(kind: .truncated, runID: runID, sequence: run.auditSequence,
                message: recorded == nil
                    ? "the run records \(run.auditSequence) entries, but its trail has no entry \(run.auditSequence)"
                    : "entry \(run.auditSequence) does not have the hash the run records as its head"))
        }
        return findings
    }

    /// The SLA light of each given run that has open tasks with a deadline: `red` once the earliest deadline
    /// passed, `yellow` once the earliest warning point passed, else `green` (by the database's clock).
    public func runLights(runIDs: [String]) async throws -> [String: String] {
        guard !runIDs.isEmpty else { return [:] }
        return try await client.withConnection { connection in
            var lights: [String: String] = [:]
            for row in try await connection.query(StoreSQL.runLights, [
                PostgresBind(PostgresJSON(bytes: JSONValue.array(runIDs.map(JSONValue.string)).canonicalEncoding)),
            ]) {
                lights[try row.decode(String.self, column: 0)] = try row.decode(String.self, column: 1)
            }
            return lights
        }
    }

    private static func deskClaim(_ row: PostgresRow) throws -> DeskClaim {
        DeskClaim(taskID: try row.decode(column: 0), attempt: try row.decode(column: 1),
            claimedBy: try row.decode(column: 2), claimedAt: try row.decode(column: 3))
    }
}

extension StoreSQL {
    static let runAuditChain = "SELECT \(auditColumns) FROM audit_log WHERE run_id = $1 ORDER BY seq"
    static let runLights = """
        SELECT run_id, CASE WHEN min(deadline) <= now() THEN 'red'
                            WHEN min(coalesce(warn_at, deadline)) <= now() THEN 'yellow' ELSE 'green' END
        FROM tasks
        WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND status = 'dispatched' AND deadline IS NOT NULL
        GROUP BY run_id
        """
    static let deleteExpiredConsoleSessions = "DELETE FROM console_sessions WHERE expires_at < now()"
    static let insertConsoleSession = """
        INSERT INTO console_sessions (session_digest, token_name, token_digest, csrf_token, expires_at)
        VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
        """
    static let consoleSession = """
        SELECT token_name, token_digest, csrf_token, (extract(epoch FROM expires_at) * 1000)::bigint
        FROM console_sessions WHERE session_digest = $1 AND expires_at > now()
        """
    static let deleteConsoleSession = "DELETE FROM console_sessions WHERE session_digest = $1"

    /// Takes the claim when the attempt is open and free; either way answers the holder, if the attempt is open.
    static let claimDeskTask = """
        WITH open AS (
            SELECT task_id, attempt FROM tasks WHERE task_id = $1 AND attempt = $2 AND status = 'dispatched'
        ), taken AS (
            INSERT INTO desk_claims (task_id, attempt, claimed_by)
            SELECT task_id, attempt, $3 FROM open
            ON CONFLICT (task_id, attempt) DO NOTHING
            RETURNING task_id, attempt, claimed_by, claimed_at
        )
        SELECT task_id, attempt, claimed_by, (extract(epoch FROM claimed_at) * 1000)::bigint FROM taken
        UNION ALL
        SELECT c.task_id, c.attempt, c.claimed_by, (extract(epoch FROM c.claimed_at) * 1000)::bigint
        FROM desk_claims c JOIN open USING (task_id, attempt)
        WHERE NOT EXISTS (SELECT 1 FROM taken)
        """
    static let releaseDeskTask = "DELETE FROM desk_claims WHERE task_id = $1 AND attempt = $2 AND claimed_by = $3"
    static let deskClaims = """
        SELECT task_id, attempt, claimed_by, (extract(epoch FROM claimed_at) * 1000)::bigint
        FROM desk_claims WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        """
}
