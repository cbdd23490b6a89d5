import ActPlaybook
import Testing

/// Chapter 003's FAQ: "Define them with `parallel: true`". Consecutive task steps so flagged run side by
/// side as one parallel block, joined before the next step.
@Suite struct ParallelFlagTests {
    static let permit = """
        id: permit-renewal
        trigger: permit.renewal.requested
        steps:
          - id: uploadDocs
            service: fileSvc.upload
          - id: chargeFee
            service: achSvc.charge
            compensate: achSvc.refund
            parallel: true
          - id: notifyApplicant
            service: notifySvc.email
            parallel: true
          - id: updatePermitDB
            service: permitSvc.update
          - id: archive
            service: archiveSvc.store
            parallel: true
        """

    @Test func consecutiveFlaggedStepsBecomeOneParallelBlock() throws {
        let playbook = try PlaybookLoader.load(yaml: Self.permit).playbook
        #expect(playbook.steps.map(\.id) == ["uploadDocs", "parallel.chargeFee", "updatePermitDB", "archive"])
        guard case .parallel(let block) = playbook.steps[1].kind else {
            Issue.record("expected a parallel block, got \(playbook.steps[1].kind)")
            return
        }
        #expect(block.branches.map(\.id) == ["chargeFee", "notifyApplicant"])
        #expect(block.join == .allMustSucceed)
        #expect(block.branches[0].compensate?.label == "svc.achSvc.refund")
        // One flagged step alone is a plain step.
        guard case .task = playbook.steps[3].kind else { Issue.record("archive should stay a task"); return }
    }

    @Test func theFlagIsRefusedWhereItCannotMeanAnything() {
        let onWait = refusal("""
            id: p
            steps:
              - id: w
                wait: 5m
                parallel: true
              - id: a
                service: x.y
            """)
        #expect(onWait.contains { $0.message.contains("'parallel: true' is for task steps") }, "\(onWait)")
        let withNext = refusal("""
            id: p
            steps:
              - id: a
                service: x.y
                parallel: true
                next: c
              - id: b
                service: x.z
                parallel: true
              - id: c
                service: x.w
            """)
        #expect(withNext.contains { $0.message.contains("does not belong on a step with 'parallel: true'") }, "\(withNext)")
        let notABool = refusal("""
            id: p
            steps:
              - id: a
                service: x.y
                parallel: sometimes
            """)
        #expect(!notABool.isEmpty)
    }
}
