import ActPlaybook
import ActService
import Foundation
import Yams

/// Decodes the one ``ServiceConfiguration`` of the process: defaults, then `config/hms-act.yaml` (or the
/// file given), then the environment. This is the only place that reads the environment.
enum ConfigurationLoader {
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// - Parameters:
    ///   - file: An explicit configuration file; when `nil`, `HMS_CONFIG` or `config/hms-act.yaml` if present.
    ///   - environment: The process environment.
    static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(LoadError) -> ServiceConfiguration
    {
        var configuration = ServiceConfiguration()
        let path = file ?? environment["HMS_CONFIG"] ?? "config/hms-act.yaml"
        if FileManager.default.fileExists(atPath: path) {
            try apply(file: path, to: &configuration)
        } else if file != nil || environment["HMS_CONFIG"] != nil {
            throw LoadError(description: "configuration file \(path) does not exist; pass an existing file or none")
        }
        do {
            try configuration.applyEnvironment(environment)
            try configuration.validate()
        } catch {
            throw LoadError(description: error.description)
        }
        return configuration
    }

    private static func apply(file path: String, to configuration: inout ServiceConfiguration) throws(LoadError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(description: "cannot read \(path): \(error.localizedDescription)")
        }
        guard text.utf8.count <= 1 << 20 else {
            throw LoadError(description: "\(path) is larger than 1 MiB; a configuration file is a few lines")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw LoadError(description: "\(path) is not valid YAML: \(error)")
        }
        guard let node else { return }
        var values: [(key: String, text: String, line: Int)] = []
        try flatten(node, prefix: "", into: &values, path: path)
        let settings = Dictionary(uniqueKeysWithValues: ServiceConfiguration.settings.map { ($0.key, $0) })
        for value in values {
            guard let setting = settings[value.key] else {
                let suggestion = Suggestion.closest(to: value.key, in: settings.keys.sorted())
                throw LoadError(description: "\(path):\(value.line): unknown setting \(value.key)"
                    + (suggestion.map { "; did you mean \($0)?" } ?? ""))
            }
            do {
                try configuration.apply(setting, text: value.text, source: "\(path):\(value.line)")
            } catch {
                throw LoadError(description: error.description)
            }
        }
    }

    private static func flatten(_ node: Node, prefix: String, into values: inout [(key: String, text: String, line: Int)],
        path: String) throws(LoadError)
    {
        let line = node.mark?.line ?? 0
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw LoadError(description: "\(path):\(line): keys must be strings")
                }
                try flatten(value, prefix: prefix.isEmpty ? name : prefix + "." + name, into: &values, path: path)
            }
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard let text = item.string else {
                    throw LoadError(description: "\(path):\(line): \(prefix) must be a list of strings")
                }
                items.append(text)
            }
            values.append((prefix, items.joined(separator: ","), line))
        case .scalar(let scalar):
            values.append((prefix, scalar.string, line))
        case .alias:
            throw LoadError(description: "\(path):\(line): aliases are not allowed in the configuration")
        }
    }
}
