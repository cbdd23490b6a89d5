import ActEngine
import ActPlaybook
internal import Foundation

/// Who each RabbitMQ user may act as on `hms.results` (setting `amqp.actors`).
///
/// RabbitMQ refuses a message whose `user_id` property is not the publishing connection's user, so a
/// `user_id` that arrives is the broker's word for who published. With entries configured, every result,
/// signal and approval must carry one of the listed users, and the actor it names (an approval's `actor`,
/// a result's `agent`) must match one of that user's patterns; anything else is refused with the reason,
/// recorded in the run's audit trail and dead-lettered. A result that names no agent is attributed to the
/// broker user. With no entries, the body's actor is taken on trust (the behaviour before this setting).
///
/// Entries are `user=pattern;pattern`, for example
/// `desk-portal=officer#*;clerk#*` and `hms-demo-worker=AI:*;inspector#*`; a pattern is an exact name, a
/// prefix ending in `*`, or `*` for anyone.
public struct BrokerIdentities: Sendable, Hashable {
    /// Actor patterns by broker user.
    public private(set) var patternsByUser: [String: [String]] = [:]

    /// Whether messages are checked at all.
    public var isEnforced: Bool { !patternsByUser.isEmpty }

    public init() {}

    /// Enforced, with no user allowed anything.
    public static let refusingEveryone: BrokerIdentities = {
        var identities = BrokerIdentities()
        identities.patternsByUser[""] = []
        return identities
    }()

    /// Reads `amqp.actors` entries.
    ///
    /// - Throws: ``BrokerIdentitiesError`` naming the entry and what is wrong with it.
    public init(entries: [String]) throws(BrokerIdentitiesError) {
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw BrokerIdentitiesError(entry: entry, problem: "has no `=`; write user=pattern;pattern")
            }
            let user = parts[0].trimmingCharacters(in: .whitespaces)
            guard !user.isEmpty else {
                throw BrokerIdentitiesError(entry: entry, problem: "names no RabbitMQ user before `=`")
            }
            let patterns = parts[1].split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !patterns.isEmpty, patterns.allSatisfy({ !$0.isEmpty }) else {
                throw BrokerIdentitiesError(entry: entry,
                    problem: "has an empty actor pattern; write names or prefixes ending in * separated by ;")
            }
            for pattern in patterns {
                guard let problem = ActorPattern.problem(with: pattern) else { continue }
                throw BrokerIdentitiesError(entry: entry, problem: "pattern \(pattern) \(problem)")
            }
            patternsByUser[user, default: []] += patterns
        }
    }

    /// Whether `user` may act as `actor`.
    public func allows(_ user: String, toActAs actor: String) -> Bool {
        ActorPattern.matches(any: patternsByUser[user] ?? [], actor)
    }

    /// The message as it may be applied, or why it is refused.
    ///
    /// - Parameter userID: The AMQP `user_id` property of the delivery, validated by the broker.
    public func authorize(_ message: WorkerMessage, userID: String?) -> Result<WorkerMessage, RefusedAttempt> {
        guard isEnforced else { return .success(message) }
        let claimed: String?
        switch message {
        case .approval(let approval): claimed = approval.actor
        case .taskResult(let result): claimed = result.agent
        case .signal: claimed = nil
        }
        func refuse(_ reason: String) -> Result<WorkerMessage, RefusedAttempt> {
            .failure(RefusedAttempt(message: message, brokerUser: userID, claimedActor: claimed, reason: reason))
        }
        guard let userID, !userID.isEmpty else {
            return refuse("\(message.kindDescription) has no AMQP user_id property, and amqp.actors is set: "
                + "publish with user_id set to the connection's RabbitMQ user")
        }
        guard patternsByUser[userID] != nil else {
            return refuse("RabbitMQ user \(userID) is not in amqp.actors, so it may not send a "
                + "\(message.kindDescription); add an entry \(userID)=pattern;pattern")
        }
        if let claimed, !allows(userID, toActAs: claimed) {
            return refuse("RabbitMQ user \(userID) may act as \(patternsByUser[userID]!.joined(separator: ";")), "
                + "not as \(claimed) (amqp.actors)")
        }
        if case .taskResult(var result) = message, result.agent == nil {
            result.agent = userID
            return .success(.taskResult(result))
        }
        return .success(message)
    }
}

/// A result, signal or approval refused because of who sent it: recorded in its run's audit trail
/// (`attempt.refused`) and dead-lettered with ``reason``.
public struct RefusedAttempt: Error, Sendable, Hashable {
    public var message: WorkerMessage
    /// The broker's `user_id` of the delivery (nil: none).
    public var brokerUser: String?
    /// The actor the body named (an approval's `actor`, a result's `agent`).
    public var claimedActor: String?
    public var reason: String

    public init(message: WorkerMessage, brokerUser: String?, claimedActor: String?, reason: String) {
        self.message = message
        self.brokerUser = brokerUser
        self.claimedActor = claimedActor
        self.reason = reason
    }

    /// The run the refused message was about.
    public var runID: String {
        switch message {
        case .taskResult(let result): TaskID(result.taskID).runID.rawValue
        case .signal(let runID, _, _): runID
        case .approval(let approval): approval.runID
        }
    }
}

public struct BrokerIdentitiesError: Error, Sendable, CustomStringConvertible {
    public var entry: String
    public var problem: String
    public var description: String { "amqp.actors entry \"\(entry)\" \(problem)" }
}

extension WorkerMessage {
    /// "approval for step …", "result for task …", "signal …": what a refusal talks about.
    var kindDescription: String {
        switch self {
        case .approval(let approval): "approval for step \(approval.stepID) of run \(approval.runID)"
        case .taskResult(let result): "result for task \(result.taskID)"
        case .signal(let runID, let name, _): "signal \(name) for run \(runID)"
        }
    }
}
