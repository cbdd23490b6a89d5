import ActPostgres
import ActStore
import ActTesting
import Testing

/// The store methods the benchmark loads and clears its schema with (`Store+Bench.swift`).
@Suite struct StoreBenchIntegrationTests {
    @Test func copiesOfARunAreWholeRowsWithTheirTimersDueAnHourLater() async throws {
        try await TestDatabase.withStore { store in
            let run = try await StoreIntegrationTests.seedRun(store)
            var batch = StoreBatch()
            batch.scheduledTimers = (1...2).map {
                TimerRow(timerID: "\(run.runID)/s\($0)/sla-breach", runID: run.runID, kind: "sla_breach",
                    dueAt: StoreIntegrationTests.now)
            }
            try await store.withTransaction { try await $0.write(batch) }

            let template = try #require(try await store.runWithTimers(playbookID: "Test.v1"))
            #expect(template.runID == run.runID)
            #expect(template.timers == 2)
            #expect(try await store.runWithTimers(playbookID: "Other.v1") == nil)

            try await store.copyRunWithTimers(run.runID, copies: 3, idPrefix: "bench_copy_")
            #expect(try await store.pendingTimerCount() == 2 + 3 * 2)
            let copy = try #require(try await store.run(id: "bench_copy_2"))
            #expect(copy.playbookID == run.playbookID)
            #expect(copy.state == run.state)
            #expect(copy.triggerEventID == "bench_copy_2")
            // The copies' timers stay pending behind the originals: due an hour (plus n ms) later.
            #expect(try await store.nextTimerDue() == StoreIntegrationTests.now)
        }
    }

    @Test func droppingTheSchemaRemovesEveryTable() async throws {
        try await TestDatabase.withStore { store in
            try await store.dropSchema()
            await #expect(throws: PostgresError.self) { try await store.pendingTimerCount() }
        }
    }

    @Test func aSchemaNameThatIsNotAnIdentifierIsRefusedBeforeAnySQL() async throws {
        let client = PostgresClient(configuration: .init(connection: TestEnvironment.postgres, maxConnections: 1),
            logger: TestEnvironment.logger("test.postgres"))
        let store = Store(client: client, schema: "bench-run", logger: TestEnvironment.logger("test.store"))
        await #expect(throws: (any Error).self) { try await store.dropSchema() }
    }
}
