import ActEngine
import ActService
import Testing

/// The engine's own SHA-256 (it may not import swift-crypto) must agree with swift-crypto, which derives
/// every trace id in ``OutboundMessages``: run ids are persisted and part of the AMQP contract.
@Suite struct RunIDDerivationTests {
    @Test func theEnginesDigestAgreesWithSwiftCrypto() {
        var texts = ["", "a", "wf_0b12120506b1669c896a19f9", "épée\u{0}ü", String(repeating: "é", count: 200)]
        var generator = SystemRandomNumberGenerator()
        for length in 0..<150 {
            let scalars = (0..<length).map { _ in Unicode.Scalar(UInt8.random(in: 32...126, using: &generator)) }
            texts.append(String(String.UnicodeScalarView(scalars)))
        }
        for text in texts {
            // traceID(runID:traceparent: nil) is the first 32 hex digits of SHA-256("trace|" + run id).
            let crypto = OutboundMessages.traceID(runID: text, traceparent: nil)
            #expect(SHA256Digest.hex("trace|" + text, length: 32) == crypto, "\(text.utf8.count) bytes")
        }
    }

    @Test func theForwardingRunIDIsTheEngines() {
        #expect(OutboundMessages.runID(playbook: "FTC-Complaint", eventID: "evt-42")
            == RunID.forTrigger(playbook: "FTC-Complaint", eventID: "evt-42"))
    }
}
