import ActPostgres
import Testing

/// What a logged PostgresError says: enough to act on, and never a value.
struct PostgresErrorTests {
    @Test func aWellKnownSQLStateIsNamedAndTheServerMessageStaysOut() {
        let error = PostgresError(code: .server, sqlState: "53100",
            serverMessage: "could not extend file \"pg_tblspc/16384/…\": No space left on device")
        #expect(error.description.contains("sqlState: 53100 (disk_full)"))
        #expect(!error.description.contains("No space left"))
        #expect(String(reflecting: error).contains("No space left on device"))
        #expect(PostgresError(code: .server, sqlState: "XX000").description.contains("sqlState: XX000,"))
    }
}
