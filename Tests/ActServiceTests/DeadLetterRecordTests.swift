import ActAMQP
import ActPlaybook
import ActService
import ActStore
import Foundation
import Testing

/// What a dead letter says about itself, whether hms-act or the broker dead-lettered it, and what a replay
/// publishes.
@Suite struct DeadLetterRecordTests {
    static func delivery(exchange: String, routingKey: String, headers: [String: AMQPFieldValue]) -> AMQPDelivery {
        AMQPDelivery(body: Array(#"{"type": "x"}"#.utf8), exchange: exchange, routingKey: routingKey,
            deliveryTag: AMQPDeliveryTag(value: 1, channel: 1, connectionID: 1), redelivered: false, consumerTag: "c",
            properties: AMQPProperties(contentType: "application/json", headers: headers, messageID: "m-1",
                type: "x", userID: "hms-publisher"))
    }

    @Test func hmsActsOwnDeadLetterNamesItsOriginAndReason() {
        let letter = DeadLetterDesk.record(of: Self.delivery(exchange: "hms.dead", routingKey: "permit.requested", headers: [
            "x-hms-reason": "no registered playbook is triggered by permit.requested",
            "x-hms-original-exchange": "hms.events", "x-hms-original-queue": "hms-act.triggers",
            "ce-source": "urn:portal",
        ]), now: 7)
        #expect(letter.exchange == "hms.events" && letter.routingKey == "permit.requested")
        #expect(letter.queue == "hms-act.triggers" && letter.messageID == "m-1" && letter.collectedAt == 7)
        #expect(letter.reason == "no registered playbook is triggered by permit.requested")
        #expect(letter.properties["headers"]?["ce-source"] == "urn:portal")
        #expect(letter.properties["user_id"] == "hms-publisher")

        // A replay keeps the message's own headers and properties, not the dead-lettering's, nor the user id.
        let properties = DeadLetterDesk.replayProperties(letter.properties)
        #expect(properties.headers == ["ce-source": .string("urn:portal")])
        #expect(properties.messageID == "m-1" && properties.contentType == "application/json" && properties.type == "x")
        #expect(properties.userID == nil)
    }

    @Test func theBrokersDeadLetterIsReadFromXDeath() {
        let death: AMQPFieldValue = .array([.table([
            "reason": "delivery_limit", "queue": "hms-act.results", "exchange": "hms.results", "count": .int(1),
            "routing-keys": .array(["result.ai"]),
        ])])
        let letter = DeadLetterDesk.record(of: Self.delivery(exchange: "hms.dead", routingKey: "result.ai",
            headers: ["x-death": death, "x-delivery-count": .int(5)]), now: 0)
        #expect(letter.exchange == "hms.results" && letter.routingKey == "result.ai" && letter.queue == "hms-act.results")
        #expect(letter.reason.hasPrefix("the broker dead-lettered it from hms-act.results (delivery_limit, 1 times)"))
        #expect(DeadLetterDesk.replayProperties(letter.properties).headers.isEmpty)
    }
}
