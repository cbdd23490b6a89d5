import ActService
import Foundation
import Logging
import Synchronization
import Testing

/// `HMS_LOG_FORMAT=json`: every line is one JSON object a log pipeline can parse, whatever the message holds.
@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    static func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false, "one line: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func aLineHoldsTimeLevelMessageSourceAndMetadata() throws {
        let lines = Lines()
        var logger = Logger(label: "hms-act") { label in
            JSONLogHandler(label: label) { lines.append($0) }
        }
        logger[metadataKey: "replica"] = "a"
        logger.warning("message dead-lettered", metadata: [
            "message.reason": "bad \"json\"\n\tat line 1 \u{1}",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "counts": ["1", "2"], "nested": ["key": "value"],
        ])
        logger.debug("not at info")
        let written = lines.lines.withLock { $0 }
        try #require(written.count == 1)
        let object = try Self.object(written[0])
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "hms-act")
        #expect(object["message"] as? String == "message dead-lettered")
        #expect((object["source"] as? String)?.isEmpty == false)
        #expect(object["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["trace_id"] == nil, "lifted to the top level")
        #expect(metadata["message.reason"] as? String == "bad \"json\"\n\tat line 1 \u{1}")
        #expect(metadata["replica"] as? String == "a")
        #expect(metadata["counts"] as? [String] == ["1", "2"])
        #expect((metadata["nested"] as? [String: String]) == ["key": "value"])
        let time = try #require(object["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z"), "RFC 3339 UTC with milliseconds: \(time)")
    }

    @Test func everyCharacterSurvivesTheRoundTrip() throws {
        let message = String((0..<0x80).map { Character(Unicode.Scalar(UInt8($0))) }) + "é€😀\u{2028}"
        let line = JSONLogHandler.line(time: "t", level: .error, label: "l", message: message, source: "s",
            metadata: [:])
        let object = try Self.object(line)
        #expect(object["message"] as? String == message)
        #expect(object["metadata"] == nil, "no metadata, no key")
    }

    @Test(arguments: [
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (1_796_587_262, 7, "2026-12-06T20:01:02.007Z"),
        (951_825_600, 999, "2000-02-29T12:00:00.999Z"),
    ])
    func timestampsAreUTCWithMilliseconds(seconds: Int, milliseconds: Int, expected: String) {
        let line = JSONLogHandler.line(time: JSONLogHandler.timestamp(seconds: seconds,
            milliseconds: milliseconds), level: .info, label: "l", message: "m", source: "s", metadata: [:])
        #expect(line.hasPrefix("{\"time\":\"\(expected)\""))
    }
}
