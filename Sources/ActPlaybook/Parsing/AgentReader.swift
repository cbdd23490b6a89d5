import Foundation
internal import Yams

/// Reads agent files: one agent object, or a list of them (JSON is YAML).
struct AgentReader {
    var reader: PlaybookReader

    init(source: YAMLSource) { self.reader = PlaybookReader(source: source) }

    static let agentKeys = [
        "id", "description", "skills", "shift", "timezone", "time_zone", "queue", "routing_key", "delivery", "rate_limit",
    ]

    mutating func read(_ root: Node) -> [Agent] {
        switch root {
        case .sequence(let items):
            return items.compactMap { readAgent($0) }
        case .mapping:
            return readAgent(root).map { [$0] } ?? []
        case .scalar, .alias:
            reader.source.error(
                "wrong-type", "expected an agent (a mapping with id, skills, shift…) or a list of them, got \(root.kindDescription)",
                fix: "write e.g. {\"id\": \"human.field_inspector\", \"skills\": [\"noise-meter\"], \"shift\": \"8:00-22:00\"}",
                at: root)
            return []
        }
    }

    mutating func readAgent(_ node: Node) -> Agent? {
        guard let pairs = node.mappingPairs else {
            reader.source.error("wrong-type", "expected an agent (a mapping), got \(node.kindDescription)", at: node)
            return nil
        }
        let fields = reader.collect(pairs, allowed: Self.agentKeys, context: "in an agent")
        guard let idField = fields["id"] else {
            reader.source.error("missing-id", "the agent has no id", fix: "add e.g. `\"id\": \"human.field_inspector\"`",
                at: node)
            return nil
        }
        guard let id = reader.readString(idField, what: "an agent id"), !id.isEmpty else { return nil }
        var agent = Agent(id: AgentID(id), location: reader.source.location(node))
        if let description = fields["description"] { agent.description = reader.readString(description, what: "a description") }
        if let skills = fields["skills"] { agent.skills = reader.readStringList(skills, what: "a skill") }
        if let queue = fields["queue"] { agent.queue = reader.readString(queue, what: "a queue name") }
        if let routingKey = fields["routing_key"] { agent.routingKey = reader.readString(routingKey, what: "a routing key") }
        if let deliveryField = fields["delivery"], let text = reader.readString(deliveryField, what: "push or pull") {
            if let delivery = Agent.Delivery(rawValue: text) {
                agent.delivery = delivery
                if delivery == .pull, let routing = fields["queue"] ?? fields["routing_key"] {
                    reader.source.error("conflicting-keys",
                        "a pull agent is never published to, so '\(routing.key.scalarText ?? "queue")' has no effect",
                        fix: "remove it, or write `delivery: push` to receive tasks over AMQP", at: routing.key)
                }
            } else {
                reader.source.error("bad-delivery", "'\(text)' is not a delivery",
                    fix: "write `delivery: push` (tasks published over AMQP, the default) or `delivery: pull` "
                        + "(claimed over HTTP with POST /v1/tasks/claim)", at: deliveryField.value)
            }
        }
        if let rate = fields["rate_limit"] { agent.rateLimit = readRateLimit(rate) }
        if agent.rateLimit != nil, agent.delivery == .pull, let rate = fields["rate_limit"] {
            reader.source.warning("unused-rate-limit", "a pull agent claims its tasks at its own pace, so 'rate_limit' has no effect",
                fix: "remove it, or write `delivery: push`", at: rate.key)
        }
        if fields["timezone"] != nil, let both = fields["time_zone"] {
            reader.source.error("conflicting-keys", "both 'timezone' and 'time_zone' are given", fix: "keep one of them",
                at: both.key)
        }
        var zone = "UTC"
        if let zoneField = fields["timezone"] ?? fields["time_zone"],
            let name = reader.readString(zoneField, what: "a time zone like America/New_York")
        {
            if TimeZone(identifier: name) != nil {
                zone = name
            } else {
                reader.source.error(
                    "unknown-time-zone", "'\(name)' is not a known time zone",
                    fix: "use an IANA time-zone identifier such as America/New_York, Europe/Berlin or UTC",
                    at: zoneField.value)
            }
            if fields["shift"] == nil {
                reader.source.warning("unused-time-zone", "the time zone has no effect without a 'shift'",
                    fix: "add e.g. `shift: \"8:00-22:00\"`", at: zoneField.key)
            }
        }
        if let shiftField = fields["shift"], let text = reader.readString(shiftField, what: "a shift like 8:00-22:00") {
            if var shift = Self.shift(text) {
                shift.timeZone = zone
                agent.shift = shift
            } else {
                reader.source.error(
                    "bad-shift", "'\(text)' is not a shift",
                    fix: "write the hours as H:MM-H:MM, e.g. \"8:00-22:00\" (an end before the start runs past midnight)",
                    at: shiftField.value)
            }
        }
        return agent
    }

    /// `rate_limit: 50/min` or `{rate: 50/min, burst: 5}`.
    mutating func readRateLimit(_ field: (key: Node, value: Node)) -> RateLimit? {
        let fix = "write e.g. `\"rate_limit\": \"50/min\"` (also /s, /h, /d) or {\"rate\": \"50/min\", \"burst\": 5}"
        var rateField = field
        var burst = 1
        if let pairs = field.value.mappingPairs {
            let fields = reader.collect(pairs, allowed: ["rate", "burst"], context: "in 'rate_limit'")
            guard let rate = fields["rate"] else {
                reader.source.error("missing-key", "'rate_limit' has no 'rate'", fix: fix, at: field.value)
                return nil
            }
            rateField = rate
            if let burstField = fields["burst"] {
                burst = reader.readInt(burstField.value, key: "rate_limit.burst", range: 1...1_000_000) ?? 1
            }
        }
        guard let text = reader.readString(rateField, what: "a rate like 50/min") else { return nil }
        guard var limit = RateLimit(parsing: text) else {
            reader.source.error("bad-value", "'\(text)' is not a rate", fix: fix, at: rateField.value)
            return nil
        }
        limit.burst = burst
        return limit
    }

    /// `8:00-22:00`, `22:00-6:00`, `0:00-24:00`.
    static func shift(_ text: String) -> Shift? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = minute(parts[0]), let end = minute(parts[1]), start < 1_440 else { return nil }
        return Shift(startMinute: start, endMinute: end)
    }

    private static func minute(_ text: Substring) -> Int? {
        let clock = text.trimmingCharacters(in: .whitespaces)
        let pieces = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 2, (1...2).contains(pieces[0].count), pieces[1].count == 2,
            pieces.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let hour = Int(pieces[0]), let minute = Int(pieces[1]), minute < 60
        else { return nil }
        let total = hour * 60 + minute
        return total <= 1_440 ? total : nil
    }
}
