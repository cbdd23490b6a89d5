import Foundation
internal import Yams

/// Loads playbooks and agent files from YAML (or JSON, which is YAML), with every problem reported
/// at its line and column.
///
/// Every spelling of the chapters loads into the one model (see ``Playbook``). Hostile input is
/// refused quickly, before Yams builds anything: files over 256 KiB, more than 100 aliases, nesting
/// deeper than 64, several documents, custom tags, duplicate keys and keys that are not strings.
public enum PlaybookLoader {
    /// Loads and validates a playbook.
    ///
    /// - Parameters:
    ///   - yaml: The playbook text.
    ///   - file: The file name to put in diagnostics.
    /// - Returns: The playbook, its warnings (e.g. no trigger, a switch without default) and the source.
    /// - Throws: ``PlaybookLoadError`` listing every error (and warning) found.
    public static func load(yaml: String, file: String? = nil) throws(PlaybookLoadError) -> LoadedPlaybook {
        var source = YAMLSource(text: yaml, file: file)
        guard let root = source.compose() else { throw PlaybookLoadError(diagnostics: source.diagnostics.sortedForReport()) }
        var reader = PlaybookReader(source: source)
        var playbook = reader.read(root)
        if let file { playbook.location?.file = file }
        let diagnostics = (reader.source.diagnostics + playbook.validate(agents: [], sourceMap: reader.map))
            .sortedForReport()
        guard !diagnostics.contains(where: \.isError) else { throw PlaybookLoadError(diagnostics: diagnostics) }
        return LoadedPlaybook(playbook: playbook, warnings: diagnostics, source: yaml)
    }

    /// Loads and validates the playbook in a file.
    ///
    /// - Parameter path: The file's path; diagnostics name it.
    /// - Throws: ``PlaybookLoadError`` when the file cannot be read or the playbook is refused.
    public static func load(contentsOf path: String) throws(PlaybookLoadError) -> LoadedPlaybook {
        try load(yaml: try read(path), file: path)
    }

    /// Loads agents: one agent object or a list of them.
    ///
    /// Whole-line `//` comments, as the chapters print above their JSON, are read as comments.
    ///
    /// - Throws: ``PlaybookLoadError`` listing every problem (unknown keys, bad shifts, unknown time zones…).
    public static func loadAgents(yaml: String, file: String? = nil) throws(PlaybookLoadError) -> [Agent] {
        var source = YAMLSource(text: commentingSlashLines(yaml), file: file)
        guard let root = source.compose() else { throw PlaybookLoadError(diagnostics: source.diagnostics.sortedForReport()) }
        var reader = AgentReader(source: source)
        let agents = reader.read(root)
        let diagnostics = reader.reader.source.diagnostics.sortedForReport()
        guard !diagnostics.contains(where: \.isError) else { throw PlaybookLoadError(diagnostics: diagnostics) }
        return agents
    }

    /// Loads the agents in a file (`agents/human.field_inspector.json`).
    public static func loadAgents(contentsOf path: String) throws(PlaybookLoadError) -> [Agent] {
        try loadAgents(yaml: try read(path), file: path)
    }

    /// Loads every `*.json`, `*.yaml` and `*.yml` file of a folder (not its subfolders).
    ///
    /// - Returns: All agents, sorted by id.
    /// - Throws: ``PlaybookLoadError`` with the problems of every file, and one error per duplicate id.
    public static func loadAgentDirectory(_ path: String) throws(PlaybookLoadError) -> [Agent] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw PlaybookLoadError(diagnostics: [
                .error("unreadable-directory", "cannot read the agent folder '\(path)': \(error.localizedDescription)",
                    at: SourceLocation(file: path, line: 1, column: 1))
            ])
        }
        var agents: [Agent] = []
        var diagnostics: [Diagnostic] = []
        for name in names.sorted() where [".json", ".yaml", ".yml"].contains(where: name.hasSuffix) {
            let file = (path as NSString).appendingPathComponent(name)
            do {
                agents += try loadAgents(contentsOf: file)
            } catch {
                diagnostics += error.diagnostics
            }
        }
        var seen: [AgentID: Agent] = [:]
        for agent in agents {
            if let first = seen[agent.id] {
                diagnostics.append(.error("duplicate-agent",
                    "the agent id '\(agent.id)' is defined twice"
                        + (first.location.map { " (first in \($0))" } ?? ""),
                    fix: "give each agent its own id, or remove one of the files", at: agent.location))
            } else {
                seen[agent.id] = agent
            }
        }
        guard !diagnostics.contains(where: \.isError) else { throw PlaybookLoadError(diagnostics: diagnostics) }
        return agents.sorted { $0.id < $1.id }
    }

    /// Decodes any `Decodable` from YAML (simulation scripts, configuration files) with the same
    /// limits on hostile input as playbooks.
    ///
    /// - Throws: ``PlaybookLoadError`` with the position of the value that could not be decoded.
    public static func decode<T: Decodable>(
        _ type: T.Type, yaml: String, file: String? = nil
    ) throws(PlaybookLoadError) -> T {
        var source = YAMLSource(text: yaml, file: file)
        guard let root = source.compose() else { throw PlaybookLoadError(diagnostics: source.diagnostics.sortedForReport()) }
        do {
            return try YAMLDecoder().decode(type, from: root)
        } catch let error as DecodingError {
            throw PlaybookLoadError(diagnostics: [decodingDiagnostic(error, root: root, source: source)])
        } catch {
            throw PlaybookLoadError(diagnostics: [
                .error("decode-failed", "could not decode \(T.self): \(error)", at: source.location(root))
            ])
        }
    }

    // MARK: Helpers

    static func read(_ path: String) throws(PlaybookLoadError) -> String {
        let location = SourceLocation(file: path, line: 1, column: 1)
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > YAMLLimits.standard.maxBytes {
            throw PlaybookLoadError(diagnostics: [
                .error("file-too-large",
                    "the file is \(size) bytes; at most \(YAMLLimits.standard.maxBytes) bytes (\(YAMLLimits.standard.maxBytes / 1024) KiB) are accepted",
                    fix: "split the workflow into smaller playbooks", at: location)
            ])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlaybookLoadError(diagnostics: [.error("unreadable-file", "cannot read '\(path)'", at: location)])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PlaybookLoadError(diagnostics: [.error("yaml-encoding", "'\(path)' is not UTF-8 text",
                fix: "save the file as UTF-8", at: location)])
        }
        return text
    }

    /// Turns whole-line `// comments` into YAML `#  comments` of the same length, so line and column
    /// numbers stay right.
    static func commentingSlashLines(_ text: String) -> String {
        guard text.contains("//") else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix("//") else { return String(line) }
            return String(line.prefix(line.count - trimmed.count)) + "# " + trimmed.dropFirst(2)
        }.joined(separator: "\n")
    }

    static func decodingDiagnostic(_ error: DecodingError, root: Node, source: YAMLSource) -> Diagnostic {
        func node(at path: [any CodingKey]) -> Node {
            var current = root
            for key in path {
                if let index = key.intValue, case .sequence(let items) = current, items.indices.contains(index) {
                    current = items[index]
                } else if let pairs = current.mappingPairs,
                    let value = pairs.first(where: { $0.key.scalarText == key.stringValue })?.value
                {
                    current = value
                } else {
                    break
                }
            }
            return current
        }
        func dotted(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return .error("decode-failed",
                "\(context.codingPath.isEmpty ? "" : "'\(dotted(context.codingPath))': ")\(context.debugDescription)",
                at: source.location(node(at: context.codingPath)))
        case .keyNotFound(let key, let context):
            return .error("missing-key", "missing key '\(dotted(context.codingPath + [key]))'",
                at: source.location(node(at: context.codingPath)))
        @unknown default:
            return .error("decode-failed", "\(error)", at: source.location(root))
        }
    }
}
