import ActPlaybook
import ActStore
import Testing

@Suite struct CanonicalJSONTests {
    /// An entry written when numbers were `Double`s, as its data reads back from PostgreSQL (jsonb
    /// prints numerics in plain digits): its canonical bytes and hash are the ones stored then.
    @Test func chainsWrittenWithDoubleNumbersStillVerify() throws {
        let data = try JSONValue(parsing: Array(
            #"{"amount": 0.5, "big": 100000000000000000000, "count": 3, "edge": 9007199254740992, "neg": -42, "ratio": 0.1, "tiny": 0.0000001}"#
                .utf8))
        let entry = AuditEntry(runID: "wf_old", sequence: 1, at: 1_700_000_000_000, kind: "run.started", actor: "hms-act",
            data: data)
        let old = #"{"actor":"hms-act","at":1700000000000,"data":{"amount":0.5,"big":1e+20,"count":3,"edge":9007199254740992.0,"neg":-42,"ratio":0.1,"tiny":1e-07},"kind":"run.started","run":"wf_old","seq":1}"#
        #expect(String(decoding: entry.canonicalEncoding, as: UTF8.self) == old)
        // SHA-256 of those bytes, computed outside Swift.
        #expect(AuditChain.hash(previous: [], entry: entry).hexString
            == "0e006cf072c4c6b3af97fd1a7c5d740b1e32dbf1516060d28a3ade85950f1968")
    }

    @Test func numbersAreWrittenExactly() throws {
        let text = #"{"amount":123456789.123456789,"big":12345678901234567890,"id":9007199254740993,"long":123456789012345678901234567890123456789012,"min":-9223372036854775808,"ratio":0.1,"wide":12345678901234567890123}"#
        let value = try JSONValue(parsing: Array(text.utf8))
        #expect(String(decoding: value.canonicalEncoding, as: UTF8.self) == text)
        // Read back (as from a jsonb column) and written again: the same bytes, so the same hash.
        #expect(try JSONValue(parsing: value.canonicalEncoding).canonicalEncoding == value.canonicalEncoding)
    }

    @Test func equalNumbersEncodeAlike() throws {
        let a = try JSONValue(parsing: Array(#"[1.0, 1e2, -0, 0.50]"#.utf8))
        #expect(String(decoding: a.canonicalEncoding, as: UTF8.self) == "[1,100,0,0.5]")
    }

    @Test func anEntryWithAnExactPayloadVerifiesAfterARoundTrip() throws {
        let data = try JSONValue(parsing: Array(#"{"payload": {"id": 9007199254740993, "amount": 0.1}}"#.utf8))
        let entry = AuditEntry(runID: "wf_1", sequence: 1, at: 1_700_000_000_000, kind: "run.started", actor: "hms-act",
            data: data)
        var stored = AuditChain.StoredEntry(entry: entry, previousHash: [], hash: AuditChain.hash(previous: [], entry: entry))
        stored.entry.data = try JSONValue(parsing: data.canonicalEncoding)
        #expect(AuditChain.verify(run: "wf_1", entries: [stored]).findings.isEmpty)
        // One digit more is an edit, though the two ids have the same `Double`.
        stored.entry.data = try JSONValue(parsing: Array(#"{"payload": {"id": 9007199254740992, "amount": 0.1}}"#.utf8))
        #expect(!AuditChain.verify(run: "wf_1", entries: [stored]).findings.isEmpty)
    }
}
