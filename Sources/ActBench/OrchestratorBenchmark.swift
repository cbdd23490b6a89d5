import ActAMQP
import ActEngine
import ActPostgres
import ActService
import ActStore
import Foundation
import Logging

/// `hms-act-bench run`: hms-act end to end against the real servers, everything durable. It starts a real
/// `hms-act serve` (own schema, exchanges and queues, so nothing else on the servers is touched), drives it
/// with triggers, answers its tasks with ``EchoWorker``, listens on the governance exchange, and measures:
///
/// 1. throughput — `runs` five-step runs, closed loop (`concurrency` runs in flight);
/// 2. the raw ceiling — confirmed publish + consume on one queue of the same kind, with the tasks' mean size;
/// 3. latency — open loop at fractions of the measured maximum: trigger→first task, per-step turnaround
///    (result published → next task received), trigger→`run.completed`;
/// 4. memory — the server's RSS idle, with `openRuns` runs waiting on a task, and after they finish;
/// 5. timers — `timers` pending SLA timers (the open runs' own, plus copies of one open run made by the
///    ``Store``, through which alone the benchmark touches the schema),
///    then `breaches` runs whose SLA expires: lag from each deadline to its `sla.violation`;
/// 6. a burst of large events — `burstEvents` triggers of `burstBytes` each, published as fast as the broker
///    confirms them: the server's peak RSS while it works through them (its bound comes from
///    `engine.consumer_buffer_bytes`, `engine.batch_bytes` and the state cache's byte capacity).
struct OrchestratorBenchmark {
    struct Settings: Codable {
        var binary: String
        var runs: Int
        var concurrency: Int
        var latencySeconds: Int
        var latencyFractions: [Double]
        var openRuns: Int
        var timers: Int
        var breaches: Int
        var breachSLASeconds: Int
        var ceilingMessages: Int
        var port: Int
        var queueType: String
        var burstEvents: Int
        var burstBytes: Int
        /// Runs queued behind one concurrency key while the latency levels are measured again (0: skip).
        var queuedRuns: Int = 0
        /// Completed runs copied into the schema by SQL before the throughput phase: a history (0: a fresh schema).
        var prefillRuns: Int = 0
        /// Report the throughput phase every this many completed runs (0: only as a whole).
        var windowRuns: Int = 0
        /// The rate the latency fractions are fractions of (nil: the throughput phase's own), so that two
        /// benchmarks can be measured at the same offered load.
        var latencyBaseRunsPerSecond: Double? = nil
    }

    struct LatencyLevel: Codable {
        var fraction: Double
        var targetRunsPerSecond: Double
        var offeredRunsPerSecond: Double
        var triggerToFirstDispatch: LatencySummary
        var stepTurnaround: LatencySummary
        var run: LatencySummary
    }

    struct Report: Codable {
        var startedAt: String
        var machine: [String: String]
        var settings: Settings
        var runsPerSecond: Double
        var transitionsPerSecond: Double
        var throughputSeconds: Double
        var meanTaskBytes: Int
        /// CPU microseconds per transition in the throughput phase, by process (hms-act, broker, database, driver).
        var cpuMicrosecondsPerTransition: [String: Double]
        var ceilingMessagesPerSecond: Double
        /// transitions/s ÷ (ceiling ÷ 2): a transition moves at least two messages (task and result).
        var ratioToCeiling: Double
        var latency: [LatencyLevel]
        /// The same levels again with ``Settings/queuedRuns`` runs queued behind one concurrency key.
        var latencyWithQueue: [LatencyLevel]
        var rssIdleMB: Double
        var rssOpenRunsMB: Double
        var rssAfterMB: Double
        var pendingTimers: Int
        var breachLag: LatencySummary
        var rssBurstPeakMB: Double
        var serverExitStatus: Int32
        /// Seconds spent copying ``Settings/prefillRuns`` runs into the schema.
        var prefillSeconds: Double = 0
        /// The throughput phase in windows of ``Settings/windowRuns`` runs.
        var windows: [HistoryFigures.Window] = []
        /// The statements that took PostgreSQL's time in the throughput phase (empty without pg_stat_statements).
        var statements: [HistoryFigures.Statement] = []
        /// The schema's tables after the throughput phase, and what it added to them.
        var tables: [HistoryFigures.Table] = []
        /// The service's periodic reads under EXPLAIN (ANALYZE, BUFFERS) after the throughput phase.
        var periodicReads: [Store.ExplainedRead] = []
    }

    let settings: Settings
    let amqpURL: String
    let postgresURL: String
    let workDirectory: String
    let logger: Logger

    private static let steps = 5

    func run(progress: (String) -> Void) async throws -> Report {
        let token = String(UUID().uuidString.lowercased().prefix(8))
        let names = Names(token: token)
        try writePlaybooks()
        var postgresConfiguration = try PostgresConfiguration(url: postgresURL)
        postgresConfiguration.searchPath = names.schema
        let amqpConfiguration = try AMQPConfiguration(url: amqpURL)
        // The server's schema, for the benchmark's own load and clean-up. No statement timeout: copying a
        // million timers in one statement may take longer than the default.
        var storeConfiguration = postgresConfiguration
        storeConfiguration.statementTimeout = .zero
        let storeClient = PostgresClient(configuration: .init(connection: storeConfiguration, maxConnections: 1), logger: logger)
        let store = Store(client: storeClient, schema: names.schema, logger: logger)

        progress("starting \(settings.binary) serve (schema \(names.schema), exchanges bench.\(token).*)")
        let server = try await BenchServer(
            binary: settings.binary, environment: serverEnvironment(names), port: settings.port,
            logPath: "\(workDirectory)/serve.log")
        defer { server.stop() }

        let ledger = BenchLedger()
        let clients = (0..<5).map { index in
            AMQPClient(configuration: amqpConfiguration, topology: index == 0 ? names.driverTopology(kind: queueKind) : AMQPTopology(),
                logger: logger)
        }
        let (publisherClient, workerClient, governanceClient, holdClient, breachClient) =
            (clients[0], clients[1], clients[2], clients[3], clients[4])

        return try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { try await client.run() } }
            group.addTask { try await storeClient.run() }
            defer { group.cancelAll() }
            _ = try await publisherClient.withConnection { _ in }

            group.addTask {
                try await EchoWorker(reader: BatchingReader(client: workerClient, queue: names.echoQueue, prefetch: 2_000, maxBatch: 500),
                    client: workerClient, resultsExchange: names.results, ledger: ledger).run()
            }
            group.addTask {
                try await BatchingReader(client: governanceClient, queue: names.governanceQueue, prefetch: 2_000, maxBatch: 500)
                    .run { batch in
                        let wall = Int64(Date().timeIntervalSince1970 * 1_000)
                        for (delivery, received) in batch {
                            guard let runID = delivery.properties.correlationID else { continue }
                            switch delivery.routingKey {
                            case "run.completed": ledger.runCompleted(runID, at: received)
                            case "sla.violation": ledger.breachReported(runID: runID, wallMilliseconds: wall)
                            default: break
                            }
                        }
                    }
            }
            group.addTask {
                try await BatchingReader(client: breachClient, queue: names.breachQueue, prefetch: 2_000, maxBatch: 500)
                    .run { batch in
                        for (delivery, _) in batch {
                            guard let runID = delivery.properties.correlationID,
                                let deadline = Self.deadline(inTask: delivery.body)
                            else { continue }
                            ledger.deadlineAnnounced(runID: runID, wallMilliseconds: deadline)
                        }
                    }
            }

            try await Task.sleep(for: .seconds(2))
            let rssIdle = server.residentMegabytes()
            progress(String(format: "idle: RSS %.1f MB", rssIdle))

            // 1. Throughput, closed loop.
            func publisher(_ type: String, _ playbook: String, _ prefix: String) -> TriggerPublisher {
                TriggerPublisher(client: publisherClient, exchange: names.events, type: type, playbookID: playbook,
                    ledger: ledger, prefix: "\(token)-\(prefix)")
            }
            let sequential = publisher("bench.sequential", "Bench.Sequential", "t")
            var prefillSeconds = 0.0
            if settings.prefillRuns > 0 {
                prefillSeconds = try await prefill(sequential: publisher("bench.sequential", "Bench.Sequential", "history"),
                    store: store, ledger: ledger, server: server, progress: progress)
            }
            progress("throughput: \(settings.runs) runs of \(Self.steps) steps, \(settings.concurrency) in flight …")
            let cpu = ProcessCPU(server: server.process.processIdentifier, amqpPort: amqpConfiguration.port,
                postgresPort: postgresConfiguration.port)
            let tablesBefore = try await store.tableStatistics()
            let statementsBefore = try await store.statementStatistics()
            let cpuBefore = cpu.sample()
            let windows = WindowRecorder(every: settings.windowRuns, stepsPerRun: Self.steps, cpu: cpu, store: store, ledger: ledger,
                statements: statementsBefore)
            let windowTask = Task { try await windows.run(until: settings.runs) }
            defer { windowTask.cancel() }
            let throughputElapsed = try await ContinuousClock().measure {
                var sent = 0
                while sent < settings.runs {
                    let room = settings.concurrency - (sent - ledger.completedCount)
                    if room >= min(50, settings.runs - sent) {
                        let count = min(room, 500, settings.runs - sent)
                        try await sequential.publish(sent..<(sent + count))
                        sent += count
                    } else {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                try await waitUntil("all \(settings.runs) runs completed", timeout: .seconds(max(120, settings.runs / 20)),
                    server: server) { ledger.completedCount >= settings.runs }
            }
            let seconds = benchSeconds(throughputElapsed)
            let runsPerSecond = Double(settings.runs) / seconds
            let transitionsPerSecond = runsPerSecond * Double(Self.steps)
            let meanTaskBytes = ledger.meanTaskBytes
            let cpuAfter = cpu.sample()
            let transitions = Double(settings.runs * Self.steps)
            let cpuPerTransition = cpuAfter.reduce(into: [String: Double]()) { result, entry in
                result[entry.key] = (entry.value - (cpuBefore[entry.key] ?? 0)) / transitions * 1e6
            }
            let statements = HistoryFigures.statements(before: statementsBefore, after: try await store.statementStatistics(),
                transitions: settings.runs * Self.steps)
            let tables = HistoryFigures.tables(before: tablesBefore, after: try await store.tableStatistics(), runs: settings.runs)
            let windowFigures = try await windowTask.value
            let periodicReads = try await store.explainPeriodicReads()
            progress(String(format: "throughput: %.0f runs/s, %.0f transitions/s (%.1f s)", runsPerSecond, transitionsPerSecond, seconds))
            ledger.forgetRuns()

            // 2. The broker's own ceiling for messages of the tasks' size.
            let ceiling = try await runAMQPRoundTripCeiling(
                configuration: amqpConfiguration, kind: queueKind, messages: settings.ceilingMessages,
                messageSize: meanTaskBytes, window: 500, logger: logger)
            progress(String(format: "ceiling: %.0f messages/s published+consumed (%d-byte messages)", ceiling, meanTaskBytes))

            // 3. Latency, open loop, after the broker has settled from the ceiling's queue (its first
            // seconds showed stalls otherwise).
            try await Task.sleep(for: .seconds(5))
            func latencyLevels(first: Int, label: String) async throws -> [LatencyLevel] {
                var levels: [LatencyLevel] = []
                for (index, fraction) in settings.latencyFractions.enumerated() {
                    let rate = (settings.latencyBaseRunsPerSecond ?? runsPerSecond) * fraction
                    let ids = try await openLoop(sequential, rate: rate, level: first + index, ledger: ledger, server: server)
                    let latencies = ledger.latencies(of: ids)
                    let level = LatencyLevel(
                        fraction: fraction, targetRunsPerSecond: rate, offeredRunsPerSecond: Double(ids.count) / Double(settings.latencySeconds),
                        triggerToFirstDispatch: latencies.firstDispatch, stepTurnaround: latencies.turnaround, run: latencies.run)
                    levels.append(level)
                    progress(String(format: "latency%@ at %.0f%% (%.0f runs/s): first dispatch %@; turnaround %@; run %@",
                        label, fraction * 100, rate, latencies.firstDispatch.line, latencies.turnaround.line, latencies.run.line))
                    ledger.forgetRuns()
                }
                return levels
            }
            let levels = try await latencyLevels(first: 0, label: "")

            // 3b. The same levels with runs queued behind one concurrency key (a long queue must not delay
            // the first dispatch of other runs).
            var queuedLevels: [LatencyLevel] = []
            if settings.queuedRuns > 0, !settings.latencyFractions.isEmpty {
                let keyed = publisher("bench.keyed", "Bench.Keyed", "q")
                progress("queue: \(settings.queuedRuns) runs behind one concurrency key …")
                var queued = 0
                while queued < settings.queuedRuns {
                    let count = min(500, settings.queuedRuns - queued)
                    try await keyed.publish(queued..<(queued + count))
                    queued += count
                }
                try await waitUntil("\(settings.queuedRuns - 1) runs queued", timeout: .seconds(max(120, settings.queuedRuns / 20)),
                    server: server) { try await store.runCount(playbookID: "Bench.Keyed", status: "queued") >= settings.queuedRuns - 1 }
                ledger.forgetRuns()
                try await Task.sleep(for: .seconds(2))
                queuedLevels = try await latencyLevels(first: settings.latencyFractions.count,
                    label: " with \(settings.queuedRuns) queued")
            }

            // 4 and 5 (skipped with --open-runs 0).
            var (rssOpen, rssAfter, pending, breachLag) = (0.0, 0.0, 0, LatencySummary(nanoseconds: []))
            if settings.openRuns > 0 {
                // 4. Memory with open runs.
                let hold = publisher("bench.hold", "Bench.Hold", "h")
                progress("memory: opening \(settings.openRuns) runs that wait on a task …")
                var opened = 0
                while opened < settings.openRuns {
                    let count = min(500, settings.openRuns - opened)
                    try await hold.publish(opened..<(opened + count))
                    opened += count
                }
                try await waitUntil("\(settings.openRuns) runs waiting", timeout: .seconds(max(120, settings.openRuns / 100)), server: server) {
                    try await holdClient.withConnection { try await $0.declareQueue(names.holdQueueDeclaration(kind: queueKind)).messageCount }
                        >= settings.openRuns
                }
                try await Task.sleep(for: .seconds(2))
                rssOpen = server.residentMegabytes()
                progress(String(format: "memory: RSS %.1f MB with %d open runs", rssOpen, settings.openRuns))

                // 5. Timers: fill up to `timers` pending ones, then a burst of expiring SLAs.
                pending = try await fillTimers(store, progress: progress)
                let breach = publisher("bench.breach", "Bench.Breach", "b")
                progress("timers: \(settings.breaches) runs whose \(settings.breachSLASeconds) s SLA expires, with \(pending) timers pending …")
                try await breach.publish(0..<settings.breaches)
                try await waitUntil("\(settings.breaches) SLA violations", timeout: .seconds(settings.breachSLASeconds + 60), server: server) {
                    ledger.breachCount >= settings.breaches
                }
                breachLag = ledger.breachLags()
                progress("timers: deadline → sla.violation \(breachLag.line)")

                // 4b. Finish the open runs; memory afterwards.
                ledger.forgetRuns()
                progress("memory: answering the \(settings.openRuns) open runs …")
                group.addTask {
                    try await EchoWorker(reader: BatchingReader(client: holdClient, queue: names.holdQueue, prefetch: 2_000, maxBatch: 500),
                        client: holdClient, resultsExchange: names.results, ledger: ledger).run()
                }
                try await waitUntil("the open runs completed", timeout: .seconds(max(120, settings.openRuns / 50)), server: server) {
                    ledger.completedCount >= settings.openRuns
                }
                try await Task.sleep(for: .seconds(3))
                rssAfter = server.residentMegabytes()
                progress(String(format: "memory: RSS %.1f MB after they finished", rssAfter))
            }

            // 6. A burst of large events: peak RSS while the server works through them.
            var rssBurstPeak = 0.0
            if settings.burstEvents > 0 {
                ledger.forgetRuns()
                let burst = TriggerPublisher(client: publisherClient, exchange: names.events, type: "bench.sequential",
                    playbookID: "Bench.Sequential", ledger: ledger, prefix: "\(token)-burst", padding: settings.burstBytes)
                progress("burst: \(settings.burstEvents) events of \(settings.burstBytes / 1_024) KiB …")
                let sampler = Task {
                    var peak = 0.0
                    while !Task.isCancelled {
                        peak = max(peak, server.residentMegabytes())
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return peak
                }
                var sent = 0
                while sent < settings.burstEvents {
                    let count = min(10, settings.burstEvents - sent)
                    try await burst.publish(sent..<(sent + count))
                    sent += count
                }
                try await waitUntil("the burst's runs completed", timeout: .seconds(max(180, settings.burstEvents)), server: server) {
                    ledger.completedCount >= settings.burstEvents
                }
                sampler.cancel()
                rssBurstPeak = await sampler.value
                progress(String(format: "burst: peak RSS %.1f MB", rssBurstPeak))
            }

            let status = server.stop()
            try? await cleanUp(names, store: store, client: publisherClient)
            return Report(
                startedAt: Date().description, machine: Self.machine(), settings: settings,
                runsPerSecond: runsPerSecond, transitionsPerSecond: transitionsPerSecond, throughputSeconds: seconds,
                meanTaskBytes: meanTaskBytes, cpuMicrosecondsPerTransition: cpuPerTransition, ceilingMessagesPerSecond: ceiling,
                ratioToCeiling: transitionsPerSecond / (ceiling / 2), latency: levels, latencyWithQueue: queuedLevels,
                rssIdleMB: rssIdle, rssOpenRunsMB: rssOpen, rssAfterMB: rssAfter, pendingTimers: pending,
                breachLag: breachLag, rssBurstPeakMB: rssBurstPeak, serverExitStatus: status,
                prefillSeconds: prefillSeconds, windows: windowFigures, statements: statements, tables: tables,
                periodicReads: periodicReads)
        }
    }

    private var queueKind: AMQPTopology.Queue.Kind { settings.queueType == "classic" ? .classic : .quorum }

    /// Publishes triggers at `rate` runs/s for `latencySeconds`, then waits for those runs to complete.
    private func openLoop(_ publisher: TriggerPublisher, rate: Double, level: Int, ledger: BenchLedger, server: BenchServer)
        async throws -> [String]
    {
        var ids: [String] = []
        let first = settings.runs + level * 10_000_000
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .seconds(settings.latencySeconds)
        var sent = 0
        while clock.now < end {
            let due = Int(rate * benchSeconds(clock.now - start))
            if due > sent {
                try await publisher.publish((first + sent)..<(first + due))
                ids += ((first + sent)..<(first + due)).map {
                    OutboundMessages.runID(playbook: publisher.playbookID, eventID: "\(publisher.prefix)-\($0)").rawValue
                }
                sent = due
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        try await waitUntil("the open-loop runs completed", timeout: .seconds(60), server: server) {
            ledger.completedCount >= sent
        }
        return ids
    }

    /// Runs one five-step run, then copies it ``Settings/prefillRuns`` times by SQL: a schema with a history.
    ///
    /// - Returns: The seconds the copying took.
    private func prefill(sequential: TriggerPublisher, store: Store, ledger: BenchLedger, server: BenchServer,
        progress: (String) -> Void) async throws -> Double
    {
        progress("history: one run to copy …")
        try await sequential.publish(0..<1)
        try await waitUntil("the run to copy completed", timeout: .seconds(60), server: server) { ledger.completedCount >= 1 }
        ledger.forgetRuns()
        let template = OutboundMessages.runID(playbook: sequential.playbookID, eventID: "\(sequential.prefix)-0").rawValue
        progress("history: copying it \(settings.prefillRuns) times (runs, payloads, tasks, audit, inbox), then VACUUM ANALYZE …")
        let elapsed = try await ContinuousClock().measure {
            try await store.copyCompletedRun(template, copies: settings.prefillRuns, idPrefix: "bench_history_") { done in
                if done % 100_000 == 0 { progress("history: \(done) copied") }
            }
        }
        progress(String(format: "history: %d completed runs in %.0f s", settings.prefillRuns, benchSeconds(elapsed)))
        return benchSeconds(elapsed)
    }

    /// Copies one open run (with its timers, moved an hour later) until `timers` are pending.
    ///
    /// - Returns: The number of pending timers.
    private func fillTimers(_ store: Store, progress: (String) -> Void) async throws -> Int {
        let existing = try await store.pendingTimerCount()
        guard existing < settings.timers else { return existing }
        guard let template = try await store.runWithTimers(playbookID: "Bench.Hold"), template.timers > 0
        else { throw BenchError("no open run with timers to copy; did the open runs start?") }
        let copies = (settings.timers - existing + template.timers - 1) / template.timers
        progress("timers: \(existing) pending; copying one open run \(copies) times to reach \(settings.timers) …")
        try await store.copyRunWithTimers(template.runID, copies: copies, idPrefix: "bench_copy_")
        return try await store.pendingTimerCount()
    }

    /// Waits until `condition` holds, checking every 5 ms; fails with what was awaited and the server's log.
    private func waitUntil(_ what: String, timeout: Duration, server: BenchServer, _ condition: () async throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard server.process.isRunning else {
                throw BenchError("hms-act serve exited while waiting for \(what):\n\(server.logTail())")
            }
            guard ContinuousClock.now < deadline else {
                throw BenchError("timed out after \(timeout) waiting for \(what); the server's log ends:\n\(server.logTail())")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Deletes the run's queues and exchanges, then drops its schema.
    private func cleanUp(_ names: Names, store: Store, client: AMQPClient) async throws {
        try await client.withConnection { connection in
            for queue in names.allQueues { _ = try? await connection.deleteQueue(queue) }
            for exchange in names.allExchanges { try? await connection.deleteExchange(exchange) }
        }
        try? await store.dropSchema()
    }

    /// The `deadline` of a task message as wall-clock milliseconds.
    static func deadline(inTask body: [UInt8]) -> Int64? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let text = object["deadline"] as? String
        else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1_000).rounded()) }
    }

    private func serverEnvironment(_ names: Names) -> [String: String] {
        [
            "AMQP_URL": amqpURL, "POSTGRES_URL": postgresURL, "HMS_POSTGRES_SCHEMA": names.schema,
            "HMS_EXCHANGE_EVENTS": names.events, "HMS_EXCHANGE_TASKS": names.tasks, "HMS_EXCHANGE_RESULTS": names.results,
            "HMS_EXCHANGE_GOVERNANCE": names.governance, "HMS_EXCHANGE_DEAD": names.dead,
            "HMS_QUEUE_TRIGGERS": names.triggersQueue, "HMS_QUEUE_RESULTS": names.resultsQueue, "HMS_QUEUE_DEAD": names.deadQueue,
            "HMS_AMQP_QUEUE_TYPE": settings.queueType,
            "HMS_HTTP_HOST": "127.0.0.1", "HMS_HTTP_PORT": String(settings.port),
            "HMS_API_TOKENS": "bench:bench-\(names.token):read",
            "HMS_PLAYBOOKS_DIR": "\(workDirectory)/playbooks", "HMS_AGENTS_DIR": "\(workDirectory)/agents",
        ]
    }

    private func writePlaybooks() throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: "\(workDirectory)/playbooks", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: "\(workDirectory)/agents", withIntermediateDirectories: true)
        let steps = (1...Self.steps).map { "  - id: s\($0)\n    agent: svc.bench-echo\n" }.joined()
        var playbooks = [
            "sequential.yaml": "id: Bench.Sequential\ntrigger: bench.sequential\nsteps:\n\(steps)",
            "hold.yaml": "id: Bench.Hold\ntrigger: bench.hold\nsteps:\n  - id: wait\n    agent: svc.bench-hold\n    sla: 24h\n",
            "breach.yaml": "id: Bench.Breach\ntrigger: bench.breach\nsteps:\n  - id: late\n    agent: svc.bench-breach\n    sla: \(settings.breachSLASeconds)s\n",
        ]
        if settings.queuedRuns > 0 {
            // One key for every run (n ≥ 0 is true), limit 1: the first waits an hour, the rest queue behind it.
            playbooks["keyed.yaml"] = "id: Bench.Keyed\ntrigger: bench.keyed\nconcurrency: {key: \"${payload.n >= 0}\", limit: 1}\nsteps:\n  - id: hold\n    wait: 1h\n"
        }
        for (name, text) in playbooks {
            try text.write(toFile: "\(workDirectory)/playbooks/\(name)", atomically: true, encoding: .utf8)
        }
    }

    static func machine() -> [String: String] {
        var machine: [String: String] = ["cores": String(ProcessInfo.processInfo.activeProcessorCount)]
        machine["memory_gb"] = String(format: "%.0f", Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824)
        machine["os"] = ProcessInfo.processInfo.operatingSystemVersionString
        if let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = cpu.split(separator: "\n").first(where: { $0.hasPrefix("model name") })
        {
            machine["cpu"] = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return machine
    }

    /// The names of everything the benchmark creates, unique to one run.
    struct Names {
        let token: String
        var schema: String { "bench_\(token)" }
        var events: String { "bench.\(token).events" }
        var tasks: String { "bench.\(token).tasks" }
        var results: String { "bench.\(token).results" }
        var governance: String { "bench.\(token).governance" }
        var dead: String { "bench.\(token).dead" }
        var triggersQueue: String { "bench.\(token).triggers" }
        var resultsQueue: String { "bench.\(token).results" }
        var deadQueue: String { "bench.\(token).dead" }
        var echoQueue: String { "bench.\(token).worker.echo" }
        var holdQueue: String { "bench.\(token).worker.hold" }
        var breachQueue: String { "bench.\(token).worker.breach" }
        var governanceQueue: String { "bench.\(token).governance.listener" }
        var allQueues: [String] { [triggersQueue, resultsQueue, deadQueue, echoQueue, holdQueue, breachQueue, governanceQueue] }
        var allExchanges: [String] { [events, tasks, results, governance, dead] }

        func holdQueueDeclaration(kind: AMQPTopology.Queue.Kind) -> AMQPTopology.Queue { .init(holdQueue, kind: kind) }

        /// The benchmark's own queues: workers on `task.svc.bench-*`, a governance listener on runs and SLAs.
        func driverTopology(kind: AMQPTopology.Queue.Kind) -> AMQPTopology {
            AMQPTopology(
                exchanges: [tasks, governance].map { AMQPTopology.Exchange($0, kind: .topic) },
                queues: [echoQueue, holdQueue, breachQueue, governanceQueue].map { AMQPTopology.Queue($0, kind: kind) },
                bindings: [
                    .init(queue: echoQueue, exchange: tasks, routingKey: "task.svc.bench-echo"),
                    .init(queue: holdQueue, exchange: tasks, routingKey: "task.svc.bench-hold"),
                    .init(queue: breachQueue, exchange: tasks, routingKey: "task.svc.bench-breach"),
                    .init(queue: governanceQueue, exchange: governance, routingKey: "run.#"),
                    .init(queue: governanceQueue, exchange: governance, routingKey: "sla.#"),
                ])
        }
    }
}

extension BenchServer {
    func residentMegabytes() -> Double { Double(residentBytes() ?? 0) / 1_048_576 }
}

extension OrchestratorBenchmark.Report {
    /// The figures as a table, with the issue's targets beside them.
    var table: String {
        var lines = [
            "figure                                        value           target",
            String(format: "runs/s (5 steps, closed loop)            %10.0f", runsPerSecond),
            String(format: "step transitions/s                       %10.0f           ≥ 3,000", transitionsPerSecond),
            "CPU µs per transition: " + cpuMicrosecondsPerTransition.sorted { $0.value > $1.value }
                .map { String(format: "%@ %.0f", $0.key, $0.value) }.joined(separator: ", "),
            String(format: "broker ceiling, publish+consume msg/s    %10.0f           (%d-byte messages)", ceilingMessagesPerSecond, meanTaskBytes),
            String(format: "transitions/s ÷ (ceiling ÷ 2)            %10.2f", ratioToCeiling),
        ]
        for (level, note) in latency.map({ ($0, "") }) + latencyWithQueue.map({ ($0, ", \(settings.queuedRuns) queued") }) {
            let name = String(format: "at %.0f%% (%.0f runs/s)", level.fraction * 100, level.targetRunsPerSecond) + note
            lines.append("\(name.padding(toLength: 40, withPad: " ", startingAt: 0)) trigger→first dispatch \(level.triggerToFirstDispatch.line)")
            lines.append("\("".padding(toLength: 40, withPad: " ", startingAt: 0)) step turnaround         \(level.stepTurnaround.line)")
            lines.append("\("".padding(toLength: 40, withPad: " ", startingAt: 0)) run                    \(level.run.line)")
        }
        lines += [
            String(format: "SLA breach lag, p50 / p99 ms             %5.0f / %5.0f      p99 ≤ 1,000 (%d timers pending)",
                breachLag.p50, breachLag.p99, pendingTimers),
            String(format: "RSS idle / %d open runs / after, MB  %6.1f / %6.1f / %6.1f   < 150, no growth",
                settings.openRuns, rssIdleMB, rssOpenRunsMB, rssAfterMB),
            String(format: "RSS peak, burst of %d events of %d KiB, MB %6.1f           < the pod's limit (512 Mi)",
                settings.burstEvents, settings.burstBytes / 1_024, rssBurstPeakMB),
            "server exit status on SIGTERM: \(serverExitStatus)",
        ]
        return lines.joined(separator: "\n")
    }
}
