/// Which version of a playbook new runs start on (migration 0012): an operator can pin one, deprecate one (new
/// runs no longer start on it unless it is pinned) or disable one (no new run ever starts on it). Runs already
/// on a version go on whatever its state; `hms-act playbook migrate` moves them.
public enum VersionState: String, Sendable, Hashable, Codable, CaseIterable {
    case active
    /// Not chosen for new runs while any version of the playbook is active; still used when pinned, or when
    /// no version is active (the newest deprecated one then).
    case deprecated
    /// Never starts a run: neither chosen nor pinnable.
    case disabled
}

/// A version's state and whether it is its playbook's pin.
public struct VersionControl: Sendable, Hashable {
    public var state: VersionState
    public var pinned: Bool

    public init(state: VersionState = .active, pinned: Bool = false) {
        self.state = state
        self.pinned = pinned
    }

    public static let standard = VersionControl()
}

/// What an operator changes.
public enum PlaybookControlChange: Sendable, Hashable {
    /// Sets a version's state.
    case state(version: Int64, VersionState)
    /// Pins a version, or unpins the playbook (`nil`).
    case pin(version: Int64?)

    /// The name it is recorded under: `active`, `deprecated`, `disabled`, `pin`, `unpin`.
    public var action: String {
        switch self {
        case .state(_, let state): state.rawValue
        case .pin(let version): version == nil ? "unpin" : "pin"
        }
    }

    public var version: Int64? {
        switch self {
        case .state(let version, _): version
        case .pin(let version): version
        }
    }
}

/// The rules of ``VersionControl``, pure: which version is current, and which changes are refused.
public enum PlaybookControls {
    /// Why a change is refused.
    public enum Problem: Error, Sendable, Hashable, CustomStringConvertible {
        /// The version is not one of the playbook's.
        case unknownVersion(String)
        /// The change contradicts the playbook's other controls.
        case conflict(String)

        public var description: String {
            switch self {
            case .unknownVersion(let text), .conflict(let text): text
            }
        }
    }

    /// The version new runs of a playbook start on: the pinned one, else the newest active one, else the
    /// newest deprecated one; `nil` when every version is disabled.
    ///
    /// - Parameter versions: The playbook's version ids, in any order.
    public static func current(versions: [Int64], controls: [Int64: VersionControl]) -> Int64? {
        if let pinned = versions.first(where: { controls[$0]?.pinned == true }) { return pinned }
        let newestFirst = versions.sorted(by: >)
        return newestFirst.first { (controls[$0]?.state ?? .active) == .active }
            ?? newestFirst.first { controls[$0]?.state == .deprecated }
    }

    /// Why `change` cannot be made to playbook `playbookID`, or `nil`.
    public static func problem(_ change: PlaybookControlChange, playbookID: String, versions: [Int64],
        controls: [Int64: VersionControl]) -> Problem?
    {
        if let version = change.version, !versions.contains(version) {
            let known = versions.sorted().map(String.init).joined(separator: ", ")
            return .unknownVersion("version \(version) is not a version of \(playbookID) (its versions: \(known))")
        }
        switch change {
        case .state(let version, .disabled) where controls[version]?.pinned == true:
            return .conflict("version \(version) of \(playbookID) is pinned, so new runs start on it: pin another "
                + "version or unpin \(playbookID) first, then disable it")
        case .pin(let version?) where controls[version]?.state == .disabled:
            return .conflict("version \(version) of \(playbookID) is disabled: enable it first (state active or "
                + "deprecated), then pin it")
        default:
            return nil
        }
    }

    /// The controls after `change` (which ``problem(_:playbookID:versions:controls:)`` allowed).
    public static func applying(_ change: PlaybookControlChange, to controls: [Int64: VersionControl])
        -> [Int64: VersionControl]
    {
        var controls = controls
        switch change {
        case .state(let version, let state):
            controls[version, default: .standard].state = state
        case .pin(let version):
            for id in controls.keys { controls[id]?.pinned = false }
            if let version { controls[version, default: .standard].pinned = true }
        }
        return controls
    }
}
