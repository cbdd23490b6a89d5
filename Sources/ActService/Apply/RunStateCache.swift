public import ActEngine
public import ActStore

/// Decoded run states this replica wrote last, so a batch touching a run it just advanced does not decode
/// the run's JSON again (decoding was the largest single cost of a transition).
///
/// An entry is used only when the locked row still has the audit sequence *and* chain head it had when
/// the entry was written: every state change appends an audit entry, so another replica's change, or a
/// transaction that rolled back, makes the entry miss and the row is decoded. Entries are recorded only
/// after commit. Finished runs are dropped; at `capacity` entries, or when the states' encoded sizes add
/// up to `byteCapacity`, the cache starts over, so memory stays bounded however many runs are open and
/// however large their payloads and outputs are. A state larger than a sixteenth of `byteCapacity` is
/// not cached at all.
public struct RunStateCache: Sendable {
    private struct Entry: Sendable {
        var sequence: Int64
        var head: [UInt8]
        var state: RunState
        /// The encoded state's size: a stand-in for the decoded state's memory.
        var bytes: Int
    }

    private var entries: [String: Entry] = [:]
    public let capacity: Int
    public let byteCapacity: Int
    /// The encoded sizes of the cached states, added up.
    public private(set) var bytes = 0

    public init(capacity: Int = 4_096, byteCapacity: Int = 32 << 20) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    public var count: Int { entries.count }

    /// The cached states of `runs` whose rows have not changed since they were cached.
    public func states(matching runs: [String: RunRow]) -> [String: RunState] {
        var states: [String: RunState] = [:]
        for (id, row) in runs {
            if let entry = entries[id], entry.sequence == row.auditSequence, entry.head == row.auditHead {
                states[id] = entry.state
            }
        }
        return states
    }

    /// Records the runs a committed batch wrote.
    public mutating func record(_ rows: [RunRow], states: [String: RunState]) {
        for row in rows {
            if let old = entries.removeValue(forKey: row.runID) { bytes -= old.bytes }
            guard let state = states[row.runID], !state.status.isFinished, row.state.count <= byteCapacity / 16 else {
                continue
            }
            if entries.count >= capacity || bytes + row.state.count > byteCapacity {
                entries.removeAll(keepingCapacity: true)
                bytes = 0
            }
            entries[row.runID] = Entry(sequence: row.auditSequence, head: row.auditHead, state: state, bytes: row.state.count)
            bytes += row.state.count
        }
    }
}
