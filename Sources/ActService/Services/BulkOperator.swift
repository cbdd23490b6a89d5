import ActEngine
import ActPlaybook
public import ActStore
internal import Foundation
public import Logging
public import ServiceLifecycle

/// Works on bulk operations (`POST /v1/bulk-operations`, `hms-act bulk …`): an operator's cancel, pause,
/// resume or retry over every run a filter matches.
///
/// Every replica runs one; an operation is worked on by whichever holds its lease. Each page (at most
/// `rate_per_second` runs, at most 500) is applied through the orchestrator like any operator command, each
/// run's with its own inbox key (`bulk:<operation>:<run>`), then the position and counts are recorded and
/// the lease extended. A replica that stops mid-way loses the lease after `lease`; another goes on from the
/// recorded position, and the page it may repeat changes nothing twice. Pages are spaced so that the
/// operation never applies more than `rate_per_second` runs a second.
public struct BulkOperator: Service {
    let orchestrator: Orchestrator
    let store: Store
    let owner: String
    let lease: Duration
    let idlePoll: Duration
    let logger: Logger

    /// - Parameter owner: Who holds the leases it takes (default: a name of its own for this process).
    public init(orchestrator: Orchestrator, store: Store, owner: String? = nil, lease: Duration = .seconds(30),
        idlePoll: Duration = .seconds(1), logger: Logger)
    {
        self.orchestrator = orchestrator
        self.store = store
        self.owner = owner ?? "replica-" + UUID().uuidString.prefix(8)
        self.lease = lease
        self.idlePoll = idlePoll
        self.logger = logger
    }

    /// The most runs one page applies (one batch of the orchestrator).
    public static let largestPage = 500

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var worked = false
                do {
                    worked = try await step()
                } catch is CancellationError {
                    return
                } catch {
                    ServiceMetrics.loopFailed(service: "bulk_operator")
                    logger.info("a bulk operation page failed; it is tried again", metadata: ["error": "\(error)"])
                }
                if !worked { try? await Task.sleep(for: idlePoll) }
            }
        }
    }

    /// Claims a running operation and applies its next page, or finishes it when no run is left.
    ///
    /// - Returns: Whether there was an operation to work on.
    @discardableResult
    public func step() async throws -> Bool {
        guard let (operation, cursor) = try await store.claimBulkOperation(owner: owner, lease: lease) else { return false }
        let started = ContinuousClock.now
        let limit = min(max(1, operation.ratePerSecond), Self.largestPage)
        let page = try await store.bulkPage(operation, after: cursor, limit: limit)
        guard !page.runIDs.isEmpty else {
            if try await store.recordBulkProgress(operation.id, owner: owner, cursor: nil, matched: 0, applied: 0,
                ignored: 0, refused: 0, done: true, lease: lease)
            {
                logger.info("bulk operation done", metadata: ["bulk.id": "\(operation.id)",
                    "bulk.action": "\(operation.action.rawValue)"])
            }
            return true
        }
        let inputs = page.runIDs.map { Self.input(for: operation, run: RunID($0)) }
        let outcomes: [BatchOutcome]
        do {
            outcomes = try await apply(inputs)
        } catch {
            try? await store.recordBulkError(operation.id, "\(error)")
            throw error
        }
        var (applied, ignored, refused) = (0, 0, 0)
        for outcome in outcomes {
            switch outcome {
            case .applied: applied += 1
            case .ignored: ignored += 1
            case .rejected, .forbidden: refused += 1
            }
        }
        let kept = try await store.recordBulkProgress(operation.id, owner: owner, cursor: page.cursor,
            matched: page.runIDs.count, applied: applied, ignored: ignored, refused: refused,
            done: page.runIDs.count < limit, lease: lease)
        if !kept {
            logger.info("bulk operation taken over or stopped meanwhile", metadata: ["bulk.id": "\(operation.id)"])
        }
        // At most rate_per_second runs a second: a page of n runs takes at least n / rate seconds.
        let least = Duration.milliseconds(Int64(page.runIDs.count) * 1_000 / Int64(max(1, operation.ratePerSecond)))
        let spent = ContinuousClock.now - started
        if spent < least { try await Task.sleep(for: least - spent) }
        return true
    }

    /// Applies a page in one batch; when PostgreSQL refuses something in it, one by one, so one run it cannot
    /// apply is refused alone and the others go on.
    private func apply(_ inputs: [BatchInput]) async throws -> [BatchOutcome] {
        do {
            return try await orchestrator.apply(inputs).outcomes
        } catch {
            guard case .permanent = ApplyFailure(error), inputs.count > 1 else {
                if case .permanent(let reason) = ApplyFailure(error) { return [.rejected(reason: reason)] }
                throw error
            }
            var outcomes: [BatchOutcome] = []
            for input in inputs { outcomes += try await apply([input]) }
            return outcomes
        }
    }

    /// The input each run gets, under its own inbox key.
    static func input(for operation: BulkOperation, run: RunID) -> BatchInput {
        let key = "bulk:\(operation.id):\(run.rawValue)"
        let actor = operation.requestedBy
        let event: RunEvent
        switch operation.action {
        case .migrate:
            var mapping: [StepID: StepID] = [:]
            if case .object(let pairs)? = operation.parameters["mapping"] {
                for (old, new) in pairs { if let new = new.stringValue { mapping[StepID(old)] = StepID(new) } }
            }
            let version = operation.parameters["to_version"]?.numberValue?.intValue.map(Int64.init) ?? 0
            return .migrate(runID: run, toVersion: version, mapping: mapping, actor: actor, key: key)
        case .cancel: event = .cancel(reason: operation.reason ?? "bulk operation \(operation.id) by \(actor)")
        case .pause: event = .pause
        case .resume: event = .resume
        case .retry:
            event = .incidentAction(.retry(input: nil), step: nil, visit: nil, actor: actor,
                reason: operation.reason ?? "bulk operation \(operation.id)")
        }
        return .operatorCommand(runID: run, event: event, actor: actor, key: key, reason: operation.reason)
    }
}
