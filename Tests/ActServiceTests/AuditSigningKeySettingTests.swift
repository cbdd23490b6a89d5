import ActService
import ActStore
import Testing

/// `audit.signing_key`: what `serve` accepts as the checkpoint signing key, and what it says otherwise.
@Suite struct AuditSigningKeySettingTests {
    @Test func theDefaultIsNoKeyAndSaysHowToMakeOne() {
        let configuration = ServiceConfiguration()
        #expect(configuration.audit.hasNoSigningKey)
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.audit.signingKey() }
        #expect(error?.description.contains("hms-act audit keygen") == true)
        #expect(error?.description.contains("HMS_ACT_MODE=development") == true)
    }

    @Test func aKeyRoundTripsThroughItsTextForm() throws {
        let key = AuditSigningKey.generate()
        var configuration = ServiceConfiguration()
        configuration.audit.signingKeyText = "  \(key.base64)\n"  // as pasted from a Secret
        try configuration.validate()
        #expect(try configuration.audit.signingKey().publicKey == key.publicKey)
        #expect(try AuditPublicKey(base64: key.publicKey.keyID) == key.publicKey)
        let message = Array("heads".utf8)
        #expect(key.publicKey.isValidSignature(key.signature(for: message), for: message))
        #expect(!AuditSigningKey.generate().publicKey.isValidSignature(key.signature(for: message), for: message))
    }

    @Test(arguments: ["not base64!", "c2hvcnQ=", "dGhpcnR5LXR3by1ieXRlcy1vZi1zZWNyZXQtbm90LWp1c3Qtb25lLW1vcmU="])
    func aMalformedKeyIsRefusedAtLoadWithWhatIsWrong(text: String) {
        var configuration = ServiceConfiguration()
        configuration.audit.signingKeyText = text
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("audit.signing_key") == true, "\(String(describing: error))")
        #expect(error?.description.contains("hms-act audit keygen") == true, "\(String(describing: error))")
    }

    @Test func aPublicKeyThatIsNotOneIsRefused() {
        #expect(throws: AuditKeyError.self) { try AuditPublicKey(base64: "ed25519:abc") }
    }
}
