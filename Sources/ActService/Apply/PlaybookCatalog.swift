public import ActPlaybook
public import ActStore

/// The registered playbook versions a replica knows, by version id and by trigger.
///
/// Versions are immutable, so a catalog only grows; a replica that meets a version it does not know (one
/// registered by another replica) loads it before applying the batch.
public struct PlaybookCatalog: Sendable {
    public struct Entry: Sendable {
        public var version: PlaybookVersion
        public var playbook: Playbook
    }

    public private(set) var byVersion: [Int64: Entry] = [:]
    /// The newest version of each playbook id.
    public private(set) var latest: [String: Int64] = [:]

    public init() {}

    /// Adds a version.
    public mutating func insert(version: PlaybookVersion, playbook: Playbook) {
        byVersion[version.versionID] = Entry(version: version, playbook: playbook)
        if let current = latest[version.playbookID], current > version.versionID { return }
        latest[version.playbookID] = version.versionID
    }

    /// The newest version of every playbook whose triggers include `eventType`, ordered by playbook id.
    public func entries(forTrigger eventType: String) -> [Entry] {
        latest.keys.sorted().compactMap { id in
            guard let versionID = latest[id], let entry = byVersion[versionID],
                entry.version.triggers.contains(eventType)
            else { return nil }
            return entry
        }
    }

    /// The newest version of a playbook.
    public func latestEntry(playbookID: String) -> Entry? {
        latest[playbookID].flatMap { byVersion[$0] }
    }

    /// Every event type some playbook's newest version is triggered by: the trigger queue's bindings.
    public var triggerTypes: [String] {
        Array(Set(latest.values.compactMap { byVersion[$0] }.flatMap(\.version.triggers))).sorted()
    }
}
