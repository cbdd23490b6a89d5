internal import Crypto

/// One `http.tokens` entry: a name, the SHA-256 digest of its secret and its scopes.
///
/// Two forms are read:
/// - `name:sha256:HEX:scopes`: the secret stored as the hex SHA-256 of its UTF-8 bytes (64 hex digits),
///   so that whoever reads the configuration (a ConfigMap, a Secret, a process listing) learns no token.
///   `hms-act token hash NAME --scopes …` writes it.
/// - `name:secret:scopes`: the secret in clear, as before; hashed when read.
///
/// Either form may end with `:agents=ID+ID` (agent ids from agents/): the token is then bound to those
/// agents, and may claim, heartbeat and answer only their tasks (a pull agent's worker token).
///
/// Either way only the digest is kept, and a presented token is hashed and compared with every entry in
/// time independent of the secrets (``APITokenEntry/constantTimeEquals(_:_:)``). Scopes are
/// `read`, `operate`, `admin`, joined with `+`. Secrets are bearer tokens, not passwords: give them 128
/// bits or more of randomness (`token hash --generate`); a fast hash is then enough.
public struct APITokenEntry: Hashable, Sendable {
    /// The scope names an entry may grant.
    public static let scopeNames = ["read", "operate", "admin"]

    /// The token's name: the principal, recorded as the actor of its commands.
    public var name: String
    /// The SHA-256 digest of the secret (32 bytes).
    public var digest: [UInt8]
    /// The scope names, as written (`read`, `operate`, `admin`).
    public var scopes: [String]
    /// Whether the configuration held a digest rather than the secret itself.
    public var storedAsHash: Bool
    /// The agents whose tasks the token may claim and answer; `nil`: any task its scopes allow.
    public var agents: [String]?

    /// Reads an entry.
    ///
    /// - Throws: ``FormatError`` saying what is wrong and how to write it; it never quotes the secret.
    public init(parsing specification: String) throws(FormatError) {
        var parts = specification.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var agents: [String]?
        if let last = parts.last, last.hasPrefix("agents="), parts.count > 1 {
            let list = last.dropFirst("agents=".count).split(separator: "+", omittingEmptySubsequences: false)
                .map(String.init)
            guard !list.contains(where: \.isEmpty) else {
                throw FormatError("token \(parts[0]): after agents= write agent ids joined with +, e.g. "
                    + "agents=ai.fraud-labeler+ai.classifier")
            }
            agents = list
            parts.removeLast()
        }
        guard let name = parts.first, !name.isEmpty else {
            throw FormatError("an http.tokens entry has no name; write name:sha256:HEX:scopes or name:secret:scopes")
        }
        let scopeText: String
        switch parts.count {
        case 4 where parts[1] == "sha256":
            guard let digest = Self.bytes(hex: parts[2]), digest.count == 32 else {
                throw FormatError("token \(name): after sha256: write the 64 hex digits of the secret's SHA-256 "
                    + "(hms-act token hash \(name) --scopes …)")
            }
            self.digest = digest
            self.storedAsHash = true
            scopeText = parts[3]
        case 3:
            guard !parts[1].isEmpty else {
                throw FormatError("token \(name) has an empty secret; write name:sha256:HEX:scopes or name:secret:scopes")
            }
            self.digest = Self.digest(ofSecret: Array(parts[1].utf8))
            self.storedAsHash = false
            scopeText = parts[2]
        default:
            throw FormatError("token \(name): http.tokens entries must be name:sha256:HEX:scopes (recommended) or "
                + "name:secret:scopes, e.g. ops:sha256:9f86d0…:read+operate; a secret must not contain `:`")
        }
        let scopes = scopeText.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        for scope in scopes where !Self.scopeNames.contains(scope) {
            throw FormatError("token \(name): unknown scope `\(scope)`; use read, operate or admin, joined with +")
        }
        self.name = name
        self.scopes = scopes
        self.agents = agents
    }

    /// The SHA-256 digest of a secret's bytes.
    public static func digest(ofSecret secret: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: secret))
    }

    /// The `name:sha256:HEX:scopes` entry for a secret.
    public static func hashedSpecification(name: String, secret: [UInt8], scopes: [String], agents: [String]? = nil)
        -> String
    {
        let hex = digest(ofSecret: secret).map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
        let binding = agents.map { ":agents=" + $0.joined(separator: "+") } ?? ""
        return "\(name):sha256:\(hex):\(scopes.joined(separator: "+"))\(binding)"
    }

    /// Compares two byte strings in time that depends only on their lengths, not on where they differ.
    public static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        let count = max(lhs.count, rhs.count)
        for index in 0..<count {
            let a = index < lhs.count ? lhs[index] : 0
            let b = index < rhs.count ? rhs[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Why an entry cannot be read; names the token, never its secret.
    public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String

        public init(_ description: String) { self.description = description }
    }
}
