internal import Foundation

/// Crash points for the fault suite (docs/reliability.md): with `HMS_FAILPOINTS=mid-batch=0.05,during-breach=0.5`
/// in its environment, a process exits at once each time it passes one of those points, with that probability:
/// `_exit`, no drain, no flush, no ack, as a `kill -9` at exactly that line would leave things. The real-process
/// suite's `crash-points` scenario sets it on its replicas; unset (always, in production) every point is one load
/// of an empty dictionary. `hms-act serve` refuses a malformed value and logs an error when it is set.
public enum Failpoint: String, CaseIterable, Sendable {
    /// A delivery batch has committed; the broker has not been told (the redelivery must be a no-op).
    case afterCommitBeforeAck = "after-commit-before-ack"
    /// The broker confirmed an outbox batch; its rows are not deleted (another relay publishes them again).
    case afterPublishBeforeDelete = "after-publish-before-delete"
    /// A batch's rows are written in its open transaction, not committed (PostgreSQL rolls it back).
    case midBatch = "mid-batch"
    /// As `mid-batch`, in a batch that records an SLA breach.
    case duringBreach = "during-breach"
    /// As `mid-batch`, in a batch that dispatches a compensation.
    case duringCompensation = "during-compensation"

    /// The environment variable that arms the points.
    public static let variable = "HMS_FAILPOINTS"

    /// The status a process that crashed here exits with (90, 91, … in declaration order), so whoever
    /// started it knows which point fired.
    public var exitStatus: Int32 { 90 + Int32(Self.allCases.firstIndex(of: self)!) }

    /// The point a process's exit status says fired, if any.
    public init?(exitStatus: Int32) {
        guard let point = Self.allCases.first(where: { $0.exitStatus == exitStatus }) else { return nil }
        self = point
    }

    /// The points this process's environment arms, with their probabilities (empty when a value is malformed:
    /// `serve` reports it through ``armedInEnvironment()`` before any point is reached).
    private static let armed: [Failpoint: Double] = (try? armedInEnvironment()) ?? [:]

    /// The points `HMS_FAILPOINTS` arms, with their probabilities.
    ///
    /// - Throws: A sentence naming what is wrong and the form expected.
    public static func armedInEnvironment() throws(FailpointError) -> [Failpoint: Double] {
        try parse(ProcessInfo.processInfo.environment[variable] ?? "")
    }

    /// Reads `name=probability,name=probability` (a name alone means probability 1).
    public static func parse(_ text: String) throws(FailpointError) -> [Failpoint: Double] {
        var armed: [Failpoint: Double] = [:]
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard let point = Failpoint(rawValue: parts[0]) else {
                throw FailpointError(message: "\(variable): unknown failpoint '\(parts[0])'; known: "
                    + allCases.map(\.rawValue).joined(separator: ", "))
            }
            let probability = parts.count == 2 ? Double(parts[1]) : 1
            guard let probability, probability > 0, probability <= 1 else {
                throw FailpointError(message: "\(variable): '\(entry)' needs a probability in (0, 1], "
                    + "as in \(point.rawValue)=0.05")
            }
            armed[point] = probability
        }
        return armed
    }

    /// Exits the process here, with this point's probability, when the environment arms it and `condition` holds.
    /// The condition is evaluated only when some point is armed, so an unarmed process pays nothing for it.
    @inline(__always)
    func pass(when condition: @autoclosure () -> Bool = true) {
        guard !Self.armed.isEmpty, let probability = Self.armed[self], condition(),
            Double.random(in: 0..<1) < probability
        else { return }
        let line = "hms-act: failpoint \(rawValue) fired (\(Self.variable)); exiting with status \(exitStatus)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        _exit(exitStatus)
    }
}

/// A malformed `HMS_FAILPOINTS`.
public struct FailpointError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Deliberate bugs, for the fault suite's self-test (docs/reliability.md, "A broken binary"): a suite that
/// passes must fail on a binary that breaks a guarantee. Compiled into debug builds only, armed by
/// `HMS_MUTANTS=ack-before-apply`; a release build ignores the variable.
enum Mutant: String, CaseIterable, Sendable {
    /// The delivery consumer acknowledges a batch before applying it (not after the commit): a crash in
    /// between loses the messages.
    case ackBeforeApply = "ack-before-apply"

    static let variable = "HMS_MUTANTS"

    /// Whether this mutant is armed in this process.
    var isArmed: Bool {
        #if DEBUG
        Self.armed.contains(self)
        #else
        false
        #endif
    }

    #if DEBUG
    private static let armed: Set<Mutant> = Set((ProcessInfo.processInfo.environment[variable] ?? "")
        .split(separator: ",").compactMap { Mutant(rawValue: $0.trimmingCharacters(in: .whitespaces)) })
    #endif
}
