import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// `hms-act serve` refuses to start on a transport its settings forbid, before it opens any connection:
/// plaintext when TLS is required, and RabbitMQ's default `guest:guest` in production. With TLS required
/// and the stack's CA, a whole run goes through over TLS to both servers.
@Suite struct TransportSecurityTests {
    static let environment = ProcessInfo.processInfo.environment
    static var tlsVariablesPresent: Bool {
        environment["HMS_TLS_CA_FILE"] != nil && environment["AMQPS_URL"] != nil && environment["POSTGRES_TLS_URL"] != nil
    }
    static let missing = "HMS_TLS_CA_FILE, AMQPS_URL or POSTGRES_TLS_URL is not set: run the tests after eval \"$(scripts/stack up)\""

    /// The stack's plaintext servers, with settings applied from `variables` as `hms-act serve` applies its
    /// environment, in a schema of its own.
    static func configuration(_ variables: [String: String]) throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.amqp.url = TestEnvironment.amqpURL
        configuration.postgres.url = TestEnvironment.postgresURL
        configuration.postgres.schema = TestEnvironment.uniqueSchema("tls")
        configuration.audit.signingKeyText = AuditSigningKey.generate().base64
        try configuration.applyEnvironment(variables)
        return configuration
    }

    /// What `ServiceRuntime.make` threw, or nil when it started (its schema is dropped then).
    static func startError(_ configuration: ServiceConfiguration) async throws -> (any Error)? {
        do {
            _ = try await ServiceRuntime.make(configuration: configuration, agents: [], registerPlaybooksFrom: nil,
                logger: TestEnvironment.logger("test.transport"))
        } catch {
            return error
        }
        try? await TestDatabase.drop(configuration.postgres.schema)
        return nil
    }

    @Test func aPlaintextBrokerURLIsRefusedAtStartWhenTLSIsRequired() async throws {
        let configuration = try Self.configuration(["HMS_AMQP_REQUIRE_TLS": "true"])
        let error = try #require(await Self.startError(configuration), "serve started on amqp:// with TLS required")
        let message = "\(error)"
        #expect(message.contains("amqp.require_tls") && message.contains("amqps://"), "\(message)")
        #expect(!message.contains("hms-local"), "the message must not carry the password")
    }

    @Test func aPostgresURLThatDoesNotVerifyTheServerIsRefusedAtStartWhenTLSIsRequired() async throws {
        let configuration = try Self.configuration(["HMS_POSTGRES_REQUIRE_TLS": "true"])
        let error = try #require(await Self.startError(configuration), "serve started with sslmode=prefer and TLS required")
        let message = "\(error)"
        #expect(message.contains("postgres.require_tls") && message.contains("verify-full"), "\(message)")
    }

    @Test func productionRefusesTheDefaultGuestCredentials() async throws {
        var configuration = try Self.configuration([:])
        configuration.amqp.url = ServiceConfiguration().amqp.url
        let error = try #require(await Self.startError(configuration), "serve started in production as guest:guest")
        let message = "\(error)"
        #expect(message.contains("guest") && message.contains("AMQP_URL"), "\(message)")
    }

    @Test func developmentModeAcceptsTheDefaultGuestCredentialsAtStart() async throws {
        var configuration = try Self.configuration(["HMS_ACT_MODE": "development"])
        configuration.amqp.url = ServiceConfiguration().amqp.url
        // Nothing talks to the broker until the services run, so the guest URL is never used here.
        #expect(try await Self.startError(configuration) == nil)
    }

    @Test(.enabled(if: tlsVariablesPresent, Comment(rawValue: missing)))
    func aRunCompletesWithTLSRequiredOverVerifiedConnectionsToBothServers() async throws {
        try await SystemHarness.run(playbooks: [ChapterStoriesTests.noise], configure: { configuration in
            configuration.amqp.url = Self.environment["AMQPS_URL"] ?? ""
            configuration.postgres.url = Self.environment["POSTGRES_TLS_URL"] ?? ""
            try? configuration.applyEnvironment(["HMS_AMQP_REQUIRE_TLS": "true", "HMS_POSTGRES_REQUIRE_TLS": "true"])
        }) { _ in .complete(["ok": true]) } _: { system in
            #expect(system.configuration.amqp.requireTLS && system.configuration.postgres.requireTLS)
            try await system.emit("noise.complaint.filed", id: "over-tls")
            let run = System.runID(playbook: "NoiseComplaint.v1", eventID: "over-tls")
            #expect(try await system.waitForEnd(of: run) == "run.completed")
        }
    }

    /// The CLI's broker commands (`emit`, `worker`, `dead`, `audit export-checkpoints`) take the CA from
    /// `amqp.tls.ca_file` as `serve` does, not only from the URL's `cacertfile`: without it the broker's
    /// certificate does not verify, with it the event reaches the exchange.
    @Test(.enabled(if: tlsVariablesPresent, Comment(rawValue: missing)))
    func theCLIVerifiesTheBrokerWithTheConfiguredCA() async throws {
        let url = try #require(Self.environment["AMQPS_URL"]?.split(separator: "?").first.map(String.init))
        let type = "tls.check.\(UUID().uuidString.lowercased().prefix(8))"
        func emit(caFile: String?) async throws -> CLIProcess.Finished {
            try await CLIProcess.run(["emit", type, "--amqp-url", url], environment: [
                "AMQP_URL": nil, "HMS_AMQP_TLS_CA_FILE": caFile, "HMS_AMQP_TLS_CERT_FILE": nil, "HMS_AMQP_TLS_KEY_FILE": nil,
            ], timeout: .seconds(60))
        }
        let unverified = try await emit(caFile: nil)
        #expect(unverified.status != 0 && unverified.output.contains("cannot connect to RabbitMQ"), "\(unverified.output)")
        // Connected, logged in and published: the broker returns the event because nothing is bound to its type.
        let verified = try await emit(caFile: Self.environment["HMS_TLS_CA_FILE"])
        #expect(verified.output.contains("no queue is bound to \(type)"), "\(verified.output)")
    }

    /// `amqp.require_tls` and `postgres.require_tls` hold for the CLI as for `serve`: a plaintext URL is refused
    /// before any connection (so its password never crosses the network), with the setting to change.
    @Test func theCLIRefusesPlaintextWhenTLSIsRequired() async throws {
        let emit = try await CLIProcess.run(["emit", "tls.required.check", "--amqp-url", TestEnvironment.amqpURL],
            environment: ["HMS_AMQP_REQUIRE_TLS": "true"], timeout: .seconds(60))
        #expect(emit.status != 0 && emit.output.contains("amqp.require_tls is on but amqp.url (amqp://"), "\(emit.output)")
        #expect(!emit.output.contains("cannot connect"), "refused before connecting")

        let migrate = try await CLIProcess.run(["migrate", "--postgres-url", TestEnvironment.postgresURL],
            environment: ["HMS_POSTGRES_REQUIRE_TLS": "true"], timeout: .seconds(60))
        #expect(migrate.status != 0 && migrate.output.contains("postgres.require_tls is on but postgres.url"),
            "\(migrate.output)")
        let verify = try await CLIProcess.run(["audit", "verify", "--public-key",
            AuditSigningKey.generate().publicKey.base64], environment: [
            "HMS_POSTGRES_REQUIRE_TLS": "true", "POSTGRES_URL": TestEnvironment.postgresURL,
        ], timeout: .seconds(60))
        #expect(verify.status != 0 && verify.output.contains("postgres.require_tls is on but postgres.url"),
            "\(verify.output)")
    }
}
