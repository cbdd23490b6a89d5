import ActAMQP
import Foundation
import Testing

/// The stack's TLS listener (`scripts/stack env`: `AMQPS_URL`, `HMS_TLS_CA_FILE`, `HMS_TLS_UNTRUSTED_CA_FILE`);
/// nil when the tests run in a shell without them. `scripts/test` always sets them, so CI never skips.
enum StackTLS {
    static let environment = ProcessInfo.processInfo.environment
    static var url: String? { environment["AMQPS_URL"] }
    static var caFile: String? { environment["HMS_TLS_CA_FILE"] }
    static var untrustedCAFile: String? { environment["HMS_TLS_UNTRUSTED_CA_FILE"] }
    static var available: Bool { url != nil && caFile != nil && untrustedCAFile != nil }
    static let missing = "AMQPS_URL or HMS_TLS_CA_FILE is not set: run the tests after eval \"$(scripts/stack up)\""

    static func configuration(caFile: String?, host: String? = nil) throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: try #require(url))
        configuration.tls?.caCertificateFile = caFile
        if let host { configuration.host = host }
        configuration.connectTimeout = .seconds(5)
        configuration.connectionName = "hms-act-tests (TLS)"
        return configuration
    }

    /// The error of a connection attempt that must fail.
    static func refusal(_ configuration: AMQPConfiguration) async -> AMQPError? {
        do {
            let connection = try await AMQPConnection.connect(configuration: configuration, logger: testLogger)
            await connection.close()
            return nil
        } catch {
            return error as? AMQPError
        }
    }
}

/// AMQPS connections verify the broker: a certificate of the named CA that names the host, or nothing is sent
/// (not even the login).
@Suite(.enabled(if: StackTLS.available, Comment(rawValue: StackTLS.missing)))
struct AMQPTLSTests {
    @Test func publishesAndConsumesOverAMQPSWithTheStacksCA() async throws {
        let configuration = try StackTLS.configuration(caFile: StackTLS.caFile)
        #expect(configuration.tls?.verifyPeer == true && configuration.tls?.verifyHostname == true)
        let queue = uniqueName("tls")
        try await withClient(configuration) { client in
            try await client.withConnection { try await $0.declareQueue(.init(queue)) }
            let outcomes = try await client.publish((0..<10).map { message("tls-\($0)", to: queue) })
            #expect(outcomes.allSatisfy { $0 == .confirmed })
            let consumer = try await client.consume(queue: queue, prefetch: 10)
            let received = try await take(10, from: consumer)
            #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == (0..<10).map { "tls-\($0)" })
            if let last = received.last { try await client.ack(last.deliveryTag, multiple: true) }
            try await client.cancel(consumer)
            await cleanUp(client, queues: [queue])
        }
    }

    @Test func aBrokerCertificateFromAnotherCAIsRefusedNamingTheCAFile() async throws {
        let untrusted = try #require(StackTLS.untrustedCAFile)
        let error = try #require(await StackTLS.refusal(try StackTLS.configuration(caFile: untrusted)))
        #expect(error.code == .connectionFailed)
        let text = error.description
        #expect(text.contains("not signed by a CA") && text.contains(untrusted), "\(text)")
    }

    @Test func aCertificateThatDoesNotNameTheHostIsRefused() async throws {
        // 127.1 reaches the same listener (inet_aton), but the certificate names localhost.
        let error = try #require(await StackTLS.refusal(try StackTLS.configuration(caFile: StackTLS.caFile, host: "127.1")))
        #expect(error.code == .connectionFailed)
        #expect(error.description.contains("does not name this host"), "\(error)")
    }

    @Test func aPlaintextClientOnTheTLSPortGetsNoAMQPSession() async throws {
        var configuration = try StackTLS.configuration(caFile: nil)
        configuration.tls = nil
        #expect(await StackTLS.refusal(configuration) != nil)
    }

    @Test func halfAClientCertificateIsRefusedBeforeConnecting() async throws {
        var configuration = try StackTLS.configuration(caFile: StackTLS.caFile)
        configuration.tls?.clientCertificateFile = StackTLS.environment["HMS_TLS_CLIENT_CERT_FILE"] ?? "/nonexistent.pem"
        let error = try #require(await StackTLS.refusal(configuration))
        #expect(error.code == .invalidURL)
        #expect(error.description.contains("both certfile and keyfile"), "\(error)")
    }

    @Test func aClientCertificateOfTheCAIsAccepted() async throws {
        let certificate: String = try #require(StackTLS.environment["HMS_TLS_CLIENT_CERT_FILE"])
        let key: String = try #require(StackTLS.environment["HMS_TLS_CLIENT_KEY_FILE"])
        var configuration = try StackTLS.configuration(caFile: StackTLS.caFile)
        configuration.tls?.clientCertificateFile = certificate
        configuration.tls?.clientKeyFile = key
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: testLogger)
        await connection.close()
    }
}
