public import ActPlaybook
public import ActStore
internal import Crypto
internal import Foundation
public import Logging

/// Validates a playbook and stores it as an immutable version, without touching the broker (start-up
/// registers the `playbooks/` folder before the broker connects; its trigger bindings are then part of the
/// declared topology).
public enum PlaybookRegistrar {
    /// The outcome of registering a playbook.
    public struct Registration: Sendable {
        public var version: PlaybookVersion
        public var created: Bool
        public var warnings: [Diagnostic]
    }

    /// - Throws: ``PlaybookLoadError`` listing every problem (nothing is stored then), or a store error.
    public static func register(source: String, file: String?, extraTriggers: [String], agents: [Agent],
        store: any ServiceStore, logger: Logger) async throws -> Registration
    {
        let loaded = try PlaybookLoader.load(yaml: source, file: file)
        var playbook = loaded.playbook
        for trigger in extraTriggers where !playbook.triggers.contains(trigger) { playbook.triggers.append(trigger) }
        let diagnostics = playbook.validate(agents: agents)
        let errors = diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty { throw PlaybookLoadError(diagnostics: errors) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let model = Array(try encoder.encode(playbook))
        var hashed = Array(source.utf8)
        if !extraTriggers.isEmpty {
            hashed += Array(("\n# bound triggers: " + extraTriggers.sorted().joined(separator: ",")).utf8)
        }
        let checksum = Array(SHA256.hash(data: hashed)).hexString
        let (version, created) = try await store.registerPlaybook(id: playbook.id.rawValue, checksum: checksum,
            source: source, model: model, triggers: playbook.triggers)
        logger.info("playbook registered", metadata: ["playbook.id": "\(version.playbookID)",
            "playbook.version": "\(version.versionID)", "playbook.created": "\(created)"])
        var warnings = loaded.warnings
        for warning in diagnostics where warning.severity == .warning && !warnings.contains(warning) {
            warnings.append(warning)
        }
        return Registration(version: version, created: created, warnings: warnings)
    }

    /// Registers every `*.yaml` / `*.yml` playbook in `directory` (sorted by name).
    ///
    /// - Throws: ``PlaybookLoadError`` for the first invalid file (with its diagnostics), or a store error.
    public static func registerDirectory(_ directory: String, agents: [Agent], store: any ServiceStore, logger: Logger)
        async throws -> [Registration]
    {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var registrations: [Registration] = []
        for file in files.sorted() where file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
            let path = directory + "/" + file
            let source = try String(contentsOfFile: path, encoding: .utf8)
            registrations.append(try await register(source: source, file: path, extraTriggers: [], agents: agents,
                store: store, logger: logger))
        }
        return registrations
    }
}
