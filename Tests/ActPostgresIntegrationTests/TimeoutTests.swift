import ActPostgres
import Foundation
import Testing

extension ActPostgresIntegration {
    /// Every connection carries time limits, a hung backend cannot hold a caller (or its locks) forever, and
    /// a pool whose connections are all held fails its next caller instead of stalling it.
    @Suite("Timeouts")
    struct TimeoutTests {
        static func makeClient(
            _ connection: PostgresConfiguration = TestDatabase.configuration,
            max: Int = 1,
            acquireTimeout: Duration = .seconds(10)
        ) -> PostgresClient {
            PostgresClient(
                configuration: .init(connection: connection, maxConnections: max, acquireTimeout: acquireTimeout),
                logger: TestDatabase.logger
            )
        }

        /// The ``PostgresError`` that `body` throws, or nil when it succeeds (other errors fail the test).
        static func postgresError(_ body: () async throws -> Void) async throws -> PostgresError? {
            do {
                try await body()
                return nil
            } catch let error as PostgresError {
                return error
            }
        }

        static func show(_ setting: String, on client: PostgresClient) async throws -> String? {
            try await client.withConnection { connection in
                try await connection.query("SHOW \(setting)").first?.decode(String.self, column: 0)
            }
        }

        @Test func pooledConnectionsCarryTheConfiguredServerTimeouts() async throws {
            let defaults = Self.makeClient()
            #expect(try await Self.show("statement_timeout", on: defaults) == "30s")
            #expect(try await Self.show("lock_timeout", on: defaults) == "10s")
            #expect(try await Self.show("idle_in_transaction_session_timeout", on: defaults) == "1min")

            var configuration = TestDatabase.configuration
            configuration.statementTimeout = .milliseconds(31_500)
            configuration.lockTimeout = .seconds(7)
            configuration.idleInTransactionSessionTimeout = .zero
            let configured = Self.makeClient(configuration)
            #expect(try await Self.show("statement_timeout", on: configured) == "31500ms")
            #expect(try await Self.show("lock_timeout", on: configured) == "7s")
            #expect(try await Self.show("idle_in_transaction_session_timeout", on: configured) == "0")
        }

        @Test(.timeLimit(.minutes(1)))
        func aRowLockWaitFailsWithLockNotAvailableAfterTheLockTimeout() async throws {
            try await TestDatabase.withConnection { admin in
                try await TestDatabase.recreateSchema("act_pg_timeouts", on: admin)
                try await admin.executeScript(
                    "CREATE TABLE act_pg_timeouts.runs (id int PRIMARY KEY); INSERT INTO act_pg_timeouts.runs VALUES (1);"
                )
            }
            var configuration = TestDatabase.configuration
            configuration.lockTimeout = .seconds(1)
            let client = Self.makeClient(configuration)
            let holder = try await TestDatabase.connect()
            let clock = ContinuousClock()
            let (failure, elapsed) = try await holder.withTransaction { holder -> (PostgresError?, Duration) in
                try await holder.query("SELECT id FROM act_pg_timeouts.runs WHERE id = 1 FOR UPDATE")
                let start = clock.now
                let failure = try await Self.postgresError {
                    _ = try await client.withConnection { connection in
                        try await connection.query("SELECT id FROM act_pg_timeouts.runs WHERE id = 1 FOR UPDATE")
                    }
                }
                return (failure, clock.now - start)
            }
            await holder.close()
            #expect(failure?.sqlState == "55P03")
            #expect(failure?.isLockNotAvailable == true)
            #expect(failure?.isTimeout == true)
            #expect(elapsed >= .milliseconds(900))
            #expect(elapsed < .seconds(10))
            // The failed statement left its connection usable, and the row is free again.
            #expect(try await client.withConnection { connection in
                try await connection.query("SELECT id FROM act_pg_timeouts.runs WHERE id = 1 FOR UPDATE NOWAIT")
                    .first?.decode(Int.self, column: 0)
            } == 1)
        }

        @Test(.timeLimit(.minutes(1)))
        func aCallerWaitingForABusyPoolFailsAfterTheAcquireTimeout() async throws {
            let client = Self.makeClient(max: 1, acquireTimeout: .seconds(1))
            let clock = ContinuousClock()
            let (failure, elapsed) = try await client.withConnection { _ -> (PostgresError?, Duration) in
                let start = clock.now
                let failure = try await Self.postgresError {
                    _ = try await client.withConnection { connection in try await connection.query("SELECT 1") }
                }
                return (failure, clock.now - start)
            }
            #expect(failure?.code == .poolTimeout)
            #expect(failure?.isTimeout == true)
            #expect(failure?.reason?.contains("within 1 s (pool size 1, every connection in use)") == true)
            #expect(failure?.reason?.contains("maxConnections") == true)
            #expect(elapsed >= .milliseconds(900))
            #expect(elapsed < .seconds(10))
            // Once the holder is done, the pool serves again.
            #expect(try await PoolTests.backendPID(client) != 0)
        }

        /// The process `pid` when it is a backend of the stack's own server (a child of its postmaster), so a
        /// test never stops anything else.
        static func stackBackend(_ pid: Int32) -> Bool {
            guard pid > 0, let postmaster = PoolTests.StackServer.postmasterPID,
                let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            else { return false }
            let parent = status.split(separator: "\n").first { $0.hasPrefix("PPid:") }?
                .split(separator: "\t").last.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
            return parent == postmaster
        }

        /// Runs `body` while `pid` is stopped (SIGSTOP), and lets it run again (SIGCONT) however `body` ends.
        static func whileStopped<T>(_ pid: Int32, _ body: () async throws -> T) async throws -> T {
            #expect(kill(pid, SIGSTOP) == 0)
            defer { kill(pid, SIGCONT) }
            return try await body()
        }

        @Test(
            .enabled(if: PoolTests.StackServer.isUnderTest, "needs the stack's own server (scripts/stack up) under test"),
            .timeLimit(.minutes(1))
        )
        func aHungBackendFailsTheStatementAndThePoolReplacesTheConnection() async throws {
            var configuration = TestDatabase.configuration
            configuration.statementTimeout = .seconds(1)
            configuration.answerTimeoutGrace = .seconds(1)
            let client = Self.makeClient(configuration, max: 1)
            let lockKey = Int64.random(in: 1...Int64.max)
            // The pool's only connection takes a session lock, then goes back to the pool idle.
            let pid = try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock($1)", [PostgresBind(lockKey)])
                return try await connection.query("SELECT pg_backend_pid()").first?.decode(Int32.self, column: 0) ?? 0
            }
            try #require(Self.stackBackend(pid), "backend \(pid) is not a child of the stack's postmaster")

            let clock = ContinuousClock()
            let start = clock.now
            // A stopped backend neither answers nor enforces its statement_timeout, and the kernel keeps its
            // TCP connection alive: only the client's deadline (1 s + 1 s) can end the wait.
            let failure = try await Self.whileStopped(pid) {
                try await Self.postgresError {
                    _ = try await client.withConnection { connection in try await connection.query("SELECT 1") }
                }
            }
            let elapsed = clock.now - start
            #expect(failure?.code == .timedOut)
            #expect(failure?.isConnectionError == true)
            #expect(
                failure?.reason?.contains(
                    "no answer from PostgreSQL within 2 s (statement timeout + grace); the connection was closed and will be replaced"
                ) == true
            )
            #expect(elapsed >= .milliseconds(1900))
            #expect(elapsed < .seconds(10))

            // The pool opened a new connection in the broken one's slot.
            let after = try await PoolTests.backendPID(client)
            #expect(after != pid)
            #expect(after != 0)
            // Running again, the old backend found its socket closed and ended, releasing its session lock
            // (waited for up to the default lock_timeout of 10 s).
            try await TestDatabase.withConnection { admin in
                try await admin.query("SELECT pg_advisory_lock($1)", [PostgresBind(lockKey)])
                try await admin.query("SELECT pg_advisory_unlock($1)", [PostgresBind(lockKey)])
            }
        }
    }
}
