import ActAMQP
import ActPostgres
import ActService
import Foundation
import Testing

/// The line between "retry the batch" and "dead-letter the message": data errors are permanent, everything
/// about the servers (or our own SQL) is transient, so no valid message is ever dead-lettered for an outage.
@Suite("apply failure classification")
struct ApplyFailureTests {
    @Test("data errors are permanent, with a reason that says what to fix", arguments: [
        ("22P05", "U+0000"), ("22021", "U+0000"), ("22008", "outside PostgreSQL's range"),
        ("22003", "number"), ("54000", "too large"), ("23514", "SQLSTATE 23514"), ("22P02", "SQLSTATE 22P02"),
    ])
    func dataErrorsArePermanent(state: String, mentions: String) {
        let failure = ApplyFailure(PostgresError(code: .server, sqlState: state, serverMessage: "refused"))
        guard case .permanent(let reason) = failure else {
            Issue.record("\(state) must be permanent, got \(failure)")
            return
        }
        #expect(reason.contains(mentions))
        #expect(reason.contains("publish") || reason.contains("send"))
    }

    @Test("server trouble and our own bugs are transient", arguments: [
        PostgresError(code: .connectionFailed), PostgresError(code: .connectionClosed), PostgresError(code: .poolClosed),
        PostgresError(code: .cancelled), PostgresError(code: .server, sqlState: "40001"),
        PostgresError(code: .server, sqlState: "40P01"), PostgresError(code: .server, sqlState: "57014"),
        PostgresError(code: .server, sqlState: "55P03"), PostgresError(code: .server, sqlState: "53100"),
        PostgresError(code: .server, sqlState: "42P01"), PostgresError(code: .server, sqlState: "XX000"),
    ])
    func serverTroubleIsTransient(error: PostgresError) {
        #expect(ApplyFailure(error) == .transient)
    }

    @Test func brokerErrorsAndAnythingUnknownAreTransient() {
        #expect(ApplyFailure(AMQPError(.connectionClosed)) == .transient)
        #expect(ApplyFailure(CancellationError()) == .transient)
    }

    @Test func unavailableMeansTheServersNotTheData() {
        #expect(ApplyFailure.isUnavailable(PostgresError(code: .connectionFailed)))
        #expect(ApplyFailure.isUnavailable(PostgresError(code: .server, sqlState: "57P01")))
        #expect(ApplyFailure.isUnavailable(AMQPError(.connectionClosed)))
        #expect(!ApplyFailure.isUnavailable(PostgresError(code: .server, sqlState: "22P05")))
        #expect(!ApplyFailure.isUnavailable(PostgresError(code: .server, sqlState: "42P01")))
        #expect(!ApplyFailure.isUnavailable(CancellationError()))
    }
}
