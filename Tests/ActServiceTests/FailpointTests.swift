import ActService
import Testing

/// `HMS_FAILPOINTS`, the fault suite's crash points (the `crash-points` scenario fires them in real processes).
struct FailpointTests {
    @Test func readsNamesWithProbabilitiesAndANameAloneMeansAlways() throws {
        let armed = try Failpoint.parse(" mid-batch=0.05, during-breach ,after-commit-before-ack=1")
        #expect(armed == [.midBatch: 0.05, .duringBreach: 1, .afterCommitBeforeAck: 1])
        #expect(try Failpoint.parse("").isEmpty)
    }

    @Test(arguments: [
        ("mid_batch=0.1", "unknown failpoint 'mid_batch'; known: after-commit-before-ack, after-publish-before-delete"),
        ("mid-batch=0", "'mid-batch=0' needs a probability in (0, 1], as in mid-batch=0.05"),
        ("mid-batch=often", "'mid-batch=often' needs a probability in (0, 1]"),
        ("during-breach=1.5", "'during-breach=1.5' needs a probability in (0, 1]"),
    ])
    func aMalformedValueSaysWhatIsWrong(text: String, message: String) {
        #expect {
            try Failpoint.parse(text)
        } throws: { error in
            "\(error)".hasPrefix("HMS_FAILPOINTS: ") && "\(error)".contains(message)
        }
    }

    @Test func eachPointHasItsOwnExitStatus() {
        let statuses = Failpoint.allCases.map(\.exitStatus)
        #expect(Set(statuses).count == Failpoint.allCases.count)
        #expect(Failpoint.allCases.allSatisfy { Failpoint(exitStatus: $0.exitStatus) == $0 })
        #expect(Failpoint(exitStatus: 0) == nil && Failpoint(exitStatus: 1) == nil && Failpoint(exitStatus: 137) == nil)
    }
}
