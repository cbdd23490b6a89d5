public import ActEngine
public import ActStore

/// Decoded run states this replica wrote last, so a batch touching a run it just advanced does not decode
/// the run's JSON again (decoding was the largest single cost of a transition).
///
/// An entry is used only when the locked row still has the audit sequence *and* chain head it had when
/// the entry was written: every state change appends an audit entry, so another replica's change, or a
/// transaction that rolled back, makes the entry miss and the row is decoded. Entries are recorded only
/// after commit. Finished runs are dropped; at `capacity` entries the cache starts over, so memory stays
/// bounded however many runs are open.
public struct RunStateCache: Sendable {
    private struct Entry: Sendable {
        var sequence: Int64
        var head: [UInt8]
        var state: RunState
    }

    private var entries: [String: Entry] = [:]
    public let capacity: Int

    public init(capacity: Int = 4_096) {
        self.capacity = capacity
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
            guard let state = states[row.runID], !state.status.isFinished else {
                entries[row.runID] = nil
                continue
            }
            if entries.count >= capacity, entries[row.runID] == nil { entries.removeAll(keepingCapacity: true) }
            entries[row.runID] = Entry(sequence: row.auditSequence, head: row.auditHead, state: state)
        }
    }
}
