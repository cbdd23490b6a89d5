import ActEngine
import ActPlaybook
import Testing

/// Ids are persisted and part of the AMQP contract: these strings must never change.
@Suite struct IdentifierTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (String(repeating: "a", count: 1_000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func sha256MatchesTheStandardExamples(message: String, digest: String) {
        #expect(SHA256Digest.hex(message, length: 64) == digest)
    }

    @Test func sha256HandlesEveryPaddingLength() {
        // 55, 56 and 64 bytes cross the padding boundaries; checked against `sha256sum`.
        #expect(SHA256Digest.hex(String(repeating: "x", count: 55), length: 8) == "d5e28568")
        #expect(SHA256Digest.hex(String(repeating: "x", count: 56), length: 8) == "04c26261")
        #expect(SHA256Digest.hex(String(repeating: "x", count: 64), length: 8) == "7ce10097")
    }

    @Test(arguments: [
        ("FTC-Complaint", "evt-42", "wf_0b12120506b1669c896a19f9"),  // docs/http-api.md
        ("NoiseComplaint.v1", "dup-1", "wf_880c08f774a44a47c273707c"),
        ("FTC-Complaint", "e-1", "wf_dcc8523040212e2ec18fa0c0"),
        ("épée.v1", "ü-9007199254740993", "wf_04edf1ebb1c58a69076894d1"),
    ])
    func aTriggersRunIDIsTheDigestOfPlaybookAndEvent(playbook: String, eventID: String, expected: String) {
        #expect(RunID.forTrigger(playbook: playbook, eventID: eventID).rawValue == expected)
    }

    @Test func taskAndTimerIDsSpellRunStepAndVisit() {
        let run: RunID = "wf_1"
        #expect(TaskID(run: run, step: "inspection", visit: 2).rawValue == "wf_1/inspection/2")
        #expect(TaskID(run: run, step: "inspection", visit: 1, agent: "human.inspector#3").rawValue
            == "wf_1/inspection/1/human.inspector#3")
        #expect(TaskID.compensation(run: run, step: "charge", visit: 1).rawValue == "wf_1/charge/1/compensate")
        #expect(TimerID.slaWarning(run: run, step: "review", visit: 1).rawValue == "wf_1/review/1/sla-warning")
        #expect(TimerID.slaBreach(run: run, step: "review", visit: 3).rawValue == "wf_1/review/3/sla-breach")
        #expect(TimerID.waitOver(run: run, step: "cooldown", visit: 1).rawValue == "wf_1/cooldown/1/wait")
        #expect(TimerID.retry(TaskID(run: run, step: "s", visit: 1), attempt: 2).rawValue == "wf_1/s/1/retry/2")
    }

    @Test func taskAndTimerIDsNameTheirRun() {
        let run = RunID.forTrigger(playbook: "P", eventID: "e")
        let task = TaskID(run: run, step: "s", visit: 1, agent: "a/b")
        #expect(task.runID == run)
        #expect(TaskID.compensation(run: run, step: "s", visit: 4).runID == run)
        #expect(TimerID.retry(task, attempt: 3).runID == run)
        #expect(TimerID.slaBreach(run: run, step: "s", visit: 1).runID == run)
        // A worker's malformed task id names a run that does not exist, never a crash.
        #expect(TaskID("no-slash").runID == "no-slash")
        #expect(TaskID("").runID == "")
    }
}
