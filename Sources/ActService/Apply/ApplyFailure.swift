internal import ActAMQP
internal import ActPostgres
internal import Foundation

/// Why applying a batch failed, and so what to do about it.
///
/// - ``transient``: the servers or the moment are at fault (a lost connection, a deadlock, a timeout, a
///   full disk, even a bug in hms-act's own SQL). The same batch may commit later: keep it unacknowledged
///   and retry with backoff, and never dead-letter a message for it.
/// - ``permanent(reason:)``: the data is at fault. PostgreSQL refused a value the message carries or
///   produces (SQLSTATE class `22` data exception, `23` integrity, `54` program limit), or it cannot be
///   encoded. Retrying the same bytes can never succeed: find the message at fault, dead-letter it with
///   `reason` (which says what to fix), and commit the rest.
///
/// Server-side data errors are classified by SQLSTATE class, not by message text, so any value that is
/// valid in a message but that the database refuses is handled the same way.
public enum ApplyFailure: Sendable, Hashable {
    case transient
    case permanent(reason: String)

    public init(_ error: any Error) {
        switch error {
        case let error as PostgresError:
            self = Self.classify(error)
        case is EncodingError:
            self = .permanent(reason: "the message produces a value that cannot be encoded as JSON (\(error)); "
                + "fix the message and publish it again")
        default:
            self = .transient
        }
    }

    /// Whether the error means a server hms-act needs is unreachable or overloaded right now, so a
    /// caller should be told to come back later (HTTP 503) rather than that something broke.
    public static func isUnavailable(_ error: any Error) -> Bool {
        switch error {
        case let error as PostgresError:
            if error.isConnectionError || error.code == .poolClosed || error.code == .poolTimeout { return true }
            guard let state = error.sqlState else { return false }
            // 53: insufficient resources (disk full, too many connections); 57014: statement timeout;
            // 55P03: lock timeout.
            return state.hasPrefix("53") || state == "57014" || state == "55P03"
        case let error as AMQPError:
            return error.code == .connectionFailed || error.code == .connectionClosed || error.code == .timeout
                || error.code == .authenticationFailed
        default:
            return false
        }
    }

    static func classify(_ error: PostgresError) -> ApplyFailure {
        if error.code == .encoding {
            return .permanent(reason: "the message produces a value PostgreSQL cannot be sent (\(error.reason ?? "encoding")); "
                + "fix the message and publish it again")
        }
        guard error.code == .server, let state = error.sqlState, state.count == 5 else { return .transient }
        let server = (error.serverMessage ?? "").prefix(200)
        switch state {
        case "22P05", "22021":
            return .permanent(reason: "the message holds the character U+0000 (\\u0000) or invalid UTF-8, which "
                + "PostgreSQL cannot store (SQLSTATE \(state)); remove the character (send binary data as base64) "
                + "and publish the message again")
        case "22008", "22007", "22009":
            return .permanent(reason: "a date, time or duration in the message or computed from it (a deadline "
                + "from a very long SLA or wait, for example) is outside PostgreSQL's range (SQLSTATE \(state): "
                + "\(server)); use a shorter duration or a valid date and publish the message again")
        case "22003":
            return .permanent(reason: "a number in the message or computed from it is outside PostgreSQL's range "
                + "(SQLSTATE 22003: \(server)); send a smaller number")
        case "54000", "54001":
            return .permanent(reason: "the message, or the run state it produces, is too large for PostgreSQL "
                + "(SQLSTATE \(state): \(server)); send a smaller payload or output")
        default:
            break
        }
        switch state.prefix(2) {
        case "22", "23", "54":
            return .permanent(reason: "PostgreSQL refused the data this message produces (SQLSTATE \(state): "
                + "\(server)); fix the message and publish it again")
        default:
            return .transient
        }
    }
}
