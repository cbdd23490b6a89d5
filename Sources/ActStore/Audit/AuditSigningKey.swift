internal import Crypto
internal import Foundation

/// The Ed25519 private key that signs audit checkpoints.
///
/// It lives only in the service's secret (`audit.signing_key`, env `HMS_AUDIT_SIGNING_KEY`): the database
/// holds checkpoints and their public key, never this. Its text form is the base64 of the 32-byte raw
/// key, which `hms-act audit keygen` prints.
public struct AuditSigningKey: Sendable {
    /// The 32 raw bytes; kept as bytes so the type is plainly `Sendable`.
    private let raw: [UInt8]

    /// Reads the base64 of a 32-byte raw Ed25519 private key.
    ///
    /// - Throws: ``AuditKeyError`` saying what is wrong with the text and how to make a good one.
    public init(base64 text: String) throws(AuditKeyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed) else {
            throw AuditKeyError("the audit signing key is not base64; make one with `hms-act audit keygen`")
        }
        guard data.count == 32, (try? Curve25519.Signing.PrivateKey(rawRepresentation: data)) != nil else {
            throw AuditKeyError(
                "the audit signing key must be the base64 of 32 bytes (an Ed25519 private key), got \(data.count) bytes; make one with `hms-act audit keygen`")
        }
        self.raw = Array(data)
    }

    private init(raw: [UInt8]) { self.raw = raw }

    /// A new random key.
    public static func generate() -> AuditSigningKey {
        AuditSigningKey(raw: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    /// The base64 of the raw private key: the value of `audit.signing_key`.
    public var base64: String { Data(raw).base64EncodedString() }

    private var privateKey: Curve25519.Signing.PrivateKey {
        // The bytes were checked in init(base64:) or made by CryptoKit itself.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }

    /// The public half, which verifiers are given.
    public var publicKey: AuditPublicKey { AuditPublicKey(raw: Array(privateKey.publicKey.rawRepresentation)) }

    /// The Ed25519 signature of `message`.
    public func signature(for message: [UInt8]) -> [UInt8] {
        // Signing with a valid key and in-memory bytes cannot fail.
        Array(try! privateKey.signature(for: message))
    }
}

/// The Ed25519 public key that verifies audit checkpoints. Its text form is the base64 of its 32 raw bytes;
/// a checkpoint names it in its key id, `ed25519:<base64>`.
public struct AuditPublicKey: Hashable, Sendable, CustomStringConvertible {
    public let raw: [UInt8]

    init(raw: [UInt8]) { self.raw = raw }

    /// The prefix of the key id of every Ed25519-signed checkpoint.
    public static let keyIDPrefix = "ed25519:"

    /// Reads the base64 of a 32-byte raw Ed25519 public key, or a key id `ed25519:<base64>`.
    ///
    /// - Throws: ``AuditKeyError`` saying what is wrong with the text.
    public init(base64 text: String) throws(AuditKeyError) {
        var trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix(Self.keyIDPrefix) { trimmed.removeFirst(Self.keyIDPrefix.count) }
        guard let data = Data(base64Encoded: trimmed), data.count == 32,
            (try? Curve25519.Signing.PublicKey(rawRepresentation: data)) != nil
        else {
            throw AuditKeyError(
                "'\(text)' is not an audit public key: give the base64 of its 32 bytes, as `hms-act audit public-key` prints it")
        }
        self.raw = Array(data)
    }

    public var base64: String { Data(raw).base64EncodedString() }

    /// `ed25519:<base64>`, the key id checkpoints signed by this key carry.
    public var keyID: String { Self.keyIDPrefix + base64 }

    public var description: String { keyID }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// A key that cannot be read: the message says what is wrong and how to fix it.
public struct AuditKeyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
