public import ActPlaybook
public import ActStore

/// The registered playbook versions a replica knows, by version id and by trigger.
///
/// Versions are immutable, so a catalog only grows; a replica that meets a version it does not know (one
/// registered by another replica) loads it before applying the batch. Which version new runs start on follows
/// the operators' controls (pins, deprecated and disabled versions), reloaded every second.
public struct PlaybookCatalog: Sendable {
    public struct Entry: Sendable {
        public var version: PlaybookVersion
        public var playbook: Playbook
    }

    public private(set) var byVersion: [Int64: Entry] = [:]
    /// The newest version of each playbook id.
    public private(set) var latest: [String: Int64] = [:]
    /// The version new runs of each playbook start on (``PlaybookControls/current(versions:controls:)``);
    /// absent when every version of it is disabled.
    public private(set) var current: [String: Int64] = [:]
    /// Each playbook's versions, oldest first.
    public private(set) var versions: [String: [Int64]] = [:]
    /// Versions an operator pinned, deprecated or disabled; the others are active.
    public private(set) var controls: [Int64: VersionControl] = [:]

    public init() {}

    /// Adds a version.
    public mutating func insert(version: PlaybookVersion, playbook: Playbook) {
        guard byVersion[version.versionID] == nil else { return }
        byVersion[version.versionID] = Entry(version: version, playbook: playbook)
        versions[version.playbookID, default: []].append(version.versionID)
        versions[version.playbookID]?.sort()
        if (latest[version.playbookID] ?? 0) < version.versionID { latest[version.playbookID] = version.versionID }
        choose(version.playbookID)
    }

    /// Replaces the operators' controls (the whole table: a version without a row is active, not pinned).
    public mutating func setControls(_ controls: [Int64: VersionControl]) {
        guard controls != self.controls else { return }
        self.controls = controls
        for id in versions.keys { choose(id) }
    }

    private mutating func choose(_ playbookID: String) {
        current[playbookID] = PlaybookControls.current(versions: versions[playbookID] ?? [], controls: controls)
    }

    /// The version new runs start on of every playbook whose triggers include `eventType`, ordered by playbook id.
    public func entries(forTrigger eventType: String) -> [Entry] {
        current.keys.sorted().compactMap { id in
            guard let versionID = current[id], let entry = byVersion[versionID],
                entry.version.triggers.contains(eventType)
            else { return nil }
            return entry
        }
    }

    /// Playbooks that `eventType` would trigger if every version of them were not disabled.
    public func disabledPlaybooks(forTrigger eventType: String) -> [String] {
        latest.keys.sorted().filter { id in
            current[id] == nil && (versions[id] ?? []).contains { byVersion[$0]?.version.triggers.contains(eventType) == true }
        }
    }

    /// The version new runs of a playbook start on; `nil` when there is no such playbook or every version of it
    /// is disabled.
    public func currentEntry(playbookID: String) -> Entry? {
        current[playbookID].flatMap { byVersion[$0] }
    }

    /// The newest version of a playbook.
    public func latestEntry(playbookID: String) -> Entry? {
        latest[playbookID].flatMap { byVersion[$0] }
    }

    /// Every event type the current version of some playbook is triggered by: the trigger queue's bindings.
    public var triggerTypes: [String] {
        Array(Set(current.values.compactMap { byVersion[$0] }.flatMap(\.version.triggers))).sorted()
    }
}
