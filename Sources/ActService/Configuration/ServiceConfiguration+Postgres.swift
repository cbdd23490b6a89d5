public import ActPostgres

extension ServiceConfiguration.Postgres {
    /// How every connection of `hms-act serve` opens: ``url``, ``schema`` as the search path, and the
    /// timeouts and keepalives of this section.
    ///
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/invalidURL`` when ``url`` cannot be parsed.
    public func connectionConfiguration() throws(PostgresError) -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(url: url)
        configuration.searchPath = schema
        applySessionSettings(to: &configuration)
        return configuration
    }

    /// The pool of `hms-act serve`: ``connectionConfiguration()``, ``poolSize`` connections, and a lease wait of
    /// ``poolAcquireTimeoutMilliseconds``, with this section's keys named in the pool's timeout error.
    ///
    /// - Throws: see ``connectionConfiguration()``.
    public func clientConfiguration() throws(PostgresError) -> PostgresClient.Configuration {
        PostgresClient.Configuration(
            connection: try connectionConfiguration(),
            maxConnections: poolSize,
            acquireTimeout: .milliseconds(poolAcquireTimeoutMilliseconds),
            settingNames: .init(
                maxConnections: "postgres.pool_size / HMS_POSTGRES_POOL_SIZE",
                acquireTimeout: "postgres.pool_acquire_timeout_ms / HMS_POSTGRES_POOL_ACQUIRE_TIMEOUT_MS"
            ),
            onLeaseTimeout: { ServiceMetrics.poolTimedOut() }
        )
    }

    /// Sets the statement, lock and idle-in-transaction timeouts, the client's answer deadline, the connect
    /// timeout, TCP keepalives, `tcp_user_timeout` and the TLS files (``sslRootCert``, ``sslCert``,
    /// ``sslKey``, when set) of `configuration` from this section; for the CLI's one-off connections
    /// (`migrate`, `audit verify`), which take their URL and schema from elsewhere.
    public func applySessionSettings(to configuration: inout PostgresConfiguration) {
        if !sslRootCert.isEmpty { configuration.rootCertificateFile = sslRootCert }
        if !sslCert.isEmpty { configuration.clientCertificateFile = sslCert }
        if !sslKey.isEmpty { configuration.clientKeyFile = sslKey }
        configuration.statementTimeout = .milliseconds(statementTimeoutMilliseconds)
        configuration.lockTimeout = .milliseconds(lockTimeoutMilliseconds)
        configuration.idleInTransactionSessionTimeout = .milliseconds(idleInTransactionTimeoutMilliseconds)
        configuration.answerTimeoutGrace = .milliseconds(answerGraceMilliseconds)
        configuration.connectTimeout = .seconds(connectTimeoutSeconds)
        configuration.keepalives = keepalivesIdleSeconds > 0
            ? PostgresConfiguration.Keepalives(
                idle: .seconds(keepalivesIdleSeconds),
                interval: .seconds(keepalivesIntervalSeconds),
                count: keepalivesCount
            )
            : nil
        configuration.tcpUserTimeout = .milliseconds(tcpUserTimeoutMilliseconds)
    }
}
