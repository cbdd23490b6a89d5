import ActAMQP
import ActPostgres
import ActService
import Testing

/// The transport settings reach the connections, and ``ServiceConfiguration/checkTransportSecurity()`` refuses
/// what they forbid with the setting to change. Pure: no server needed (TransportSecurityTests runs `serve`'s
/// start against the stack).
@Suite struct TransportSettingsTests {
    static func configuration(_ variables: [String: String]) throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.amqp.url = "amqps://hms-act:secret@rabbitmq.internal/%2f?cacertfile=/url/ca.pem"
        configuration.postgres.url = "postgresql://hms:secret@db.internal/hms_act?sslmode=verify-full"
        try configuration.applyEnvironment(variables)
        try configuration.validate()
        return configuration
    }

    @Test func theTLSFilesOverrideTheURLsAndReachBothConnections() throws {
        let configuration = try Self.configuration([
            "HMS_AMQP_TLS_CA_FILE": "/etc/hms/ca.pem", "HMS_AMQP_TLS_CERT_FILE": "/etc/hms/c.pem",
            "HMS_AMQP_TLS_KEY_FILE": "/etc/hms/c.key", "HMS_POSTGRES_SSL_ROOT_CERT": "/etc/hms/pg-ca.pem",
            "HMS_AMQP_REQUIRE_TLS": "true", "HMS_POSTGRES_REQUIRE_TLS": "yes",
        ])
        try configuration.checkTransportSecurity()
        let amqp = try configuration.amqpConfiguration()
        #expect(amqp.port == 5671)
        #expect(amqp.tls?.caCertificateFile == "/etc/hms/ca.pem")
        #expect(amqp.tls?.clientCertificateFile == "/etc/hms/c.pem" && amqp.tls?.clientKeyFile == "/etc/hms/c.key")
        let postgres = try configuration.postgres.connectionConfiguration()
        #expect(postgres.tls == .verifyFull && postgres.rootCertificateFile == "/etc/hms/pg-ca.pem")
    }

    @Test(arguments: [
        (["HMS_AMQP_REQUIRE_TLS": "true", "AMQP_URL": "amqps://u:p@rabbitmq.internal/%2f?verify=verify_none"],
            "verify=verify_none"),
        (["HMS_AMQP_REQUIRE_TLS": "true", "AMQP_URL": "amqps://u:p@rabbitmq.internal/%2f?server_name_indication=disable"],
            "amqp.tls.ca_file"),
        (["HMS_AMQP_TLS_CERT_FILE": "/etc/hms/c.pem"], "amqp.tls.key_file"),
        (["HMS_POSTGRES_SSL_KEY": "/etc/hms/c.key"], "postgres.ssl_cert"),
        (["HMS_POSTGRES_REQUIRE_TLS": "true", "POSTGRES_URL": "postgresql://hms@db.internal/hms_act?sslmode=verify-ca"],
            "sslmode=verify-full"),
        (["AMQP_URL": "amqps://guest:guest@rabbitmq.internal/%2f"], "HMS_ACT_MODE=development"),
    ])
    func forbiddenTransportsAreRefusedNamingTheSetting(variables: [String: String], mentions: String) throws {
        let configuration = try Self.configuration(variables)
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.checkTransportSecurity() }
        #expect(error?.description.contains(mentions) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("secret") == false && error?.description.contains(":p@") == false)
    }

    @Test func aBooleanSettingRefusesAnythingButTrueOrFalse() {
        var configuration = ServiceConfiguration()
        let error = #expect(throws: ServiceConfiguration.SettingError.self) {
            try configuration.applyEnvironment(["HMS_POSTGRES_REQUIRE_TLS": "enabled"])
        }
        #expect(error?.description.contains("postgres.require_tls must be true or false") == true)
    }
}
