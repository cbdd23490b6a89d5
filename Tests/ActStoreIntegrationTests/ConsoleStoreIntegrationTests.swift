import ActEngine
import ActPlaybook
import ActPostgres
import ActStore
import ActTesting
import Foundation
import Testing

/// The console's state in PostgreSQL (migration 0014): sessions, desk claims, run lights and one run's chain.
@Suite struct ConsoleStoreIntegrationTests {
    static let now = StoreIntegrationTests.now

    static func seedTask(_ store: Store, runID: String = "wf_test1", warnIn: Int64, dueIn: Int64) async throws -> String {
        let taskID = "\(runID)/inspect/1"
        var batch = StoreBatch()
        let clock = Int64(Date.now.timeIntervalSince1970 * 1_000)
        batch.dispatchedTasks = [TaskRow(taskID: taskID, attempt: 1, runID: runID, stepID: "inspect",
            assignee: "human.field_inspector", agentID: nil, target: "task.human.field_inspector", status: .dispatched,
            deadline: clock + dueIn, warnAt: clock + warnIn, isCompensation: false, output: nil, error: nil,
            createdAt: now, updatedAt: now)]
        try await store.withTransaction { try await $0.write(batch) }
        return taskID
    }

    /// Many desks claiming the same task at once: exactly one holds it, and every one of them is told who.
    @Test func concurrentDeskClaimsHaveExactlyOneWinner() async throws {
        try await TestDatabase.withStore(maxConnections: 4) { store in
            _ = try await StoreIntegrationTests.seedRun(store)
            let taskID = try await Self.seedTask(store, warnIn: 60_000, dueIn: 120_000)
            let holders = try await withThrowingTaskGroup(of: String?.self) { group in
                for desk in 0..<12 {
                    group.addTask { try await store.claimDeskTask(taskID: taskID, attempt: 1, actor: "desk\(desk)")?.claimedBy }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            let winners = Set(holders.compactMap { $0 })
            #expect(winners.count == 1 && holders.count == 12 && !holders.contains(nil))
            let winner = try #require(winners.first)
            #expect(try await store.deskClaims(taskIDs: [taskID]).map(\.claimedBy) == [winner])
            #expect(try await store.releaseDeskTask(taskID: taskID, attempt: 1, actor: "someone-else") == false)
            #expect(try await store.releaseDeskTask(taskID: taskID, attempt: 1, actor: winner))
            #expect(try await store.claimDeskTask(taskID: taskID, attempt: 1, actor: "late")?.claimedBy == "late")

            // A task that is no longer open cannot be claimed.
            var done = StoreBatch()
            done.taskChanges = [TaskStatusChange(taskID: taskID, attempt: 1, status: .completed, output: [:], error: nil,
                at: Self.now + 1)]
            try await store.withTransaction { try await $0.write(done) }
            #expect(try await store.claimDeskTask(taskID: taskID, attempt: 1, actor: "after") == nil)
            #expect(try await store.claimDeskTask(taskID: "wf_none/x/1", attempt: 1, actor: "after") == nil)
        }
    }

    @Test func sessionsAreFoundByDigestUntilTheyExpireOrAreDeleted() async throws {
        try await TestDatabase.withStore { store in
            let digest = Array(repeating: UInt8(7), count: 32)
            try await store.createConsoleSession(digest: digest, tokenName: "alice", tokenDigest: [1, 2, 3],
                csrfToken: "c", lifetimeMilliseconds: 60_000)
            let session = try #require(try await store.consoleSession(digest: digest))
            #expect(session.tokenName == "alice" && session.tokenDigest == [1, 2, 3] && session.csrfToken == "c")
            #expect(try await store.consoleSession(digest: Array(repeating: 8, count: 32)) == nil)
            try await store.deleteConsoleSession(digest: digest)
            #expect(try await store.consoleSession(digest: digest) == nil)

            try await store.createConsoleSession(digest: digest, tokenName: "alice", tokenDigest: [], csrfToken: "c",
                lifetimeMilliseconds: -1)
            #expect(try await store.consoleSession(digest: digest) == nil, "an expired session must not be found")
        }
    }

    @Test func aRunsLightFollowsItsOpenTasksDeadlines() async throws {
        try await TestDatabase.withStore { store in
            for (run, warn, due, light) in [("wf_g", 60_000, 120_000, "green"), ("wf_y", -1_000, 120_000, "yellow"),
                ("wf_r", -2_000, -1_000, "red")] as [(String, Int64, Int64, String)]
            {
                _ = try await StoreIntegrationTests.seedRun(store, runID: run)
                _ = try await Self.seedTask(store, runID: run, warnIn: warn, dueIn: due)
                #expect(try await store.runLights(runIDs: [run]) == [run: light])
            }
            #expect(try await store.runLights(runIDs: ["wf_missing"]).isEmpty)
        }
    }

    @Test func oneRunsChainIsVerifiedAgainstItsRecordedHead() async throws {
        try await TestDatabase.withStore { store in
            _ = try await StoreIntegrationTests.seedRun(store)
            #expect(try await store.verifyRunChain(runID: "wf_test1").isEmpty)
            try await AuditTrailIntegrationTests.tamper(store,
                "UPDATE audit_log SET actor = 'forger' WHERE run_id = 'wf_test1'")
            let findings = try await store.verifyRunChain(runID: "wf_test1")
            #expect(findings.map(\.kind) == [.edited])
        }
    }
}
