internal import ActAMQP
internal import ActEngine
internal import ActPlaybook
internal import ActPostgres
internal import ActStore
public import ActService
internal import Foundation
internal import Synchronization

/// The fault suite on the in-memory ports: the workload runs through every service while a seeded
/// schedule injects faults — commits that fail or whose answer is lost, failed writes and claims, lost
/// acks, publishes that fail before or after the broker took them, nacks, dropped connections — and
/// workers answer late, out of order and up to three times. Then the faults stop, everything settles, and
/// ``Checker`` proves nothing was lost or applied twice. One seed runs in a few seconds, so the short form
/// runs several seeds in the unit tests. A seed fixes the workload, the answers and the fault schedule; the
/// services run concurrently, so the interleaving around each fault can differ from one run to the next
/// (run a failing seed a few times).
public enum FaultSimulation {
    /// The faults the schedule draws from.
    public enum Fault: String, CaseIterable, Sendable {
        case commitFails = "commit fails"
        case commitAnswerLost = "commit answer lost"
        case writeFails = "write fails"
        case claimFails = "claim fails"
        case ackLost = "ack lost"
        case publishFails = "publish fails"
        case confirmLost = "confirm lost"
        case nack
        case connectionDrops = "connection drops"
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var seed: UInt64
        public var runs: Int
        public var faults: [Fault: Int]
        public var violations: [Checker.Violation]
        /// Wall-clock time until everything settled after the faults stopped.
        public var settled: Duration

        public var description: String {
            let injected = faults.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) ×\($0.value)" }
            let checks = Checker.checks.map { check in
                "\(violations.contains { $0.check == check } ? "FAIL" : "ok") \(check)"
            }
            return "seed \(seed): \(runs) runs; faults: \(injected.joined(separator: ", ")); settled in \(settled)\n  "
                + checks.joined(separator: "\n  ")
                + (violations.isEmpty ? "" : "\n  " + violations.prefix(20).map(\.description).joined(separator: "\n  "))
        }
    }

    /// Runs the workload of `runs` runs under the faults of `seed`.
    ///
    /// - Parameters:
    ///   - faultRate: The chance of a fault at each step of the driver.
    ///   - store: Wraps the in-memory store the services use (a deliberately broken one, to show the
    ///     checker catches what it breaks).
    ///   - settleTimeout: How long everything may take to settle once the faults stop.
    ///   - faults: The faults the schedule draws from.
    public static func run(seed: UInt64, runs: Int = 40, faultRate: Double = 0.08, faults: [Fault] = Fault.allCases,
        settleTimeout: Duration = .seconds(30), store wrap: (@Sendable (any ServiceStore) -> any ServiceStore)? = nil)
        async throws -> Report
    {
        var random = SeededRandom(seed: seed)
        let workload = Workload(runs: runs, random: &random, prefix: "s\(seed)")
        let system = try await InMemorySystem(playbooks: Workload.playbooks, wrapStore: wrap) {
            $0.engine.timerPollMilliseconds = 5
        }
        let driver = Driver(system: system, workload: workload, random: random)
        let settled = try await system.run {
            try await driver.drive(faultRate: faultRate, faults: faults, settleTimeout: settleTimeout)
        }
        let tables = system.store.committed
        let amqp = system.configuration.amqp
        let observed = Observed(
            runs: tables.runs.mapValues(\.status), tasks: Array(tables.tasks.values), audit: tables.audit,
            governance: system.governance.map { ($0.routingKey, $0.body["run_id"]?.stringValue) },
            outboxLeft: tables.outbox.count, timersLeft: tables.timers.count,
            messagesLeft: Dictionary(uniqueKeysWithValues: [amqp.queues.triggers, amqp.queues.results, amqp.queues.dead,
                "workers"].map { ($0, system.broker.messages(in: $0).count) }))
        let violations = Checker.check(workload, confirmed: driver.confirmed, observed)
        return Report(seed: seed, runs: runs, faults: driver.injected, violations: violations, settled: settled)
    }

    /// Publishes the triggers, plays the workers, moves the clock and injects the faults.
    final class Driver: Sendable {
        let system: InMemorySystem
        let workload: Workload
        private struct State {
            var random: SeededRandom
            var confirmed = Set<String>()
            var answers: [(body: JSONValue, copies: Int)] = []
            var injected: [Fault: Int] = [:]
        }

        private let state: Mutex<State>

        init(system: InMemorySystem, workload: Workload, random: SeededRandom) {
            self.system = system
            self.workload = workload
            state = Mutex(State(random: random))
        }

        var confirmed: Set<String> { state.withLock { $0.confirmed } }
        var injected: [Fault: Int] { state.withLock { $0.injected } }

        private func random<T>(_ body: (inout SeededRandom) -> T) -> T {
            state.withLock { body(&$0.random) }
        }

        /// Drives the workload until every run ended, then lets everything settle without faults.
        ///
        /// - Returns: How long settling took.
        func drive(faultRate: Double, faults: [Fault], settleTimeout: Duration) async throws -> Duration {
            let worker = Task { try await work() }
            defer { worker.cancel() }
            var pending = workload.scripts
            var steps = 0
            while steps < 3_000, !pending.isEmpty || !allEnded() {
                steps += 1
                let count = random { Int.random(in: 0...3, using: &$0) }
                for script in pending.prefix(count) where try await publishTrigger(script) {
                    pending.removeAll { $0.eventID == script.eventID }
                }
                try await flushAnswers()
                if !faults.isEmpty, random({ $0.chance(faultRate) }) { inject(random { faults.randomElement(using: &$0)! }) }
                if random({ $0.chance(0.3) }) {
                    system.clock.advance(by: .milliseconds(random { Int.random(in: 500...5_000, using: &$0) }))
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            // The faults stop; everything must settle.
            system.store.faults.clear()
            system.broker.faults.clear()
            system.broker.dropConnection()  // what a reconnect does: unacknowledged deliveries come again
            let clock = ContinuousClock()
            let start = clock.now
            while clock.now - start < settleTimeout, !settled() {
                for script in workload.scripts where !confirmed.contains(script.eventID) {
                    _ = try await publishTrigger(script)
                }
                try await flushAnswers(all: true)
                system.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(2))
            }
            return clock.now - start
        }

        private func inject(_ fault: Fault) {
            state.withLock { $0.injected[fault, default: 0] += 1 }
            let store = system.store.faults
            let broker = system.broker.faults
            let database = PostgresError(code: .connectionClosed, reason: "injected: \(fault.rawValue)")
            let amqp = AMQPError(.connectionClosed, replyText: "injected: \(fault.rawValue)")
            switch fault {
            case .commitFails: store.fail(.commit, with: database)
            case .commitAnswerLost: store.fail(.commit, moment: .after, with: database)
            case .writeFails: store.fail(.write, with: database)
            case .claimFails:
                store.fail(.claimOutbox, with: database)
                store.fail(.claimDueTimers, with: database)
            case .ackLost: broker.fail(.ack, with: amqp)
            case .publishFails: broker.fail(.publish, with: amqp)
            case .confirmLost: broker.fail(.publish, moment: .after, with: amqp)
            case .nack: system.broker.nackNext(1)
            case .connectionDrops: system.broker.dropConnection()
            }
        }

        /// Publishes a trigger; false when its publish was not confirmed (the driver tries again later).
        private func publishTrigger(_ script: Workload.Script) async throws -> Bool {
            do {
                try await system.publishTrigger(id: script.eventID, type: script.kind.trigger)
                state.withLock { _ = $0.confirmed.insert(script.eventID) }
                return true
            } catch is AMQPError {
                return false
            } catch is InjectedFault {
                return false  // nacked
            }
        }

        /// The workers: read tasks, decide the answers (sent later, out of order, up to three times).
        private func work() async throws {
            let subscription = try await system.broker.subscribe(queue: "workers", prefetch: 50, consumerTag: "worker")
            while !Task.isCancelled {
                let deliveries = try await subscription.next()
                guard let last = deliveries.last else { return }
                for delivery in deliveries {
                    guard let task = try? JSONValue(parsing: delivery.body) else { continue }
                    for body in replies(to: task) {
                        state.withLock { state in
                            let copies = Int.random(in: 1...3, using: &state.random)
                            state.answers.append((body, copies))
                        }
                    }
                }
                try? await system.broker.ack(last.deliveryTag, multiple: true)
            }
        }

        /// What the workers send for `task` (``Workload/replies(to:script:)``).
        private func replies(to task: JSONValue) -> [JSONValue] {
            guard let run = task["run_id"]?.stringValue, let script = workload.scripts.first(where: {
                OutboundMessages.runID(playbook: $0.kind.playbookID, eventID: $0.eventID).rawValue == run
            }) else { return [] }
            return Workload.replies(to: task, script: script)
        }

        /// Publishes some of the answers waiting (all of them when `all`), in a random order.
        private func flushAnswers(all: Bool = false) async throws {
            let batch = state.withLock { state -> [(body: JSONValue, copies: Int)] in
                state.answers.shuffle(using: &state.random)
                let count = all ? state.answers.count : Int.random(in: 0...state.answers.count, using: &state.random)
                let batch = Array(state.answers.prefix(count))
                state.answers.removeFirst(count)
                return batch
            }
            for (body, copies) in batch {
                var sent = 0
                while sent < copies {
                    do {
                        try await system.publish(body.canonicalEncoding, exchange: system.configuration.amqp.exchanges.results,
                            routingKey: "result.fault")
                        sent += 1
                    } catch {
                        if sent > 0 { break }  // one copy arrived; the rest were only duplicates
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
            }
        }

        private func allEnded() -> Bool {
            let runs = system.store.committed.runs
            return confirmed.allSatisfy { id in
                guard let script = workload.script(forEvent: id) else { return true }
                let run = OutboundMessages.runID(playbook: script.kind.playbookID, eventID: id).rawValue
                return ["completed", "failed", "cancelled"].contains(runs[run]?.status ?? "")
            }
        }

        private func settled() -> Bool {
            let tables = system.store.committed
            let amqp = system.configuration.amqp
            return confirmed.count == workload.scripts.count && allEnded() && tables.outbox.isEmpty
                && tables.timers.isEmpty && state.withLock({ $0.answers.isEmpty })
                && [amqp.queues.triggers, amqp.queues.results, "workers"].allSatisfy {
                    system.broker.messages(in: $0).isEmpty
                }
        }
    }
}
