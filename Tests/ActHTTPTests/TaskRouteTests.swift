import ActHTTP
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("tasks")
struct TaskRouteTests {
    /// Chapter 001's worker: fetch its tasks by actor, post the severity, and the run moves on.
    @Test func chapter001WorkerFlow() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let inbox = try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler", token: Token.read)
            #expect(inbox.status == .ok)
            let tasks = try #require(try inbox.json.arrayValue)  // a bare list, as the chapter iterates it
            #expect(tasks.count == 1)
            let task = try #require(tasks.first)
            let taskID = try #require(task["task_id"]?.stringValue)
            let id = try #require(task["id"]?.stringValue)
            #expect(!id.contains("/") && id.allSatisfy { $0.isLetter || $0.isNumber || "_-".contains($0) })
            #expect(taskID == "\(runID)/classify/1")
            #expect(task["assignee"] == "ai.fraud-labeler")
            #expect(task["status"] == "dispatched")
            #expect(task["attempt"] == 1)
            #expect(task["agent"] == .null)
            #expect(task["deadline"] == .null)
            #expect(task["compensation"] == false)

            // The chapter's f"http://act/tasks/{task['id']}/complete", no encoding.
            let done = try await client.send(.post, "/act/tasks/\(id)/complete", token: Token.operate,
                json: #"{"severity": "High"}"#)
            #expect(done.status == .accepted)
            #expect(try done.json == ["task_id": .string(taskID), "attempt": 1, "outcome": "applied"])

            do {
                let value = try await client.send(.get, "/act/tasks?actor=AI:fraud-labeler")
                #expect(try value.json == [])
            }
            let next = try await client.send(.get, "/v1/tasks?actor=HUMAN:investigator").json["tasks"]?.arrayValue
            #expect(next?.count == 1)
            #expect(next?.first?["task_id"] == .string("\(runID)/human_review/1"))
            #expect(next?.first?["deadline"]?.stringValue != nil)

            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.steps.map(\.stepID) == ["classify", "severity_branch", "human_review"])
            #expect(detail.steps[0].status == "completed")
            #expect(detail.steps[0].output == ["severity": "High"])
            #expect(detail.steps[0].durationMS == 0)
            #expect(detail.steps[2].sla.state == .green)
            #expect(detail.steps[2].sla.deadline != nil)
            #expect(detail.steps[2].sla.warnAt != nil)
            #expect(detail.tasks.first?.status == "completed")
            #expect(detail.tasks.first?.agent == nil)
            #expect(detail.timeline.contains { $0.kind == "task.completed" && $0.actor == "ops" })
        }
    }

    @Test func allOpenTasksWithoutActor() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            _ = try await startFTCRun(client, id: "a")
            _ = try await startFTCRun(client, id: "b")
            do {
                let value = try await client.send(.get, "/v1/tasks")
                #expect(try value.json["tasks"]?.arrayValue?.count == 2)
            }
            do {
                let value = try await client.send(.get, "/v1/tasks?limit=1")
                #expect(try value.json["tasks"]?.arrayValue?.count == 1)
            }
            do {
                let value = try await client.send(.get, "/v1/tasks?actor=ai.fraud-labeler")
                #expect(try value.json["tasks"]?.arrayValue?.count == 2)
            }
            do {
                let value = try await client.send(.get, "/v1/tasks?actor=HUMAN:nobody")
                #expect(try value.json["tasks"] == [])
            }
        }
    }

    @Test func wrappedOutputWithAttemptAndAgent() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let task = pathSegment("\(runID)/classify/1")
            let done = try await client.send(.post, "/v1/tasks/\(task)/complete",
                json: #"{"output": {"severity": "Low"}, "attempt": 1, "agent": "root"}"#)
            #expect(try done.json["outcome"] == "applied")
            let repeated = try await client.send(.post, "/v1/tasks/\(task)/complete", json: #"{"output": {"severity": "Low"}}"#)
            #expect(repeated.status == .accepted)
            #expect(try repeated.json["outcome"] == "ignored")

            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.steps[0].output == ["severity": "Low"])
            #expect(detail.steps.last?.stepID == "notify_citizen")
            #expect(detail.timeline.contains { $0.kind == "task.completed" && $0.actor == "root" })

            let wrongAttempt = try await client.send(.post, "/v1/tasks/\(pathSegment("\(runID)/notify_citizen/1"))/complete",
                json: #"{"output": {}, "attempt": 3}"#)
            #expect(try wrongAttempt.json["outcome"] == "ignored")
        }
    }

    @Test func failTaskFailsTheRun() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.test { client in
            let runID = try await startFTCRun(client)
            let task = pathSegment("\(runID)/classify/1")
            let failed = try await client.send(.post, "/act/tasks/\(task)/fail", token: Token.operate,
                json: #"{"reason": "model unavailable", "retryable": false}"#)
            #expect(failed.status == .accepted)
            #expect(try failed.json == ["task_id": .string("\(runID)/classify/1"), "attempt": 1, "outcome": "applied"])
            let detail = try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self)
            #expect(detail.summary.status == "failed")
            #expect(detail.failure == API.Failure(step: "classify", reason: "model unavailable"))
            #expect(detail.steps[0].error == "model unavailable")
            #expect(detail.tasks.first?.status == "failed")
        }
    }

    @Test func slaLightsFollowTheClock() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        let runID = try await world.test { client in
            let runID = try await startFTCRun(client)
            try await client.send(.post, "/v1/tasks/\(pathSegment("\(runID)/classify/1"))/complete", json: #"{"severity": "High"}"#)
            return runID
        }
        func light() async throws -> API.SLA {
            try await world.test { client in
                try await client.send(.get, "/v1/runs/\(runID)").decode(API.RunDetail.self).steps[2].sla
            }
        }
        let green = try await light()
        #expect(green.state == .green)
        world.plane.advance(milliseconds: 3 * 3_600_000 + 15 * 60_000)  // past 80% of 4h
        let yellow = try await light()
        #expect(yellow.state == .yellow)
        world.plane.advance(milliseconds: 3_600_000)  // past 4h; the breach timer has not fired
        let red = try await light()
        #expect(red.state == .red)
        #expect(red.deadline == green.deadline)
        let deadline = try #require(green.deadline)
        let warnAt = try #require(green.warnAt)
        #expect(warnAt < deadline)
    }
}
