public import ActStore

extension API {
    /// A playbook's versions and which one new runs start on (`GET /v1/playbooks/{id}/versions`).
    public struct PlaybookVersions: Hashable, Sendable, Encodable {
        public struct Version: Hashable, Sendable, Encodable {
            public var version: Int64
            /// `active`, `deprecated` or `disabled`.
            public var state: String
            public var pinned: Bool
            /// New runs start on this version.
            public var current: Bool
            public var checksum: String
            public var triggers: [String]
            public var registeredAt: String
            /// Who last changed its state or pin, when and why.
            public var changedBy: String?
            public var changedAt: String?
            public var reason: String?

            enum CodingKeys: String, CodingKey {
                case version, state, pinned, current, checksum, triggers, registeredAt = "registered_at"
                case changedBy = "changed_by", changedAt = "changed_at", reason
            }
        }

        /// One recorded change, newest first.
        public struct Change: Hashable, Sendable, Encodable {
            public var version: Int64?
            /// `active`, `deprecated`, `disabled`, `pin` or `unpin`.
            public var action: String
            public var actor: String
            public var reason: String?
            public var at: String
        }

        public var playbook: String
        /// The version new runs start on; absent when every version is disabled.
        public var current: Int64?
        public var pinned: Int64?
        /// Newest first.
        public var versions: [Version]
        /// The latest changes (at most 20), newest first.
        public var changes: [Change]

        /// - Parameters:
        ///   - versions: The playbook's versions, in any order.
        ///   - rows: Their control rows (a version without one is active, not pinned).
        public init(playbookID: String, versions: [PlaybookVersion], current: Int64?, rows: [Store.VersionControlRow],
            log: [Store.PlaybookControlLogEntry])
        {
            let byVersion = Dictionary(rows.map { ($0.versionID, $0) }, uniquingKeysWith: { _, last in last })
            playbook = playbookID
            self.current = current
            pinned = rows.first { $0.control.pinned }?.versionID
            self.versions = versions.sorted { $0.versionID > $1.versionID }.map { version in
                let row = byVersion[version.versionID]
                return Version(version: version.versionID, state: (row?.control.state ?? .active).rawValue,
                    pinned: row?.control.pinned ?? false, current: version.versionID == current,
                    checksum: version.checksum, triggers: version.triggers, registeredAt: API.timestamp(version.registeredAt),
                    changedBy: row?.changedBy, changedAt: row.map { API.timestamp($0.changedAt) }, reason: row?.reason)
            }
            changes = log.map {
                Change(version: $0.versionID, action: $0.action, actor: $0.actor, reason: $0.reason, at: API.timestamp($0.at))
            }
        }

        enum CodingKeys: String, CodingKey {
            case playbook, current, pinned, versions, changes
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(playbook, forKey: .playbook)
            try container.encode(current, forKey: .current)
            try container.encode(pinned, forKey: .pinned)
            try container.encode(versions, forKey: .versions)
            try container.encode(changes, forKey: .changes)
        }
    }
}
