import ActAMQP
import ActPlaybook
import ActService
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `hms-act worker --demo [--routing-key K]… [--delay 0.2s] [--failure-rate 0.0] [--skip LABEL]…`: a worker
/// that answers every task like the chapters' agents, so a run goes end to end without real desks.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the demo worker: answers tasks from RabbitMQ like the chapters' agents.",
        discussion: """
            Declares its own durable queue (default demo-worker) bound to the tasks exchange with each \
            --routing-key (default task.#), plus every agent's own `queue` from the agent folder, consumes \
            tasks and answers on reply_to. The exchanges must exist (hms-act declares them): the worker \
            needs no rights on them beyond binding and publishing results:
              ai.fraud-labeler  {"severity": "High"|"Low"}
              ai.classifier     {"category": "loud party"}
              human.<desk>      {"decision": "done", "by": "<desk>#<n>"}
              anything else     {"ok": true}
            Leave a desk unanswered with --skip (e.g. --skip human.investigator shows the FTC 4h SLA \
            escalation). Stops gracefully on SIGINT or SIGTERM.
            """
    )

    @Flag(help: "Answer with the chapters' canned outputs (the only mode built in; see examples/python_worker for your own).")
    var demo = false

    @Option(name: .customLong("routing-key"), help: ArgumentHelp("A binding key on the tasks exchange; repeat for several (default task.#).", valueName: "key"))
    var routingKeys: [String] = []

    @Option(help: "The worker's own queue.")
    var queue: String = "demo-worker"

    @Option(help: ArgumentHelp("Time spent on each task: 200ms, 0.2s, 1s, 2m.", valueName: "duration"))
    var delay: DelayArgument = DelayArgument(milliseconds: 200)

    @Option(name: .customLong("failure-rate"), help: ArgumentHelp("Share of attempts that fail (0.0–1.0), retryable.", valueName: "rate"))
    var failureRate: Double = 0

    @Option(help: ArgumentHelp("ai.fraud-labeler's severity: High or Low (default: at random).", valueName: "severity"))
    var severity: String?

    @Option(help: ArgumentHelp("Leave this assignee's tasks unanswered (e.g. human.investigator); repeat for several.", valueName: "label"))
    var skip: [String] = []

    @Option(name: .customLong("agents"), help: ArgumentHelp("Agent folder whose queues to declare and consume (default the configuration's paths.agents).", valueName: "dir"))
    var agentDirectory: String?

    @Option(help: "Unacknowledged tasks per queue.")
    var prefetch: Int = 20

    @Option(name: .customLong("amqp-url"), help: ArgumentHelp("The broker (default the configuration's amqp.url, env AMQP_URL).", valueName: "url"))
    var amqpURL: String?

    @OptionGroup var configurationOptions: ConfigurationOptions

    func validate() throws {
        guard demo else {
            throw ValidationError("pass --demo: the built-in worker only answers with the chapters' canned outputs; for real work write your own (examples/python_worker)")
        }
        guard (0...1).contains(failureRate) else { throw ValidationError("--failure-rate must be between 0.0 and 1.0") }
        guard (1...1_000).contains(prefetch) else { throw ValidationError("--prefetch must be between 1 and 1000") }
        if let severity, !["High", "Low"].contains(severity) {
            throw ValidationError("--severity must be High or Low (the cases of the FTC playbook's switch)")
        }
    }

    func run() async throws {
        try await Console.reportingErrors {
            let configuration = try configurationOptions.load()
            let exchanges = configuration.amqp.exchanges
            let keys = routingKeys.isEmpty ? ["task.#"] : routingKeys

            // Agents with their own queue get tasks on the default exchange; with their own routing key, on
            // the tasks exchange under that key. Declare and bind both, so such tasks reach this worker.
            var agents: [Agent] = []
            let folder = agentDirectory ?? configuration.paths.agents
            if FileManager.default.fileExists(atPath: folder) {
                do {
                    agents = try PlaybookLoader.loadAgentDirectory(folder)
                } catch let error as PlaybookLoadError {
                    if agentDirectory != nil { throw error }
                    Console.error("warning: ignoring the agent folder \(folder): \(error.diagnostics.first.map { "\($0)" } ?? "unreadable")")
                }
            } else if agentDirectory != nil {
                throw CLIError("the agent folder '\(folder)' does not exist")
            }
            let agentQueues = Array(Set(agents.compactMap(\.queue))).sorted()
            let agentKeys = agents.compactMap(\.routingKey).filter { key in !keys.contains(key) }

            // The exchanges are hms-act's (it declares them, as does deploy/rabbitmq/definitions.json): the
            // worker only checks that they exist, which needs no `configure` right on them.
            let topology = AMQPTopology(
                exchanges: [
                    AMQPTopology.Exchange(exchanges.tasks, kind: .topic, passive: true),
                    AMQPTopology.Exchange(exchanges.results, kind: .topic, passive: true),
                ],
                queues: ([queue] + agentQueues).map { AMQPTopology.Queue($0, kind: .classic) },
                bindings: (keys + agentKeys).map {
                    AMQPTopology.Binding(queue: queue, exchange: exchanges.tasks, routingKey: $0)
                })

            let amqp = try Broker.configuration(configuration, url: amqpURL, name: "hms-act demo worker")
            var logger = Logger(label: "hms-act.worker")
            logger.logLevel = .info

            // Declare once up front so a wrong URL or a clashing queue fails here with a clear message,
            // instead of the client retrying in the background.
            let probe = try await Broker.connect(amqp, logger: Broker.quietLogger("hms-act.worker"))
            do {
                try await probe.declare(topology)
            } catch let error as AMQPError {
                await probe.close()
                let hint =
                    switch error.replyCode {
                    case 404: "; start hms-act once (`hms-act serve`) or import deploy/rabbitmq/definitions.json so the exchanges exist"
                    case 403: "; the user may not declare, bind or read these queues (deploy/rabbitmq/create-users.sh worker … --queue)"
                    case 406: "; a queue exists with other arguments (e.g. quorum): delete it or pick another with --queue"
                    default: ""
                    }
                throw CLIError("declaring the worker's queues failed: \(error)" + hint)
            }
            await probe.close()

            let client = AMQPClient(configuration: amqp, topology: topology, logger: logger)
            let worker = DemoWorker(
                client: client,
                settings: DemoWorker.Settings(
                    queues: [queue] + agentQueues, prefetch: UInt16(prefetch), delay: delay.duration,
                    failureRate: failureRate, severity: severity, skip: Set(skip), resultsExchange: exchanges.results,
                    brokerUser: amqp.user),
                logger: logger)
            print("demo worker on \(amqp): queue \(queue) bound to \(exchanges.tasks) with \((keys + agentKeys).joined(separator: ", "))"
                + (agentQueues.isEmpty ? "" : "; agent queues \(agentQueues.joined(separator: ", "))")
                + (skip.isEmpty ? "" : "; skipping \(skip.joined(separator: ", "))"))
            print("Ctrl-C stops it.")
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [
                        .init(service: client),
                        .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            do {
                try await group.run()
            } catch {
                throw CLIError("the worker stopped: \(error)")
            }
        }
    }
}

/// A duration option: `200ms`, `0.2s`, `1s`, `2m`, or a number of seconds.
struct DelayArgument: ExpressibleByArgument, Sendable {
    var milliseconds: Int64

    init(milliseconds: Int64) { self.milliseconds = milliseconds }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, scale: Double)] = [("ms", 1), ("s", 1_000), ("m", 60_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            guard let value = Double(text.dropLast(unit.suffix.count)), value >= 0, value.isFinite else { return nil }
            milliseconds = Int64(value * unit.scale)
            return
        }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
        milliseconds = Int64(seconds * 1_000)
    }

    var duration: Duration { .milliseconds(milliseconds) }
    var defaultValueDescription: String { "\(milliseconds)ms" }
}
