import ActAMQP
import ActPlaybook
import ActService
import ArgumentParser
import Foundation

/// `hms-act emit TYPE --data JSON [--id ID] [--source SRC] [--amqp-url URL]`: publishes a trigger event
/// the way a portal would (chapter 000's `act.emit(event)`), straight to RabbitMQ.
struct EmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Publish an event (CloudEvents 1.0, binary mode) to the events exchange.",
        discussion: """
            The routing key is the event type; hms-act starts every playbook triggered by it. The message is \
            persistent and mandatory and waits for the broker's confirm, so a printed id means the event is \
            safely queued. Example:
              hms-act emit noise.complaint.filed --data '{"address": "123 Oak St"}'
            """
    )

    @Argument(help: "The event type, e.g. noise.complaint.filed (also the routing key).")
    var type: String

    @Option(help: ArgumentHelp("The event data as JSON (or @file.json); default {}.", valueName: "json"))
    var data: String?

    @Option(help: "The event id (default a new UUID); the same id never starts a second run.")
    var id: String?

    @Option(help: "The CloudEvents source.")
    var source: String = "urn:hms-act:cli"

    @Option(name: .customLong("amqp-url"), help: ArgumentHelp("The broker (default the configuration's amqp.url, env AMQP_URL).", valueName: "url"))
    var amqpURL: String?

    @OptionGroup var configurationOptions: ConfigurationOptions

    func validate() throws {
        guard !type.isEmpty, !type.contains(where: { $0.isWhitespace || $0 == "*" || $0 == "#" }) else {
            throw ValidationError("the event type must be a routing key without spaces, * or #, e.g. noise.complaint.filed")
        }
    }

    func run() async throws {
        try await Console.reportingErrors {
            let configuration = try configurationOptions.load()
            let payload = try data.map { try Console.parseJSON($0, option: "--data") } ?? .object([:])
            let eventID = id ?? UUID().uuidString.lowercased()
            let exchange = configuration.amqp.exchanges.events
            let message = try Self.message(type: type, id: eventID, source: source, data: payload, exchange: exchange, now: Date())
            let amqp = try Broker.configuration(configuration, url: amqpURL, name: "hms-act emit")
            let connection = try await Broker.connect(amqp, logger: Broker.quietLogger("hms-act.emit"))
            let outcome = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await connection.run() }
                defer { group.cancelAll() }
                let outcome: PublishOutcome
                do {
                    outcome = try await connection.publish(message)
                } catch let error as AMQPError where error.replyCode == 404 {
                    await connection.close()
                    throw CLIError("the exchange '\(exchange)' does not exist: start hms-act once (`hms-act serve`) so it declares its exchanges")
                } catch {
                    await connection.close()
                    throw CLIError("publishing to \(exchange) failed: \(error)")
                }
                await connection.close()
                return outcome
            }
            switch outcome {
            case .confirmed:
                print(eventID)
            case .returned:
                throw CLIError("no queue is bound to \(type) on \(exchange): is hms-act running with a playbook triggered by it?")
            case .nacked:
                throw CLIError("RabbitMQ refused the event (nack); nothing was queued, emit it again")
            case .channelClosed(let code, let text):
                throw CLIError("RabbitMQ refused the event (\(code) \(text)); if it is too large, send a smaller one")
            }
        }
    }

    /// The CloudEvents 1.0 binary-mode message: attributes as `cloudEvents:*` headers, the data as the
    /// JSON body, persistent and mandatory, `message_id` = the event id.
    static func message(
        type: String, id: String, source: String, data: JSONValue, exchange: String, now: Date
    ) throws(CLIError) -> AMQPMessage {
        let body: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            body = try encoder.encode(data)
        } catch {
            throw CLIError("cannot encode --data: \(error)")
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        let headers: [String: AMQPFieldValue] = [
            "cloudEvents:specversion": .string("1.0"),
            "cloudEvents:id": .string(id),
            "cloudEvents:type": .string(type),
            "cloudEvents:source": .string(source),
            "cloudEvents:time": .string(formatter.string(from: now)),
            "cloudEvents:datacontenttype": .string("application/json"),
        ]
        let properties = AMQPProperties(
            contentType: "application/json", headers: headers, persistent: true, messageID: id, timestamp: now,
            type: type, appID: "hms-act-cli")
        return AMQPMessage(body: Array(body), exchange: exchange, routingKey: type, properties: properties, mandatory: true)
    }
}
