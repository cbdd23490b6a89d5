import ActHTTP
import ActPlaybook
import ActService
import ActStore
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

    @Option(help: "Log format: text (default) or json, one object a line (default: $HMS_LOG_FORMAT or text).")
    var logFormat: String?

    func run() async throws {
        GlibcMemory.limitArenas()
        var configuration: ServiceConfiguration
        do {
            configuration = try ConfigurationLoader.load(file: config)
        } catch {
            throw ValidationError(error.description)
        }
        if let port { configuration.http.port = port }
        do {
            configuration.tracing = try TraceSettings(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }

        let level = logLevel ?? ProcessInfo.processInfo.environment["HMS_LOG_LEVEL"] ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("unknown log level \(level); use trace, debug, info, notice, warning, error or critical")
        }
        let format = logFormat ?? ProcessInfo.processInfo.environment["HMS_LOG_FORMAT"] ?? "text"
        guard let logFormat = LogFormat(rawValue: format) else {
            throw ValidationError("unknown log format \(format); use text or json")
        }
        LoggingSystem.bootstrap { label in
            switch logFormat {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            case .json:
                var handler = JSONLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
        let logger = Logger(label: "hms-act")

        if configuration.http.tokens.isEmpty {
            logger.warning("no API tokens are configured: every API call except /livez and /readyz is refused; set HMS_API_TOKENS")
        }
        if configuration.audit.hasNoSigningKey && configuration.isDevelopment {
            // Development only: a key of this process's own, so a laptop or test stack needs no Secret. Its
            // checkpoints verify only against the public key logged here.
            let ephemeral = AuditSigningKey.generate()
            configuration.audit.signingKeyText = ephemeral.base64
            logger.warning("no audit signing key is set: signing checkpoints with a fresh key for this process only (development mode)",
                metadata: ["audit.public_key": "\(ephemeral.publicKey.base64)"])
        }
        let signingKey: AuditSigningKey
        do {
            signingKey = try configuration.audit.signingKey()
        } catch {
            throw ValidationError("\(error)")
        }
        logger.info("audit checkpoints are signed with Ed25519", metadata: ["audit.public_key": "\(signingKey.publicKey.base64)"])
        let agentsDirectory = agents ?? configuration.paths.agents
        var agentRegistry: [Agent] = []
        if FileManager.default.fileExists(atPath: agentsDirectory) {
            do {
                agentRegistry = try PlaybookLoader.loadAgentDirectory(agentsDirectory)
            } catch {
                throw ValidationError("agents in \(agentsDirectory) are invalid:\n\(error)")
            }
        }
        do {
            try configuration.checkTokenAgents(known: agentRegistry.map(\.id.rawValue))
        } catch {
            throw ValidationError(error.description)
        }
        let playbooksDirectory = noPlaybooks ? nil : (playbooks ?? configuration.paths.playbooks)
        let (application, _) = try await buildApplication(
            configuration: configuration, agents: agentRegistry,
            playbooksDirectory: playbooksDirectory.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil },
            metrics: registry, logger: logger,
            onServerRunning: { port in logger.info("hms-act serving", metadata: ["http.port": "\(port)"]) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await GlibcMemory.trimEvery(.seconds(10)) }
            try await application.runService()
            group.cancelAll()
        }
        logger.info("hms-act stopped")
    }
}

/// Keeps glibc's heap from holding on to what a burst freed.
///
/// Measured with `hms-act-bench run` (100,000 runs opened, then all answered at once): RSS 45 MB idle,
/// 65 MB with the runs open, 172 MB after they finished without this, 69 MB with it. Nothing leaked: the
/// memory was free in the heap but not returned to the system. glibc also gives each thread that
/// allocates under contention an arena of its own; two are enough here.
enum GlibcMemory {
    /// At most two malloc arenas, unless `MALLOC_ARENA_MAX` says otherwise. Call before threads start.
    static func limitArenas() {
        #if canImport(Glibc)
        let environment = ProcessInfo.processInfo.environment
        if environment["MALLOC_ARENA_MAX"] == nil {
            _ = glibcMallopt(glibcMallocArenaMax, 2)
        }
        // Buffers of a megabyte or more (large payloads, their task messages, batch parameters) come
        // straight from mmap and go back to the system when freed. glibc would otherwise raise this
        // threshold after the first such free and serve them from the heap, where a burst of large
        // messages leaves it fragmented at its peak.
        if environment["MALLOC_MMAP_THRESHOLD_"] == nil {
            _ = glibcMallopt(glibcMmapThreshold, 1 << 20)
        }
        #endif
    }

    /// Returns free heap memory to the system every `interval` (`malloc_trim(0)`) until cancelled.
    static func trimEvery(_ interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            #if canImport(Glibc)
            _ = glibcMallocTrim(0)
            #endif
        }
    }
}

#if canImport(Glibc)
/// `mallopt(3)` and `malloc_trim(3)`; Glibc's module map leaves out `<malloc.h>`.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
/// `M_ARENA_MAX` of `<malloc.h>`.
private let glibcMallocArenaMax: Int32 = -8
/// `M_MMAP_THRESHOLD` of `<malloc.h>`.
private let glibcMmapThreshold: Int32 = -3
#endif
