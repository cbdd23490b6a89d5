import ActPostgres
import Foundation
import Logging
import Testing

extension ActPostgresIntegration {
    @Suite("Pool")
    struct PoolTests {
        static func makeClient(max: Int = 2) -> PostgresClient {
            PostgresClient(
                configuration: .init(connection: TestDatabase.configuration, maxConnections: max),
                logger: TestDatabase.logger
            )
        }

        static func backendPID(_ client: PostgresClient) async throws -> Int32 {
            try await client.withConnection { connection in
                try await connection.query("SELECT pg_backend_pid()").first?.decode(Int32.self, column: 0) ?? 0
            }
        }

        @Test func servesMoreCallersThanConnections() async throws {
            let client = Self.makeClient(max: 2)
            let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<12 {
                    group.addTask { try await Self.backendPID(client) }
                }
                var pids: Set<Int32> = []
                for try await pid in group { pids.insert(pid) }
                return pids
            }
            #expect(pids.count <= 2)
            let sum = try await client.withTransaction { connection in
                try await connection.query("SELECT 20 + 22").first?.decode(Int.self, column: 0)
            }
            #expect(sum == 42)
        }

        @Test func reconnectsAfterItsConnectionIsTerminated() async throws {
            let client = Self.makeClient(max: 1)
            let before = try await Self.backendPID(client)
            try await TestDatabase.withConnection { admin in
                // Waits up to 5 s for the backend to be gone, so its goodbye is on the pooled socket.
                let ended = try await admin.query("SELECT pg_terminate_backend($1, 5000)", [PostgresBind(before)])
                #expect(try ended.first?.decode(Bool.self, column: 0) == true)
            }
            let after = try await Self.backendPID(client)
            #expect(after != before)
            #expect(after != 0)
        }

        @Test func runClosesThePoolOnCancellation() async throws {
            let client = Self.makeClient()
            _ = try await Self.backendPID(client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                group.cancelAll()
                try await group.waitForAll()
            }
            let error = await #expect(throws: PostgresError.self) { try await Self.backendPID(client) }
            #expect(error?.code == .poolClosed)
        }

        /// The server this test may kill: the one `scripts/lib/postgres.sh` runs from `HMS_STACK_DIR`, and only
        /// when it is the server under test (same port, loopback).
        enum StackServer {
            static var stackDirectory: URL {
                if let dir = TestDatabase.environment["HMS_STACK_DIR"] { return URL(fileURLWithPath: dir) }
                return TestDatabase.packageRoot.appendingPathComponent(".local")
            }
            static var pidFile: URL { stackDirectory.appendingPathComponent("postgres/data/postmaster.pid") }

            /// The postmaster's pid when the stack's server is the one the tests use.
            static var postmasterPID: Int32? {
                guard let text = try? String(contentsOf: pidFile, encoding: .utf8) else { return nil }
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                // postmaster.pid: line 1 is the pid, line 4 the port.
                guard lines.count > 3, let pid = Int32(lines[0]), let port = Int(lines[3]) else { return nil }
                let configuration = TestDatabase.configuration
                guard port == configuration.port, ["127.0.0.1", "localhost"].contains(configuration.host) else {
                    return nil
                }
                return kill(pid, 0) == 0 ? pid : nil
            }

            static var isUnderTest: Bool { postmasterPID != nil }
        }

        /// Runs `bash -c script` and returns its exit status. The blocking `waitpid` runs on a thread of its own,
        /// not on the cooperative pool (Foundation's `Process` did not report termination inside the test runner).
        static func runBash(_ script: String, argument: String, environment: [String: String]) async throws -> Int32 {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread {
                    let words: [String] = ["/bin/bash", "-c", script, "bash", argument]
                    let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
                    let variables: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") }
                    defer {
                        arguments.forEach { free($0) }
                        variables.forEach { free($0) }
                    }
                    var pid: pid_t = 0
                    let spawned = posix_spawn(&pid, "/bin/bash", nil, nil, arguments + [nil], variables + [nil])
                    guard spawned == 0 else {
                        continuation.resume(throwing: POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO))
                        return
                    }
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    // WEXITSTATUS: the exit code sits in bits 8-15.
                    continuation.resume(returning: (status >> 8) & 0xFF)
                }
                thread.start()
            }
        }

        @Test(.enabled(if: StackServer.isUnderTest, "needs the stack's own server (scripts/stack up) under test"))
        func poolServesAgainAfterTheServerIsKilledAndRestarted() async throws {
            let client = Self.makeClient(max: 2)
            let before = try await Self.backendPID(client)
            let fast = try await client.withConnection { connection in
                try await connection.query("SHOW fsync").first?.decode(String.self, column: 0) == "off"
            }
            let pid = try #require(StackServer.postmasterPID)
            #expect(kill(pid, SIGKILL) == 0)

            // Backends outlive their killed postmaster for a moment and may still answer, so what the pool
            // sees right now is undefined; what matters is that it serves again after the restart.
            var environment = ProcessInfo.processInfo.environment
            environment["HMS_STACK_DIR"] = StackServer.stackDirectory.path
            environment["HMS_PG_PORT"] = String(TestDatabase.configuration.port)
            if fast { environment["HMS_STACK_FAST"] = "1" }
            let status = try await Self.runBash(
                "set -euo pipefail; cd \"$1\"; source scripts/lib/common.sh; source scripts/lib/postgres.sh; pg_up",
                argument: TestDatabase.packageRoot.path,
                environment: environment
            )
            #expect(status == 0)

            let after = try await Self.backendPID(client)
            #expect(after != before)
            #expect(try await client.withTransaction { connection in
                try await connection.query("SELECT 1").first?.decode(Int.self, column: 0)
            } == 1)
        }
    }
}

extension ActPostgresIntegration {
    /// Blocking libpq calls must run on each connection's own thread, never on the cooperative pool (which has
    /// one thread per core). Two statements blocked on a lock held by a third transaction used to occupy both
    /// cooperative threads on a 2-core machine, so the holder could never commit: a deadlock. This test
    /// blocks more statements than there are cores and requires the holder to finish.
    ///
    /// Inside the serialized suite: run beside the kill -9 test, its connections lose the server mid-test.
    @Suite struct CooperativePoolTests {
        @Test(.timeLimit(.minutes(1)))
        func blockedStatementsDoNotStarveOtherTasks() async throws {
            let configuration = TestDatabase.configuration
            let logger = Logger(label: "test.cooperative-pool")
            let holder = try await PostgresConnection.connect(configuration: configuration, logger: logger)
            let lockKey = Int64.random(in: 1...Int64.max)
            let waiters = ProcessInfo.processInfo.activeProcessorCount + 2
            try await holder.query("SELECT pg_advisory_lock($1)", [PostgresBind(lockKey)])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<waiters {
                    group.addTask {
                        let waiter = try await PostgresConnection.connect(configuration: configuration, logger: logger)
                        try await waiter.query("SELECT pg_advisory_lock($1)", [PostgresBind(lockKey)])
                        try await waiter.query("SELECT pg_advisory_unlock($1)", [PostgresBind(lockKey)])
                        await waiter.close()
                    }
                }
                // Give the waiters time to block on the lock; the holder must still run and release it.
                try await Task.sleep(for: .milliseconds(300))
                try await holder.query("SELECT pg_advisory_unlock($1)", [PostgresBind(lockKey)])
                try await group.waitForAll()
            }
            await holder.close()
        }
    }
}
