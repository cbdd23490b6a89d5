import ActAMQP
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The broker under test: `AMQP_URL`, by default the private node of `scripts/stack` (scripts/lib/rabbitmq.sh).
enum TestBroker {
    static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://hms:hms-local@127.0.0.1:55672/%2f"

    static func configuration(
        heartbeat: Duration = .seconds(10), frameMax: Int = 131_072, connectTimeout: Duration = .seconds(10)
    ) throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: url)
        configuration.heartbeat = heartbeat
        configuration.frameMax = frameMax
        configuration.connectTimeout = connectTimeout
        configuration.reconnect = .init(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        configuration.connectionName = "hms-act-tests"
        return configuration
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static let stackDirectory = ProcessInfo.processInfo.environment["HMS_STACK_DIR"] ?? "\(repositoryRoot)/.local"
    static let pidFile = "\(stackDirectory)/rabbitmq/rabbitmq.pid"

    /// True when the broker under test is the node that `scripts/stack` started from `HMS_STACK_DIR`: only
    /// then may tests freeze or kill it.
    static var isOwnNode: Bool {
        guard let configuration = try? AMQPConfiguration(url: url), let pid = brokerPID() else { return false }
        let port = Int(ProcessInfo.processInfo.environment["HMS_AMQP_PORT"] ?? "55672") ?? 55672
        return configuration.port == port && kill(pid, 0) == 0
    }

    /// The broker's `max_message_size`: HMS_AMQP_MAX_MESSAGE_SIZE, or the stack node's 8 MiB.
    static var maxMessageSize: Int? {
        if let value = ProcessInfo.processInfo.environment["HMS_AMQP_MAX_MESSAGE_SIZE"] { return Int(value) }
        return isOwnNode ? 8_388_608 : nil
    }

    static func brokerPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs `rmq_up` from scripts/lib/rabbitmq.sh (starts the node again after a crash), awaiting its exit
    /// without blocking a thread of the cooperative pool.
    static func startNode() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c",
            "set -euo pipefail; source scripts/lib/common.sh; source scripts/lib/rabbitmq.sh; rmq_up",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["HMS_STACK_DIR"] = stackDirectory
        process.environment = environment
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        guard status == 0 else {
            throw AMQPError(.connectionFailed, replyText: "rmq_up exited with \(status)")
        }
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "amqp-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["AMQP_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}()

/// A name no other test uses.
func uniqueName(_ prefix: String) -> String {
    "hms-act-test.\(prefix).\(UUID().uuidString.prefix(8))"
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    let what: String
    var description: String { "deadline exceeded: \(what)" }
}

/// Runs `operation`, failing with ``DeadlineExceeded`` after `seconds`.
func withDeadline<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded(what: what) }
        return value
    }
}

/// Waits until `condition` holds, checking every 50 ms, failing after `seconds`.
func eventually(
    _ seconds: Double, _ what: String, _ condition: @escaping @Sendable () async throws -> Bool
) async throws {
    try await withDeadline(seconds, what) {
        while try await !condition() { try await Task.sleep(for: .milliseconds(50)) }
    }
}

/// The next `count` deliveries of `consumer`, within `seconds`.
func take(_ count: Int, from consumer: AMQPConsumer, within seconds: Double = 15) async throws -> [AMQPDelivery] {
    try await withDeadline(seconds, "\(count) deliveries") {
        var result: [AMQPDelivery] = []
        var iterator = consumer.makeAsyncIterator()
        while result.count < count {
            guard let delivery = try await iterator.next() else { break }
            result.append(delivery)
        }
        return result
    }
}

/// Runs a client (its `run()` in a child task) for the duration of `body`, then shuts it down cleanly.
func withClient<T: Sendable>(
    _ configuration: AMQPConfiguration? = nil, topology: AMQPTopology = AMQPTopology(),
    _ body: (AMQPClient) async throws -> T
) async throws -> T {
    let client = AMQPClient(configuration: try configuration ?? TestBroker.configuration(), topology: topology, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        do {
            let result = try await body(client)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// Deletes test queues and exchanges (best effort).
func cleanUp(_ client: AMQPClient, queues: [String] = [], exchanges: [String] = []) async {
    _ = try? await client.withConnection { connection in
        for queue in queues { _ = try? await connection.deleteQueue(queue) }
        for exchange in exchanges { try? await connection.deleteExchange(exchange) }
    }
}

func message(_ text: String, to queue: String, properties: AMQPProperties = AMQPProperties()) -> AMQPMessage {
    AMQPMessage(body: Array(text.utf8), exchange: "", routingKey: queue, properties: properties)
}
