public import ActEngine
import ActPlaybook
public import ActStore

/// Turns a batch of inputs into the writes of one transaction: it drives each run's
/// ``RunStateMachine`` and executes the resulting commands as rows (runs, tasks, timers, outbox, audit).
///
/// The planner is pure: the caller claims the inbox keys and locks the runs first, passes the locked rows
/// in, and commits ``Plan/batch`` before acknowledging anything. Inputs for the same run within one
/// batch apply in order to the same machine, so a batch is equivalent to applying its inputs one by one.
/// The engine decides everything (ids, task statuses, SLA instants); the planner only turns each command
/// into the rows that carry it (`BatchPlanner+Commands.swift`).
public struct BatchPlanner: Sendable {
    public var catalog: PlaybookCatalog
    public var engine: EngineConfiguration
    public var messages: OutboundMessages

    public init(catalog: PlaybookCatalog, engine: EngineConfiguration, messages: OutboundMessages) {
        self.catalog = catalog
        self.engine = engine
        self.messages = messages
    }

    /// The writes of a batch and what became of each input.
    public struct Plan: Sendable {
        public var batch = StoreBatch()
        /// One per input, in input order.
        public var outcomes: [BatchOutcome] = []
        /// Runs that finished in this batch.
        public var finished: [RunID: RunStatus] = [:]
        /// Runs started in this batch.
        public var started: [RunID] = []
        /// The new state of every run in `batch.runs`, by run id, for ``RunStateCache``.
        public var states: [String: RunState] = [:]
        /// The governance events this batch emits (its outbox holds their messages), for the metrics
        /// recorded once it commits.
        public var emitted: [GovernanceEvent] = []
        /// Concurrency-key slots runs take and free in this batch (applied under the keys' locks in the same
        /// transaction: ``StoreTransaction/applyConcurrency(_:)``).
        public var concurrency: [ConcurrencyRequest] = []
    }

    /// One input with whether the inbox claim found it new.
    public struct Item: Sendable {
        public var input: BatchInput
        public var fresh: Bool

        public init(_ input: BatchInput, fresh: Bool = true) {
            self.input = input
            self.fresh = fresh
        }
    }

    /// Plans a batch.
    ///
    /// - Parameters:
    ///   - items: The inputs with their inbox verdicts.
    ///   - runs: The locked rows of every run the inputs touch (absent: the run does not exist).
    ///   - knownStates: Decoded states of some of `runs`, known to match their rows (see
    ///     ``RunStateCache``); the others are decoded from the rows.
    ///   - now: The instant the batch applies at.
    /// - Returns: The writes and the outcome of every input.
    /// - Throws: `EncodingError` when a new run state cannot be encoded as JSON (a value the engine cannot
    ///   write back); ``ApplyFailure`` classifies it as permanent, so the input at fault is dead-lettered
    ///   and the rest of the batch commits.
    public func plan(
        _ items: [Item], runs: [String: RunRow], knownStates: [String: RunState] = [:], now: Instant
    ) throws -> Plan {
        var planning = Planning(planner: self, runs: runs, knownStates: knownStates, now: now)
        for item in items {
            let outcome = item.fresh ? planning.apply(item.input) : .ignored(reason: "already applied (inbox)")
            planning.plan.outcomes.append(outcome)
            // A refused input changed nothing but, when forbidden, its run's trail: forget its key, so that its
            // corrected or replayed copy applies (and a repeated forbidden attempt is recorded again). A refused
            // attempt keeps its own key (``BatchInput/inboxKey``): the broker redelivers nothing it acknowledged.
            switch outcome {
            case .rejected, .forbidden:
                if item.fresh, let key = item.input.inboxKey, !item.input.isRefusedAttempt {
                    planning.plan.batch.releasedInboxKeys.append(key)
                }
            case .applied, .ignored:
                break
            }
        }
        return try planning.finish()
    }
}
