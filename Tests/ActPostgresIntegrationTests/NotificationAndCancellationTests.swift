import ActPostgres
import Foundation
import Testing

extension ActPostgresIntegration {
    @Suite("LISTEN/NOTIFY, cancellation and errors")
    struct NotificationAndCancellationTests {
        @Test func notifyWakesAListener() async throws {
            let channel = "act_pg_test \"channel\""
            let listener = try await TestDatabase.connect()
            let sender = try await TestDatabase.connect()
            try await listener.listen(channel)
            let received = try await withThrowingTaskGroup(of: [PostgresNotification].self) { group in
                group.addTask {
                    var seen: [PostgresNotification] = []
                    for try await notification in listener.notifications {
                        seen.append(notification)
                        if seen.count == 2 { break }
                    }
                    return seen
                }
                // While the listener waits on its socket, the same connection still serves statements.
                let echoed = try await listener.query("SELECT 41 + 1").first?.decode(Int.self, column: 0)
                #expect(echoed == 42)
                try await sender.notify(channel, payload: "first ✉️")
                try await sender.withTransaction { connection in
                    try await connection.notify(channel, payload: "second, on commit")
                }
                return try await group.next() ?? []
            }
            #expect(received.map(\.channel) == [channel, channel])
            #expect(received.map(\.payload) == ["first ✉️", "second, on commit"])
            #expect(received.first?.senderProcessID == (await sender.backendProcessID))
            await listener.close()
            await sender.close()
        }

        @Test func listeningEndsWhenTheTaskIsCancelled() async throws {
            let listener = try await TestDatabase.connect()
            try await listener.listen("act_pg_test_quiet")
            let clock = ContinuousClock()
            let start = clock.now
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in listener.notifications {}
                }
                group.cancelAll()
            }
            #expect(clock.now - start < .seconds(3))
            #expect(await listener.isUsable)
            await listener.close()
        }

        @Test func cancellingALongQueryReturnsPromptly() async throws {
            let connection = try await TestDatabase.connect()
            let observer = try await TestDatabase.connect()
            let pid = await connection.backendProcessID
            let clock = ContinuousClock()
            let start = clock.now
            let outcome = await withTaskGroup(of: PostgresError?.self) { group in
                group.addTask {
                    do throws(PostgresError) {
                        try await connection.query("SELECT pg_sleep(30)")
                        return nil
                    } catch {
                        return error
                    }
                }
                // Wait until the server runs the statement (polling the server's own view, no guessing).
                while true {
                    let active = try? await observer.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                        [PostgresBind(pid)]
                    ).first?.decode(Int.self, column: 0)
                    if active == 1 { break }
                }
                group.cancelAll()
                return await group.next() ?? nil
            }
            #expect(clock.now - start < .seconds(10))
            #expect(outcome?.code == .cancelled)
            #expect(outcome?.sqlState == "57014")
            // The connection survives a cancelled statement.
            #expect(try await connection.query("SELECT 1").first?.decode(Int.self, column: 0) == 1)
            await connection.close()
            await observer.close()
        }

        @Test func aCancelledTaskSendsNothing() async throws {
            let connection = try await TestDatabase.connect()
            let error = await withTaskGroup(of: PostgresError?.self) { group in
                group.cancelAll()
                group.addTask {
                    do throws(PostgresError) {
                        try await connection.query("SELECT 1")
                        return nil
                    } catch {
                        return error
                    }
                }
                return await group.next() ?? nil
            }
            #expect(error?.code == .cancelled)
            #expect(await connection.isUsable)
            await connection.close()
        }

        @Test func errorDescriptionsAreRedacted() async throws {
            var configuration = TestDatabase.configuration
            configuration.password = "wrong-Pa55word-xyzzy"
            let connectError = await #expect(throws: PostgresError.self) {
                _ = try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
            }
            #expect(connectError?.code == .connectionFailed)
            #expect(connectError?.isConnectionError == true)
            #expect(connectError?.description.contains("xyzzy") == false)
            #expect(connectError.map { String(reflecting: $0) }?.contains("xyzzy") == false)
            #expect(!configuration.description.contains("xyzzy"))

            try await TestDatabase.withConnection { connection in
                let secret = "secret-parameter-value-4711"
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT $1::int4", [PostgresBind(secret)])
                }
                #expect(error?.code == .server)
                #expect(error?.sqlState == "22P02")
                #expect(error?.description.contains(secret) == false)
                #expect(error?.description.contains("22P02") == true)
                // The full text, for debugging, has the server's message (which quotes the value).
                #expect(error.map { String(reflecting: $0) }?.contains(secret) == true)

                try await connection.query("CREATE TEMP TABLE accounts (email text PRIMARY KEY)")
                try await connection.execute("INSERT INTO accounts VALUES ($1)", ["someone@example.org"])
                let duplicate = await #expect(throws: PostgresError.self) {
                    try await connection.execute("INSERT INTO accounts VALUES ($1)", ["someone@example.org"])
                }
                #expect(duplicate?.isUniqueViolation == true)
                #expect(duplicate?.description.contains("someone@example.org") == false)
                #expect(duplicate?.description.contains("accounts_pkey") == true)
            }
        }

        @Test func urlsParseWithPercentDecoding() throws {
            let configuration = try PostgresConfiguration(
                url: "postgresql://hms%40ops:p%3Ass%2Fw%C3%B6rd@db.internal:6543/hms%20act?sslmode=require&application_name=act"
            )
            #expect(configuration.user == "hms@ops")
            #expect(configuration.password == "p:ss/wörd")
            #expect(configuration.host == "db.internal")
            #expect(configuration.port == 6543)
            #expect(configuration.database == "hms act")
            #expect(configuration.tls == .require)
            #expect(configuration.applicationName == "act")

            let ipv6 = try PostgresConfiguration(url: "postgres://u@[::1]/d")
            #expect(ipv6.host == "::1")
            #expect(ipv6.port == 5432)
            #expect(ipv6.password == nil)

            for bad in ["mysql://u@h/d", "postgres://u:pw@h:99999/d", "postgres://u:p%zz@h/d", "postgres://h/d"] {
                let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: bad) }
                #expect(error?.code == .invalidURL)
                #expect(error?.description.contains("pw") == false)
            }
        }
    }
}
