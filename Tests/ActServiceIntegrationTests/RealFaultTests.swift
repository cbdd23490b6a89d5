import ActAMQP
import ActEngine
import ActPlaybook
import ActPostgres
import ActService
import ActStore
import ActTesting
import Foundation
import Synchronization
import Testing

/// The fault suite against real processes: three `hms-act serve` replicas, the stack's RabbitMQ and
/// PostgreSQL, and the workload of ``Workload`` (sequential steps, a retry, a switch, a parallel join,
/// compensation, an SLA that breaches and escalates) answered by workers that reply late, out of order and
/// up to three times. While it runs, one named fault is injected; then everything must settle, and
/// ``Checker`` proves from the triggers whose publish was confirmed, the governance messages and the
/// database that nothing was lost or applied twice (docs/reliability.md).
///
/// `swift test --filter RealFaultTests/nothingIsLostUnder` runs every scenario (the short form, part of the
/// test command); `HMS_FAULT_SCENARIOS=broker-kill,database-kill` runs only those. The long soak is by hand:
/// `HMS_FAULT_SOAK_MINUTES=30 swift test --filter RealFaultTests/soak` (random scenarios and seeds).
@Suite(.serialized) struct RealFaultTests {
    @Test(arguments: RealFault.allCases)
    func nothingIsLostUnder(_ fault: RealFault) async throws {
        if let only = RealFaultRun.onlyScenarios, !only.contains(fault.rawValue) { return }
        let report = try await RealFaultRun.run(fault: fault, seed: UInt64(RealFault.allCases.firstIndex(of: fault)! + 1))
        print(RealFaultRun.Report.header)
        print(report)
        #expect(report.violations.isEmpty, "\(report.detail)")
        #expect(report.injected > 0 || fault == .none, "the fault \(fault.rawValue) was never injected")
        if fault == .crashPoints {
            let missed = Failpoint.allCases.filter { report.failpoints[$0.rawValue, default: 0] == 0 }.map(\.rawValue)
            #expect(missed.isEmpty, "failpoints that never fired: \(missed)")
        }
    }

    /// The suite's own teeth, standing: the debug binary with a deliberate bug (`HMS_MUTANTS=ack-before-apply`: the
    /// consumers acknowledge a batch before applying it) must fail `crash-points`, whose compensation point then
    /// crashes a replica after the failure that starts a compensation was acknowledged and before it was applied.
    @Test func theSuiteFailsABinaryThatAcknowledgesBeforeApplying() async throws {
        if let only = RealFaultRun.onlyScenarios, !only.contains("mutant") { return }
        let report = try await RealFaultRun.run(fault: .crashPoints, seed: 4, mutants: "ack-before-apply",
            settleLimit: .seconds(20))
        print("mutant ack-before-apply: " + report.description)
        #expect(!report.violations.isEmpty, "crash-points passed on a binary that acknowledges before applying")
    }

    @Test(.enabled(if: RealFaultRun.soakMinutes != nil, "set HMS_FAULT_SOAK_MINUTES=N to soak for N minutes"))
    func soak() async throws {
        let minutes = RealFaultRun.soakMinutes ?? 0
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(minutes * 60)
        var reports: [RealFaultRun.Report] = []
        var random = SystemRandomNumberGenerator()
        print(RealFaultRun.Report.header)
        while clock.now < deadline {
            let fault = RealFault.allCases.randomElement(using: &random)!
            let report = try await RealFaultRun.run(fault: fault, seed: UInt64.random(in: 1...UInt64(Int64.max), using: &random),
                runs: 60)
            print(report)
            reports.append(report)
            #expect(report.violations.isEmpty, "\(report.detail)")
        }
        let runs = reports.map(\.runs).reduce(0, +)
        let faults = reports.map(\.injected).reduce(0, +)
        let recoveries = reports.compactMap(\.recovery).map { $0.seconds }
        let applies = reports.compactMap(\.longestApply).map { $0.seconds }
        print("soak: \(reports.count) scenarios, \(runs) runs, \(faults) faults, "
            + "\(reports.filter { !$0.violations.isEmpty }.count) failed; recovery max "
            + String(format: "%.1f s; a result's longest wait for its application %.1f s", recoveries.max() ?? 0,
                applies.max() ?? 0))
    }
}

/// A fault injected while the workload runs.
enum RealFault: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// No fault: the baseline the others are compared with.
    case none
    /// `kill -9` of one of the three replicas, every 1.5–3 s, each started again half a second later.
    case replicaKill = "replica-kill"
    /// RabbitMQ stopped gracefully and started again.
    case brokerRestart = "broker-restart"
    /// `kill -9` of the RabbitMQ node, then started again.
    case brokerKill = "broker-kill"
    /// PostgreSQL stopped (fast shutdown: connections closed) and started again.
    case databaseRestart = "database-restart"
    /// `kill -9` of the postmaster, then started again (crash recovery).
    case databaseKill = "database-kill"
    /// `SIGSTOP` of every backend serving hms-act for 8 s (a hung database connection), then `SIGCONT`.
    case backendsStopped = "backends-stopped"
    /// RabbitMQ's memory alarm for 8 s (`set_vm_memory_high_watermark` far below what the node uses): the
    /// broker blocks every publishing connection (flow control) until the watermark is set back.
    case brokerMemoryAlarm = "broker-memory-alarm"
    /// The broker closes every client connection (`rabbitmqctl close_all_connections`), twice, 3 s apart.
    case brokerClosesConnections = "broker-closes-connections"
    /// One replica's wall clock (libfaketime, monotonic clock untouched) jumps 2 h ahead for 4 s, then 2 h
    /// behind for 4 s, then back.
    case replicaClockJump = "replica-clock-jump"
    /// Every replica runs with ``Failpoint``s armed (`HMS_FAILPOINTS`): it exits at once after a batch commits
    /// and before its ack, after a publish is confirmed and before the outbox delete, mid-batch, while recording
    /// a breach and while dispatching a compensation. Each exited replica starts again 0.5 s later without the
    /// point that fired, until every point has fired (at most 30 s); then the rest start again unarmed.
    case crashPoints = "crash-points"
    /// The scenario schema's tables live on a 48 MB tmpfs tablespace, which is filled for 8 s: every write that
    /// needs a new page fails with 53100 (`could not extend file … No space left on device`); then the filler
    /// is removed. The WAL stays on the data directory.
    case databaseDiskFull = "database-disk-full"
    /// Replica 0 cut off from RabbitMQ and PostgreSQL for 8 s (its proxies hold every byte, both ways, and
    /// connect nobody new), while the others go on; then the link returns.
    case networkPartition = "network-partition"
    /// As `network-partition`, for 35 s: longer than RabbitMQ's heartbeat timeout (2 × `amqp.heartbeat_seconds`,
    /// 20 s), so the broker gives the cut-off replica's unacknowledged deliveries to the others.
    case networkPartitionLong = "network-partition-long"
    /// Every replica's links to both servers delay each chunk by 200 ms for 8 s.
    case networkDelay = "network-delay"
    /// Every replica's links to both servers drop every open connection, every 1–2 s for 9 s.
    case networkFlaky = "network-flaky"

    /// The broker is a three-node RabbitMQ cluster (scripts/rabbitmq-cluster) with quorum queues, reached through
    /// one proxy in front of the three nodes (as a Kubernetes Service): one node is killed (SIGKILL), started
    /// again, and once every queue has its three members again, another is.
    case brokerClusterNodeLoss = "broker-cluster-node-loss"

    /// Replica 0 runs in a network namespace (``NetworkNamespace``) and reaches its proxies over a veth pair on
    /// which 25 % of the packets, both ways, are dropped at random for 10 s (nftables `numgen`).
    case networkPacketLoss = "network-packet-loss"
    /// The same link dropping every packet for 30 s: a partition as TCP sees it (no answer to anything, keepalives
    /// included), past RabbitMQ's heartbeat timeout.
    case networkPartitionDropped = "network-partition-dropped"

    /// The scenarios whose replicas reach the servers through a ``TCPProxy`` each.
    var goesThroughProxies: Bool {
        [.networkPartition, .networkPartitionLong, .networkDelay, .networkFlaky, .networkPacketLoss, .networkPartitionDropped]
            .contains(self)
    }

    /// The scenarios whose replica 0 runs in ``NetworkNamespace``.
    var usesNamespace: Bool { self == .networkPacketLoss || self == .networkPartitionDropped
    }

    var testDescription: String { rawValue }
}

enum RealFaultRun {
    /// `HMS_FAULT_SCENARIOS`: the scenarios to run (comma-separated names); all when unset.
    static var onlyScenarios: Set<String>? {
        ProcessInfo.processInfo.environment["HMS_FAULT_SCENARIOS"].map { Set($0.split(separator: ",").map(String.init)) }
    }

    static var soakMinutes: Int? { ProcessInfo.processInfo.environment["HMS_FAULT_SOAK_MINUTES"].flatMap(Int.init) }

    struct Report: Sendable, CustomStringConvertible {
        var fault: RealFault
        var seed: UInt64
        var runs: Int
        var injected: Int
        var violations: [Checker.Violation]
        /// From the end of the fault to the first task dispatched after it.
        var recovery: Duration?
        /// From the end of the fault until everything settled.
        var settled: Duration
        /// `crash-points`: how often each failpoint fired, by name.
        var failpoints: [String: Int] = [:]
        /// The longest a result waited from its confirmed publish to its application (``FaultRig``).
        var longestApply: Duration?

        static let header = "scenario                   seed  runs faults  recovery  settled  apply max  checks"

        var description: String {
            let checks = Checker.checks.filter { check in violations.contains { $0.check == check } }
            let recoveryText = recovery.map { String(format: "%7.1f s", $0.seconds) } ?? "      –  "
            return fault.rawValue.padding(toLength: 25, withPad: " ", startingAt: 0)
                + String(format: " %5llu %5d %6d ", seed % 100_000, runs, injected) + recoveryText
                + String(format: " %6.1f s ", settled.seconds)
                + (longestApply.map { String(format: " %7.1f s  ", $0.seconds) } ?? "       –   ")
                + (checks.isEmpty ? "all \(Checker.checks.count) ok" : "FAIL: " + checks.joined(separator: ", "))
                + (failpoints.isEmpty ? "" : "  (" + failpoints.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    .joined(separator: ", ") + ")")
        }

        var detail: String {
            description + "\n  " + violations.prefix(20).map(\.description).joined(separator: "\n  ")
        }
    }

    /// The workload's playbooks, with an SLA short enough to breach, and a wait short enough to run out, in real time.
    static var playbooks: [String] {
        Workload.playbooks.map {
            $0.replacingOccurrences(of: "sla: 1m", with: "sla: 3s").replacingOccurrences(of: "wait: 1m", with: "wait: 4s")
        }
    }

    /// Runs `runs` runs of the workload on three replicas while injecting `fault`, lets everything settle and
    /// checks the history.
    /// - Parameters:
    ///   - mutants: `HMS_MUTANTS` for the replicas (the self-test's broken binary), or `nil`.
    ///   - settleLimit: The longest wait for everything to settle after the fault.
    static func run(fault: RealFault, seed: UInt64, runs: Int = 36, mutants: String? = nil,
        settleLimit: Duration = .seconds(180)) async throws -> Report {
        let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        if ![.none, .replicaKill, .crashPoints, .replicaClockJump].contains(fault) && !fault.goesThroughProxies {
            // The others stop, kill or reconfigure the servers themselves.
            try #require(StackControl.ownsServers, "\(fault.rawValue) needs the servers of scripts/stack (HMS_STACK_DIR)")
        }
        var random = SeededRandom(seed: seed)
        let workload = Workload(runs: runs, random: &random, prefix: "\(fault.rawValue)-\(seed)")
        let result = Mutex<Report?>(nil)
        let seeded = random
        var clusterProxy: TCPProxy?
        if fault == .brokerClusterNodeLoss {
            try await StackControl.cluster("up")
            clusterProxy = try TCPProxy(upstreamPorts: StackControl.clusterPorts)
        }
        let cluster = clusterProxy
        defer { cluster?.stop() }
        if fault.usesNamespace { try await NetworkNamespace.create() }
        do {
            try await SystemHarness.run(playbooks: playbooks, replicas: 0, configure: { configuration in
                guard let cluster else { return }
                // The stack's administrator exists on the cluster too (scripts/lib/rabbitmq.sh makes it on every node).
                configuration.amqp.url = "amqp://hms:hms-local@127.0.0.1:\(cluster.port)/%2f"
                configuration.amqp.queueType = "quorum"
            }, answer: { _ in .ignore }) { system in
                let rig = FaultRig(system: system, workload: workload, random: seeded, binary: binary, cluster: cluster,
                    mutants: mutants, settleLimit: settleLimit)
                defer { rig.stopReplicas() }
                let report = try await rig.drive(fault)
                result.withLock { $0 = report }
            }
        } catch {
            if fault == .databaseDiskFull { try? await SmallTablespace.remove() }
            if fault == .brokerClusterNodeLoss { try? await StackControl.cluster("down") }
            if fault.usesNamespace { try? await NetworkNamespace.remove() }
            throw error
        }
        if fault == .brokerClusterNodeLoss { try await StackControl.cluster("down") }
        if fault.usesNamespace { try await NetworkNamespace.remove() }
        // After the harness dropped the scenario's schema, so the tablespace is empty.
        if fault == .databaseDiskFull { try await SmallTablespace.remove() }
        var report = try #require(result.withLock { $0 })
        report.seed = seed
        return report
    }
}

/// A scenario that cannot go on, and why.
struct FaultRigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One scenario's moving parts: the replicas, the trigger publisher, the workers and the fault.
final class FaultRig: Sendable {
    let system: System
    let workload: Workload
    let binary: String
    /// Run id → script.
    let scripts: [String: Workload.Script]

    private struct State {
        var random: SeededRandom
        var replicas: [ServeProcess?] = []
        var confirmed = Set<String>()
        /// Answers waiting to be sent: body and copies.
        var answers: [(body: JSONValue, copies: Int)] = []
        var tasksSeen = 0
        var injected = 0
        var faultEnded: ContinuousClock.Instant?
        var firstTaskAfterFault: ContinuousClock.Instant?
        /// `crash-points`: the failpoints each replica starts with (`HMS_FAILPOINTS`), and what fired.
        var armed: [[Failpoint: Double]] = [[:], [:], [:]]
        var fired: [String: Int] = [:]
        /// Network scenarios: each replica's proxies to RabbitMQ and PostgreSQL.
        var proxies: [(amqp: TCPProxy, postgres: TCPProxy)] = []
        /// `network-packet-loss`: replica 0 runs in ``NetworkNamespace``.
        var namespaced = false
        /// When the broker first confirmed an answer to each task attempt (`task_id#attempt`), in ms since the epoch.
        var answered: [String: Int64] = [:]
    }

    private let state: Mutex<State>
    private let logs: String

    /// `broker-cluster-node-loss`: the proxy in front of the cluster's three nodes.
    let cluster: TCPProxy?

    /// `HMS_MUTANTS` for every replica (the self-test), or `nil`.
    let mutants: String?
    /// The longest wait for everything to settle after the fault.
    let settleLimit: Duration

    init(system: System, workload: Workload, random: SeededRandom, binary: String, cluster: TCPProxy? = nil,
        mutants: String? = nil, settleLimit: Duration = .seconds(180))
    {
        self.cluster = cluster
        self.mutants = mutants
        self.settleLimit = settleLimit
        self.system = system
        self.workload = workload
        self.binary = binary
        scripts = Dictionary(uniqueKeysWithValues: workload.scripts.map {
            (System.runID(playbook: $0.kind.playbookID, eventID: $0.eventID), $0)
        })
        state = Mutex(State(random: random))
        logs = FileManager.default.temporaryDirectory.appendingPathComponent("hms-act-faults").path
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    private func random<T>(_ body: (inout SeededRandom) -> T) -> T { state.withLock { body(&$0.random) } }

    private var namespaced: Bool { state.withLock { $0.namespaced } }

    // MARK: Replicas

    /// libfaketime, which moves replica 0's wall clock in `replica-clock-jump` (scripts/test installs it).
    static let fakeTimeLibrary = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    /// The offset replica 0's clock reads, re-read on every call (`FAKETIME_NO_CACHE`).
    var fakeTimeFile: String { "\(logs)/faketime" }

    private func startReplica(_ index: Int) throws {
        let log = FileHandle(forWritingAtPath: "\(logs)/replica-\(index).log") ?? {
            _ = FileManager.default.createFile(atPath: "\(logs)/replica-\(index).log", contents: nil)
            return FileHandle(forWritingAtPath: "\(logs)/replica-\(index).log") ?? .nullDevice
        }()
        log.seekToEndOfFile()
        var environment: [String: String] = [:]
        if index == 0, FileManager.default.fileExists(atPath: fakeTimeFile) {
            environment = ["LD_PRELOAD": Self.fakeTimeLibrary, "FAKETIME_TIMESTAMP_FILE": fakeTimeFile,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"]
        }
        let (armed, proxies) = state.withLock { ($0.armed[index], $0.proxies) }
        let namespace = index == 0 && namespaced ? NetworkNamespace.name : nil
        if index < proxies.count {
            let host = namespace == nil ? "127.0.0.1" : NetworkNamespace.hostAddress
            environment["AMQP_URL"] = try Self.url(system.configuration.amqp.url, host: host, port: proxies[index].amqp.port)
            environment["POSTGRES_URL"] = try Self.url(system.configuration.postgres.url, host: host,
                port: proxies[index].postgres.port)
        }
        if let mutants { environment["HMS_MUTANTS"] = mutants }
        if !armed.isEmpty {
            environment[Failpoint.variable] = armed.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ",")
        }
        let process = try ServeProcess.start(binary: binary, system: system, environment: environment, standardError: log,
            namespace: namespace)
        state.withLock { state in
            while state.replicas.count <= index { state.replicas.append(nil) }
            state.replicas[index] = process
        }
    }

    /// `url` with its host and port replaced.
    private static func url(_ url: String, host: String, port: UInt16) throws -> String {
        guard var components = URLComponents(string: url), components.port != nil else {
            throw FaultRigError("cannot point \(url) at a proxy: no port in it")
        }
        components.host = host
        components.port = Int(port)
        return components.string ?? url
    }

    private func killReplica(_ index: Int) {
        let process = state.withLock { state -> ServeProcess? in
            defer { state.replicas[index] = nil }
            return state.replicas[index]
        }
        process?.kill()
        process?.process.waitUntilExit()
    }

    func stopReplicas() {
        let (processes, proxies) = state.withLock { state in
            defer { (state.replicas, state.proxies) = ([], []) }
            return (state.replicas.compactMap { $0 }, state.proxies)
        }
        for process in processes { process.kill() }
        for (amqp, postgres) in proxies {
            amqp.stop()
            postgres.stop()
        }
    }

    // MARK: The scenario

    func drive(_ fault: RealFault) async throws -> RealFaultRun.Report {
        state.withLock { $0.namespaced = fault.usesNamespace }
        if fault == .replicaClockJump {
            try #require(FileManager.default.fileExists(atPath: Self.fakeTimeLibrary),
                "replica-clock-jump needs libfaketime: apt-get install faketime (scripts/test does)")
            try "+0\n".write(toFile: fakeTimeFile, atomically: true, encoding: .utf8)
        } else {
            try? FileManager.default.removeItem(atPath: fakeTimeFile)  // only this scenario's replica 0 is faked
        }
        if fault == .crashPoints {
            // Common points rarely; rare ones (a breach, a compensation) every time: a timer batch holds several
            // breaches, so at 0.5 the point missed every batch in one CI run. Each replica fires a point at most
            // once, so a breach batch crashes at most the three replicas in turn.
            let points: [Failpoint: Double] = [.afterCommitBeforeAck: 0.1, .afterPublishBeforeDelete: 0.1, .midBatch: 0.05,
                .duringBreach: 1, .duringCompensation: 1]
            state.withLock { $0.armed = [points, points, points] }
        }
        if fault.goesThroughProxies {
            let amqpPort = try #require(URLComponents(string: system.configuration.amqp.url)?.port)
            let postgresPort = try #require(URLComponents(string: system.configuration.postgres.url)?.port)
            let proxies = try (0..<3).map { index in
                // A replica in the namespace reaches its proxies on the host's end of the veth pair.
                let address = index == 0 && namespaced ? NetworkNamespace.hostAddress : "127.0.0.1"
                return (amqp: try TCPProxy(upstreamPorts: [UInt16(amqpPort)], listenAddress: address),
                    postgres: try TCPProxy(upstreamPorts: [UInt16(postgresPort)], listenAddress: address))
            }
            state.withLock { $0.proxies = proxies }
        }
        for index in 0..<3 { try startReplica(index) }
        // Wait until a replica has bound the triggers (and so migrated the schema).
        guard let first = workload.scripts.first else { throw CancellationError() }
        try await system.emitWhenBound(first.kind.trigger, id: first.eventID)
        state.withLock { _ = $0.confirmed.insert(first.eventID) }
        let store = try makeStore()
        let pool = Task { [client = store.client] in try await client.run() }
        defer { pool.cancel() }
        if fault == .databaseDiskFull { try await SmallTablespace.moveTables(of: system.configuration.postgres.schema) }
        if fault == .databaseKill {
            // With commits acknowledged before they are written, a killed server loses results whose messages
            // were already acknowledged: a lost run the suite would blame on hms-act (scripts/lib/postgres.sh).
            let setting = try await store.synchronousCommit()
            try #require(setting != "off", "database-kill needs synchronous_commit on (it is \(setting)); restart the stack")
        }

        let worker = Task { try await work() }
        defer { worker.cancel() }
        // The cluster's two node losses take about 30 s: triggers keep coming through both.
        let publisher = Task { try await publishTriggers(spreadOver: .seconds(fault == .brokerClusterNodeLoss ? 30 : 8)) }
        defer { publisher.cancel() }

        try await Task.sleep(for: .seconds(2))
        try await inject(fault)
        let clock = ContinuousClock()
        let faultEnded = clock.now
        state.withLock { $0.faultEnded = faultEnded }
        try await publisher.value

        // Everything must settle: every run ended, nothing left in the outbox, timers or queues.
        var observed = try await observe(store)
        while clock.now - faultEnded < settleLimit {
            let answersLeft = state.withLock { $0.answers.count }
            if answersLeft == 0, ended(observed), observed.outboxLeft == 0, observed.timersLeft == 0,
                observed.messagesLeft.values.allSatisfy({ $0 == 0 })
            {
                break
            }
            try await Task.sleep(for: .milliseconds(500))
            observed = try await observe(store)
        }
        let settled = clock.now - faultEnded
        let (confirmed, injected, firstTask) = state.withLock { ($0.confirmed, $0.injected, $0.firstTaskAfterFault) }
        var violations = Checker.check(workload, confirmed: confirmed, observed)
        violations += try await auditVerify()
        return RealFaultRun.Report(fault: fault, seed: 0, runs: workload.scripts.count, injected: injected,
            violations: violations, recovery: firstTask.map { $0 - faultEnded }, settled: settled,
            failpoints: state.withLock { $0.fired }, longestApply: longestApply(observed))
    }

    /// The longest wait of any run for one of its results: from the broker's confirm of the workers' first copy
    /// to the audit entry of its application (the database's clock, on this machine). A result held by a replica
    /// that died waits for the broker to redeliver it; a run stalls no longer than this.
    private func longestApply(_ observed: Observed) -> Duration? {
        let answered = state.withLock { $0.answered }
        var longest: Int64?
        for entries in observed.audit.values {
            for stored in entries where stored.entry.kind == "task.completed" || stored.entry.kind == "task.failed" {
                guard let task = stored.entry.data["task_id"]?.stringValue,
                    let attempt = stored.entry.data["attempt"]?.numberValue?.intValue,
                    let sent = answered["\(task)#\(attempt)"]
                else { continue }
                longest = max(longest ?? 0, stored.entry.at - sent)
            }
        }
        return longest.map { .milliseconds($0) }
    }

    /// `hms-act audit verify` on the scenario's schema, as an auditor would run it: every chain, the checkpoints the
    /// replicas signed (housekeeping writes them every few seconds) and the heads they cover.
    private func auditVerify() async throws -> [Checker.Violation] {
        let key = try system.configuration.audit.signingKey().publicKey
        let verify = try await CLIProcess.run(["audit", "verify", "--public-key", "\(key)"], environment: [
            "HMS_AUDIT_SIGNING_KEY": nil, "POSTGRES_URL": system.configuration.postgres.url,
            "HMS_POSTGRES_SCHEMA": system.configuration.postgres.schema,
        ])
        guard verify.status != 0 else { return [] }
        return [Checker.Violation(check: Checker.checks[3], detail: "hms-act audit verify exited \(verify.status): \(verify.output)")]
    }

    private func makeStore() throws -> Store {
        var configuration = TestEnvironment.postgres
        configuration.searchPath = system.configuration.postgres.schema
        configuration.applicationName = "hms-act-faults"
        let client = PostgresClient(configuration: .init(connection: configuration, maxConnections: 2),
            logger: TestEnvironment.logger("test.faults"))
        return Store(client: client, schema: system.configuration.postgres.schema, logger: TestEnvironment.logger("test.faults"))
    }

    /// Publishes every trigger once, spread over `duration`, each until the broker confirms it (a trigger
    /// whose confirm was lost is published again with the same id: the inbox makes it one run).
    private func publishTriggers(spreadOver duration: Duration) async throws {
        let pending = workload.scripts.filter { script in state.withLock { !$0.confirmed.contains(script.eventID) } }
        let pause = duration / max(pending.count, 1)
        for script in pending {
            try await publishUntilConfirmed(script)
            try await Task.sleep(for: pause)
        }
    }

    private func publishUntilConfirmed(_ script: Workload.Script) async throws {
        let body: JSONValue = ["type": .string(script.kind.trigger), "id": .string(script.eventID), "payload": [:]]
        let message = AMQPMessage(body: body.canonicalEncoding, exchange: system.configuration.amqp.exchanges.events,
            routingKey: script.kind.trigger, properties: AMQPProperties(contentType: "application/json",
                messageID: script.eventID))
        while true {
            if (try? await system.worker.publish(message)) == .confirmed {
                state.withLock { _ = $0.confirmed.insert(script.eventID) }
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The workers: every task message (the harness records them all) gets its scripted answer, sent later,
    /// in a random order, one to three times.
    private func work() async throws {
        let results = system.configuration.amqp.exchanges.results
        while !Task.isCancelled {
            let all = system.tasks.all
            let fresh = state.withLock { state -> ArraySlice<Recorder.Message> in
                defer { state.tasksSeen = all.count }
                return all[state.tasksSeen...]
            }
            if !fresh.isEmpty {
                let now = ContinuousClock.now
                state.withLock { state in
                    if let end = state.faultEnded, state.firstTaskAfterFault == nil, now > end {
                        state.firstTaskAfterFault = now
                    }
                }
            }
            for message in fresh {
                for body in replies(to: message.body) {
                    state.withLock { state in
                        state.answers.append((body, Int.random(in: 1...3, using: &state.random)))
                    }
                }
            }
            let batch = state.withLock { state -> [(body: JSONValue, copies: Int)] in
                state.answers.shuffle(using: &state.random)
                let count = Int.random(in: 0...state.answers.count, using: &state.random)
                defer { state.answers.removeFirst(count) }
                return Array(state.answers.prefix(count))
            }
            for (body, copies) in batch {
                var sent = 0
                while sent < copies {
                    let outcome = try? await system.worker.publish(AMQPMessage(body: body.canonicalEncoding,
                        exchange: results, routingKey: "result.fault",
                        properties: AMQPProperties(contentType: "application/json")))
                    if outcome == .confirmed {
                        if sent == 0, let task = body["task_id"]?.stringValue, let attempt = body["attempt"]?.numberValue?.intValue {
                            let now = Int64(Date().timeIntervalSince1970 * 1_000)
                            state.withLock { state in
                                state.answered["\(task)#\(attempt)"] = min(state.answered["\(task)#\(attempt)"] ?? now, now)
                            }
                        }
                        sent += 1
                    } else if sent > 0 {
                        break  // one copy arrived; the rest were only duplicates
                    } else {
                        if Task.isCancelled { return }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...120)))
        }
    }

    /// What the workers send for `task` (``Workload/replies(to:script:)``).
    private func replies(to task: JSONValue) -> [JSONValue] {
        guard let run = task["run_id"]?.stringValue, let script = scripts[run] else { return [] }
        return Workload.replies(to: task, script: script)
    }

    // MARK: Faults

    private func inject(_ fault: RealFault) async throws {
        func count() { state.withLock { $0.injected += 1 } }
        switch fault {
        case .none:
            try await Task.sleep(for: .seconds(4))
        case .replicaKill:
            let clock = ContinuousClock()
            let end = clock.now + .seconds(9)
            while clock.now < end {
                let victim = random { Int.random(in: 0..<3, using: &$0) }
                killReplica(victim)
                count()
                try await Task.sleep(for: .milliseconds(500))
                try startReplica(victim)
                try await Task.sleep(for: .milliseconds(random { Int.random(in: 1_000...2_500, using: &$0) }))
            }
        case .brokerRestart:
            try await StackControl.shell("rmq_down; sleep 2; rmq_up")
            count()
        case .brokerKill:
            let pid = try #require(StackControl.brokerPID)
            kill(pid, SIGKILL)
            count()
            try await Task.sleep(for: .seconds(2))
            try await StackControl.shell("rmq_up")
        case .databaseRestart:
            try await StackControl.shell("pg_down; sleep 2; pg_up")
            count()
        case .databaseKill:
            let pid = try #require(StackControl.postmasterPID)
            kill(pid, SIGKILL)
            count()
            try await Task.sleep(for: .seconds(2))
            try await StackControl.shell("pg_up")
        case .backendsStopped:
            let pids = try await serviceBackends()
            for pid in pids { kill(pid, SIGSTOP) }
            count()
            try await Task.sleep(for: .seconds(8))
            for pid in pids { kill(pid, SIGCONT) }
        case .brokerMemoryAlarm:
            // 0.4 is the node's default, which the stack does not change.
            try await StackControl.shell("_rmq_ctl -q set_vm_memory_high_watermark 0.0001")
            count()
            // The alarm took effect: the broker blocks the connections that publish (the workload's and the
            // replicas' relays) within a few seconds.
            try await StackControl.shell(
                "for _ in $(seq 50); do _rmq_ctl -q list_connections state | grep -q blocked && exit 0; sleep 0.1; done; "
                    + "echo 'no connection was blocked by the memory alarm' >&2; exit 1")
            try? await Task.sleep(for: .seconds(8))  // set back even when cancelled
            try await StackControl.shell("_rmq_ctl -q set_vm_memory_high_watermark 0.4")
        case .replicaClockJump:
            for (offset, seconds) in [("+2h", 4), ("-2h", 4)] {
                try "\(offset)\n".write(toFile: fakeTimeFile, atomically: true, encoding: .utf8)
                count()
                try await Task.sleep(for: .seconds(seconds))
            }
            try "+0\n".write(toFile: fakeTimeFile, atomically: true, encoding: .utf8)
        case .crashPoints:
            try await restartCrashedReplicas()
        case .databaseDiskFull:
            let before = try replicaLogs().components(separatedBy: SmallTablespace.refusal).count
            try await StackControl.shell(SmallTablespace.fill)
            try? await Task.sleep(for: .seconds(8))  // free the space even when cancelled
            try await StackControl.shell(SmallTablespace.free)
            let refused = try replicaLogs().components(separatedBy: SmallTablespace.refusal).count - before
            guard refused > 0 else { throw FaultRigError("no write was refused for want of space while the tablespace was full") }
            state.withLock { $0.injected += 1 }
        case .networkPartition, .networkPartitionLong:
            let cutOff = state.withLock { $0.proxies[0] }
            guard cutOff.amqp.open > 0, cutOff.postgres.open > 0 else {
                throw FaultRigError("replica 0 has no connection through its proxies to cut off")
            }
            cutOff.amqp.mode = .held
            cutOff.postgres.mode = .held
            count()
            try? await Task.sleep(for: .seconds(fault == .networkPartition ? 8 : 35))  // heal even when cancelled
            cutOff.amqp.mode = .pass
            cutOff.postgres.mode = .pass
        case .networkDelay:
            let links = state.withLock { $0.proxies.flatMap { [$0.amqp, $0.postgres] } }
            guard links.allSatisfy({ $0.open > 0 }) else { throw FaultRigError("a replica has no connection through its proxies") }
            for link in links { link.mode = .delayed(milliseconds: 200) }
            count()
            try? await Task.sleep(for: .seconds(8))
            for link in links { link.mode = .pass }
        case .networkFlaky:
            let links = state.withLock { $0.proxies.flatMap { [$0.amqp, $0.postgres] } }
            let clock = ContinuousClock()
            let end = clock.now + .seconds(9)
            while clock.now < end {
                if links.map({ $0.cutAll() }).reduce(0, +) > 0 { count() }
                try await Task.sleep(for: .milliseconds(random { Int.random(in: 1_000...2_000, using: &$0) }))
            }
        case .networkPacketLoss, .networkPartitionDropped:
            let link = state.withLock { $0.proxies[0] }
            guard link.amqp.open > 0, link.postgres.open > 0 else {
                throw FaultRigError("replica 0 has no connection from its namespace through its proxies")
            }
            let partition = fault == .networkPartitionDropped
            try await NetworkNamespace.lose(percent: partition ? 100 : 25)
            count()
            try? await Task.sleep(for: .seconds(partition ? 30 : 10))  // stop the loss even when cancelled
            try await NetworkNamespace.stopLosing()
        case .brokerClusterNodeLoss:
            // Each time the node with the most connections (hms-act's and the workers'), never the same twice.
            let ports = StackControl.clusterPorts
            var killed: Int?
            for _ in 0..<2 {
                let proxy = try #require(cluster)
                let candidates = (0..<3).filter { $0 != killed }
                guard let node = candidates.max(by: { proxy.open(to: ports[$0]) < proxy.open(to: ports[$1]) }),
                    proxy.open(to: ports[node]) > 0
                else { throw FaultRigError("no connection reached the nodes \(candidates) of the cluster") }
                killed = node
                try await StackControl.cluster("kill", "\(node)")
                count()
                // Work goes on with the node down: tasks keep reaching the workers through the other two.
                let before = system.tasks.all.count
                try await Task.sleep(for: .seconds(6))
                let during = system.tasks.all.count - before
                guard during > 0 else { throw FaultRigError("no task was dispatched in the 6 s node \(node) was down") }
                print("broker-cluster-node-loss: node \(node) killed with connections on it; down 6 s, \(during) tasks dispatched meanwhile")
                try await StackControl.cluster("start", "\(node)")
                try await StackControl.cluster("wait")
            }
        case .brokerClosesConnections:
            for round in 0..<2 {
                if round > 0 { try await Task.sleep(for: .seconds(3)) }
                try await StackControl.shell("_rmq_ctl -q close_all_connections 'fault injection: the broker closes every connection'")
                count()
            }
        }
    }

    /// The PostgreSQL backends serving the replicas (not the suite's own connections).
    /// Everything the replicas have logged, in this and earlier scenarios.
    private func replicaLogs() throws -> String {
        try (0..<3).map { index -> String in
            let path = "\(logs)/replica-\(index).log"
            return FileManager.default.fileExists(atPath: path) ? try String(contentsOfFile: path, encoding: .utf8) : ""
        }.joined()
    }

    /// `crash-points`: starts each replica that exited at a failpoint again, without that point, until every
    /// point has fired or 30 s have passed; then starts the replicas still armed again, unarmed (SIGTERM).
    private func restartCrashedReplicas() async throws {
        /// Records the failpoint a replica's exit status names; a replica that exited any other way fails the scenario.
        func recordExit(_ index: Int, status: Int32) throws {
            guard let point = Failpoint(exitStatus: status) else {
                throw FaultRigError("replica \(index) exited with status \(status), not at a failpoint (see \(logs)/replica-\(index).log)")
            }
            state.withLock { state in
                state.fired[point.rawValue, default: 0] += 1
                state.armed[index][point] = nil
                state.injected += 1
            }
        }
        let clock = ContinuousClock()
        let end = clock.now + .seconds(30)
        while clock.now < end, state.withLock({ $0.fired.count }) < Failpoint.allCases.count {
            for index in 0..<3 {
                guard let process = state.withLock({ $0.replicas[index] }), !process.process.isRunning else { continue }
                process.process.waitUntilExit()
                guard process.process.terminationReason == .exit else {
                    throw FaultRigError("replica \(index) was ended by signal \(process.process.terminationStatus), not at a failpoint")
                }
                try recordExit(index, status: process.process.terminationStatus)
                try await Task.sleep(for: .milliseconds(500))
                try startReplica(index)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        for index in 0..<3 {
            guard !state.withLock({ $0.armed[index].isEmpty }), let process = state.withLock({ $0.replicas[index] }) else { continue }
            // SIGTERM ends a replica still starting (before its handlers are installed) by the signal: not a failpoint.
            let status = try await process.terminate(within: .seconds(20))
            if let status, status != 0, process.process.terminationReason == .exit { try recordExit(index, status: status) }
            state.withLock { $0.armed[index] = [:] }
            try startReplica(index)
        }
    }

    private func serviceBackends() async throws -> [pid_t] {
        let connection = try await PostgresConnection.connect(configuration: TestEnvironment.postgres,
            logger: TestEnvironment.logger("test.faults"))
        defer { Task { await connection.close() } }
        let rows = try await connection.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'hms-act' AND backend_type = 'client backend'")
        return try rows.map { pid_t(try $0.decode(Int.self, column: 0)) }
    }

    // MARK: What is left

    private func ended(_ observed: Observed) -> Bool {
        let confirmed = state.withLock { $0.confirmed }
        return confirmed.count == workload.scripts.count && workload.scripts.allSatisfy { script in
            let run = System.runID(playbook: script.kind.playbookID, eventID: script.eventID)
            return ["completed", "failed", "cancelled"].contains(observed.runs[run] ?? "")
        }
    }

    /// Reads what the checker needs from the database and the broker; a server that is still coming back
    /// gives an empty observation (the caller looks again).
    private func observe(_ store: Store) async throws -> Observed {
        do {
            var runs: [String: String] = [:]
            var cursor: String?
            repeat {
                let page = try await store.listRuns(status: nil, playbookID: nil, after: cursor, limit: 500)
                for run in page.runs { runs[run.runID] = run.status }
                cursor = page.nextCursor
            } while cursor != nil
            var tasks: [TaskRow] = []
            var audit: [String: [AuditChain.StoredEntry]] = [:]
            for run in runs.keys {
                tasks += try await store.tasks(ofRun: run)
                audit[run] = try await store.auditTrail(runID: run)
            }
            let outbox = try await store.outboxLag().count
            let timers = try await store.pendingTimerCount()
            let amqp = system.configuration.amqp
            let topology = system.configuration.topology(triggerTypes: [])
            var messages: [String: Int] = [:]
            for name in [amqp.queues.triggers, amqp.queues.results, amqp.queues.dead] {
                guard let queue = topology.queues.first(where: { $0.name == name }) else { continue }
                messages[name] = try await system.worker.withConnection { connection in
                    Int(try await connection.declareQueue(queue).messageCount)
                }
            }
            return Observed(runs: runs, tasks: tasks, audit: audit,
                governance: system.governance.all.map { ($0.routingKey, $0.body["run_id"]?.stringValue) },
                outboxLeft: outbox, timersLeft: timers, messagesLeft: messages)
        } catch {
            return Observed(runs: [:], tasks: [], audit: [:], governance: [], outboxLeft: -1, timersLeft: -1,
                messagesLeft: ["unreachable": 1])
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
