/// One problem found in a playbook or agent file: where it is, what is wrong, and how to fix it.
///
/// ```
/// playbooks/ftc.yaml:12:17: error: step 'human_review' goes to 'escalte', which is not a step
///   fix: did you mean 'escalate'?
/// ```
public struct Diagnostic: Hashable, Sendable, Codable, CustomStringConvertible {
    /// How bad the problem is: an error refuses the file, a warning is reported and the file loads.
    public enum Severity: String, Hashable, Sendable, Codable {
        case error
        case warning
    }

    public var severity: Severity
    /// A stable kebab-case code (`unknown-key`, `missing-step`), for tests and tooling.
    public var code: String
    /// What is wrong, in one sentence.
    public var message: String
    /// What to do about it, when there is something specific to say.
    public var fix: String?
    /// Where it is; `nil` for a playbook built from code without locations.
    public var location: SourceLocation?

    public init(
        severity: Severity,
        code: String,
        message: String,
        fix: String? = nil,
        location: SourceLocation? = nil
    ) {
        self.severity = severity
        self.code = code
        self.message = message
        self.fix = fix
        self.location = location
    }

    /// An error diagnostic.
    public static func error(
        _ code: String,
        _ message: String,
        fix: String? = nil,
        at location: SourceLocation? = nil
    ) -> Diagnostic {
        Diagnostic(severity: .error, code: code, message: message, fix: fix, location: location)
    }

    /// A warning diagnostic.
    public static func warning(
        _ code: String,
        _ message: String,
        fix: String? = nil,
        at location: SourceLocation? = nil
    ) -> Diagnostic {
        Diagnostic(severity: .warning, code: code, message: message, fix: fix, location: location)
    }

    /// Whether this is an error (rather than a warning).
    public var isError: Bool {
        switch severity {
        case .error: true
        case .warning: false
        }
    }

    /// `file:line:col: error: message`, then `  fix: …` on its own line when there is a fix.
    /// A fix that spans lines (a corrected YAML snippet) is indented under it.
    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += "\(severity.rawValue): \(message)"
        if let fix {
            let lines = fix.split(separator: "\n", omittingEmptySubsequences: false)
            text += "\n  fix: " + lines.joined(separator: "\n       ")
        }
        return text
    }
}

/// A playbook or agent file that was refused, with every problem found in it (errors and warnings).
public struct PlaybookLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// All diagnostics, errors first in source order, then warnings.
    public var diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    /// The diagnostics that are errors.
    public var errors: [Diagnostic] { diagnostics.filter(\.isError) }

    /// Every diagnostic, one after the other.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// A playbook read from YAML: the normalised model, the warnings found while reading it, and the
/// source text exactly as given (its checksum goes into the audit trail at registration).
public struct LoadedPlaybook: Hashable, Sendable {
    public var playbook: Playbook
    public var warnings: [Diagnostic]
    public var source: String

    public init(playbook: Playbook, warnings: [Diagnostic], source: String) {
        self.playbook = playbook
        self.warnings = warnings
        self.source = source
    }
}

extension [Diagnostic] {
    /// Errors before warnings; inside each, by file position (diagnostics without a position last).
    func sortedForReport() -> [Diagnostic] {
        enumerated().sorted { lhs, rhs in
            let (l, r) = (lhs.element, rhs.element)
            if l.isError != r.isError { return l.isError }
            switch (l.location, r.location) {
            case (let a?, let b?):
                if a.line != b.line { return a.line < b.line }
                if a.column != b.column { return a.column < b.column }
            case (.some, .none): return true
            case (.none, .some): return false
            case (.none, .none): break
            }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}
