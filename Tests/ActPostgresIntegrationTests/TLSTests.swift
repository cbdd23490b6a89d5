import ActPostgres
import Foundation
import Testing

/// The stack's CA files (`scripts/stack env`: `HMS_TLS_CA_FILE`, `HMS_TLS_UNTRUSTED_CA_FILE`); nil when the
/// tests run in a shell without them. `scripts/test` always sets them, so CI never skips these tests.
enum StackTLS {
    static var caFile: String? { ProcessInfo.processInfo.environment["HMS_TLS_CA_FILE"] }
    static var untrustedCAFile: String? { ProcessInfo.processInfo.environment["HMS_TLS_UNTRUSTED_CA_FILE"] }
    static let missing = "HMS_TLS_CA_FILE is not set: run the tests after eval \"$(scripts/stack up)\" (the stack makes a CA)"

    /// The stack's server under the name its certificate carries (`localhost`), verifying with `caFile`.
    static func configuration(caFile: String?, host: String = "localhost", hostAddress: String? = nil)
        -> PostgresConfiguration
    {
        var configuration = TestDatabase.configuration
        configuration.host = host
        configuration.hostAddress = hostAddress
        configuration.tls = .verifyFull
        configuration.rootCertificateFile = caFile
        return configuration
    }
}

extension ActPostgresIntegration {
    /// Connections to PostgreSQL over TLS are verified: the server must present a certificate of the named CA
    /// that names the host, or no connection (and no password) goes out.
    @Suite("TLS", .enabled(if: StackTLS.caFile != nil, Comment(rawValue: StackTLS.missing)))
    struct TLSTests {
        @Test func verifyFullWithTheStacksCAConnectsOverTLS() async throws {
            let configuration = StackTLS.configuration(caFile: StackTLS.caFile)
            let connection = try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
            let rows = try await connection.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            await connection.close()
            let row = try #require(rows.first)
            #expect(try row.decode(Bool.self, column: 0) == true)
            #expect(try row.decode(String.self, column: 1).hasPrefix("TLSv1."))
        }

        @Test func aServerCertificateFromAnotherCAIsRefusedSayingWhichFileToFix() async throws {
            let untrusted = try #require(StackTLS.untrustedCAFile)
            let configuration = StackTLS.configuration(caFile: untrusted)
            let error = await #expect(throws: PostgresError.self) {
                _ = try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
            }
            #expect(error?.code == .connectionFailed)
            let reason = error?.reason ?? ""
            #expect(reason.contains("certificate verify failed"), "\(reason)")
            #expect(reason.contains(untrusted) && reason.contains("sslrootcert"), "\(reason)")
        }

        @Test func aCertificateThatDoesNotNameTheHostIsRefused() async throws {
            // The right server and CA, reached under a name its certificate does not carry: what a man in the
            // middle holding any certificate of the same CA would look like.
            let configuration = StackTLS.configuration(
                caFile: StackTLS.caFile, host: "db.example.invalid", hostAddress: "127.0.0.1")
            let error = await #expect(throws: PostgresError.self) {
                _ = try await PostgresConnection.connect(configuration: configuration, logger: TestDatabase.logger)
            }
            let reason = error?.reason ?? ""
            #expect(reason.contains("does not match host name"), "\(reason)")
            #expect(reason.contains("subjectAltName"), "\(reason)")
        }

        @Test func theStacksTLSURLParsesIntoVerifyFullWithItsCA() throws {
            let url = try #require(ProcessInfo.processInfo.environment["POSTGRES_TLS_URL"])
            let configuration = try PostgresConfiguration(url: url)
            #expect(configuration.tls == .verifyFull)
            #expect(configuration.rootCertificateFile == StackTLS.caFile)
            #expect(configuration.libpqParameters.contains { $0.key == "sslrootcert" && $0.value == StackTLS.caFile })
        }
    }
}
