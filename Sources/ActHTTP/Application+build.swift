public import ActPlaybook
public import ActService
public import Hummingbird
public import Logging
public import Prometheus

/// The composition root of `hms-act serve`: builds the service runtime (PostgreSQL pool, AMQP client,
/// outbox relay, timer scanner, consumers, housekeeping) and the HTTP server over it, as one
/// Hummingbird application whose service group starts them in dependency order and, on SIGTERM, stops
/// them in reverse: the HTTP server first, then the consumers (which finish, commit and ack their batch),
/// then the scanner, the relay, the broker and the pool.
///
/// - Parameters:
///   - configuration: The one configuration of the process (decoded by `ActCLI`).
///   - agents: The agent registry.
///   - playbooksDirectory: Playbooks registered at start (each version once), or `nil`.
///   - metrics: The Prometheus registry `/metrics` serves (bootstrapped by `ActCLI`).
///   - onServerRunning: Called with the bound port once the server listens (tests pass port 0).
/// - Returns: The application and the runtime (tests reach the orchestrator through it).
public func buildApplication(
    configuration: ServiceConfiguration,
    agents: [Agent],
    playbooksDirectory: String?,
    metrics: PrometheusCollectorRegistry,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> (application: some ApplicationProtocol, runtime: ServiceRuntime) {
    let runtime = try await ServiceRuntime.make(configuration: configuration, agents: agents,
        registerPlaybooksFrom: playbooksDirectory, logger: logger)
    let controlPlane = LiveControlPlane(orchestrator: runtime.orchestrator, store: runtime.store)
    let router = buildRouter(controlPlane: controlPlane, tokens: configuration.http.tokens,
        anonymous: configuration.http.anonymous, metrics: metrics, spanExporter: runtime.orchestrator.spanExporter,
        logger: logger)
    let application = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port),
            serverName: "hms-act"),
        services: runtime.services,
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.http.port)
        },
        logger: logger)
    return (application, runtime)
}
