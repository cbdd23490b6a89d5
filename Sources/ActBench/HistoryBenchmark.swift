import ActAMQP
import ActEngine
import ActPlaybook
import ActPostgres
import ActStore
import Foundation
import Logging

/// Search and the inbox with a long history (issue 15's "under 100 ms with 1,000,000 runs"): `runs` runs
/// written through the store's own batch path into a throwaway schema (spread over a year, each with a
/// trigger payload, a business key and one task, `openFraction` of them still open with a deadline), then
/// the queries the API makes, each timed `queries` times through the same `Store` methods. With `serve`, it
/// then starts a real `hms-act serve` on that schema and times the console's runs page (`GET /ui/runs`,
/// signed in, rendered) over HTTP: issue 16's "under 200 ms with 1,000,000 runs".
struct HistoryBenchmark {
    struct Settings: Sendable {
        var runs: Int
        var openFraction: Double
        var queries: Int
        var batch: Int
        /// The `hms-act` executable, the broker and a free port for the console's pages; `nil`: store only.
        var serve: (binary: String, amqpURL: String, port: Int)? = nil
    }

    struct Row: Codable, Sendable {
        var query: String
        var latency: LatencySummary
    }

    struct Report: Codable, Sendable {
        var runs: Int
        var openTasks: Int
        var loadSeconds: Double
        var rows: [Row]

        var table: String {
            var lines = [String(format: "%d runs (%d open tasks), loaded through the store's batch path in %.0f s",
                runs, openTasks, loadSeconds)]
            for row in rows {
                lines.append(row.query.padding(toLength: 58, withPad: " ", startingAt: 0) + row.latency.line)
            }
            return lines.joined(separator: "\n")
        }
    }

    let settings: Settings
    let postgresURL: String
    let logger: Logger

    static let wards = 50
    static let assignees = 10
    static let year: Int64 = 365 * 86_400_000

    func run(progress: (String) -> Void) async throws -> Report {
        let schema = "bench_history_" + UUID().uuidString.lowercased().prefix(8)
        var configuration = try PostgresConfiguration(url: postgresURL)
        configuration.searchPath = schema
        configuration.statementTimeout = .zero
        let client = PostgresClient(configuration: .init(connection: configuration, maxConnections: 2), logger: logger)
        let store = Store(client: client, schema: schema, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            defer { group.cancelAll() }
            do {
                _ = try await store.migrate()
                var report = try await measure(store, progress: progress)
                if let serve = settings.serve {
                    report.rows += try await measureConsole(schema: schema, serve: serve, progress: progress)
                }
                try? await store.dropSchema()
                return report
            } catch {
                try? await store.dropSchema()
                throw error
            }
        }
    }

    private func measure(_ store: Store, progress: (String) -> Void) async throws -> Report {
        // A real model, so that a server reading the catalog (the console's pages) can load it.
        let source = "id: History.v1\ntrigger: history.requested\nsteps:\n  - id: review\n    agent: human.desk0\n    sla: 4h\n"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let model = try encoder.encode(try PlaybookLoader.load(yaml: source, file: nil).playbook)
        let version = try await store.registerPlaybook(id: "History.v1", checksum: "bench", source: source,
            model: Array(model), triggers: ["history.requested"]).version
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        let start = now - Self.year
        let spacing = max(1, Self.year / Int64(max(1, settings.runs)))
        let openEvery = max(1, Int((1 / max(0.0001, settings.openFraction)).rounded()))
        let loadStarted = benchNanoseconds()
        var openTasks = 0
        var written = 0
        while written < settings.runs {
            var batch = StoreBatch()
            for index in written..<min(settings.runs, written + settings.batch) {
                let created = start + Int64(index) * spacing
                let open = index % openEvery == 0
                let runID = "wf_history_\(index)"
                let payload: JSONValue = [
                    "case": .string("C-\(index)"), "ward": .int(Int64(index % Self.wards)),
                    "address": .string("\(index % 9_973) Oak St"),
                ]
                batch.runs.append(RunRow(runID: runID, playbookID: "History.v1", versionID: version.versionID,
                    status: open ? "running" : "completed", state: Array((["payload": payload] as JSONValue).canonicalEncoding),
                    traceID: String(format: "%032x", index), triggerEventID: "e-\(index)", triggerType: "history.requested",
                    auditSequence: 0, auditHead: [], createdAt: created, updatedAt: created,
                    finishedAt: open ? nil : created + 60_000, businessKey: "K-\(index)"))
                batch.runPayloads.append((runID, created, payload))
                if open { openTasks += 1 }
                batch.dispatchedTasks.append(TaskRow(taskID: "\(runID)/review/1", attempt: 1, runID: runID,
                    stepID: "review", assignee: "human.desk\(index % Self.assignees)", agentID: nil,
                    target: "task.human.desk", status: open ? .dispatched : .completed,
                    deadline: open && index % 7 != 0 ? created + 3_600_000 * Int64(4 + index % 100) : nil, warnAt: nil,
                    isCompensation: false, output: nil, error: nil, createdAt: created, updatedAt: created))
            }
            try await store.withTransaction { try await $0.write(batch) }
            written += batch.runs.count
            if written % (settings.batch * 40) == 0 || written == settings.runs {
                progress("wrote \(written) of \(settings.runs) runs")
            }
        }
        try await store.analyze()
        let loadSeconds = Double(benchNanoseconds() - loadStarted) / 1e9

        var rng = SystemRandomNumberGenerator()
        func timed(_ name: String, _ body: () async throws -> Void) async throws -> Row {
            var samples: [UInt64] = []
            for _ in 0..<settings.queries {
                let began = benchNanoseconds()
                try await body()
                samples.append(benchNanoseconds() - began)
            }
            progress("timed \(name)")
            return Row(query: name, latency: LatencySummary(nanoseconds: samples))
        }
        let runs = settings.runs
        var rows: [Row] = []
        rows.append(try await timed("runs, newest 50") {
            _ = try await store.listRuns(RunFilter(), after: nil, limit: 50)
        })
        rows.append(try await timed("runs, running, newest 50") {
            _ = try await store.listRuns(RunFilter(status: "running"), after: nil, limit: 50)
        })
        // The console's runs page (/ui/runs): the newest 50 and the SLA light of each (its other work is in memory).
        rows.append(try await timed("console runs page: newest 50 with their SLA lights") {
            let page = try await store.listRuns(RunFilter(), after: nil, limit: 50)
            _ = try await store.runLights(runIDs: page.runs.map(\.runID))
        })
        rows.append(try await timed("console runs page: running, newest 50 with their SLA lights") {
            let page = try await store.listRuns(RunFilter(status: "running"), after: nil, limit: 50)
            _ = try await store.runLights(runIDs: page.runs.map(\.runID))
        })
        rows.append(try await timed("runs by payload, one case (1 match)") {
            let index = Int.random(in: 0..<runs, using: &rng)
            let page = try await store.listRuns(RunFilter(payload: ["case": .string("C-\(index)")]), after: nil, limit: 50)
            guard page.runs.count == 1 else { throw BenchError("payload search found \(page.runs.count) runs for C-\(index)") }
        })
        rows.append(try await timed("runs by payload, one ward (\(runs / Self.wards) match), newest 50") {
            let ward = Int.random(in: 0..<Self.wards, using: &rng)
            _ = try await store.listRuns(RunFilter(payload: ["ward": .int(Int64(ward))]), after: nil, limit: 50)
        })
        rows.append(try await timed("runs by business key") {
            let index = Int.random(in: 0..<runs, using: &rng)
            _ = try await store.listRuns(RunFilter(key: "K-\(index)"), after: nil, limit: 50)
        })
        rows.append(try await timed("runs created in one day, newest 50") {
            let day = Int64.random(in: 0..<364, using: &rng)
            let from = now - Self.year + day * 86_400_000
            _ = try await store.listRuns(RunFilter(createdAfter: from, createdBefore: from + 86_400_000), after: nil,
                limit: 50)
        })
        for order in Store.InboxOrder.allCases {
            rows.append(try await timed("inbox by \(order.rawValue), first 50") {
                _ = try await store.openTaskPage(assignee: nil, order: order, after: nil, limit: 50)
            })
            rows.append(try await timed("inbox of one desk by \(order.rawValue), first 50") {
                let desk = Int.random(in: 0..<Self.assignees, using: &rng)
                _ = try await store.openTaskPage(assignee: "human.desk\(desk)", order: order, after: nil, limit: 50)
            })
        }
        // Deep pages: the 20th page of the inbox by deadline, reached with its cursor.
        var cursor: String?
        for _ in 0..<19 { cursor = try await store.openTaskPage(assignee: nil, order: .deadline, after: cursor, limit: 50).next }
        let deep = cursor
        rows.append(try await timed("inbox by deadline, 20th page (cursor)") {
            _ = try await store.openTaskPage(assignee: nil, order: .deadline, after: deep, limit: 50)
        })
        return Report(runs: runs, openTasks: openTasks, loadSeconds: loadSeconds, rows: rows)
    }

    /// Starts `hms-act serve` on the history's schema (its own exchanges and queues, removed afterwards), signs
    /// in to the console and times `GET /ui/runs` and `GET /ui/runs?status=running` over HTTP.
    private func measureConsole(schema: String, serve: (binary: String, amqpURL: String, port: Int),
        progress: (String) -> Void) async throws -> [Row]
    {
        let names = OrchestratorBenchmark.Names(token: String(schema.dropFirst("bench_history_".count)))
        let secret = "history-\(UUID().uuidString)"
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("hms-act-history-serve.log").path
        progress("starting \(serve.binary) serve on the history (log \(logPath))")
        let server = try await BenchServer(binary: serve.binary, environment: [
            "AMQP_URL": serve.amqpURL, "POSTGRES_URL": postgresURL, "HMS_POSTGRES_SCHEMA": schema,
            "HMS_EXCHANGE_EVENTS": names.events, "HMS_EXCHANGE_TASKS": names.tasks, "HMS_EXCHANGE_RESULTS": names.results,
            "HMS_EXCHANGE_GOVERNANCE": names.governance, "HMS_EXCHANGE_DEAD": names.dead,
            "HMS_QUEUE_TRIGGERS": names.triggersQueue, "HMS_QUEUE_RESULTS": names.resultsQueue,
            "HMS_QUEUE_DEAD": names.deadQueue, "HMS_HTTP_HOST": "127.0.0.1", "HMS_HTTP_PORT": String(serve.port),
            "HMS_API_TOKENS": "bench:\(secret):read",
        ], port: serve.port, logPath: logPath)
        do {
            let rows = try await timePages(port: serve.port, secret: secret, server: server, progress: progress)
            server.stop()
            try await removeTopology(names, amqpURL: serve.amqpURL)
            return rows
        } catch {
            server.stop()
            try? await removeTopology(names, amqpURL: serve.amqpURL)
            throw error
        }
    }

    private func timePages(port: Int, secret: String, server: BenchServer, progress: (String) -> Void) async throws
        -> [Row]
    {
        let signIn = try BenchHTTP.exchange(port: port, "POST /ui/login HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(6 + secret.utf8.count)\r\n\r\ntoken=\(secret)")
        guard signIn.status == 303, let cookie = signIn.header("Set-Cookie")?.split(separator: ";").first else {
            throw BenchError("signing in to the console answered \(signIn.status); the server's log ends:\n\(server.logTail())")
        }
        var rows: [Row] = []
        for (name, path) in [("console GET /ui/runs (HTTP, rendered, 50 runs)", "/ui/runs"),
            ("console GET /ui/runs?status=running (HTTP, rendered)", "/ui/runs?status=running")]
        {
            var samples: [UInt64] = []
            for _ in 0..<settings.queries {
                let began = benchNanoseconds()
                let page = try BenchHTTP.exchange(port: port,
                    "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: \(cookie)\r\n\r\n")
                samples.append(benchNanoseconds() - began)
                guard page.status == 200, page.body.count > 1_000 else {
                    throw BenchError("GET \(path) answered \(page.status) with \(page.body.count) bytes")
                }
            }
            progress("timed \(name)")
            rows.append(Row(query: name, latency: LatencySummary(nanoseconds: samples)))
        }
        return rows
    }

    /// Deletes the server's exchanges and queues (its schema is dropped with the history's).
    private func removeTopology(_ names: OrchestratorBenchmark.Names, amqpURL: String) async throws {
        let client = AMQPClient(configuration: try AMQPConfiguration(url: amqpURL), topology: AMQPTopology(), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            defer { group.cancelAll() }
            try await client.withConnection { connection in
                for queue in [names.triggersQueue, names.resultsQueue, names.deadQueue] {
                    _ = try? await connection.deleteQueue(queue)
                }
                for exchange in names.allExchanges { try? await connection.deleteExchange(exchange) }
            }
        }
    }
}
