import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// Finding runs and open tasks against the real database: runs by what their trigger payload contains and
/// by when they were created; the inbox a page at a time, oldest first or by deadline (no deadline last),
/// every open task exactly once.
@Suite struct SearchTests {
    static let withSLA = """
        id: Search.v1
        trigger: search.requested
        steps:
          - id: review
            agent: human.reviewer
            sla: 4h
        """
    static let withoutSLA = """
        id: NoSLA.v1
        trigger: nosla.requested
        steps:
          - id: review
            agent: human.reviewer
        """

    @Test func runsAreFoundByPayloadAndTimeAndTheInboxPagesInEitherOrder() async throws {
        try await SystemHarness.run(playbooks: [Self.withSLA, Self.withoutSLA]) { _ in .ignore } _: { system in
            let store = system.store
            func running() async throws -> Int { try await store.gauges().runsByStatus["running"] ?? 0 }
            func waitFor(_ count: Int) async throws {
                for _ in 0..<600 where try await running() < count { try await Task.sleep(for: .milliseconds(50)) }
                #expect(try await running() == count)
            }
            for index in 0..<15 {
                try await system.emitWhenBound("search.requested", id: "s-\(index)",
                    payload: ["address": .string("\(index) Oak St"), "ward": .int(index % 3)])
            }
            try await waitFor(15)
            try await Task.sleep(for: .milliseconds(500))
            let between = Int64(Date().timeIntervalSince1970 * 1_000)
            try await Task.sleep(for: .milliseconds(500))
            for index in 15..<30 {
                try await system.emitWhenBound("search.requested", id: "s-\(index)",
                    payload: ["address": .string("\(index) Oak St"), "ward": .int(index % 3), "tags": ["noise", "night"]])
            }
            for index in 0..<5 { try await system.emitWhenBound("nosla.requested", id: "n-\(index)", payload: ["ward": 1]) }
            try await waitFor(35)

            func ids(_ filter: RunFilter) async throws -> Set<String> {
                var found: Set<String> = []
                var cursor: String?
                repeat {
                    let page = try await store.listRuns(filter, after: cursor, limit: 4)
                    found.formUnion(page.runs.map(\.runID))
                    cursor = page.nextCursor
                } while cursor != nil
                return found
            }
            func runs(_ prefix: String, _ indexes: some Sequence<Int>, playbook: String = "Search.v1") -> Set<String> {
                Set(indexes.map { System.runID(playbook: playbook, eventID: "\(prefix)-\($0)") })
            }
            #expect(try await ids(RunFilter(payload: ["address": "7 Oak St"])) == runs("s", [7]))
            #expect(try await ids(RunFilter(playbookID: "Search.v1", payload: ["ward": 1]))
                == runs("s", stride(from: 1, to: 30, by: 3)))
            #expect(try await ids(RunFilter(payload: ["ward": 1])).count == 15)  // NoSLA.v1's five too
            #expect(try await ids(RunFilter(payload: ["tags": ["night"]])) == runs("s", 15..<30))
            #expect(try await ids(RunFilter(payload: ["address": "nowhere"])).isEmpty)
            #expect(try await ids(RunFilter(playbookID: "Search.v1", createdBefore: between)) == runs("s", 0..<15))
            #expect(try await ids(RunFilter(playbookID: "Search.v1", payload: ["ward": 0], createdAfter: between))
                == runs("s", [15, 18, 21, 24, 27]))

            for order in Store.InboxOrder.allCases {
                var seen: [TaskRow] = []
                var cursor: String?
                repeat {
                    let page = try await store.openTaskPage(assignee: "human.reviewer", order: order, after: cursor, limit: 7)
                    seen += page.tasks
                    cursor = page.next
                } while cursor != nil
                #expect(seen.count == 35 && Set(seen.map(\.taskID)).count == 35, "\(order)")
                switch order {
                case .created:
                    #expect(seen.map(\.createdAt) == seen.map(\.createdAt).sorted())
                case .deadline:
                    let deadlines = seen.map { $0.deadline ?? .max }
                    #expect(deadlines == deadlines.sorted())
                    #expect(seen.suffix(5).allSatisfy { $0.deadline == nil } && seen.prefix(30).allSatisfy { $0.deadline != nil })
                }
            }
            await #expect(throws: StoreDataError.self) {
                _ = try await store.openTaskPage(assignee: nil, order: .deadline, after: "garbage", limit: 7)
            }
        }
    }
}
