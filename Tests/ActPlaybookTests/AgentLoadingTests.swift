import ActPlaybook
import Foundation
import Testing

@Suite struct AgentLoadingTests {
    @Test func oneAgentOrAList() throws {
        let one = try PlaybookLoader.loadAgents(yaml: "id: ai.classifier\nskills: [classification]\n")
        #expect(one == [Agent(id: "ai.classifier", skills: ["classification"], location: one[0].location)])
        let list = try PlaybookLoader.loadAgents(yaml: """
            - id: human.a
              shift: "22:00-6:00"
              time_zone: Europe/Berlin
              routing_key: task.human.night
            - {id: human.b, queue: b.queue, description: Day desk}
            """)
        #expect(list.map(\.id) == ["human.a", "human.b"])
        #expect(list[0].shift == Shift(startMinute: 22 * 60, endMinute: 6 * 60, timeZone: "Europe/Berlin"))
        #expect(list[0].routingKey == "task.human.night")
        #expect(list[1].queue == "b.queue")
        #expect(list[1].description == "Day desk")
    }

    @Test func deliveryIsPushUnlessTheAgentPulls() throws {
        let agents = try PlaybookLoader.loadAgents(yaml: "- {id: ai.a}\n- {id: ai.b, delivery: pull}\n- {id: ai.c, delivery: push}\n")
        #expect(agents.map(\.delivery) == [.push, .pull, .push])
        for (yaml, mentions) in [
            ("{id: ai.b, delivery: poll}", "'poll' is not a delivery"),
            ("{id: ai.b, delivery: pull, queue: q}", "a pull agent is never published to, so 'queue'"),
            ("{id: ai.b, delivery: pull, routing_key: task.x}", "so 'routing_key' has no effect"),
        ] {
            let error = #expect(throws: PlaybookLoadError.self, "\(yaml)") { try PlaybookLoader.loadAgents(yaml: yaml) }
            #expect(error?.errors.contains { $0.message.contains(mentions) } == true, "\(yaml): \(String(describing: error))")
        }
    }

    @Test(arguments: [
        ("8:00-22:00", Shift(startMinute: 480, endMinute: 1_320)),
        ("08:30 - 17:15", Shift(startMinute: 510, endMinute: 1_035)),
        ("0:00-24:00", Shift(startMinute: 0, endMinute: 1_440)),
        ("22:00-6:00", Shift(startMinute: 1_320, endMinute: 360)),
    ])
    func shiftSpellings(text: String, shift: Shift) throws {
        let agents = try PlaybookLoader.loadAgents(yaml: "{\"id\": \"x\", \"shift\": \"\(text)\"}")
        #expect(agents.first?.shift == shift)
    }

    @Test(arguments: ["8-22", "25:00-26:00", "8:00", "8:0-9:00", "24:00-1:00", "a:bc-d:ef"])
    func badShifts(text: String) {
        #expect(throws: PlaybookLoadError.self) {
            try PlaybookLoader.loadAgents(yaml: "{\"id\": \"x\", \"shift\": \"\(text)\"}")
        }
    }

    @Test func shiftUsesTheAgentTimeZone() throws {
        let agents = try PlaybookLoader.loadAgents(yaml: "id: h\nshift: 8:00-22:00\ntimezone: America/New_York\n")
        let shift = try #require(agents.first?.shift)
        // 2024-01-15 12:00 UTC is 7:00 in New York (off shift); 14:00 UTC is 9:00 (on shift).
        #expect(!shift.contains(epochMilliseconds: 1_705_320_000_000))
        #expect(shift.contains(epochMilliseconds: 1_705_327_200_000))
    }

    @Test func missingIdIsAnError() {
        do {
            _ = try PlaybookLoader.loadAgents(yaml: "{\"skills\": [\"a\"]}", file: "a.json")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.codes == ["missing-id"])
            #expect(error.diagnostics[0].location == ActPlaybook.SourceLocation(file: "a.json", line: 1, column: 1))
        }
    }

    @Test func directorySortsByIdAndRefusesDuplicates() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("agents-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "{\"id\": \"z.last\"}".write(to: folder.appendingPathComponent("z.json"), atomically: true, encoding: .utf8)
        try "- id: a.first\n- id: m.middle\n".write(to: folder.appendingPathComponent("a.yaml"), atomically: true,
            encoding: .utf8)
        try "not an agent file".write(to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let agents = try PlaybookLoader.loadAgentDirectory(folder.path)
        #expect(agents.map(\.id) == ["a.first", "m.middle", "z.last"])

        try "id: m.middle\n".write(to: folder.appendingPathComponent("m.yml"), atomically: true, encoding: .utf8)
        do {
            _ = try PlaybookLoader.loadAgentDirectory(folder.path)
            Issue.record("expected the duplicate to be refused")
        } catch {
            #expect(error.diagnostics.codes == ["duplicate-agent"])
            #expect(error.diagnostics[0].location?.file?.hasSuffix("m.yml") == true)
        }
    }

    @Test func projectAgentsLoad() throws {
        let agents = try PlaybookLoader.loadAgentDirectory(Fixture.packageRoot.appendingPathComponent("agents").path)
        #expect(agents.map(\.id).contains("human.field_inspector"))
        #expect(agents.map(\.id).contains("ai.auto_intake"))
        #expect(agents.count >= 5)
    }
}

/// An agent's `rate_limit`: the spellings, the burst, and what is refused or warned about.
@Suite struct RateLimitReadingTests {
    @Test(arguments: [
        ("\"50/min\"", 50, TimeSpan.minutes(1), 1),
        ("\"5/s\"", 5, .seconds(1), 1),
        ("\"1000/hour\"", 1_000, .hours(1), 1),
        ("{\"rate\": \"20000/d\", \"burst\": 10}", 20_000, .hours(24), 10),
    ])
    func readsTheRate(written: String, count: Int, span: TimeSpan, burst: Int) throws {
        let agents = try PlaybookLoader.loadAgents(yaml: "{\"id\": \"ai.payments\", \"rate_limit\": \(written)}")
        #expect(agents.first?.rateLimit == RateLimit(count: count, span: span, burst: burst))
    }

    @Test func refusesWhatIsNotARateAndWarnsOnAPullAgent() throws {
        #expect(throws: PlaybookLoadError.self) {
            try PlaybookLoader.loadAgents(yaml: "{\"id\": \"ai.p\", \"rate_limit\": \"fast\"}")
        }
        do {
            _ = try PlaybookLoader.loadAgents(yaml: "{\"id\": \"ai.p\", \"rate_limit\": \"0/min\"}")
            Issue.record("0/min was accepted")
        } catch {
            #expect(error.diagnostics.first?.message == "'0/min' is not a rate")
            #expect(error.diagnostics.first?.fix?.contains("50/min") == true)
        }
        #expect(RateLimit(count: 50, span: .minutes(1)).interval == 1_200)
        #expect(RateLimit(count: 50, span: .minutes(1)).description == "50/min")
    }
}
