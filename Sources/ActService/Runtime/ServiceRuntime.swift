import ActAMQP
public import ActEngine
public import ActPlaybook
public import ActPostgres
public import ActStore
public import Logging
public import ServiceLifecycle

/// Everything `hms-act serve` runs, built from one configuration: the PostgreSQL pool, the AMQP client,
/// the orchestrator and its services, in dependency order. ``buildApplication`` adds the HTTP server;
/// integration tests use the runtime directly.
public struct ServiceRuntime: Sendable {
    public let orchestrator: Orchestrator
    /// The PostgreSQL store the orchestrator's ``ServiceStore`` port is (the HTTP API reads runs from it).
    public let store: Store
    public let postgres: PostgresClient
    /// Pool, broker, outbox relay, timer scanner, consumers, HTTP caller, housekeeping — the `ServiceGroup` order.
    public let services: [any Service]

    /// Checks the transport settings (``ServiceConfiguration/checkTransportSecurity()``), connects to PostgreSQL,
    /// migrates, registers the playbooks folder (when given) and builds the services.
    /// Nothing talks to the broker until the services run.
    ///
    /// - Parameters:
    ///   - registerPlaybooksFrom: A folder of playbooks to register at start (idempotent per version).
    ///   - clock: The engine's clock (tests may pass their own); by default a ``DatabaseClock``, measured
    ///     here and kept in step by housekeeping.
    ///   - wallClock: The replica's own clock, which the ``DatabaseClock`` corrects (tests skew it).
    public static func make(
        configuration: ServiceConfiguration,
        agents: [Agent],
        registerPlaybooksFrom directory: String?,
        logger: Logger,
        clock: (@Sendable () -> Instant)? = nil,
        wallClock: @escaping @Sendable () -> Instant = Orchestrator.wallClock
    ) async throws -> ServiceRuntime {
        // Before any connection: a refused transport must never carry a password.
        try configuration.checkTransportSecurity()
        let failpoints = try Failpoint.armedInEnvironment()
        if !failpoints.isEmpty {
            logger.error("""
                \(Failpoint.variable) is set: this process exits at random at the failpoints named; it is for the \
                fault suite only, never production
                """,
                metadata: ["failpoints": "\(failpoints.map { "\($0.key.rawValue)=\($0.value)" }.sorted())"])
        }
        let clientConfiguration = try configuration.postgres.clientConfiguration()
        let postgresConfiguration = clientConfiguration.connection
        let postgres = PostgresClient(configuration: clientConfiguration, logger: logger)
        let store = Store(client: postgres, schema: configuration.postgres.schema, logger: logger)
        try await prepareSchema(store, configuration: configuration.postgres, logger: logger)
        if let warning = durabilityWarning(synchronousCommit: try await store.synchronousCommit()) {
            logger.warning("\(warning)")
        }
        if configuration.amqp.actors.isEmpty && !configuration.isDevelopment {
            logger.warning("""
                amqp.actors is empty: approvals and results on the results exchange are attributed to the actor \
                their body names, so anyone who may publish there can approve in an officer's name. Map RabbitMQ \
                users to actors (HMS_AMQP_ACTORS=user=pattern;pattern, docs/security.md)
                """)
        }
        let databaseClock = DatabaseClock(wall: wallClock)
        try await databaseClock.synchronize(with: store, warnAbove: Int64(configuration.engine.clockSkewWarningMilliseconds),
            logger: logger)
        if let directory {
            let registered = try await PlaybookRegistrar.registerDirectory(directory,
                bindings: try configuration.triggerBindings(), agents: agents, store: store, logger: logger)
            if !registered.refused.isEmpty {
                logger.error("some playbook files were refused; serving the others", metadata: [
                    "playbooks.registered": "\(registered.registrations.count)", "playbooks.refused": "\(registered.refused.count)",
                    "playbooks.refused.files": "\(registered.refused.map(\.file).joined(separator: ", "))",
                ])
            }
        }
        let versions = try await store.playbookVersions()
        var triggers = Set<String>()
        for version in versions { triggers.formUnion(version.triggers) }

        let amqpConfiguration = try configuration.amqpConfiguration()
        let broker = AMQPClient(configuration: amqpConfiguration,
            topology: configuration.topology(triggerTypes: triggers.sorted()), logger: logger)
        let spanExporter = configuration.tracing.map { settings in
            SpanExporter(settings: settings, transport: AsyncHTTPCallTransport(connectTimeout: .seconds(5)), logger: logger)
        }
        if let settings = configuration.tracing {
            logger.info("exporting spans over OTLP/HTTP", metadata: ["otlp.endpoint": "\(settings.endpoint)",
                "service.name": "\(settings.serviceName)", "otel.sampling_ratio": "\(settings.samplingRatio)"])
        }
        let orchestrator = Orchestrator(store: store, broker: broker, configuration: configuration, agents: agents,
            logger: logger, clock: clock ?? databaseClock.now, databaseClock: clock == nil ? databaseClock : nil,
            spanExporter: spanExporter)
        try await orchestrator.refreshCatalog()

        let relays = configuration.engine.outboxRelays
        // The span exporter first: it stops last, after the consumers' final batches made their spans.
        let services: [any Service] = (spanExporter.map { [$0] } ?? []) + [postgres, broker] + (0..<relays).map {
            OutboxRelay(orchestrator: orchestrator, logger: logger, partition: ($0, relays)) as any Service
        } + [
            TimerScanner(orchestrator: orchestrator,
                notifications: PostgresTimerNotifications(configuration: postgresConfiguration, logger: logger),
                logger: logger),
            DeliveryConsumer(kind: .results, orchestrator: orchestrator, logger: logger),
            DeliveryConsumer(kind: .triggers, orchestrator: orchestrator, logger: logger),
            // After the consumers: it stops (no new call or try) before the pool it applies results through.
            HTTPCaller(orchestrator: orchestrator, store: store, logger: logger) {
                AsyncHTTPCallTransport(connectTimeout: .milliseconds(min(configuration.calls.timeoutMilliseconds, 5_000)))
            },
            Housekeeping(orchestrator: orchestrator, logger: logger),
            Scheduler(orchestrator: orchestrator, logger: logger),
        ] + (configuration.engine.bulkOperator ? [BulkOperator(orchestrator: orchestrator, store: store, logger: logger)] : [])
        return ServiceRuntime(orchestrator: orchestrator, store: store, postgres: postgres, services: services)
    }

    /// What to tell the operator when the database may lose a commit hms-act already acted on: a result
    /// message is acknowledged once its transaction commits, so with `synchronous_commit = off` a database
    /// crash loses that result for good (the run waits for ever). Nil when commits are durable.
    /// Migrates (granting `postgres.app_role` its rights) or, with `postgres.migrate_at_start` off, checks that
    /// an owner role already migrated: a serving role that may not migrate refuses a schema that lacks a
    /// migration instead of failing on its first query.
    static func prepareSchema(_ store: Store, configuration: ServiceConfiguration.Postgres, logger: Logger)
        async throws
    {
        guard configuration.migrateAtStart else {
            let pending = try await store.pendingMigrations()
            guard pending.isEmpty else {
                throw ServiceConfiguration.SettingError(description: "the schema \(configuration.schema) lacks "
                    + "migrations \(pending.map(String.init).joined(separator: ", ")) and postgres.migrate_at_start "
                    + "(HMS_POSTGRES_MIGRATE_AT_START) is off: run `hms-act migrate` as the schema's owner (the "
                    + "migration Job) first, then start serve")
            }
            return
        }
        try await store.migrate()
        if !configuration.appRole.isEmpty, try await store.grantServingRights(to: configuration.appRole) {
            logger.info("granted the serving role its rights", metadata: ["db.role": "\(configuration.appRole)"])
        }
    }

    static func durabilityWarning(synchronousCommit: String) -> String? {
        guard synchronousCommit.lowercased() == "off" else { return nil }
        return "PostgreSQL runs with synchronous_commit = off: a database crash can lose transactions hms-act "
            + "already acknowledged the messages of, and those runs then wait for ever. Set synchronous_commit "
            + "to on (or local, remote_write, remote_apply) for hms-act's role: "
            + "ALTER ROLE <role> SET synchronous_commit = on"
    }
}
