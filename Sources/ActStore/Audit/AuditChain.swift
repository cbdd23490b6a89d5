internal import Crypto
public import ActPlaybook

/// One entry of a run's audit trail, as hashed. The stored row adds `prev_hash` and `hash`.
public struct AuditEntry: Hashable, Sendable {
    public var runID: String
    /// 1 for the first entry of a run, then +1 with no gaps.
    public var sequence: Int64
    /// Milliseconds since the Unix epoch.
    public var at: Int64
    /// What happened: `run.started`, `task.dispatched`, `task.completed`, `sla.violation`, …
    public var kind: String
    /// Who caused it: an agent, a human actor, `hms-act` for the engine itself.
    public var actor: String
    public var data: JSONValue

    public init(runID: String, sequence: Int64, at: Int64, kind: String, actor: String, data: JSONValue) {
        self.runID = runID
        self.sequence = sequence
        self.at = at
        self.kind = kind
        self.actor = actor
        self.data = data
    }

    /// The bytes the chain hashes: the canonical JSON of every field.
    public var canonicalEncoding: [UInt8] {
        JSONValue.object([
            "run": .string(runID),
            "seq": .int(sequence),
            "at": .int(at),
            "kind": .string(kind),
            "actor": .string(actor),
            "data": data,
        ]).canonicalEncoding
    }
}

/// The hash chain of a run's audit trail: `hash(n) = SHA-256(hash(n-1) || canonical(entry n))`, with an
/// empty previous hash for the first entry. Editing, removing or reordering any entry changes every
/// later hash; removing the tail is caught by the signed checkpoints (``AuditCheckpoint``).
public enum AuditChain {
    /// The hash of `entry` chained onto `previous` (empty for the first entry).
    public static func hash(previous: [UInt8], entry: AuditEntry) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: entry.canonicalEncoding)
        return Array(hasher.finalize())
    }

    /// A problem found while verifying a chain.
    public struct Finding: Hashable, Sendable, CustomStringConvertible {
        public enum Kind: String, Hashable, Sendable {
            /// An entry's content no longer matches its hash: edited.
            case edited
            /// A sequence number is missing or out of place: deleted or reordered.
            case gap
            /// An entry's previous hash is not the hash before it: reordered or spliced.
            case broken
            /// The chain is shorter than a signed checkpoint says: its tail was removed.
            case truncated
            /// A checkpoint's signature does not verify with a trusted key: the checkpoint was forged or edited.
            case badCheckpoint
            /// The database's checkpoints differ from the published ones: the database's copy was rewritten.
            case diverged
            /// An archive file is damaged, cut short or added to (``AuditArchive``).
            case incomplete
            /// An archived run's final head is signed by no checkpoint in its archive.
            case unanchored
        }

        public var kind: Kind
        public var runID: String?
        public var sequence: Int64?
        public var message: String

        public init(kind: Kind, runID: String?, sequence: Int64?, message: String) {
            self.kind = kind
            self.runID = runID
            self.sequence = sequence
            self.message = message
        }

        public var description: String {
            "\(kind.rawValue): " + (runID.map { "run \($0)" } ?? "") + (sequence.map { " entry \($0)" } ?? "")
                + ": " + message
        }
    }

    /// A stored entry with its stored hashes, as read back for verification.
    public struct StoredEntry: Hashable, Sendable {
        public var entry: AuditEntry
        public var previousHash: [UInt8]
        public var hash: [UInt8]

        public init(entry: AuditEntry, previousHash: [UInt8], hash: [UInt8]) {
            self.entry = entry
            self.previousHash = previousHash
            self.hash = hash
        }
    }

    /// Verifies one run's entries, given in stored sequence order.
    ///
    /// - Returns: every finding; empty when the chain is intact. `head` is the last verified (seq, hash).
    public static func verify(run runID: String, entries: [StoredEntry]) -> (findings: [Finding], head: (Int64, [UInt8])) {
        var findings: [Finding] = []
        var previous: [UInt8] = []
        var expectedSequence: Int64 = 1
        for stored in entries {
            let entry = stored.entry
            if entry.sequence != expectedSequence {
                findings.append(Finding(kind: .gap, runID: runID, sequence: entry.sequence,
                    message: "expected entry \(expectedSequence) here; entries were deleted or reordered"))
            }
            if stored.previousHash != previous {
                findings.append(Finding(kind: .broken, runID: runID, sequence: entry.sequence,
                    message: "its previous hash does not match the entry before it"))
            }
            let recomputed = hash(previous: stored.previousHash, entry: entry)
            if recomputed != stored.hash {
                findings.append(Finding(kind: .edited, runID: runID, sequence: entry.sequence,
                    message: "its content does not match its hash; the entry was edited"))
            }
            previous = stored.hash
            expectedSequence = entry.sequence + 1
        }
        return (findings, (expectedSequence - 1, previous))
    }
}

/// A signed checkpoint over the heads of runs' audit chains.
///
/// The signature is Ed25519 under a private key that only the service's secret holds (``AuditSigningKey``);
/// the database stores the public key in the key id, and verifiers are given the public key they trust, so
/// whoever can write to the database still cannot forge a checkpoint. Each checkpoint is also published to
/// the governance exchange, so a rewritten or deleted checkpoint is caught against that outside witness.
/// Checkpoints written before Ed25519 carry an HMAC-SHA256 under a shared key; they still verify when that
/// key is given, with the caveat that anyone who holds it can forge one.
public struct AuditCheckpoint: Hashable, Sendable {
    public struct Head: Hashable, Sendable, Codable {
        public var run: String
        public var seq: Int64
        /// Lower-case hex of the head hash.
        public var hash: String

        public init(run: String, seq: Int64, hash: String) {
            self.run = run
            self.seq = seq
            self.hash = hash
        }
    }

    public var keyID: String
    /// Sorted by run id.
    public var heads: [Head]

    public init(keyID: String, heads: [Head]) {
        self.keyID = keyID
        self.heads = heads.sorted { $0.run < $1.run }
    }

    /// SHA-256 over the canonical JSON of the heads.
    public var headsDigest: [UInt8] {
        let encoded = JSONValue.array(heads.map {
            .object(["run": .string($0.run), "seq": .int($0.seq), "hash": .string($0.hash)])
        }).canonicalEncoding
        return Array(SHA256.hash(data: encoded))
    }

    /// The bytes an Ed25519 checkpoint signature covers: a fixed label, then the heads digest. The label
    /// keeps a checkpoint signature from meaning anything else the key might ever sign.
    public static func signedMessage(headsDigest: [UInt8]) -> [UInt8] {
        Array("hms-act audit checkpoint v2\n".utf8) + headsDigest
    }

    /// The Ed25519 signature of this checkpoint under `signingKey`.
    public func signature(signingKey: AuditSigningKey) -> [UInt8] {
        signingKey.signature(for: Self.signedMessage(headsDigest: headsDigest))
    }

    /// HMAC-SHA256 of the digest under `key`: the signature of checkpoints written before Ed25519.
    public func signature(key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: headsDigest, using: SymmetricKey(data: key)))
    }

    /// Whether `signature` is this checkpoint's HMAC under `key` (constant-time comparison).
    public func verify(signature: [UInt8], key: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: headsDigest, using: SymmetricKey(data: key))
    }

    /// Checks `signature` against this checkpoint's key id.
    ///
    /// - Returns: `nil` when it verifies, else what is wrong, phrased to follow "checkpoint N".
    public func verify(signature: [UInt8], trusted: [AuditPublicKey], legacyKeys: [String: [UInt8]]) -> String? {
        Self.problem(keyID: keyID, headsDigest: headsDigest, signature: signature, trusted: trusted, legacyKeys: legacyKeys)
    }

    static func problem(keyID: String, headsDigest: [UInt8], signature: [UInt8], trusted: [AuditPublicKey],
        legacyKeys: [String: [UInt8]]) -> String?
    {
        if keyID.hasPrefix(AuditPublicKey.keyIDPrefix) {
            guard let key = try? AuditPublicKey(base64: keyID) else {
                return "names key \(keyID), which is not a public key: it was edited"
            }
            guard trusted.contains(key) else {
                return "is signed by public key \(key.base64), which is not trusted: it was forged, or give that key with --public-key"
            }
            guard key.isValidSignature(signature, for: signedMessage(headsDigest: headsDigest)) else {
                return "does not verify with public key \(key.base64): it was edited or forged"
            }
            return nil
        }
        guard let key = legacyKeys[keyID] else {
            return "is an HMAC checkpoint signed with key \(keyID), which was not given (--key \(keyID)=KEY)"
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: headsDigest, using: SymmetricKey(data: key)) else {
            return "does not verify with key \(keyID): it was edited or forged"
        }
        return nil
    }

    /// Verifies the signatures of an exported stream of published checkpoints, in checkpoint order.
    public static func verifyPublished(_ published: [PublishedCheckpoint], trusted: [AuditPublicKey],
        legacyKeys: [String: [UInt8]]) -> [AuditChain.Finding]
    {
        published.sorted { $0.checkpointID < $1.checkpointID }.compactMap { checkpoint in
            problem(keyID: checkpoint.keyID, headsDigest: checkpoint.headsDigest, signature: checkpoint.signature,
                trusted: trusted, legacyKeys: legacyKeys).map {
                AuditChain.Finding(kind: .badCheckpoint, runID: nil, sequence: nil,
                    message: "published checkpoint \(checkpoint.checkpointID) \($0)")
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// Lower-case hexadecimal.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses lower- or upper-case hexadecimal; `nil` when the text is not hex of even length.
    public init?(hexString: String) {
        let utf8 = Array(hexString.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}
