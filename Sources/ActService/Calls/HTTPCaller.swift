internal import ActEngine
internal import ActPlaybook
public import ActStore
internal import ActThreads
internal import Foundation
public import Logging
public import ServiceLifecycle
internal import Synchronization

/// Performs the `call:` steps hms-act calls itself (``ServiceConfiguration/Calls``).
///
/// The engine puts such a task in `pull_tasks` under ``PullTask/httpCaller`` in the transaction that
/// dispatches it (no outbox row, never published). This service, on every replica, claims them with the
/// pull agents' leases (`FOR UPDATE SKIP LOCKED`: one replica per task at a time), sends the request
/// (``HTTPCall``), tries again on 5xx/408/429/timeouts with doubling backoff (the lease extended before
/// each try), and applies the verdict as the task's result through the orchestrator, like a worker's.
/// Nothing blocks a thread: up to `calls.concurrency` calls are in flight per replica, each a task.
///
/// If the replica dies mid-call, the lease runs out (a timeout plus 10 s after the last try began) and
/// any replica performs the attempt again with the same `Idempotency-Key`, so the service can tell.
/// On graceful shutdown no new call or try starts; calls in flight finish their try.
public struct HTTPCaller: Service {
    let orchestrator: Orchestrator
    let store: Store
    /// Makes the HTTP client when the service starts with calls to perform (and only then: an
    /// AsyncHTTPClient must be shut down before it is released, which ``run()`` does when it ends).
    let makeTransport: @Sendable () -> any HTTPCallTransport
    let logger: Logger

    public init(orchestrator: Orchestrator, store: Store, logger: Logger,
        transport makeTransport: @escaping @Sendable () -> any HTTPCallTransport)
    {
        self.orchestrator = orchestrator
        self.store = store
        self.makeTransport = makeTransport
        self.logger = logger
    }

    var settings: ServiceConfiguration.Calls { orchestrator.configuration.calls }

    /// The lease one try needs: its timeout and 10 s for the answer to be applied.
    var leaseMilliseconds: Int64 { Int64(settings.timeoutMilliseconds) + 10_000 }

    public func run() async throws {
        defer { logger.info("HTTP caller stopped") }
        guard orchestrator.callScope != .none else {
            // No call is configured: nothing to claim, ever. Stay up with the other services.
            try? await gracefulShutdown()
            return
        }
        let transport = makeTransport()
        let baseURLs = (try? settings.serviceBaseURLs()) ?? [:]
        let progress = Progress()
        let slotFreed = Signal()
        await withTaskGroup(of: Void.self) { group in
            await withGracefulShutdownHandler {
                var backoff = Duration.milliseconds(100)
                var lastPrune = ContinuousClock.now - .seconds(60)
                while !progress.isStopping && !Task.isCancelled {
                    let free = settings.concurrency - progress.inFlight.withLock { $0 }
                    if free <= 0 {
                        await slotFreed.wait(timeout: .seconds(1))
                        continue
                    }
                    do {
                        if ContinuousClock.now - lastPrune > .seconds(30) {
                            try await store.prunePullTasks(assignee: PullTask.httpCaller)
                            lastPrune = .now
                        }
                        let leaseID = "http-" + UUID().uuidString.lowercased()
                        let claimed = try await store.claimPullTasks(assignee: PullTask.httpCaller, limit: min(free, 100),
                            leaseID: leaseID, leaseMilliseconds: leaseMilliseconds)
                        backoff = .milliseconds(100)
                        let ready = try await holdForRateLimits(claimed, baseURLs: baseURLs)
                        for task in ready {
                            progress.inFlight.withLock { $0 += 1 }
                            group.addTask {
                                await perform(task, transport: transport, baseURLs: baseURLs,
                                    stopping: { progress.isStopping })
                                progress.inFlight.withLock { $0 -= 1 }
                                slotFreed.signal()
                            }
                        }
                        if claimed.count < min(free, 100) {
                            // Woken by a commit that dispatched a call; the poll finds other replicas' and
                            // expired leases.
                            await orchestrator.callSignal.wait(timeout: .seconds(1))
                        }
                    } catch {
                        ServiceMetrics.loopFailed(service: "http_caller")
                        logger.warning("HTTP caller could not claim calls; retrying",
                            metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                        try? await orchestrator.sleep(backoff)
                        backoff = min(backoff * 2, .seconds(10))
                    }
                }
            } onGracefulShutdown: {
                progress.stopping.withLock { $0 = true }
                orchestrator.callSignal.signal()
                slotFreed.signal()
            }
            await group.waitForAll()
        }
        await transport.shutdown()
    }

    /// Takes a token of its service's `calls.rate_limits` for each claimed call (the bucket `call:<service>`
    /// in `rate_buckets`, shared by every replica, ``StoreTransaction/takeRateTokens(key:wanted:interval:burst:)``).
    /// A call without one keeps its lease until its token is due, so no replica begins it before then (no try
    /// is counted; its SLA keeps running). Returns the calls to perform now.
    func holdForRateLimits(_ claimed: [ClaimedTask], baseURLs: [String: String]) async throws -> [ClaimedTask] {
        let limits = (try? settings.serviceRateLimits()) ?? [:]
        guard !limits.isEmpty else { return claimed }
        var byService: [String: [Int]] = [:]
        for (index, task) in claimed.enumerated() {
            // One that cannot be read is not held: performing it fails it with the reason.
            guard let call = try? HTTPCall(message: task.task.body, baseURLs: baseURLs, defaultBaseURL: settings.baseURL),
                limits[call.service] != nil
            else { continue }
            byService[call.service, default: []].append(index)
        }
        var held: Set<Int> = []
        for service in byService.keys.sorted() {
            guard let limit = limits[service], let indices = byService[service] else { continue }
            let (granted, waits) = try await store.withTransaction { transaction in
                try await transaction.takeRateTokens(key: "call:" + service, wanted: indices.count,
                    interval: limit.interval, burst: limit.burst)
            }
            for (index, wait) in zip(indices.dropFirst(granted), waits) {
                held.insert(index)
                let task = claimed[index]
                _ = try await store.extendPullLease(taskID: task.task.taskID, attempt: task.task.attempt,
                    leaseID: task.leaseID, leaseMilliseconds: Int64(wait.rounded(.up)))
            }
            if !waits.isEmpty { ServiceMetrics.rateLimited(agent: "call:" + service, count: waits.count) }
        }
        return claimed.enumerated().filter { !held.contains($0.offset) }.map(\.element)
    }

    /// One claimed call: its tries, then its result applied.
    func perform(_ claimed: ClaimedTask, transport: any HTTPCallTransport, baseURLs: [String: String],
        stopping: @Sendable () -> Bool) async
    {
        let task = claimed.task
        var logger = self.logger
        logger[metadataKey: "task.id"] = "\(task.taskID)"
        logger[metadataKey: "task.attempt"] = "\(task.attempt)"
        let outcome: WorkerMessage.TaskResult.Outcome
        do {
            let call = try HTTPCall(message: task.body, baseURLs: baseURLs, defaultBaseURL: settings.baseURL)
            guard let verdict = await tries(call, claimed: claimed, transport: transport, stopping: stopping, logger: logger)
            else {
                return  // stopping or the lease was lost: whoever holds the task next performs it
            }
            switch verdict {
            case .completed(let output): outcome = .completed(output: output)
            case .failed(let reason): outcome = .failed(reason: reason, retryable: false)
            case .tryAgain(let reason, _): outcome = .failed(reason: reason, retryable: true)
            }
        } catch {
            outcome = .failed(reason: "\(error)", retryable: false)
        }
        await apply(.init(taskID: task.taskID, attempt: task.attempt, outcome: outcome), stopping: stopping, logger: logger)
    }

    /// Tries the call up to `calls.attempts` times; nil when it must be left to the next lease holder.
    func tries(_ call: HTTPCall, claimed: ClaimedTask, transport: any HTTPCallTransport, stopping: @Sendable () -> Bool,
        logger: Logger) async -> HTTPCall.Verdict?
    {
        let timeout = Duration.milliseconds(settings.timeoutMilliseconds)
        var wait = Duration.milliseconds(settings.backoffMilliseconds)
        var verdict: HTTPCall.Verdict?
        for attempt in 1...settings.attempts {
            if attempt > 1 {
                guard case .tryAgain(let reason, let after) = verdict, !stopping() else { return nil }
                let pause = after ?? wait
                logger.info("HTTP call failed; trying again", metadata: ["reason": "\(reason)", "retry.in": "\(pause)"])
                // The lease must outlast the pause and the next try.
                guard (try? await store.extendPullLease(taskID: claimed.task.taskID, attempt: claimed.task.attempt,
                    leaseID: claimed.leaseID, leaseMilliseconds: pause.wholeMilliseconds + leaseMilliseconds)) ?? nil != nil
                else {
                    return nil
                }
                try? await orchestrator.sleep(pause)
                wait = min(wait * 2, .seconds(60))
            }
            let started = ContinuousClock.now
            do throws(HTTPCallTransportError) {
                let response = try await transport.send(call, timeout: timeout, maxBodyBytes: settings.maxResponseBytes)
                verdict = call.verdict(on: response)
                ServiceMetrics.httpCall(method: call.method, status: response.status, took: ContinuousClock.now - started)
            } catch {
                verdict = call.verdict(on: error)
                ServiceMetrics.httpCall(method: call.method, status: 0, took: ContinuousClock.now - started)
            }
            if case .tryAgain = verdict { continue }
            return verdict
        }
        return verdict
    }

    /// Applies the result until it commits (or the replica stops: the lease then runs out and the call is
    /// performed again, which its `Idempotency-Key` makes harmless).
    func apply(_ result: WorkerMessage.TaskResult, stopping: @Sendable () -> Bool, logger: Logger) async {
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                _ = try await orchestrator.apply([.worker(.taskResult(result), messageID: nil)])
                return
            } catch {
                guard !stopping() else {
                    logger.warning("HTTP call result not applied before shutdown; another replica will call again",
                        metadata: ["error": "\(error)"])
                    return
                }
                logger.warning("HTTP call result not applied; retrying", metadata: ["error": "\(error)", "retry.in": "\(backoff)"])
                try? await orchestrator.sleep(backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }
}

/// What the caller's loop and its calls share.
private final class Progress: Sendable {
    /// Calls claimed and not yet finished.
    let inFlight = Mutex(0)
    /// Graceful shutdown began: no new call or try.
    let stopping = Mutex(false)
    var isStopping: Bool { stopping.withLock { $0 } }
}
