internal import ActPostgres

/// Pinning, deprecating and disabling playbook versions (`playbook_version_controls`, migration 0012; the
/// rules in ``PlaybookControls``).
extension Store {
    /// A version's control row, with who set it last.
    public struct VersionControlRow: Sendable, Hashable {
        public var versionID: Int64
        public var playbookID: String
        public var control: VersionControl
        public var changedBy: String
        public var changedAt: Int64
        public var reason: String?

        public init(versionID: Int64, playbookID: String, control: VersionControl, changedBy: String, changedAt: Int64,
            reason: String?)
        {
            self.versionID = versionID
            self.playbookID = playbookID
            self.control = control
            self.changedBy = changedBy
            self.changedAt = changedAt
            self.reason = reason
        }
    }

    /// One recorded change.
    public struct PlaybookControlLogEntry: Sendable, Hashable {
        public var playbookID: String
        public var versionID: Int64?
        public var action: String
        public var actor: String
        public var reason: String?
        public var at: Int64

        public init(playbookID: String, versionID: Int64?, action: String, actor: String, reason: String?, at: Int64) {
            self.playbookID = playbookID
            self.versionID = versionID
            self.action = action
            self.actor = actor
            self.reason = reason
            self.at = at
        }
    }

    /// Every control row (a version without one is active and not pinned); of one playbook when given.
    public func playbookControls(playbookID: String? = nil) async throws -> [VersionControlRow] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.playbookControls, [PostgresBind(playbookID)]).map(Self.controlRow)
        }
    }

    /// Every version's control by version id (a version missing is active and not pinned): what each replica's
    /// catalog reloads every second.
    public func versionControls() async throws -> [Int64: VersionControl] {
        var controls: [Int64: VersionControl] = [:]
        for row in try await playbookControls() { controls[row.versionID] = row.control }
        return controls
    }

    /// The latest changes to a playbook's versions, newest first.
    public func playbookControlLog(playbookID: String, limit: Int) async throws -> [PlaybookControlLogEntry] {
        try await client.withConnection { connection in
            try await connection.query(StoreSQL.playbookControlLog, [PostgresBind(playbookID), PostgresBind(limit)])
                .map { row in
                    PlaybookControlLogEntry(playbookID: try row.decode(column: 0), versionID: try row.decode(column: 1),
                        action: try row.decode(column: 2), actor: try row.decode(column: 3), reason: try row.decode(column: 4),
                        at: try row.decode(column: 5))
                }
        }
    }

    /// Makes `change` to playbook `playbookID` if the rules allow it, recording who and why; serialised per
    /// playbook, so two operators' changes never combine into what the rules refuse (a pinned version
    /// disabled).
    ///
    /// - Returns: The playbook's controls after the change.
    /// - Throws: ``PlaybookControls/Problem`` when refused (nothing changed), or a store error.
    @discardableResult
    public func controlPlaybook(_ playbookID: String, change: PlaybookControlChange, actor: String, reason: String?)
        async throws -> [Int64: VersionControl]
    {
        try await client.withTransaction { connection in
            _ = try await connection.query(StoreSQL.lockPlaybookControls, [PostgresBind(playbookID)])
            let versions = try await connection.query(StoreSQL.versionIDsOfPlaybook, [PostgresBind(playbookID)])
                .map { try $0.decode(Int64.self, column: 0) }
            var controls: [Int64: VersionControl] = [:]
            for row in try await connection.query(StoreSQL.playbookControls, [PostgresBind(playbookID)]) {
                let control = try Self.controlRow(row)
                controls[control.versionID] = control.control
            }
            if let problem = PlaybookControls.problem(change, playbookID: playbookID, versions: versions,
                controls: controls)
            {
                throw problem
            }
            switch change {
            case .state(let version, let state):
                try await connection.execute(StoreSQL.setVersionState, [PostgresBind(version), PostgresBind(playbookID),
                    PostgresBind(state.rawValue), PostgresBind(actor), PostgresBind(reason)])
            case .pin(let version):
                try await connection.execute(StoreSQL.clearPin, [PostgresBind(playbookID), PostgresBind(actor),
                    PostgresBind(reason)])
                if let version {
                    try await connection.execute(StoreSQL.setPin, [PostgresBind(version), PostgresBind(playbookID),
                        PostgresBind(actor), PostgresBind(reason)])
                }
            }
            try await connection.execute(StoreSQL.logPlaybookControl, [PostgresBind(playbookID),
                PostgresBind(change.version), PostgresBind(change.action), PostgresBind(actor), PostgresBind(reason)])
            return PlaybookControls.applying(change, to: controls)
        }
    }

    private static func controlRow(_ row: PostgresRow) throws -> VersionControlRow {
        let stateText: String = try row.decode(column: 2)
        guard let state = VersionState(rawValue: stateText) else {
            throw StoreDataError(column: "playbook_version_controls.state", row: "version \(try row.decode(Int64.self, column: 0))",
                problem: "is '\(stateText)', not active, deprecated or disabled")
        }
        return VersionControlRow(versionID: try row.decode(column: 0), playbookID: try row.decode(column: 1),
            control: VersionControl(state: state, pinned: try row.decode(column: 3)), changedBy: try row.decode(column: 4),
            changedAt: try row.decode(column: 5), reason: try row.decode(column: 6))
    }
}
