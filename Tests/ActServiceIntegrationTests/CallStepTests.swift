import ActEngine
import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Hummingbird
import ServiceLifecycle
import Synchronization
import Testing

/// `call:` steps performed by hms-act itself against a real HTTP server on loopback (Hummingbird), with the
/// real broker and database: chapter 002's playbook as printed, retries on 5xx with one `Idempotency-Key`
/// per attempt, 4xx failing the step for good, timeouts feeding the step's `retry:`, and nothing published.
@Suite struct CallStepTests {
    /// A small HTTP service that records every request and answers as `answer` says.
    final class LocalService: Sendable {
        struct Request: Sendable {
            var method: String
            var path: String
            var headers: [String: String]
            var body: JSONValue
        }

        struct Answer: Sendable {
            var status: Int
            var body: String = ""
            var retryAfter: String?
            var delay: Duration = .zero
        }

        let received = Mutex<[Request]>([])
        let answer: @Sendable (Request, _ seenBefore: Int) -> Answer

        init(answer: @escaping @Sendable (Request, Int) -> Answer) { self.answer = answer }

        func requests(_ path: String) -> [Request] { received.withLock { $0.filter { $0.path == path } } }

        /// Serves on a free loopback port while `body` runs; passes the base URL.
        func serving(_ body: (String) async throws -> Void) async throws {
            let router = Router()
            router.on("**", method: .post) { request, _ -> Response in try await self.handle(request) }
            router.on("**", method: .put) { request, _ -> Response in try await self.handle(request) }
            let port = Mutex<Int?>(nil)
            let application = Application(router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
                logger: TestEnvironment.logger("test.local-service"))
            let group = ServiceGroup(configuration: .init(services: [.init(service: application)],
                logger: TestEnvironment.logger("test.local-service")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(30)
                while port.withLock({ $0 }) == nil, clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                try await body("http://127.0.0.1:\(try #require(port.withLock { $0 }))")
                await group.triggerGracefulShutdown()
                do { try await tasks.waitForAll() } catch is CancellationError {}
            }
        }

        private func handle(_ request: Hummingbird.Request) async throws -> Response {
            let bytes = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let recorded = Request(method: request.method.rawValue, path: request.uri.path, headers: headers,
                body: (try? JSONValue(parsing: Array(buffer: bytes))) ?? .null)
            let seen = received.withLock { list in
                defer { list.append(recorded) }
                return list.filter { $0.path == recorded.path && $0.headers["idempotency-key"] == headers["idempotency-key"] }.count
            }
            let answer = self.answer(recorded, seen)
            if answer.delay > .zero { try? await Task.sleep(for: answer.delay) }
            var fields = HTTPFields()
            if let retryAfter = answer.retryAfter { fields[.retryAfter] = retryAfter }
            if !answer.body.isEmpty { fields[.contentType] = "application/json" }
            return Response(status: .init(code: answer.status), headers: fields,
                body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
    }

    static func calls(to base: String, attempts: Int = 3, timeoutMilliseconds: Int = 2_000)
        -> (inout ServiceConfiguration) -> Void
    {
        { configuration in
            configuration.calls.services = ["finance=\(base)", "notify=\(base)/"]
            configuration.calls.baseURL = base  // helpdesk, hitl: the default
            configuration.calls.attempts = attempts
            configuration.calls.backoffMilliseconds = 50
            configuration.calls.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    static var chapter002: String {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            return try String(contentsOf: root.appendingPathComponent("playbooks/payment_failed.yaml"), encoding: .utf8)
        }
    }


    @Test func chapter002CallsTheServicesRetriesA503AndPublishesNoTask() async throws {
        let service = LocalService { request, seen in
            switch request.path {
            case "/finance/freeze": .init(status: 200, body: #"{"frozen": true, "reference": "FRZ-1"}"#)
            case "/notify/sms" where seen == 0: .init(status: 503, body: "busy", retryAfter: "0")
            case "/notify/sms", "/notify/email": .init(status: 204)
            case "/helpdesk/ticket": .init(status: 201, body: #"{"ticket": "HD-42"}"#)
            default: .init(status: 404, body: #"{"error": "no such route"}"#)
            }
        }
        try await service.serving { base in
            try await SystemHarness.run(playbooks: [try Self.chapter002], configure: Self.calls(to: base)) { _ in
                .complete(["answered": "by an AMQP worker"])
            } _: { system in
                try await system.emit("payment_failed", id: "987", payload: ["id": 987, "citizen": "C-1"])
                let run = System.runID(playbook: "payment_failed_flow", eventID: "987")
                try await system.waitUntilWaiting(run)
                try await system.reply(["run_id": .string(run), "signal": "wait_for_fix", "payload": ["iban": "DE89"]])
                #expect(try await system.waitForEnd(of: run) == "run.completed")

                // Each service called as the chapter prints it, the payload as the body, hms-act's headers.
                let freeze = try #require(service.requests("/finance/freeze").first)
                #expect(freeze.method == "POST" && freeze.body == ["id": 987, "citizen": "C-1"])
                let freezeTask = try #require(freeze.headers["x-hms-task-id"])
                #expect(freeze.headers["idempotency-key"] == "\(freezeTask)#1")
                #expect(freeze.headers["x-hms-run-id"] == run && freeze.headers["x-hms-step-id"] == "freeze_payments")
                #expect(freeze.headers["content-type"] == "application/json")
                #expect(freeze.headers["traceparent"]?.hasPrefix("00-") == true)
                #expect(service.requests("/notify/email").count == 1)
                // The 503 was tried again with the same key: the service can tell it is one request.
                let sms = service.requests("/notify/sms")
                #expect(sms.count == 2 && Set(sms.map { $0.headers["idempotency-key"] }).count == 1)
                #expect(service.requests("/helpdesk/ticket").count == 1)
                #expect(service.requests("/hitl/escalate").isEmpty)  // the signal ended the wait

                // The answers are the steps' outputs.
                let tasks = try await system.store.tasks(ofRun: run)
                let freezeRow = try #require(tasks.first { $0.stepID == "freeze_payments" })
                #expect(freezeRow.target == "http" && freezeRow.status == .completed)
                #expect(freezeRow.output == ["frozen": true, "reference": "FRZ-1"])
                #expect(tasks.first { $0.stepID == "create_ticket" }?.output == ["ticket": "HD-42"])
                #expect(tasks.filter { $0.output == ["status": 204] }.count == 2)  // email and sms: no body

                // Nothing went over the broker, and nothing is stuck.
                #expect(!system.tasks.all.contains { $0.routingKey.hasPrefix("task.call.") })
                #expect(try await system.store.openIncidents(limit: 10).isEmpty)
                #expect(try await system.store.gauges().outboxPending == 0)
            }
        }
    }

    /// `calls.rate_limits`: calls to a service begin at its rate across two replicas, the rest keep their
    /// lease until their token is due (no try counted), and every run completes.
    @Test func aServicesRateLimitSpacesItsCallsAcrossReplicas() async throws {
        let playbook = """
            id: freeze-only
            trigger: freeze.requested
            steps:
              - id: freeze
                call: POST /finance/freeze
            """
        let arrivals = Mutex<[ContinuousClock.Instant]>([])
        let service = LocalService { _, _ in
            arrivals.withLock { $0.append(.now) }
            return .init(status: 200, body: #"{"frozen": true}"#)
        }
        try await service.serving { base in
            let configure = Self.calls(to: base)
            try await SystemHarness.run(playbooks: [playbook], replicas: 2, configure: { configuration in
                configure(&configuration)
                configuration.calls.rateLimits = ["finance=120/min"]
            }) { _ in .complete([:]) } _: { system in
                let ids = (0..<8).map { "f-\($0)" }
                for id in ids { try await system.emit("freeze.requested", id: id, payload: ["account": 12]) }
                for id in ids {
                    #expect(try await system.waitForEnd(of: System.runID(playbook: "freeze-only", eventID: id)) == "run.completed")
                }
                let times = arrivals.withLock { $0 }.sorted()
                #expect(times.count == 8, "each call made once: \(times.count)")
                // One token saved up, then one every 500 ms: the eighth call no sooner than 3.5 s after the first.
                let span = try #require(times.last) - (try #require(times.first))
                #expect(span >= .milliseconds(3_300), "8 calls at 120/min took only \(span)")
            }
        }
    }

    @Test func aFourHundredFailsTheStepWithoutRetryingAndTheRunFails() async throws {
        let playbook = """
            id: freeze-only
            trigger: freeze.requested
            steps:
              - id: freeze
                call: POST /finance/freeze
                retry: 3
            """
        let service = LocalService { _, _ in .init(status: 422, body: #"{"error": "account 12 is closed"}"#) }
        try await service.serving { base in
            try await SystemHarness.run(playbooks: [playbook], configure: Self.calls(to: base)) { _ in .complete([:]) } _: {
                system in
                try await system.emit("freeze.requested", id: "f-1", payload: ["account": 12])
                let run = System.runID(playbook: "freeze-only", eventID: "f-1")
                #expect(try await system.waitForEnd(of: run) == "run.failed")
                #expect(service.requests("/finance/freeze").count == 1)  // 4xx: neither tried again nor retried
                let task = try #require(try await system.store.tasks(ofRun: run).first)
                #expect(task.status == .failed)
                #expect(task.error?.contains("answered 422") == true && task.error?.contains("account 12 is closed") == true)
            }
        }
    }

    @Test func aTimeoutFailsTheAttemptAndTheStepsRetrySendsANewKey() async throws {
        let playbook = """
            id: slow-freeze
            trigger: slow.freeze
            steps:
              - id: freeze
                call: POST /finance/freeze
                retry:
                  max: 1
                  backoff: fixed
                  initial: 100ms
            """
        // The first attempt's key never gets an answer in time; the second attempt's does.
        let service = LocalService { request, _ in
            request.headers["idempotency-key"]?.hasSuffix("#1") == true
                ? .init(status: 200, body: "{}", delay: .seconds(2)) : .init(status: 200, body: #"{"frozen": true}"#)
        }
        try await service.serving { base in
            try await SystemHarness.run(playbooks: [playbook],
                configure: Self.calls(to: base, attempts: 2, timeoutMilliseconds: 300)) { _ in .complete([:]) } _: { system in
                try await system.emit("slow.freeze", id: "s-1")
                let run = System.runID(playbook: "slow-freeze", eventID: "s-1")
                #expect(try await system.waitForEnd(of: run) == "run.completed")
                let keys = service.requests("/finance/freeze").compactMap { $0.headers["idempotency-key"] }
                #expect(keys.count == 3 && keys.filter { $0.hasSuffix("#1") }.count == 2 && keys.last?.hasSuffix("#2") == true,
                    "\(keys)")
                let tasks = try await system.store.tasks(ofRun: run).sorted { $0.attempt < $1.attempt }
                #expect(tasks.map(\.status) == [.failed, .completed])
                #expect(tasks.first?.error?.contains("no answer within 300 ms") == true)
            }
        }
    }

    /// A `compensate:` call is an HTTP call too: when a later call fails for good, the refund is posted with
    /// the charge's answer as its body.
    @Test func aCompensatingCallUndoesACompletedCall() async throws {
        let playbook = """
            id: fee
            trigger: fee.due
            steps:
              - id: charge
                call: POST /finance/charge
                compensate:
                  call: POST /finance/refund
              - id: register
                call: POST /finance/register
            """
        let service = LocalService { request, _ in
            switch request.path {
            case "/finance/charge": .init(status: 200, body: #"{"charge": "CH-7", "amount": 50}"#)
            case "/finance/register": .init(status: 409, body: #"{"error": "permit already registered"}"#)
            default: .init(status: 200, body: #"{"refunded": true}"#)
            }
        }
        try await service.serving { base in
            try await SystemHarness.run(playbooks: [playbook], configure: Self.calls(to: base)) { _ in .complete([:]) } _: {
                system in
                try await system.emit("fee.due", id: "fee-1", payload: ["permit": "P-1"])
                let run = System.runID(playbook: "fee", eventID: "fee-1")
                #expect(try await system.waitForEnd(of: run) == "run.failed")
                let refund = try #require(service.requests("/finance/refund").first)
                #expect(refund.body == ["charge": "CH-7", "amount": 50])
                #expect(refund.headers["idempotency-key"]?.hasSuffix("/compensate#1") == true, "\(refund.headers)")
                #expect(service.requests("/finance/refund").count == 1)
            }
        }
    }

    @Test func aCallWithoutABaseURLStillGoesToABridgeWorkerOverAMQP() async throws {
        let playbook = """
            id: bridge
            trigger: bridge.go
            steps:
              - id: archive
                call: POST /archive/store
            """
        let service = LocalService { _, _ in .init(status: 200) }
        try await service.serving { base in
            try await SystemHarness.run(playbooks: [playbook], configure: { configuration in
                configuration.calls.services = ["finance=\(base)"]  // not `archive`, and no default
            }) { _ in .complete(["stored": true]) } _: { system in
                try await system.emit("bridge.go", id: "b-1")
                let run = System.runID(playbook: "bridge", eventID: "b-1")
                #expect(try await system.waitForEnd(of: run) == "run.completed")
                let message = try #require(system.tasks.all.first { $0.routingKey == "task.call.post.archive.store" })
                #expect(message.body["call"]?["path"] == "/archive/store" && message.body["call"]?["method"] == "POST")
                #expect(service.received.withLock { $0.isEmpty })
            }
        }
    }
}
