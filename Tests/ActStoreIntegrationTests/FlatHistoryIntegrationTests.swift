import ActPlaybook
import ActStore
import ActTesting
import Testing

/// Issue 21: the service's periodic reads cost what is open or moved, not what is finished. A schema with
/// 20,000 finished, checkpointed runs must not make the per-second gauges or the per-minute checkpoint touch more
/// buffers than an empty one does. Buffer counts, not times: the same on a loaded machine.
@Suite struct FlatHistoryIntegrationTests {
    @Test func thePeriodicReadsDoNotGrowWithFinishedRuns() async throws {
        try await TestDatabase.withStore { store in
            _ = try await AuditTrailIntegrationTests.seedChain(store)  // wf_audit: completed, signed
            let empty = try await store.explainPeriodicReads()
            try await store.copyCompletedRun("wf_audit", copies: 20_000, idPrefix: "history_")
            let history = try await store.explainPeriodicReads()
            for (before, after) in zip(empty, history) where !before.name.hasPrefix("outbox claim") {
                // A scan of 20,000 runs touches hundreds of buffers; an index holding only open or moved runs a few.
                #expect(after.buffers <= before.buffers + 8,
                    "\(after.name) touched \(after.buffers) buffers with 20,000 finished runs, \(before.buffers) without:\n\(after.plan)")
            }
            #expect(history.map(\.name).contains("checkpoint heads (every minute)"))
        }
    }
}
