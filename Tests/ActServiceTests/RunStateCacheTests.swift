import ActEngine
import ActPlaybook
import ActService
import ActStore
import Testing

@Suite("run state cache")
struct RunStateCacheTests {
    func row(_ id: String, sequence: Int64, head: [UInt8] = [1, 2, 3], status: String = "running") -> RunRow {
        RunRow(runID: id, playbookID: "P", versionID: 1, status: status, state: [], traceID: "t", triggerEventID: nil,
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
}
