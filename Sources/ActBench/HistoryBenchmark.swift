import ActEngine
import ActPlaybook
import ActPostgres
import ActStore
import Foundation
import Logging

/// Search and the inbox with a long history (issue 15's "under 100 ms with 1,000,000 runs"): `runs` runs
/// written through the store's own batch path into a throwaway schema (spread over a year, each with a
/// trigger payload, a business key and one task, `openFraction` of them still open with a deadline), then
/// the queries the API makes, each timed `queries` times through the same `Store` methods.
struct HistoryBenchmark {
    struct Settings: Sendable {
        var runs: Int
        var openFraction: Double
        var queries: Int
        var batch: Int
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
                let report = try await measure(store, progress: progress)
                try? await store.dropSchema()
                return report
            } catch {
                try? await store.dropSchema()
                throw error
            }
        }
    }

    private func measure(_ store: Store, progress: (String) -> Void) async throws -> Report {
        let version = try await store.registerPlaybook(id: "History.v1", checksum: "bench", source: "id: History.v1",
            model: Array("{}".utf8), triggers: ["history.requested"]).version
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
}
