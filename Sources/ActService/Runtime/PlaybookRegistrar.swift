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

    /// - Parameters:
    ///   - extraTriggers: Event types to bind besides the playbook's own (the registration's `triggers`).
    ///   - bindings: Event types bound to playbook ids by configuration (``ServiceConfiguration/triggerBindings()``);
    ///     this playbook's are added to `extraTriggers`.
    /// - Throws: ``PlaybookLoadError`` listing every problem (nothing is stored then), or a store error.
    public static func register(source: String, file: String?, extraTriggers: [String],
        bindings: [String: [String]] = [:], agents: [Agent], store: any ServiceStore, logger: Logger) async throws
        -> Registration
    {
        let loaded = try PlaybookLoader.load(yaml: source, file: file)
        var extraTriggers = extraTriggers
        for bound in bindings[loaded.playbook.id.rawValue] ?? [] where !extraTriggers.contains(bound) {
            extraTriggers.append(bound)
        }
        let (playbook, diagnostics) = check(loaded, extraTriggers: extraTriggers, agents: agents)
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
        return Registration(version: version, created: created, warnings: diagnostics)
    }

    /// The checks registering makes on a loaded playbook, without storing it: `extraTriggers` added to its
    /// own, then validation against `agents`.
    ///
    /// - Returns: The playbook as it would be stored, and every diagnostic: the loader's warnings, then what
    ///   validation found (errors included), each once.
    public static func check(_ loaded: LoadedPlaybook, extraTriggers: [String] = [], agents: [Agent])
        -> (playbook: Playbook, diagnostics: [Diagnostic])
    {
        var playbook = loaded.playbook
        for trigger in extraTriggers where !playbook.triggers.contains(trigger) { playbook.triggers.append(trigger) }
        var diagnostics = loaded.warnings
        for diagnostic in playbook.validate(agents: agents) where !diagnostics.contains(diagnostic) {
            diagnostics.append(diagnostic)
        }
        return (playbook, diagnostics)
    }

    /// What registering a folder came to: the playbooks registered, and each file refused with why.
    public struct DirectoryRegistration: Sendable {
        public var registrations: [Registration] = []
        public var refused: [(file: String, reason: String)] = []
    }

    /// The files of a playbooks folder: YAML and JSON (a JSON playbook is YAML too).
    public static let playbookExtensions = [".yaml", ".yml", ".json"]

    /// Registers every `*.yaml`, `*.yml` and `*.json` playbook in `directory` (sorted by name).
    ///
    /// A file that cannot be read or is not a valid playbook is refused with an error log listing every
    /// problem (file, line, column, fix), and the others are registered: one bad file in a ConfigMap must
    /// not keep every replica from serving the playbooks that are fine. `hms-act playbook check` finds such
    /// files before they are deployed.
    ///
    /// - Throws: A store error (the database is needed; nothing about the files throws).
    public static func registerDirectory(_ directory: String, bindings: [String: [String]] = [:], agents: [Agent],
        store: any ServiceStore, logger: Logger) async throws -> DirectoryRegistration
    {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var result = DirectoryRegistration()
        for file in files.sorted() where playbookExtensions.contains(where: { file.lowercased().hasSuffix($0) }) {
            let path = directory + "/" + file
            let reason: String
            if let bytes = FileManager.default.contents(atPath: path) {
                if let source = String(validating: bytes, as: UTF8.self) {
                    do {
                        result.registrations.append(try await register(source: source, file: path, extraTriggers: [],
                            bindings: bindings, agents: agents, store: store, logger: logger))
                        continue
                    } catch let error as PlaybookLoadError {
                        reason = error.diagnostics.map(\.description).joined(separator: "\n")
                    }
                } else {
                    reason = "\(path): not UTF-8 text; save the playbook as UTF-8"
                }
            } else {
                reason = "\(path): cannot be read; check that it is a file hms-act's user may read"
            }
            logger.error("playbook file refused; the other playbooks are served", metadata: [
                "playbook.file": "\(path)", "playbook.problems": "\(reason)",
            ])
            result.refused.append((file: path, reason: reason))
        }
        return result
    }
}
