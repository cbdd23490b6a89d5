import ActPostgres
import Testing

/// The TLS parameters of a PostgreSQL URL reach libpq unchanged. Pure: no server needed.
@Suite struct TLSSettingsTests {
    static func parameters(_ configuration: PostgresConfiguration) -> [String: String] {
        Dictionary(configuration.libpqParameters.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func sslParametersOfTheURLReachLibpq() throws {
        let configuration = try PostgresConfiguration(
            url: "postgresql://hms@db.internal:5432/hms_act?sslmode=verify-full&sslrootcert=/etc/ca.pem"
                + "&sslcert=/etc/client.pem&sslkey=/etc/client.key&hostaddr=10.0.0.7")
        #expect(configuration.tls == .verifyFull)
        let parameters = Self.parameters(configuration)
        #expect(parameters["sslmode"] == "verify-full")
        #expect(parameters["sslrootcert"] == "/etc/ca.pem")
        #expect(parameters["sslcert"] == "/etc/client.pem")
        #expect(parameters["sslkey"] == "/etc/client.key")
        #expect(parameters["hostaddr"] == "10.0.0.7")
        #expect(parameters["host"] == "db.internal")
    }

    @Test(arguments: [
        ("disable", false), ("allow", false), ("prefer", false), ("require", false), ("verify-ca", true),
        ("verify-full", true),
    ])
    func everyLibpqModeParses(mode: String, verifies: Bool) throws {
        let configuration = try PostgresConfiguration(url: "postgresql://hms@127.0.0.1/hms_act?sslmode=\(mode)")
        #expect(configuration.tls.verifiesCertificate == verifies)
    }

    @Test func anUnknownModeIsRefusedListingTheModes() {
        let error = #expect(throws: PostgresError.self) {
            _ = try PostgresConfiguration(url: "postgresql://hms@127.0.0.1/hms_act?sslmode=verify")
        }
        #expect(error?.reason?.contains("verify-ca or verify-full") == true)
    }

    @Test func withoutACAFileNoSSLRootCertIsSent() throws {
        let configuration = try PostgresConfiguration(url: "postgresql://hms@127.0.0.1/hms_act")
        #expect(configuration.tls == .prefer)
        #expect(Self.parameters(configuration)["sslrootcert"] == nil)
    }
}
