import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

@Suite("run state cache")
struct RunStateCacheTests {
    func row(_ id: String, sequence: Int64, head: [UInt8] = [1, 2, 3], status: String = "running", bytes: Int = 0)
        -> RunRow
    {
        RunRow(runID: id, playbookID: "P", versionID: 1, status: status, state: [UInt8](repeating: 32, count: bytes),
            traceID: "t", triggerEventID: nil,
            triggerType: nil, auditSequence: sequence, auditHead: head, createdAt: 0, updatedAt: 0, finishedAt: nil)
    }

    func state(_ id: String, status: RunStatus = .running) -> RunState {
        var state = RunState(runID: RunID(id), playbookID: PlaybookID("P"), payload: ["n": 1],
            startedAt: Instant(millisecondsSinceEpoch: 0))
        state.status = status
        return state
    }

    @Test func aRowUnchangedSinceItWasCachedHits() {
        var cache = RunStateCache()
        cache.record([row("a", sequence: 3)], states: ["a": state("a")])
        #expect(cache.states(matching: ["a": row("a", sequence: 3)]) == ["a": state("a")])
    }

    @Test func anotherSequenceOrHeadMisses() {
        var cache = RunStateCache()
        cache.record([row("a", sequence: 3)], states: ["a": state("a")])
        // Another replica advanced the run, or wrote a different entry at the same sequence.
        #expect(cache.states(matching: ["a": row("a", sequence: 4)]).isEmpty)
        #expect(cache.states(matching: ["a": row("a", sequence: 3, head: [9])]).isEmpty)
    }

    @Test func finishedRunsAreDropped() {
        var cache = RunStateCache()
        cache.record([row("a", sequence: 3)], states: ["a": state("a")])
        cache.record([row("a", sequence: 4, status: "completed")], states: ["a": state("a", status: .completed)])
        #expect(cache.count == 0)
    }

    @Test func theCacheNeverHoldsMoreThanItsCapacity() {
        var cache = RunStateCache(capacity: 10)
        for index in 0..<95 {
            cache.record([row("r\(index)", sequence: 1)], states: ["r\(index)": state("r\(index)")])
            #expect(cache.count <= 10)
        }
        #expect(cache.states(matching: ["r94": row("r94", sequence: 1)]).count == 1)
    }

    /// States carry payloads and outputs of up to a megabyte each: the bound is in bytes, not only entries.
    @Test func theCacheNeverHoldsMoreBytesThanItsByteCapacity() {
        var cache = RunStateCache(capacity: 1_000, byteCapacity: 16_000)
        for index in 0..<200 {
            cache.record([row("r\(index)", sequence: 1, bytes: 900)], states: ["r\(index)": state("r\(index)")])
            #expect(cache.bytes <= 16_000)
        }
        #expect(cache.count == cache.bytes / 900)
        // A state above a sixteenth of the capacity is not kept at all, and replaces nothing.
        cache.record([row("huge", sequence: 1, bytes: 1_001)], states: ["huge": state("huge")])
        #expect(cache.states(matching: ["huge": row("huge", sequence: 1, bytes: 1_001)]).isEmpty)
        #expect(cache.states(matching: ["r199": row("r199", sequence: 1, bytes: 900)]).count == 1)
    }

    @Test func aRecachedRunCountsItsBytesOnce() {
        var cache = RunStateCache(byteCapacity: 1 << 20)
        for sequence in 1...50 {
            cache.record([row("a", sequence: Int64(sequence), bytes: 500)], states: ["a": state("a")])
        }
        #expect(cache.bytes == 500)
        #expect(cache.count == 1)
    }
}
