import ActPlaybook
import ActStore
import Foundation
import Testing

/// The archive file of `hms-act retention run`, verified offline: intact as written, and every way it can be
/// damaged or forged is a finding.
@Suite struct AuditArchiveTests {
    static let key = AuditSigningKey.generate()

    /// A chain of `length` entries for `run`.
    static func chain(_ run: String, length: Int) -> [AuditChain.StoredEntry] {
        var previous: [UInt8] = []
        return (1...length).map { sequence in
            let entry = AuditEntry(runID: run, sequence: Int64(sequence), at: 1_800_000_000_000 + Int64(sequence),
                kind: sequence == length ? "run.completed" : "task.completed", actor: "ai.classifier",
                data: ["step": .string("s\(sequence)")])
            let hash = AuditChain.hash(previous: previous, entry: entry)
            defer { previous = hash }
            return AuditChain.StoredEntry(entry: entry, previousHash: previous, hash: hash)
        }
    }

    /// An archive of two runs whose final heads one checkpoint signs (with a head of a run not archived).
    static func archive(signedBy signer: AuditSigningKey = key, signHeads: Bool = true) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var writer = try AuditArchive.Writer(createdAt: 1_900_000_000_000, finishedBefore: 1_890_000_000_000,
            schema: "hms_act") { bytes.append(contentsOf: $0) }
        var heads: [AuditCheckpoint.Head] = [.init(run: "wf_other", seq: 9, hash: String(repeating: "ab", count: 32))]
        for (run, length) in [("wf_one", 4), ("wf_two", 6)] {
            let entries = chain(run, length: length)
            let head = entries.last!
            try writer.write(AuditArchive.RunRecord(runID: run, auditSequence: Int64(length), auditHead: head.hash,
                row: ["run_id": .string(run), "status": "completed"], tasks: [["task_id": "t1"]], incidents: [],
                audit: entries))
            heads.append(.init(run: run, seq: Int64(length), hash: head.hash.hexString))
        }
        if signHeads {
            let checkpoint = AuditCheckpoint(keyID: signer.publicKey.keyID, heads: heads)
            try writer.write(AuditArchive.Checkpoint(id: 7, at: 1_800_000_100_000, keyID: signer.publicKey.keyID,
                heads: checkpoint.heads, signature: checkpoint.signature(signingKey: signer)))
        }
        _ = try writer.finish()
        return bytes
    }

    static func lines(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    static func join(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\n") + "\n").utf8) }

    static func kinds(_ report: AuditReport) -> Set<AuditChain.Finding.Kind> { Set(report.findings.map(\.kind)) }

    @Test func anArchiveAsWrittenVerifies() throws {
        let report = AuditArchive.verify(try Self.archive(), trusted: [Self.key.publicKey])
        #expect(report.isIntact, "\(report.findings)")
        #expect(report.runsChecked == 2 && report.entriesChecked == 10 && report.checkpointsChecked == 1)
    }

    @Test func anEditedEntryIsFound() throws {
        var lines = Self.lines(try Self.archive())
        let index = try #require(lines.firstIndex { $0.contains(#""seq":2"#) && $0.contains("wf_one") })
        lines[index] = lines[index].replacingOccurrences(of: #""step":"s2""#, with: #""step":"forged""#)
        let report = AuditArchive.verify(Self.join(lines), trusted: [Self.key.publicKey])
        #expect(report.findings.contains { $0.kind == .edited && $0.runID == "wf_one" && $0.sequence == 2 })
    }

    @Test func aRemovedEntryIsFound() throws {
        var lines = Self.lines(try Self.archive())
        lines.removeAll { $0.contains(#""type":"audit""#) && $0.contains("wf_two") && $0.contains(#""seq":3,"#) }
        let report = AuditArchive.verify(Self.join(lines), trusted: [Self.key.publicKey])
        #expect(Self.kinds(report).contains(.gap))
        #expect(Self.kinds(report).contains(.incomplete), "the end record's count no longer matches")
    }

    @Test func aFileCutShortIsFound() throws {
        let lines = Self.lines(try Self.archive())
        let report = AuditArchive.verify(Self.join(Array(lines.dropLast())), trusted: [Self.key.publicKey])
        #expect(report.findings.contains { $0.kind == .incomplete && $0.message.contains("end record is missing") })
    }

    @Test func aLineAppendedAfterTheEndIsFound() throws {
        let lines = Self.lines(try Self.archive())
        let report = AuditArchive.verify(Self.join(lines + [lines[1]]), trusted: [Self.key.publicKey])
        #expect(report.findings.contains { $0.kind == .incomplete && $0.message.contains("after the end record") })
    }

    @Test func aRunWhoseFinalHeadNoCheckpointSignsIsUnanchored() throws {
        let report = AuditArchive.verify(try Self.archive(signHeads: false), trusted: [Self.key.publicKey])
        #expect(report.findings.filter { $0.kind == .unanchored }.compactMap(\.runID).sorted() == ["wf_one", "wf_two"])
    }

    @Test func aCheckpointSignedByAnotherKeyIsRefused() throws {
        let insider = AuditSigningKey.generate()
        let report = AuditArchive.verify(try Self.archive(signedBy: insider), trusted: [Self.key.publicKey])
        #expect(Self.kinds(report) == [.badCheckpoint, .unanchored])
    }

    /// Rewriting a whole chain consistently (every hash recomputed) still fails: the checkpoint signed the old head.
    @Test func aRewrittenChainNoLongerMatchesItsSignedHead() throws {
        var lines = Self.lines(try Self.archive())
        var previous: [UInt8] = []
        for (index, line) in lines.enumerated() where line.contains(#""type":"audit""#) && line.contains("wf_one") {
            guard case .object(var object) = try JSONValue(parsing: Array(line.utf8)) else { continue }
            let sequence = Int64(object["seq"]?.numberValue?.intValue ?? 0)
            let entry = AuditEntry(runID: "wf_one", sequence: sequence, at: 1_800_000_000_000 + sequence,
                kind: object["kind"]?.stringValue ?? "", actor: "ai.classifier", data: ["step": "rewritten"])
            let hash = AuditChain.hash(previous: previous, entry: entry)
            object["data"] = ["step": "rewritten"]
            object["prev_hash"] = .string(previous.hexString)
            object["hash"] = .string(hash.hexString)
            lines[index] = String(decoding: JSONValue.object(object).canonicalEncoding, as: UTF8.self)
            previous = hash
        }
        if let runLine = lines.firstIndex(where: { $0.contains(#""type":"run""#) && $0.contains("wf_one") }),
            case .object(var object) = try JSONValue(parsing: Array(lines[runLine].utf8))
        {
            object["audit_head"] = .string(previous.hexString)
            lines[runLine] = String(decoding: JSONValue.object(object).canonicalEncoding, as: UTF8.self)
        }
        let report = AuditArchive.verify(Self.join(lines), trusted: [Self.key.publicKey])
        #expect(report.findings.contains { $0.kind == .edited && $0.runID == "wf_one" && $0.sequence == 4 })
        #expect(report.findings.contains { $0.kind == .unanchored && $0.runID == "wf_one" })
        #expect(!report.findings.contains { $0.runID == "wf_two" })
    }

    @Test func somethingThatIsNotAnArchiveSaysSo() {
        let report = AuditArchive.verify(Array("hello\n".utf8), trusted: [Self.key.publicKey])
        #expect(report.findings.contains { $0.message.contains("header record is missing") })
        #expect(report.findings.contains { $0.message.contains("not an archive record") })
    }
}
