import ActEngine
public import ActPlaybook
internal import Foundation

extension API {
    /// What moving the active runs of one playbook version to another would do (`POST /v1/playbook-migrations`
    /// with `dry_run`), and the bulk operation that does it.
    public struct MigrationPlan: Hashable, Sendable, Encodable {
        public struct Refusal: Hashable, Sendable, Encodable {
            public var runID: String
            public var reason: String

            enum CodingKeys: String, CodingKey { case runID = "run_id", reason }
        }

        public var fromVersion: Int64
        public var toVersion: Int64
        public var mapping: [String: String]
        /// Active runs (running, paused, incident, compensating) of the old version.
        public var active: Int
        public var movable: Int
        /// The first 100 runs that cannot move, each with the step it would be stranded at.
        public var refused: [Refusal]
        public var refusedCount: Int
        public var dryRun: Bool
        /// The bulk operation moving the runs, when it was started.
        public var operation: BulkOperation?

        /// Checks each run's state against the move.
        public init(fromVersion: Int64, toVersion: Int64, from: Playbook, to: Playbook, mapping: [StepID: StepID],
            runs: [(runID: String, state: [UInt8])], dryRun: Bool)
        {
            self.fromVersion = fromVersion
            self.toVersion = toVersion
            self.mapping = Dictionary(uniqueKeysWithValues: mapping.map { ($0.key.rawValue, $0.value.rawValue) })
            self.dryRun = dryRun
            active = runs.count
            var refused: [Refusal] = []
            var refusedCount = 0
            let decoder = JSONDecoder()
            for (runID, bytes) in runs {
                let reason: String?
                if let state = try? decoder.decode(RunState.self, from: Data(bytes)) {
                    switch RunMigration.migrate(state, from: from, to: to, mapping: mapping) {
                    case .success: reason = nil
                    case .failure(let refusal): reason = refusal.description
                    }
                } else {
                    reason = "run \(runID) has a state this version of hms-act cannot read"
                }
                guard let reason else { continue }
                refusedCount += 1
                if refused.count < 100 { refused.append(Refusal(runID: runID, reason: reason)) }
            }
            self.refused = refused
            self.refusedCount = refusedCount
            movable = runs.count - refusedCount
        }

        enum CodingKeys: String, CodingKey {
            case fromVersion = "from_version", toVersion = "to_version", mapping, active, movable, refused
            case refusedCount = "refused_count", dryRun = "dry_run", operation
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(fromVersion, forKey: .fromVersion)
            try c.encode(toVersion, forKey: .toVersion)
            try c.encode(mapping, forKey: .mapping)
            try c.encode(active, forKey: .active)
            try c.encode(movable, forKey: .movable)
            try c.encode(refused, forKey: .refused)
            try c.encode(refusedCount, forKey: .refusedCount)
            try c.encode(dryRun, forKey: .dryRun)
            try c.encode(operation, forKey: .operation)
        }
    }
}
