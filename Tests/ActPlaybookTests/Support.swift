import ActPlaybook
import Foundation
import Testing

/// Test fixtures (`Fixtures/`, copied into the test bundle) and the project's own folders.
enum Fixture {
    static func url(_ name: String) throws -> URL {
        let base = try #require(Bundle.module.resourceURL)
        return base.appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOf: try url(name), encoding: .utf8)
    }

    /// The package root (for `playbooks/` and `agents/`).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
}

/// Loads `yaml` and returns what was reported: the error's diagnostics, or the warnings on success.
func diagnostics(_ yaml: String, file: String? = nil) -> [Diagnostic] {
    do {
        return try PlaybookLoader.load(yaml: yaml, file: file).warnings
    } catch {
        return error.diagnostics
    }
}

/// Loads `yaml`, expecting it to be refused; returns the diagnostics.
func refusal(_ yaml: String, file: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation)
    -> [Diagnostic]
{
    do {
        let loaded = try PlaybookLoader.load(yaml: yaml, file: file)
        Issue.record("expected the playbook to be refused; it loaded with \(loaded.warnings)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics
    }
}

extension [Diagnostic] {
    func with(code: String) -> [Diagnostic] { filter { $0.code == code } }
    var codes: [String] { map(\.code) }
}

/// A minimal valid playbook header followed by `steps`.
func playbook(_ steps: String, header: String = "id: Test.v1\ntrigger: test.event\n") -> String {
    header + "steps:\n" + steps
}

/// Every diagnostic loading `yaml` as a playbook gives: the error's list when it is refused, else its warnings.
func diagnostics(loading yaml: String) -> [Diagnostic] {
    do {
        return try PlaybookLoader.load(yaml: yaml, file: "p.yaml").warnings
    } catch {
        return error.diagnostics
    }
}
