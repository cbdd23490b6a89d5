import ActEngine
import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Playbook schedules over the API: listing them, pausing and resuming with a reason, and triggering one by
/// hand, against the in-memory control plane through the real router.
@Suite("schedules")
struct ScheduleRouteTests {
    /// A nightly cron schedule in Berlin time and a quarter-hourly one.
    static let nightly = """
        id: Nightly
        schedules:
          - id: sweep
            cron: "0 2 * * *"
            timezone: Europe/Berlin
            catch_up: none
            jitter: 30s
            payload: {scope: open_permits}
          - id: pulse
            every: 15m
            overlap: allow
        steps:
          - id: sweep
            actor: SVC:sweeper
        """

    /// A world with the nightly playbook and chapter 001's, which has no schedules. Its clock stands at
    /// 2026-11-18T11:06:40Z.
    static func world() async throws -> TestWorld {
        try await TestWorld(playbooks: [nightly, Playbooks.ftc])
    }

    static func pause(_ client: some TestClientProtocol, _ action: String = "pause", schedule: String = "sweep",
        token: String = Token.operate, json: String? = #"{"reason": "billing freeze"}"#) async throws -> TestResponse
    {
        try await client.send(.post, "/v1/schedules/Nightly/\(schedule)/\(action)", token: token, json: json)
    }

    @Test func listingShowsEverySchedulesDefinitionAndWhereItStands() async throws {
        let world = try await Self.world()
        try await world.test { client in
            let listed = try await client.send(.get, "/v1/schedules", token: Token.read)
            #expect(listed.status == .ok, "\(listed.text)")
            let schedules = try #require(try listed.json["schedules"]?.arrayValue)
            #expect(schedules.map { $0["schedule_id"] } == ["pulse", "sweep"], "by playbook and schedule id")

            let pulse = schedules[0]
            #expect(pulse["playbook"] == "Nightly" && pulse["spec"] == "every 15m" && pulse["overlap"] == "allow")
            #expect(pulse["time_zone"] == "UTC" && pulse["catch_up"] == "one" && pulse["jitter"] == .null)
            #expect(pulse["next_fire_at"] == "2026-11-18T11:15:00.000Z" && pulse["due_at"] == pulse["next_fire_at"])

            let sweep = schedules[1]
            #expect(sweep["spec"] == "cron 0 2 * * *" && sweep["time_zone"] == "Europe/Berlin")
            #expect(sweep["catch_up"] == "none" && sweep["catch_up_window"] == "1d" && sweep["overlap"] == "skip")
            #expect(sweep["jitter"] == "30s")
            // 02:00 in Berlin, in winter, is 01:00 UTC; the jitter delays only when a replica looks at it.
            #expect(sweep["next_fire_at"] == "2026-11-19T01:00:00.000Z")
            let due = try #require(sweep["due_at"]?.stringValue)
            #expect(due >= "2026-11-19T01:00:00.000Z" && due < "2026-11-19T01:00:30.000Z")
            // Nothing fired or paused yet: explicit nulls and zeros.
            #expect(sweep["paused"] == false && sweep["paused_by"] == .null && sweep["last_fire_at"] == .null)
            #expect(sweep["last_run_id"] == .null && sweep["buffered_fire_at"] == .null && sweep["last_skip"] == .null)
            #expect(sweep["started"] == 0 && sweep["skipped"] == 0)

            let filtered = try await client.send(.get, "/v1/schedules?playbook=Nightly", token: Token.read)
            #expect(try filtered.json["schedules"]?.arrayValue?.count == 2)
            let none = try await client.send(.get, "/v1/schedules?playbook=FTC-Complaint", token: Token.read)
            #expect(try none.json["schedules"] == [])
        }
    }

    @Test func theSchedulesFollowEachPlaybooksCurrentVersion() async throws {
        let world = try await Self.world()
        try await world.test { client in
            #expect(try await Self.pause(client).status == .ok)
            // Version 2 keeps only the sweep, an hour later: it starts over from now and stays paused.
            let version2 = Self.nightly.replacingOccurrences(of: "0 2 * * *", with: "0 3 * * *")
                .replacingOccurrences(of: "  - id: pulse\n    every: 15m\n    overlap: allow\n", with: "")
            let registered = try await client.send(.post, "/v1/playbooks", token: Token.admin,
                body: Array(version2.utf8), contentType: "application/yaml")
            #expect(registered.status == .created, "\(registered.text)")
            let listed = try await client.send(.get, "/v1/schedules", token: Token.read).json
            #expect(listed[path: "schedules"]?.arrayValue?.map { $0["schedule_id"] } == ["sweep"])
            #expect(listed[path: "schedules.0.spec"] == "cron 0 3 * * *")
            #expect(listed[path: "schedules.0.next_fire_at"] == "2026-11-19T02:00:00.000Z")
            #expect(listed[path: "schedules.0.paused_by"] == "ops: billing freeze")

            // Every version disabled: no schedule is left to list or trigger.
            let second = try #require(try registered.json["version"]?.intValue)
            for version in [1, second] {
                let disabled = try await client.send(.post, "/v1/playbooks/Nightly/versions/\(version)/state",
                    token: Token.admin, json: #"{"state": "disabled"}"#)
                #expect(disabled.status == .ok, "\(disabled.text)")
            }
            #expect(try await client.send(.get, "/v1/schedules", token: Token.read).json["schedules"] == [])
            let trigger = try await client.send(.post, "/v1/schedules/Nightly/sweep/trigger", token: Token.operate)
            #expect(trigger.status == .notFound)
        }
    }

    @Test func pausingNeedsAReasonAndRecordsWhoPausedAndWhy() async throws {
        let world = try await Self.world()
        try await world.test { client in
            for body in [nil, "{}", #"{"reason": "  "}"#] {
                let refused = try await Self.pause(client, json: body)
                #expect(refused.status == .badRequest, "body \(body ?? "none")")
                #expect(try refused.json["type"] == "https://hms-act.dev/problems/invalid-request")
                #expect(try refused.json[path: "errors.0.field"] == "reason")
                #expect(try refused.json["detail"]?.stringValue?.contains("`reason` is required") == true)
            }
            let otherActor = try await Self.pause(client, json: #"{"reason": "x", "actor": "someone.else"}"#)
            #expect(otherActor.status == .forbidden)
            let unchanged = try await client.send(.get, "/v1/schedules", token: Token.read).json
            #expect(unchanged[path: "schedules.1.paused"] == false, "nothing refused changed the schedule")

            let paused = try await Self.pause(client)
            #expect(paused.status == .ok, "\(paused.text)")
            #expect(try paused.json["schedule_id"] == "sweep" && paused.json["paused"] == true)
            #expect(try paused.json["paused_by"] == "ops: billing freeze")
            let listed = try await client.send(.get, "/v1/schedules", token: Token.read).json
            #expect(listed[path: "schedules.1.paused_by"] == "ops: billing freeze")
            #expect(listed[path: "schedules.0.paused"] == false, "the other schedule goes on")

            // Pausing again changes nothing: the first pause keeps its record.
            let again = try await client.send(.post, "/v1/schedules/Nightly/sweep/pause", token: Token.admin,
                json: #"{"reason": "again"}"#)
            #expect(try again.status == .ok && again.json["paused_by"] == "ops: billing freeze")
        }
    }

    @Test func resumingGoesOnFromNowWithoutMakingUpTheSkippedFires() async throws {
        let world = try await Self.world()
        let plane = world.plane
        try await world.test { client in
            #expect(try await Self.pause(client).status == .ok)
            // Two nights pass while it is paused.
            plane.advance(milliseconds: 2 * 86_400_000)
            let resumeWithoutReason = try await Self.pause(client, "resume", json: nil)
            #expect(resumeWithoutReason.status == .badRequest)

            let resumed = try await Self.pause(client, "resume", json: #"{"reason": "freeze lifted"}"#)
            #expect(resumed.status == .ok, "\(resumed.text)")
            #expect(try resumed.json["paused"] == false && resumed.json["paused_by"] == .null)
            // Now is 2026-11-20T11:06:40Z: the next fire is the next night, not the two it slept through.
            #expect(try resumed.json["next_fire_at"] == "2026-11-21T01:00:00.000Z")
            #expect(try resumed.json["skipped"] == 0 && resumed.json["started"] == 0)

            let again = try await Self.pause(client, "resume", json: #"{"reason": "twice"}"#)
            #expect(try again.status == .ok && again.json["next_fire_at"] == "2026-11-21T01:00:00.000Z")
        }
    }

    @Test func triggeringStartsOneRunAtOnceAndARepeatedKeyStartsNoOther() async throws {
        let world = try await Self.world()
        try await world.test { client in
            var headers = HTTPFields()
            headers[.init("Idempotency-Key")!] = "rerun-1"
            let triggered = try await client.send(.post, "/v1/schedules/Nightly/sweep/trigger", token: Token.operate,
                headers: headers)
            #expect(triggered.status == .accepted, "\(triggered.text)")
            #expect(try triggered.json["event_id"] == "schedule:Nightly/sweep/manual/rerun-1")
            #expect(try triggered.json["outcome"] == "applied")
            let runID = try #require(try triggered.json["run_id"]?.stringValue)
            let eventID = "schedule:Nightly/sweep/manual/rerun-1"
            #expect(runID == RunID.forTrigger(playbook: "Nightly", eventID: eventID).rawValue)

            // The run has the schedule's payload, marked as a fire by hand at the current time.
            let detail = try await client.send(.get, "/v1/runs/\(runID)", token: Token.read).decode(API.RunDetail.self)
            #expect(detail.summary.status == "running" && detail.summary.trigger == "schedule")
            #expect(detail.payload == [
                "scope": "open_permits",
                "schedule": ["id": "sweep", "fire_time": "2026-11-18T11:06:40.000Z", "manual": true],
            ])

            let repeated = try await client.send(.post, "/v1/schedules/Nightly/sweep/trigger", token: Token.operate,
                headers: headers)
            #expect(repeated.status == .accepted)
            #expect(try repeated.json["outcome"] == "ignored" && repeated.json["run_id"] == .string(runID))
            #expect(try await client.send(.get, "/v1/runs?playbook=Nightly", token: Token.read)
                .decode(API.RunPage.self).runs.map(\.runID) == [runID])

            // Without a key, the key is the current time; a paused schedule is triggered all the same.
            #expect(try await Self.pause(client).status == .ok)
            let unkeyed = try await client.send(.post, "/v1/schedules/Nightly/sweep/trigger", token: Token.operate)
            #expect(unkeyed.status == .accepted)
            #expect(try unkeyed.json["event_id"] == "schedule:Nightly/sweep/manual/1795000000000")
            #expect(try unkeyed.json["outcome"] == "applied" && unkeyed.json["run_id"] != .string(runID))
            #expect(try await client.send(.get, "/v1/runs?playbook=Nightly", token: Token.read)
                .decode(API.RunPage.self).runs.count == 2)

            // The schedule's own fires are left alone.
            let sweep = try await client.send(.get, "/v1/schedules?playbook=Nightly", token: Token.read)
                .json[path: "schedules.1"]
            #expect(sweep?["started"] == 0 && sweep?["last_run_id"] == .null)
            #expect(sweep?["next_fire_at"] == "2026-11-19T01:00:00.000Z")
        }
    }

    @Test(arguments: ["pause", "resume", "trigger"])
    func anUnknownPlaybookOrScheduleIs404NamingBoth(action: String) async throws {
        let world = try await Self.world()
        try await world.test { client in
            for (playbook, schedule) in [("Nightly", "nope"), ("Nope", "sweep"), ("FTC-Complaint", "sweep")] {
                let response = try await client.send(.post, "/v1/schedules/\(playbook)/\(schedule)/\(action)",
                    token: Token.operate, json: #"{"reason": "x"}"#)
                #expect(response.status == .notFound)
                #expect(try response.json["type"] == "https://hms-act.dev/problems/schedule-not-found")
                let detail = try #require(try response.json["detail"]?.stringValue)
                #expect(detail.contains("playbook \(playbook) has no schedule \(schedule)"), "\(detail)")
                #expect(detail.contains("GET /v1/schedules?playbook=\(playbook)"), "\(detail)")
            }
            #expect(try await client.send(.get, "/v1/runs", token: Token.read).decode(API.RunPage.self).runs.isEmpty)
        }
    }

    @Test func aReadTokenListsButChangesNothing() async throws {
        let world = try await Self.world()
        try await world.test { client in
            #expect(try await client.send(.get, "/v1/schedules", token: Token.read).status == .ok)
            for action in ["pause", "resume", "trigger"] {
                let response = try await Self.pause(client, action, token: Token.read)
                #expect(response.status == .forbidden, "\(action)")
                #expect(try response.json["type"] == "https://hms-act.dev/problems/insufficient-scope")
                #expect(try response.json["required_scope"] == "operate")
            }
            let listed = try await client.send(.get, "/v1/schedules", token: Token.read).json
            #expect(listed[path: "schedules.1.paused"] == false)
            #expect(try await client.send(.get, "/v1/runs", token: Token.read).decode(API.RunPage.self).runs.isEmpty)
        }
    }
}
