import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// The fault suite's short form on the in-memory ports: the mixed workload under seeded faults, checked
/// by ``Checker``. `HMS_FAULT_SEEDS=N` runs N more seeds (the long form, by hand), `HMS_FAULT_REPORT=1`
/// prints each seed's report; a failing seed is printed and runs alone with `HMS_FAULT_SEED=<seed>`.
@Suite("fault simulation, in memory")
struct FaultSimulationTests {
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let seed = environment["HMS_FAULT_SEED"].flatMap(UInt64.init) { return [seed] }
        let extra = environment["HMS_FAULT_SEEDS"].flatMap(Int.init) ?? 0
        return Array(1...UInt64(8 + extra))
    }

    @Test func withoutFaultsEveryCheckPasses() async throws {
        let report = try await FaultSimulation.run(seed: 0, runs: 30, faultRate: 0)
        #expect(report.violations.isEmpty, "\(report)")
    }

    @Test(arguments: seeds)
    func underFaultsNothingIsLostOrAppliedTwice(seed: UInt64) async throws {
        let report = try await FaultSimulation.run(seed: seed)
        if ProcessInfo.processInfo.environment["HMS_FAULT_REPORT"] != nil { print(report) }
        #expect(report.violations.isEmpty, "\(report)")
        #expect(report.faults.values.reduce(0, +) > 0, "seed \(seed) injected no fault")
    }

    /// The checker has teeth. A store that reports a failed commit as committed makes the consumer ack
    /// what was never stored (the "ack before commit" bug); one that drops task messages loses steps.
    /// (A store that forgets the inbox passes: the engine itself ignores a result for an attempt it has
    /// already settled and a trigger for a run that exists, so the inbox is a second line of defence.)
    @Test func acknowledgingWhatWasNotCommittedFailsTheChecks() async throws {
        let report = try await FaultSimulation.run(seed: 3, faultRate: 0.5, faults: [.commitFails],
            settleTimeout: .seconds(3))
        {
            BrokenStore(base: $0, breakage: .commitFailuresReportedAsSuccess)
        }
        #expect(report.violations.contains { $0.check == "one run per confirmed trigger" || $0.check == "outcome as scripted" },
            "\(report)")
    }

    @Test func losingTaskMessagesFailsTheChecks() async throws {
        let report = try await FaultSimulation.run(seed: 3, faultRate: 0, settleTimeout: .seconds(3)) {
            BrokenStore(base: $0, breakage: .taskMessagesLost)
        }
        #expect(report.violations.contains { $0.check == "outcome as scripted" }, "\(report)")
    }
}

/// A deliberately broken store, to show the fault suite catches what it breaks.
struct BrokenStore: ServiceStore {
    enum Breakage: Sendable { case commitFailuresReportedAsSuccess, taskMessagesLost }
    let base: any ServiceStore
    let breakage: Breakage

    func transaction<Result: Sendable>(_ body: (any ServiceTransaction) async throws -> Result) async throws -> Result {
        var result: Result?
        do {
            return try await base.transaction { transaction in
                let value = try await body(Transaction(base: transaction, breakage: breakage))
                result = value
                return value
            }
        } catch {
            // The body ran; the commit failed; say it succeeded.
            if breakage == .commitFailuresReportedAsSuccess, let result { return result }
            throw error
        }
    }

    func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion] {
        try await base.playbookVersions(after: versionID)
    }

    func registerPlaybook(id: String, checksum: String, source: String, model: [UInt8], triggers: [String])
        async throws -> (version: PlaybookVersion, created: Bool)
    {
        try await base.registerPlaybook(id: id, checksum: checksum, source: source, model: model, triggers: triggers)
    }

    func databaseTimeMilliseconds() async throws -> Int64 { try await base.databaseTimeMilliseconds() }
    func ping() async -> Bool { await base.ping() }

    func writeCheckpoint(signingKey: AuditSigningKey, now: Int64,
        message: @Sendable (Store.WrittenCheckpoint) -> OutboxMessage) async throws -> Store.WrittenCheckpoint?
    {
        try await base.writeCheckpoint(signingKey: signingKey, now: now, message: message)
    }

    func pruneInbox(olderThanHours hours: Int) async throws -> Int { try await base.pruneInbox(olderThanHours: hours) }
    func versionControls() async throws -> [Int64: VersionControl] { try await base.versionControls() }
    func controlPlaybook(_ playbookID: String, change: PlaybookControlChange, actor: String, reason: String?)
        async throws -> [Int64: VersionControl]
    {
        try await base.controlPlaybook(playbookID, change: change, actor: actor, reason: reason)
    }
    func gauges() async throws -> StoreGauges { try await base.gauges() }
    func activeRunIDs(correlationKey key: String, playbook: String?) async throws -> [String] {
        try await base.activeRunIDs(correlationKey: key, playbook: playbook)
    }

    struct Transaction: ServiceTransaction {
        let base: any ServiceTransaction
        let breakage: Breakage

        func claimInbox(_ keys: [String]) async throws -> Set<String> { try await base.claimInbox(keys) }

        func lockRuns(_ ids: [String]) async throws -> [String: RunRow] { try await base.lockRuns(ids) }

        func lockRuns(_ ids: [String], maxBytes: Int) async throws -> (runs: [String: RunRow], leftOut: Set<String>) {
            try await base.lockRuns(ids, maxBytes: maxBytes)
        }

        func claimDueTimers(limit: Int) async throws -> [TimerRow] { try await base.claimDueTimers(limit: limit) }

        func claimOutbox(limit: Int, partition: (index: Int, count: Int), maxBytes: Int) async throws
            -> [OutboxMessage]
        {
            try await base.claimOutbox(limit: limit, partition: partition, maxBytes: maxBytes)
        }

        func postponeTimer(_ timerID: String, seconds: Int) async throws {
            try await base.postponeTimer(timerID, seconds: seconds)
        }

        func deleteOutbox(_ ids: [Int64]) async throws { try await base.deleteOutbox(ids) }
        func deferOutbox(_ ids: [Int64], error: String) async throws { try await base.deferOutbox(ids, error: error) }

        func write(_ batch: StoreBatch) async throws {
            var batch = batch
            // Every third task message is lost.
            if breakage == .taskMessagesLost {
                var index = 0
                batch.outbox.removeAll { message in
                    guard message.type == "hms.task" else { return false }
                    index += 1
                    return index % 3 == 0
                }
            }
            try await base.write(batch)
        }

        func playbookVersions(after versionID: Int64) async throws -> [PlaybookVersion] {
            try await base.playbookVersions(after: versionID)
        }
    }
}
