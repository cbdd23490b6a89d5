import ActAMQP
import ActEngine
import ActPlaybook
import ActService
import Foundation
import Synchronization

/// What the benchmark saw, keyed by run id: when each trigger was published, when its tasks arrived, when
/// their results left and when `run.completed` came back. Every reading is ``benchNanoseconds()``.
final class BenchLedger: Sendable {
    private struct Run {
        var sent: UInt64
        var firstDispatch: UInt64?
        var lastResult: UInt64?
        var turnarounds: [UInt64] = []
        var completed: UInt64?
    }

    private struct State {
        var runs: [String: Run] = [:]
        var completed = 0
        var tasks = 0
        var taskBytes = 0
        /// Wall-clock milliseconds of each SLA deadline announced in a task (`deadline`), by run.
        var deadlines: [String: Int64] = [:]
        /// Wall-clock lag between a deadline and its `sla.violation` arriving, in nanoseconds.
        var breachLags: [UInt64] = []
    }

    private let state = Mutex(State())

    var completedCount: Int { state.withLock { $0.completed } }
    var breachCount: Int { state.withLock { $0.breachLags.count } }

    /// Mean body size of the tasks received so far (the raw ceiling is measured with this size).
    var meanTaskBytes: Int { state.withLock { $0.tasks == 0 ? 512 : $0.taskBytes / $0.tasks } }

    func triggerSent(_ runIDs: [String], at time: UInt64) {
        state.withLock { state in
            for id in runIDs { state.runs[id] = Run(sent: time) }
        }
    }

    func taskReceived(runID: String, bytes: Int, at time: UInt64) {
        state.withLock { state in
            state.tasks += 1
            state.taskBytes += bytes
            guard var run = state.runs[runID] else { return }
            if run.firstDispatch == nil {
                run.firstDispatch = time
            } else if let last = run.lastResult, time > last {
                run.turnarounds.append(time - last)
            }
            state.runs[runID] = run
        }
    }

    func resultsSent(_ runIDs: [String], at time: UInt64) {
        state.withLock { state in
            for id in runIDs { state.runs[id]?.lastResult = time }
        }
    }

    func runCompleted(_ runID: String, at time: UInt64) {
        state.withLock { state in
            guard state.runs[runID]?.completed == nil else { return }
            state.runs[runID]?.completed = time
            state.completed += 1
        }
    }

    func deadlineAnnounced(runID: String, wallMilliseconds: Int64) {
        state.withLock { $0.deadlines[runID] = wallMilliseconds }
    }

    func breachReported(runID: String, wallMilliseconds: Int64) {
        state.withLock { state in
            guard let deadline = state.deadlines.removeValue(forKey: runID) else { return }
            state.breachLags.append(UInt64(max(0, wallMilliseconds - deadline)) * 1_000_000)
        }
    }

    /// Trigger→first task, per-step turnaround and trigger→`run.completed` over the runs in `runIDs`.
    func latencies(of runIDs: [String]) -> (firstDispatch: LatencySummary, turnaround: LatencySummary, run: LatencySummary) {
        state.withLock { state in
            var first: [UInt64] = []
            var turnarounds: [UInt64] = []
            var runs: [UInt64] = []
            for id in runIDs {
                guard let run = state.runs[id] else { continue }
                if let dispatch = run.firstDispatch { first.append(dispatch - run.sent) }
                turnarounds += run.turnarounds
                if let completed = run.completed { runs.append(completed - run.sent) }
            }
            return (LatencySummary(nanoseconds: first), LatencySummary(nanoseconds: turnarounds), LatencySummary(nanoseconds: runs))
        }
    }

    func breachLags() -> LatencySummary { state.withLock { LatencySummary(nanoseconds: $0.breachLags) } }

    /// Forgets per-run records (between phases, so memory and lookups stay small).
    func forgetRuns() {
        state.withLock { state in
            state.runs.removeAll(keepingCapacity: false)
            state.completed = 0
        }
    }
}

/// Reads a queue in batches the way hms-act itself does: a reading task fills a buffer, a batch loop takes
/// everything that arrived, handles it, and acknowledges it with one `multiple` ack.
struct BatchingReader: Sendable {
    let client: AMQPClient
    let queue: String
    let prefetch: UInt16
    let maxBatch: Int

    private final class Buffer: Sendable {
        let items = Mutex<[(AMQPDelivery, UInt64)]>([])
        let wakeups: AsyncStream<Void>
        let wake: AsyncStream<Void>.Continuation

        init() {
            (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }
    }

    /// Runs until cancelled. `handle` gets each batch with the time each delivery arrived. Batches are
    /// handled as they come, without waiting for the previous one (a worker answering "at once" must not
    /// queue tasks behind a publisher confirm); they are acknowledged in order, each once its own `handle`
    /// and every earlier one have returned, with one multiple ack.
    func run(_ handle: @escaping @Sendable ([(AMQPDelivery, UInt64)]) async throws -> Void) async throws {
        let consumer = try await client.consume(queue: queue, prefetch: prefetch)
        let buffer = Buffer()
        let client = self.client
        let maxBatch = self.maxBatch
        let (handled, handedOver) = AsyncStream.makeStream(of: (AMQPDeliveryTag, Task<Void, any Error>).self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { buffer.wake.finish() }
                for try await delivery in consumer {
                    let now = benchNanoseconds()
                    buffer.items.withLock { $0.append((delivery, now)) }
                    buffer.wake.yield()
                }
            }
            group.addTask {
                defer { handedOver.finish() }
                for await _ in buffer.wakeups {
                    while true {
                        let batch = buffer.items.withLock { items -> [(AMQPDelivery, UInt64)] in
                            let batch = Array(items.prefix(maxBatch))
                            items.removeFirst(batch.count)
                            return batch
                        }
                        guard let last = batch.last else { break }
                        handedOver.yield((last.0.deliveryTag, Task { try await handle(batch) }))
                    }
                }
            }
            group.addTask {
                for await (tag, work) in handled {
                    try await work.value
                    try await client.ack(tag, multiple: true)
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// The benchmark's worker: answers every task at once with `{"status": "completed", "output": {"ok": true}}`,
/// publishing a batch of results under one confirm window, then acknowledging the tasks with one multiple ack.
/// It reads the run, task and attempt from the task's `x-hms-*` headers, so it costs no JSON parsing.
struct EchoWorker: Sendable {
    let reader: BatchingReader
    let client: AMQPClient
    let resultsExchange: String
    let ledger: BenchLedger

    func run() async throws {
        let client = self.client
        let ledger = self.ledger
        let exchange = resultsExchange
        try await reader.run { batch in
            var messages: [AMQPMessage] = []
            var runIDs: [String] = []
            messages.reserveCapacity(batch.count)
            for (delivery, received) in batch {
                let headers = delivery.properties.headers
                guard case .string(let runID)? = headers["x-hms-run-id"], case .string(let taskID)? = headers["x-hms-task-id"],
                    case .string(let attempt)? = headers["x-hms-attempt"], case .string(let replyTo)? = headers["x-hms-reply-to"]
                else { continue }
                ledger.taskReceived(runID: runID, bytes: delivery.body.count, at: received)
                let body = #"{"task_id":"\#(taskID)","attempt":\#(attempt),"status":"completed","output":{"ok":true}}"#
                messages.append(AMQPMessage(
                    body: Array(body.utf8), exchange: exchange, routingKey: replyTo,
                    properties: AMQPProperties(contentType: "application/json", persistent: true, correlationID: runID,
                        messageID: "\(taskID)#\(attempt)/completed", type: "hms.task.result", appID: "hms-act-bench"),
                    mandatory: true))
                runIDs.append(runID)
            }
            ledger.resultsSent(runIDs, at: benchNanoseconds())
            let outcomes = try await client.publish(messages)
            if let refused = outcomes.first(where: { $0 != .confirmed }) {
                throw BenchError("a result was not confirmed by the broker: \(refused)")
            }
        }
    }
}

/// Publishes trigger events (`{"type", "id", "payload"}`) with publisher confirms, in batches.
struct TriggerPublisher: Sendable {
    let client: AMQPClient
    let exchange: String
    let type: String
    let playbookID: String
    let ledger: BenchLedger
    let prefix: String
    /// Bytes of filler in each event's payload (0: none).
    var padding = 0

    /// Publishes the events numbered `range`; records their send time under their run ids.
    func publish(_ range: Range<Int>) async throws {
        var messages: [AMQPMessage] = []
        var runIDs: [String] = []
        for number in range {
            let id = "\(prefix)-\(number)"
            let filler = padding > 0 ? #","pad":""# + String(repeating: "x", count: padding) + #"""# : ""
            let body = #"{"type":"\#(type)","id":"\#(id)","payload":{"n":\#(number)\#(filler)}}"#
            messages.append(AMQPMessage(
                body: Array(body.utf8), exchange: exchange, routingKey: type,
                properties: AMQPProperties(contentType: "application/json", persistent: true, messageID: id, appID: "hms-act-bench"),
                mandatory: true))
            runIDs.append(OutboundMessages.runID(playbook: playbookID, eventID: id).rawValue)
        }
        ledger.triggerSent(runIDs, at: benchNanoseconds())
        let outcomes = try await client.publish(messages)
        if let refused = outcomes.first(where: { $0 != .confirmed }) {
            throw BenchError("a trigger was not accepted by the broker: \(refused); is hms-act bound to \(type) on \(exchange)?")
        }
    }
}
