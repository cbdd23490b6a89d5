import ActPlaybook
import ActStore
import Testing

@Suite struct AuditChainTests {
    private func chain(run: String = "run-1", count: Int) -> [AuditChain.StoredEntry] {
        var previous: [UInt8] = []
        var stored: [AuditChain.StoredEntry] = []
        for sequence in 1...Int64(count) {
            let entry = AuditEntry(
                runID: run, sequence: sequence, at: 1_700_000_000_000 + sequence, kind: "task.completed",
                actor: "ai.classifier", data: ["step": "classify", "n": .int(sequence)])
            let hash = AuditChain.hash(previous: previous, entry: entry)
            stored.append(.init(entry: entry, previousHash: previous, hash: hash))
            previous = hash
        }
        return stored
    }

    @Test func intactChainVerifies() {
        let result = AuditChain.verify(run: "run-1", entries: chain(count: 5))
        #expect(result.findings.isEmpty)
        #expect(result.head.0 == 5)
    }

    @Test func editedEntryIsFound() {
        var entries = chain(count: 5)
        entries[2].entry.actor = "someone.else"
        let findings = AuditChain.verify(run: "run-1", entries: entries).findings
        #expect(findings.map(\.kind) == [.edited])
        #expect(findings.first?.sequence == 3)
    }

    @Test func deletedEntryIsFound() {
        var entries = chain(count: 5)
        entries.remove(at: 1)
        let kinds = Set(AuditChain.verify(run: "run-1", entries: entries).findings.map(\.kind))
        #expect(kinds.contains(.gap))
        #expect(kinds.contains(.broken))
    }

    @Test func reorderedEntriesAreFound() {
        var entries = chain(count: 5)
        entries.swapAt(1, 2)
        let kinds = Set(AuditChain.verify(run: "run-1", entries: entries).findings.map(\.kind))
        #expect(kinds.contains(.gap))
        #expect(kinds.contains(.broken))
    }

    @Test func canonicalEncodingIsStable() {
        let value: JSONValue = ["b": [1, 2.5, "x\"y\n"], "a": nil, "é": true]
        let text = String(decoding: value.canonicalEncoding, as: UTF8.self)
        #expect(text == #"{"a":null,"b":[1,2.5,"x\"y\n"],"é":true}"#)
    }

    @Test func checkpointSignatureDetectsChangedHeads() {
        let key = Array("a key the database never sees".utf8)
        let checkpoint = AuditCheckpoint(keyID: "k1", heads: [.init(run: "b", seq: 3, hash: "00"), .init(run: "a", seq: 1, hash: "ff")])
        let signature = checkpoint.signature(key: key)
        #expect(checkpoint.verify(signature: signature, key: key))
        var forged = checkpoint
        forged.heads[0].seq = 2
        #expect(!forged.verify(signature: signature, key: key))
        #expect(!checkpoint.verify(signature: signature, key: Array("wrong".utf8)))
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0, 1, 0xAB, 0xFF]
        #expect(bytes.hexString == "0001abff")
        #expect([UInt8](hexString: "0001ABff") == bytes)
        #expect([UInt8](hexString: "abc") == nil)
    }
}
