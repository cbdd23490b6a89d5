public import ActAMQP
import ActPostgres

/// How `hms-act serve` reaches RabbitMQ and PostgreSQL, and the transport rules it checks before it opens
/// any connection: TLS where ``AMQP/requireTLS`` or ``Postgres/requireTLS`` asks for it, and no default
/// `guest:guest` login in production.
extension ServiceConfiguration {
    /// The broker connection of `hms-act serve`: ``AMQP/url`` with the heartbeat and the ``AMQP/tls`` files.
    ///
    /// - Throws: ``SettingError`` naming `amqp.url` when the URL cannot be parsed (never its password).
    public func amqpConfiguration() throws(SettingError) -> AMQPConfiguration {
        var configuration: AMQPConfiguration
        do {
            configuration = try AMQPConfiguration(url: amqp.url)
        } catch {
            let reason = (error as? AMQPError)?.replyText ?? "\(error)"
            throw SettingError(description: "amqp.url (AMQP_URL) is not usable: \(reason)")
        }
        configuration.heartbeat = .seconds(amqp.heartbeatSeconds)
        if var tls = configuration.tls {
            if !amqp.tls.caFile.isEmpty { tls.caCertificateFile = amqp.tls.caFile }
            if !amqp.tls.certFile.isEmpty { tls.clientCertificateFile = amqp.tls.certFile }
            if !amqp.tls.keyFile.isEmpty { tls.clientKeyFile = amqp.tls.keyFile }
            configuration.tls = tls
        }
        return configuration
    }

    /// Refuses a transport these settings forbid, with the setting to change. `serve` calls it before it
    /// connects to anything, so a refused configuration never sends a password over plaintext.
    ///
    /// - Throws: ``SettingError``: plaintext or unverified AMQP while `amqp.require_tls` is on; a PostgreSQL
    ///   URL without `sslmode=verify-full` while `postgres.require_tls` is on; a client certificate without
    ///   its key; RabbitMQ's default `guest:guest` login in production.
    public func checkTransportSecurity() throws(SettingError) {
        let broker = try checkBrokerTransport()
        if !isDevelopment && broker.user == "guest" && broker.password == "guest" {
            throw SettingError(description: "mode is production but amqp.url (\(broker)) logs in with RabbitMQ's "
                + "default guest:guest: set AMQP_URL to a user of hms-act's own (deploy/rabbitmq/create-users.sh "
                + "makes one), or set HMS_ACT_MODE=development on a laptop")
        }
        try checkDatabaseTransport()
    }

    /// The broker half of ``checkTransportSecurity()``, which the CLI's broker commands run too.
    ///
    /// - Returns: The broker connection (``amqpConfiguration()``).
    @discardableResult
    public func checkBrokerTransport() throws(SettingError) -> AMQPConfiguration {
        let broker = try amqpConfiguration()
        if let tls = broker.tls {
            if (tls.clientCertificateFile == nil) != (tls.clientKeyFile == nil) {
                throw SettingError(description: "an AMQP client certificate needs both files: set amqp.tls.cert_file "
                    + "(HMS_AMQP_TLS_CERT_FILE) and amqp.tls.key_file (HMS_AMQP_TLS_KEY_FILE), or neither")
            }
            if amqp.requireTLS && !(tls.verifyPeer && tls.verifyHostname) {
                throw SettingError(description: "amqp.require_tls is on but amqp.url (\(broker)) turns certificate "
                    + "or host name verification off (verify=verify_none or server_name_indication=disable): "
                    + "remove that option and set amqp.tls.ca_file (HMS_AMQP_TLS_CA_FILE) to the broker's CA")
            }
        } else if amqp.requireTLS {
            throw SettingError(description: "amqp.require_tls is on but amqp.url (\(broker)) is plaintext: use "
                + "amqps://host:port (the broker's TLS listener, 5671 by default) in AMQP_URL and set "
                + "amqp.tls.ca_file (HMS_AMQP_TLS_CA_FILE) to the CA that signs the broker's certificate")
        }
        return broker
    }

    /// The database half of ``checkTransportSecurity()``, which the CLI's database commands run too.
    public func checkDatabaseTransport() throws(SettingError) {
        let database: PostgresConfiguration
        do {
            database = try postgres.connectionConfiguration()
        } catch {
            throw SettingError(description: "postgres.url (POSTGRES_URL) is not usable: \(error.reason ?? "\(error.code)")")
        }
        if (database.clientCertificateFile == nil) != (database.clientKeyFile == nil) {
            throw SettingError(description: "a PostgreSQL client certificate needs both files: set postgres.ssl_cert "
                + "(HMS_POSTGRES_SSL_CERT) and postgres.ssl_key (HMS_POSTGRES_SSL_KEY), or neither")
        }
        if postgres.requireTLS && database.tls != .verifyFull {
            throw SettingError(description: "postgres.require_tls is on but postgres.url (\(database.host):"
                + "\(database.port)) has sslmode=\(database.tls): add ?sslmode=verify-full to POSTGRES_URL and set "
                + "postgres.ssl_root_cert (HMS_POSTGRES_SSL_ROOT_CERT) to the CA that signs the server's certificate")
        }
    }
}
