import ActHTTP
import ActPlaybook
import ActService
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus

/// `hms-act serve`: the orchestrator service — consumers, outbox relay, timer scanner, HTTP API — until
/// SIGTERM or SIGINT, then a graceful drain (stop consuming, finish the batch, commit, ack) and exit 0.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the orchestrator: consume triggers and results, dispatch tasks, fire timers, serve the API.",
        discussion: """
            Settings come from config/hms-act.yaml (or --config / HMS_CONFIG) and the environment \
            (AMQP_URL, POSTGRES_URL, HMS_HTTP_PORT, HMS_API_TOKENS, …; see docs/configuration.md). \
            Playbooks in the playbooks folder are registered at start; a version already registered is kept.
            """)

    @Option(help: "Configuration file (default: $HMS_CONFIG or config/hms-act.yaml).")
    var config: String?

    @Option(help: "Folder of playbooks to register at start (default: paths.playbooks).")
    var playbooks: String?

    @Flag(help: "Do not register the playbooks folder at start.")
    var noPlaybooks = false

    @Option(help: "Folder of agent descriptions (default: paths.agents).")
    var agents: String?

    @Option(help: "HTTP port (overrides http.port; 0 picks a free port).")
    var port: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $HMS_LOG_LEVEL or info).")
    var logLevel: String?

    func run() async throws {
        Self.limitMallocArenas()
        var configuration: ServiceConfiguration
        do {
            configuration = try ConfigurationLoader.load(file: config)
        } catch {
            throw ValidationError(error.description)
        }
        if let port { configuration.http.port = port }

        let level = logLevel ?? ProcessInfo.processInfo.environment["HMS_LOG_LEVEL"] ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("unknown log level \(level); use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
        let logger = Logger(label: "hms-act")

        if configuration.http.tokens.isEmpty {
            logger.warning("no API tokens are configured: every API call except /livez and /readyz is refused; set HMS_API_TOKENS")
        }
        if configuration.audit.key == "change-me" {
            logger.warning("the audit checkpoint key is the default; set HMS_AUDIT_KEY from a Secret")
        }
        let agentsDirectory = agents ?? configuration.paths.agents
        var agentRegistry: [Agent] = []
        if FileManager.default.fileExists(atPath: agentsDirectory) {
            do {
                agentRegistry = try PlaybookLoader.loadAgentDirectory(agentsDirectory)
            } catch {
                throw ValidationError("agents in \(agentsDirectory) are invalid:\n\(error)")
            }
        }
        let playbooksDirectory = noPlaybooks ? nil : (playbooks ?? configuration.paths.playbooks)
        let (application, _) = try await buildApplication(
            configuration: configuration, agents: agentRegistry,
            playbooksDirectory: playbooksDirectory.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil },
            metrics: registry, logger: logger,
            onServerRunning: { port in logger.info("hms-act serving", metadata: ["http.port": "\(port)"]) })
        try await application.runService()
        logger.info("hms-act stopped")
    }

    /// glibc gives each thread that allocates under contention an arena of its own and rarely returns their
    /// memory, so a burst (100,000 runs finishing at once in `hms-act bench run`) left RSS at twice its
    /// level with the runs open (184 MB against 98). Two arenas keep it flat (measured: 67.3 → 67.5 MB
    /// around 30,000 runs finishing) at no measurable cost in throughput. `MALLOC_ARENA_MAX` still wins.
    static func limitMallocArenas() {
        #if canImport(Glibc)
        if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil {
            _ = glibcMallopt(glibcMallocArenaMax, 2)
        }
        #endif
    }
}

#if canImport(Glibc)
/// `mallopt(3)`; Glibc's module map leaves out `<malloc.h>`.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
/// `M_ARENA_MAX` of `<malloc.h>`.
private let glibcMallocArenaMax: Int32 = -8
#endif
