import ActService
import Testing

/// `http.tokens` entries: the hashed form, the clear form, and the errors that say how to write them.
@Suite struct APITokenEntryTests {
    static let digestHex = "7d882bf5292de661a4e0ba987fcdb5782787d84891a142264a2fc89d8a83e6d2"  // SHA-256 of d-secret

    @Test func theHashedAndTheClearFormHoldTheSameDigest() throws {
        let hashed = try APITokenEntry(parsing: "desk:sha256:\(Self.digestHex):read+operate")
        let clear = try APITokenEntry(parsing: "desk:d-secret:read+operate")
        #expect(hashed.digest == clear.digest)
        #expect(hashed.digest == APITokenEntry.digest(ofSecret: Array("d-secret".utf8)))
        #expect(hashed.storedAsHash && !clear.storedAsHash)
        #expect(hashed.name == "desk" && hashed.scopes == ["read", "operate"])
    }

    @Test func theHelperWritesAnEntryThatReadsBack() throws {
        let text = APITokenEntry.hashedSpecification(name: "desk", secret: Array("d-secret".utf8), scopes: ["operate"])
        #expect(text == "desk:sha256:\(Self.digestHex):operate")
        #expect(try APITokenEntry(parsing: text).digest == APITokenEntry.digest(ofSecret: Array("d-secret".utf8)))
    }

    /// `:agents=` binds a token to agents, in either form, and the helper writes it back.
    @Test func aTokenMayBeBoundToAgents() throws {
        let clear = try APITokenEntry(parsing: "labeler:l-secret:operate:agents=ai.fraud-labeler+ai.classifier")
        #expect(clear.name == "labeler" && clear.scopes == ["operate"])
        #expect(clear.agents == ["ai.fraud-labeler", "ai.classifier"])
        let hashed = try APITokenEntry(parsing: "labeler:sha256:\(Self.digestHex):operate:agents=ai.fraud-labeler")
        #expect(hashed.storedAsHash && hashed.agents == ["ai.fraud-labeler"])
        #expect(try APITokenEntry(parsing: "desk:d-secret:read").agents == nil)
        let text = APITokenEntry.hashedSpecification(name: "desk", secret: Array("d-secret".utf8), scopes: ["operate"],
            agents: ["ai.fraud-labeler"])
        #expect(text == "desk:sha256:\(Self.digestHex):operate:agents=ai.fraud-labeler")
        #expect(try APITokenEntry(parsing: text).agents == ["ai.fraud-labeler"])
    }

    @Test(arguments: [
        ("desk:top-secret:operate:agents=", "agent ids joined with +"),
        ("desk:top-secret:operate:agents=ai.a++ai.b", "agent ids joined with +"),
        ("desk:sha256:abc:read", "64 hex digits"),
        ("desk:sha256:\(String(repeating: "zz", count: 32)):read", "64 hex digits"),
        ("desk:top-secret:write", "unknown scope `write`"),
        ("desk:top-secret:", "unknown scope"),
        ("desk::read", "empty secret"),
        (":top-secret:read", "no name"),
        ("desk:top:secret:read", "must not contain `:`"),
    ])
    func aMalformedEntryIsRefusedWithoutQuotingTheSecret(entry: String, says: String) throws {
        let error = #expect(throws: APITokenEntry.FormatError.self) { try APITokenEntry(parsing: entry) }
        #expect(error?.description.contains(says) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("top-secret") == false)
        #expect(error?.description.contains("top:secret") == false)
    }

    @Test func configurationValidationRefusesAMalformedToken() {
        var configuration = ServiceConfiguration()
        configuration.http.tokens = ["ops:sha256:abc:read"]
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("token ops") == true)
        configuration.http.tokens = ["ops:sha256:\(Self.digestHex):read", "ops:old-secret:read"]
        #expect(throws: Never.self) { try configuration.validate() }
    }

    /// A token bound to an agent the registry lacks (a typo) is refused at start, naming the known agents.
    @Test func aTokenBoundToAnUnknownAgentIsRefused() {
        var configuration = ServiceConfiguration()
        configuration.http.tokens = ["ops:o-secret:admin", "labeler:l-secret:operate:agents=ai.fraud-labeler"]
        #expect(throws: Never.self) { try configuration.checkTokenAgents(known: ["ai.fraud-labeler", "human.clerk"]) }
        configuration.http.tokens.append("typo:t-secret:operate:agents=ai.fraud-labeller")
        let error = #expect(throws: ServiceConfiguration.SettingError.self) {
            try configuration.checkTokenAgents(known: ["ai.fraud-labeler", "human.clerk"])
        }
        #expect(error?.description.contains("token typo is bound to agent ai.fraud-labeller") == true)
        #expect(error?.description.contains("its agents: ai.fraud-labeler, human.clerk") == true)
    }

    /// The demo's anonymous mode (chapter code sends no token) is refused on any address but loopback.
    @Test func anonymousAccessIsOnlyForALoopbackHost() {
        var configuration = ServiceConfiguration()
        configuration.http.anonymous = true
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("http.anonymous") == true && error?.description.contains("0.0.0.0") == true)
        for host in ["127.0.0.1", "::1", "localhost", "127.0.0.2"] {
            configuration.http.host = host
            #expect(throws: Never.self, "\(host)") { try configuration.validate() }
        }
        configuration.http.host = "10.0.0.5"
        #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
    }

    @Test func equalityIsExactForEveryLength() {
        #expect(APITokenEntry.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!APITokenEntry.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!APITokenEntry.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!APITokenEntry.constantTimeEquals([], [0]))
        #expect(APITokenEntry.constantTimeEquals([], []))
    }
}
