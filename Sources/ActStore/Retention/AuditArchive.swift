public import ActPlaybook
internal import Crypto

/// The archive file `hms-act retention run` writes before it removes runs: JSON Lines, one object per line,
/// each with a `type`, and verifiable without the database (`hms-act audit verify --archive FILE`).
///
///     {"type":"header","format":"hms-act.archive/1","created_at":…,"finished_before":…,"schema":"…"}
///     {"type":"run","run_id":…,"audit_seq":…,"audit_head":"<hex>","row":{…the runs row…}}
///     {"type":"task","run_id":…,"row":{…}}                     every attempt, compensations included
///     {"type":"incident","run_id":…,"row":{…}}
///     {"type":"audit","run_id":…,"seq":…,"at":<ms>,"kind":…,"actor":…,"data":{…},"prev_hash":"<hex>","hash":"<hex>"}
///     {"type":"checkpoint","checkpoint_id":…,"at":<ms>,"key_id":…,"heads":[{run,seq,hash}…],"signature":"<hex>"}
///     {"type":"end","runs":…,"tasks":…,"incidents":…,"audit_entries":…,"checkpoints":…}
///
/// Each run's whole audit chain is in the file, and so is the checkpoint that signed its final head (retention
/// only archives runs whose final head a checkpoint has signed): re-hashing the chain and checking that
/// signature with a trusted public key proves the run's history is what the service wrote. The `end` line's
/// counts catch a file cut short.
public enum AuditArchive {
    public static let format = "hms-act.archive/1"

    /// One run's rows, ready to be written.
    public struct RunRecord: Sendable {
        public var runID: String
        public var auditSequence: Int64
        public var auditHead: [UInt8]
        /// The `runs` row as PostgreSQL's `row_to_json` gives it.
        public var row: JSONValue
        public var tasks: [JSONValue]
        public var incidents: [JSONValue]
        public var audit: [AuditChain.StoredEntry]

        public init(runID: String, auditSequence: Int64, auditHead: [UInt8], row: JSONValue, tasks: [JSONValue],
            incidents: [JSONValue], audit: [AuditChain.StoredEntry])
        {
            self.runID = runID
            self.auditSequence = auditSequence
            self.auditHead = auditHead
            self.row = row
            self.tasks = tasks
            self.incidents = incidents
            self.audit = audit
        }
    }

    /// A stored checkpoint, with all the heads it signed (the signature covers them all).
    public struct Checkpoint: Sendable, Hashable {
        public var id: Int64
        public var at: Int64
        public var keyID: String
        public var heads: [AuditCheckpoint.Head]
        public var signature: [UInt8]

        public init(id: Int64, at: Int64, keyID: String, heads: [AuditCheckpoint.Head], signature: [UInt8]) {
            self.id = id
            self.at = at
            self.keyID = keyID
            self.heads = heads
            self.signature = signature
        }
    }

    /// Writes an archive line by line, keeping the counts for the `end` line and the digest of every byte.
    public struct Writer: ~Copyable {
        private var hasher = SHA256()
        private var counts = (runs: 0, tasks: 0, incidents: 0, audit: 0, checkpoints: 0)
        private let emit: ([UInt8]) throws -> Void

        /// - Parameter emit: Takes each line (with its newline) in order: append it to the file.
        public init(createdAt: Int64, finishedBefore: Int64, schema: String, emit: @escaping ([UInt8]) throws -> Void)
            throws
        {
            self.emit = emit
            try line([
                "type": "header", "format": .string(AuditArchive.format), "created_at": .int(createdAt),
                "finished_before": .int(finishedBefore), "schema": .string(schema),
            ])
        }

        public mutating func write(_ run: RunRecord) throws {
            try line([
                "type": "run", "run_id": .string(run.runID), "audit_seq": .int(run.auditSequence),
                "audit_head": .string(run.auditHead.hexString), "row": run.row,
            ])
            for task in run.tasks { try line(["type": "task", "run_id": .string(run.runID), "row": task]) }
            for incident in run.incidents { try line(["type": "incident", "run_id": .string(run.runID), "row": incident]) }
            for stored in run.audit {
                let entry = stored.entry
                try line([
                    "type": "audit", "run_id": .string(entry.runID), "seq": .int(entry.sequence), "at": .int(entry.at),
                    "kind": .string(entry.kind), "actor": .string(entry.actor), "data": entry.data,
                    "prev_hash": .string(stored.previousHash.hexString), "hash": .string(stored.hash.hexString),
                ])
            }
            counts.runs += 1
            counts.tasks += run.tasks.count
            counts.incidents += run.incidents.count
            counts.audit += run.audit.count
        }

        public mutating func write(_ checkpoint: Checkpoint) throws {
            try line([
                "type": "checkpoint", "checkpoint_id": .int(checkpoint.id), "at": .int(checkpoint.at),
                "key_id": .string(checkpoint.keyID),
                "heads": .array(checkpoint.heads.map {
                    .object(["run": .string($0.run), "seq": .int($0.seq), "hash": .string($0.hash)])
                }),
                "signature": .string(checkpoint.signature.hexString),
            ])
            counts.checkpoints += 1
        }

        /// Writes the `end` line. - Returns: The SHA-256 of the whole file, lower-case hex.
        public consuming func finish() throws -> String {
            try line([
                "type": "end", "runs": .int(counts.runs), "tasks": .int(counts.tasks),
                "incidents": .int(counts.incidents), "audit_entries": .int(counts.audit),
                "checkpoints": .int(counts.checkpoints),
            ])
            return Array(hasher.finalize()).hexString
        }

        public var runCount: Int { counts.runs }
        public var auditEntryCount: Int { counts.audit }

        private mutating func line(_ object: [String: JSONValue]) throws {
            var bytes = JSONValue.object(object).canonicalEncoding
            bytes.append(UInt8(ascii: "\n"))
            hasher.update(data: bytes)
            try emit(bytes)
        }
    }

    /// Verifies an archive file's bytes without the database: every run's chain re-hashed and ending at the
    /// head the run row names, every checkpoint's signature checked against `trusted` (or `legacyKeys`), each
    /// run's final head signed by a checkpoint in the file, and the `end` line's counts.
    ///
    /// - Returns: A report whose findings name the run and entry; empty findings mean intact.
    public static func verify(_ bytes: [UInt8], trusted: [AuditPublicKey], legacyKeys: [String: [UInt8]] = [:])
        -> AuditReport
    {
        var report = AuditReport(runsChecked: 0, entriesChecked: 0, checkpointsChecked: 0, findings: [])
        func finding(_ kind: AuditChain.Finding.Kind, run: String? = nil, seq: Int64? = nil, _ message: String) {
            report.findings.append(.init(kind: kind, runID: run, sequence: seq, message: message))
        }
        var runs: [(id: String, seq: Int64, head: String)] = []
        var chains: [String: [AuditChain.StoredEntry]] = [:]
        var checkpoints: [Checkpoint] = []
        var counted = (tasks: 0, incidents: 0)
        var end: [String: JSONValue]?
        var sawHeader = false
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            lineNumber += 1
            guard case .object(let object)? = try? JSONValue(parsing: line), let type = object["type"]?.stringValue else {
                finding(.incomplete, "line \(lineNumber) is not an archive record (JSON with a type): the file is damaged")
                continue
            }
            if end != nil {
                finding(.incomplete, "line \(lineNumber) comes after the end record: something was appended")
            }
            func text(_ key: String) -> String? { object[key]?.stringValue }
            func number(_ key: String) -> Int64? { object[key]?.numberValue?.intValue.map(Int64.init) }
            switch type {
            case "header":
                sawHeader = true
                if text("format") != format {
                    finding(.incomplete, "line \(lineNumber): format \(text("format") ?? "none") is not \(format)")
                }
            case "run":
                guard let id = text("run_id"), let seq = number("audit_seq"), let head = text("audit_head") else {
                    finding(.incomplete, "line \(lineNumber): a run record without run_id, audit_seq or audit_head")
                    continue
                }
                runs.append((id, seq, head))
            case "task": counted.tasks += 1
            case "incident": counted.incidents += 1
            case "audit":
                guard let run = text("run_id"), let seq = number("seq"), let at = number("at"), let kind = text("kind"),
                    let actor = text("actor"), let data = object["data"],
                    let previous = text("prev_hash").flatMap([UInt8].init(hexString:)),
                    let hash = text("hash").flatMap([UInt8].init(hexString:))
                else {
                    finding(.incomplete, "line \(lineNumber): an audit record missing a field")
                    continue
                }
                chains[run, default: []].append(AuditChain.StoredEntry(
                    entry: AuditEntry(runID: run, sequence: seq, at: at, kind: kind, actor: actor, data: data),
                    previousHash: previous, hash: hash))
            case "checkpoint":
                guard let id = number("checkpoint_id"), let at = number("at"), let keyID = text("key_id"),
                    case .array(let headValues)? = object["heads"],
                    let signature = text("signature").flatMap([UInt8].init(hexString:))
                else {
                    finding(.incomplete, "line \(lineNumber): a checkpoint record missing a field")
                    continue
                }
                var heads: [AuditCheckpoint.Head] = []
                for value in headValues {
                    guard let run = value["run"]?.stringValue, let seq = value["seq"]?.numberValue?.intValue,
                        let hash = value["hash"]?.stringValue
                    else {
                        finding(.incomplete, "line \(lineNumber): checkpoint \(id) has a head that cannot be read")
                        continue
                    }
                    heads.append(.init(run: run, seq: Int64(seq), hash: hash))
                }
                checkpoints.append(Checkpoint(id: id, at: at, keyID: keyID, heads: heads, signature: signature))
            case "end":
                end = object
            default:
                finding(.incomplete, "line \(lineNumber): unknown record type \(type)")
            }
        }
        if !sawHeader { finding(.incomplete, "the header record is missing: this is not an hms-act archive") }

        // Chains.
        for run in runs {
            let entries = (chains[run.id] ?? []).sorted { $0.entry.sequence < $1.entry.sequence }
            let result = AuditChain.verify(run: run.id, entries: entries)
            report.findings.append(contentsOf: result.findings)
            report.runsChecked += 1
            report.entriesChecked += entries.count
            if result.head.0 != run.seq || result.head.1.hexString != run.head {
                finding(.truncated, run: run.id, seq: run.seq,
                    "the run's final head is entry \(run.seq), but its chain in the archive ends at entry \(result.head.0)")
            }
        }
        let archived = Set(runs.map(\.id))
        for run in chains.keys.sorted() where !archived.contains(run) {
            finding(.incomplete, run: run, "audit entries of a run that has no run record in the archive")
        }

        // Checkpoints: the signature, then every head of an archived run against its chain.
        var signedHeads: Set<String> = []
        for checkpoint in checkpoints {
            report.checkpointsChecked += 1
            let candidate = AuditCheckpoint(keyID: checkpoint.keyID, heads: checkpoint.heads)
            if let problem = candidate.verify(signature: checkpoint.signature, trusted: trusted, legacyKeys: legacyKeys) {
                finding(.badCheckpoint, "checkpoint \(checkpoint.id) \(problem)")
                continue
            }
            for head in checkpoint.heads where archived.contains(head.run) {
                let stored = chains[head.run]?.first { $0.entry.sequence == head.seq }
                if stored == nil {
                    finding(.truncated, run: head.run, seq: head.seq,
                        "checkpoint \(checkpoint.id) signed this entry, which is not in the archive")
                } else if stored?.hash.hexString != head.hash {
                    finding(.edited, run: head.run, seq: head.seq, "checkpoint \(checkpoint.id) signed a different hash for this entry")
                } else {
                    signedHeads.insert("\(head.run)#\(head.seq)")
                }
            }
        }
        for run in runs where !signedHeads.contains("\(run.id)#\(run.seq)") {
            finding(.unanchored, run: run.id, seq: run.seq,
                "no checkpoint in the archive signs the run's final head, so nothing outside the file vouches for it")
        }

        // The end record's counts.
        if let end {
            let expected: [(String, Int)] = [
                ("runs", runs.count), ("tasks", counted.tasks), ("incidents", counted.incidents),
                ("audit_entries", chains.values.reduce(0) { $0 + $1.count }), ("checkpoints", checkpoints.count),
            ]
            for (key, count) in expected where end[key]?.numberValue?.intValue != count {
                finding(.incomplete, "the end record counts \(end[key].map { "\($0)" } ?? "no") \(key), the file holds \(count)")
            }
        } else {
            finding(.incomplete, "the end record is missing: the file was cut short")
        }
        return report
    }
}
