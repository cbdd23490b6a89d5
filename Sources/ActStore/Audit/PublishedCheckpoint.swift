import ActPlaybook

/// One `audit.checkpoint` message as published to the governance exchange and drained from a queue bound
/// to it: the outside witness `hms-act audit verify --checkpoints FILE` compares the database against.
public struct PublishedCheckpoint: Hashable, Sendable {
    public var checkpointID: Int64
    /// `ed25519:<base64 public key>`, or the name of an HMAC key for checkpoints written before Ed25519.
    public var keyID: String
    public var headsDigest: [UInt8]
    public var signature: [UInt8]

    public init(checkpointID: Int64, keyID: String, headsDigest: [UInt8], signature: [UInt8]) {
        self.checkpointID = checkpointID
        self.keyID = keyID
        self.headsDigest = headsDigest
        self.signature = signature
    }

    /// A stream that cannot be read; `line` is 1-based.
    public struct ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Reads one message body (the JSON of docs/amqp-contract.md, `type` `audit.checkpoint`).
    public init(messageBody: some Collection<UInt8>) throws(ReadError) {
        let value: JSONValue
        do throws(JSONValue.ParseError) {
            value = try JSONValue(parsing: messageBody)
        } catch {
            throw ReadError(line: 0, message: "not JSON (\(error.message) at byte \(error.offset))")
        }
        guard value["type"]?.stringValue == "audit.checkpoint" else {
            throw ReadError(line: 0, message: "not an audit.checkpoint message (its \"type\" is not \"audit.checkpoint\")")
        }
        guard let number = value["checkpoint_id"]?.numberValue?.intValue else {
            throw ReadError(line: 0, message: "\"checkpoint_id\" is missing or not an integer")
        }
        guard let keyID = value["key_id"]?.stringValue else {
            throw ReadError(line: 0, message: "\"key_id\" is missing")
        }
        guard let digestText = value["heads_digest"]?.stringValue, let digest = [UInt8](hexString: digestText),
            digest.count == 32
        else {
            throw ReadError(line: 0, message: "\"heads_digest\" is missing or not 64 hex digits")
        }
        guard let signatureText = value["signature"]?.stringValue, let signature = [UInt8](hexString: signatureText) else {
            throw ReadError(line: 0, message: "\"signature\" is missing or not hex")
        }
        self.init(checkpointID: Int64(number), keyID: keyID, headsDigest: digest, signature: signature)
    }

    /// Reads an exported stream: one message body per line (JSON Lines); blank lines are skipped.
    ///
    /// - Throws: ``ReadError`` naming the first line that is not a checkpoint message.
    public static func readStream(_ bytes: [UInt8]) throws(ReadError) -> [PublishedCheckpoint] {
        var checkpoints: [PublishedCheckpoint] = []
        var line = 0
        for text in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            if text.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { continue }
            do throws(ReadError) {
                checkpoints.append(try PublishedCheckpoint(messageBody: text))
            } catch {
                throw ReadError(line: line, message: error.message)
            }
        }
        return checkpoints
    }
}
