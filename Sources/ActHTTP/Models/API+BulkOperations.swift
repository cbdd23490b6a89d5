import ActPlaybook
public import ActStore

extension API {
    /// A bulk operation and its progress (`/v1/bulk-operations`).
    public struct BulkOperation: Hashable, Sendable, Encodable {
        public var operation: ActStore.BulkOperation

        public init(_ operation: ActStore.BulkOperation) {
            self.operation = operation
        }

        enum CodingKeys: String, CodingKey {
            case id, action, filter, parameters, reason, requestedBy = "requested_by", ratePerSecond = "rate_per_second", state
            case progress, lastError = "last_error", createdAt = "created_at", updatedAt = "updated_at"
            case finishedAt = "finished_at"
        }

        public func encode(to encoder: any Encoder) throws {
            let o = operation
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(o.id, forKey: .id)
            try c.encode(o.action.rawValue, forKey: .action)
            let filter: JSONValue = [
                "playbook": o.filter.playbook.map(JSONValue.string) ?? .null,
                "status": o.filter.status.map(JSONValue.string) ?? .null,
                "key": o.filter.key.map(JSONValue.string) ?? .null,
                "created_after": o.filter.createdAfter.map { .string(API.timestamp($0)) } ?? .null,
                "created_before": o.filter.createdBefore.map { .string(API.timestamp($0)) } ?? .null,
                "version": o.filter.version.map { .int($0) } ?? .null,
            ]
            try c.encode(filter, forKey: .filter)
            try c.encode(o.parameters, forKey: .parameters)
            try c.encode(o.reason, forKey: .reason)
            try c.encode(o.requestedBy, forKey: .requestedBy)
            try c.encode(o.ratePerSecond, forKey: .ratePerSecond)
            try c.encode(o.state.rawValue, forKey: .state)
            let progress: JSONValue = [
                "matched": .int(o.matched), "applied": .int(o.applied), "ignored": .int(o.ignored),
                "refused": .int(o.refused),
            ]
            try c.encode(progress, forKey: .progress)
            try c.encode(o.lastError, forKey: .lastError)
            try c.encode(API.timestamp(o.createdAt), forKey: .createdAt)
            try c.encode(API.timestamp(o.updatedAt), forKey: .updatedAt)
            try c.encode(o.finishedAt.map(API.timestamp), forKey: .finishedAt)
        }
    }
}
