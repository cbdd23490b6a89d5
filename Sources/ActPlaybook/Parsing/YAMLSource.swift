import Foundation
internal import Yams

/// YAML text on its way to a model: composed safely, with every problem collected as a diagnostic.
///
/// Readers (playbook, agents) walk its ``Node``s and report through ``error(_:_:fix:at:)`` so each
/// diagnostic carries the node's line and column.
struct YAMLSource {
    let text: String
    let file: String?
    /// The source lines (without line breaks), as Unicode scalars: columns count scalars, like libyaml's.
    let lines: [[Unicode.Scalar]]
    var diagnostics: [Diagnostic] = []

    init(text: String, file: String?) {
        self.text = text
        self.file = file
        self.lines = Self.splitLines(text)
    }

    /// Splits at every line break libyaml counts (`\n`, `\r\n`, a lone `\r`, NEL, LS, PS), so that
    /// `lines[mark.line - 1]` is the line a Yams mark names. Splitting at `\n` alone made marks point past
    /// the last line of a file with other breaks (a trap found by the playbook fuzzer).
    static func splitLines(_ text: String) -> [[Unicode.Scalar]] {
        var lines: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n", previousWasCR {
                previousWasCR = false  // the \n of a \r\n: the line ended at the \r
                continue
            }
            previousWasCR = scalar == "\r"
            switch scalar {
            case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}":
                lines.append(current)
                current = []
            default:
                current.append(scalar)
            }
        }
        lines.append(current)
        return lines
    }

    /// Composes the text into one document, refusing hostile input first.
    ///
    /// - Returns: The root node, or `nil` when the text could not be read (the reasons are in
    ///   ``diagnostics``). An empty document composes to an empty mapping.
    mutating func compose(limits: YAMLLimits = .standard) -> Node? {
        let refused = YAMLGuard.scan(text, file: file, limits: limits)
        guard refused.isEmpty else {
            diagnostics += refused
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            diagnostics += diagnose(error)
            return nil
        } catch {
            diagnostics.append(.error("yaml-syntax", "the YAML could not be read: \(error)", at: location(line: 1, column: 1)))
            return nil
        }
        guard let root else { return Node.mapping(Node.Mapping([])) }
        let problems = YAMLGuard.inspect(root, file: file, limits: limits)
        guard problems.isEmpty else {
            diagnostics += problems
            return nil
        }
        return root
    }

    // MARK: Locations and reporting

    func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    func location(_ node: Node?) -> SourceLocation? {
        guard let mark = node?.mark else { return file.map { SourceLocation(file: $0, line: 1, column: 1) } }
        return location(line: mark.line, column: mark.column)
    }

    mutating func error(_ code: String, _ message: String, fix: String? = nil, at node: Node?) {
        diagnostics.append(.error(code, message, fix: fix, at: location(node)))
    }

    mutating func warning(_ code: String, _ message: String, fix: String? = nil, at node: Node?) {
        diagnostics.append(.warning(code, message, fix: fix, at: location(node)))
    }

    var hasErrors: Bool { diagnostics.contains(where: \.isError) }

    // MARK: Yams errors

    private func diagnose(_ error: YamlError) -> [Diagnostic] {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            if problem.contains("found another document") {
                return [
                    .error(
                        "multiple-documents", "the file holds more than one YAML document",
                        fix: "put each playbook in a file of its own", at: location(line: mark.line, column: mark.column))
                ]
            }
            let crowded = crowdedLines()
            if !crowded.isEmpty {
                var result = crowded
                if !crowded.contains(where: { $0.location?.line == mark.line }) {
                    result.append(syntaxError(context: context, problem: problem, mark: mark))
                }
                return result
            }
            return [syntaxError(context: context, problem: problem, mark: mark)]
        case .duplicatedKeysInMapping(let duplicates, let context):
            return duplicates.map { key in
                let first = context.mark
                let second = secondOccurrence(ofKey: key, after: first)
                return .error(
                    "duplicate-key",
                    "the key '\(key)' appears more than once in the same mapping"
                        + (second != nil ? " (first at line \(first.line))" : ""),
                    fix: "keep one '\(key):' and remove the other",
                    at: second ?? location(line: first.line, column: first.column)
                )
            }
        case .reader(let problem, _, _, _):
            return [.error("yaml-encoding", "the file is not readable text: \(problem)", fix: "save the file as UTF-8",
                at: location(line: 1, column: 1))]
        case .no, .memory, .writer, .emitter, .representer, .dataCouldNotBeDecoded:
            return [.error("yaml-syntax", "the YAML could not be read: \(error)", at: location(line: 1, column: 1))]
        }
    }

    private func syntaxError(context: YamlError.Context?, problem: String, mark: Mark) -> Diagnostic {
        var message = "invalid YAML: \(problem)"
        if let context, !context.text.isEmpty {
            message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        var fix: String?
        let line = mark.line - 1 < lines.count && mark.line >= 1 ? lines[mark.line - 1] : []
        if problem.contains("cannot start any token") && line.contains("\t") {
            fix = "YAML does not allow tabs for indentation: use spaces"
        } else if problem.contains("did not find expected key") || problem.contains("did not find expected '-'") {
            fix = "check the indentation: the keys of one mapping (and the '- ' of one list) must line up"
        } else if problem.contains("mapping values are not allowed") {
            fix = "put each key on its own line; quote a value that contains ': '"
        } else if problem.contains("found undefined alias") {
            fix = "define the anchor (&name) before using the alias (*name), or write the value out"
        }
        return .error("yaml-syntax", message, fix: fix, at: location(line: mark.line, column: mark.column))
    }

    /// The key of a block mapping written again, after `first`, at the same column: where a duplicate
    /// key is most useful to point (Yams reports the first one).
    private func secondOccurrence(ofKey key: String, after first: Mark) -> SourceLocation? {
        let keyScalars = Array(key.unicodeScalars)
        // Marks come from libyaml and the lines from splitLines, which agree; the bound is a guard all the same.
        for lineIndex in min(first.line, lines.count)..<lines.count {
            let line = lines[lineIndex]
            let start = first.column - 1
            guard start >= 0, line.count >= start + keyScalars.count + 1 else { continue }
            if Array(line[start..<start + keyScalars.count]) == keyScalars {
                var after = start + keyScalars.count
                while after < line.count, line[after] == " " { after += 1 }
                if after < line.count, line[after] == ":" {
                    return location(line: lineIndex + 1, column: start + 1)
                }
            }
        }
        return nil
    }

    /// Lines that hold several `key: value` pairs side by side (`- id: uploadDocs  service: fileSvc.upload`),
    /// as chapter 003 prints them: each becomes an error showing the corrected lines.
    func crowdedLines() -> [Diagnostic] {
        var result: [Diagnostic] = []
        for (lineIndex, line) in lines.enumerated() {
            let keys = keyPositions(in: line)
            guard keys.count >= 2 else { continue }
            var prefixEnd = 0
            while prefixEnd < line.count, line[prefixEnd] == " " || line[prefixEnd] == "-" { prefixEnd += 1 }
            let keyColumn = keys[0]
            let leading = String(String.UnicodeScalarView(line[0..<keyColumn]))
            let continuation = String(repeating: " ", count: keyColumn)
            var segments: [String] = []
            for (n, keyStart) in keys.enumerated() {
                let end = n + 1 < keys.count ? keys[n + 1] : line.count
                var text = String(String.UnicodeScalarView(line[keyStart..<end]))
                while text.last == " " { text.removeLast() }
                segments.append((n == 0 ? leading : continuation) + text)
            }
            let names = keys.map { start -> String in
                var end = start
                while end < line.count, line[end] != ":" { end += 1 }
                return String(String.UnicodeScalarView(line[start..<end]))
            }
            result.append(
                .error(
                    "several-keys-on-one-line",
                    "'\(names[1]):' follows '\(names[0]):' on the same line; in YAML each key of a mapping starts a line of its own",
                    fix: "put each key on its own line, indented under '- ':\n" + segments.joined(separator: "\n"),
                    at: location(line: lineIndex + 1, column: keys[1] + 1)
                )
            )
        }
        return result
    }

    /// Columns (0-based) where a plain `name:` key starts on the line, outside quotes and comments.
    private func keyPositions(in line: [Unicode.Scalar]) -> [Int] {
        var positions: [Int] = []
        var index = 0
        var quote: Unicode.Scalar?
        var tokenStart: Int?
        func isKeyScalar(_ c: Unicode.Scalar) -> Bool {
            c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" || c == "."
        }
        while index < line.count {
            let c = line[index]
            if let open = quote {
                if c == open { quote = nil }
                index += 1
                continue
            }
            if c == "\"" || c == "'" {
                quote = c
                tokenStart = nil
            } else if c == "#", index == 0 || line[index - 1] == " " {
                break
            } else if c == ":", let start = tokenStart, index + 1 == line.count || line[index + 1] == " " {
                if line[start] != "-" { positions.append(start) }
                tokenStart = nil
            } else if c == " " {
                tokenStart = nil
            } else if isKeyScalar(c) {
                if tokenStart == nil, index == 0 || line[index - 1] == " " { tokenStart = index }
            } else {
                tokenStart = nil
            }
            index += 1
        }
        return positions
    }
}

// MARK: - Reading nodes

extension Node {
    /// The node's text when it is a scalar.
    var scalarText: String? {
        if case .scalar(let scalar) = self { return scalar.string }
        return nil
    }

    /// Whether this scalar is YAML null (`~`, `null`, or nothing at all), unquoted.
    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return tag.rawValue == "tag:yaml.org,2002:null" && scalar.style != .singleQuoted
            && scalar.style != .doubleQuoted
    }

    /// Whether this scalar was quoted, so its text is always a string.
    var isQuoted: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .singleQuoted || scalar.style == .doubleQuoted
    }

    /// "a string", "a number", "a list"…: for "expected …, got …" messages.
    var kindDescription: String {
        switch self {
        case .scalar(let scalar):
            if isQuoted { return "a string" }
            switch tag.rawValue {
            case "tag:yaml.org,2002:null": return "nothing (null)"
            case "tag:yaml.org,2002:bool": return "a boolean (\(scalar.string))"
            case "tag:yaml.org,2002:int", "tag:yaml.org,2002:float": return "a number (\(scalar.string))"
            default: return "a string"
            }
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    /// The pairs of a mapping in written order, with merge keys (`<<: *defaults`) applied: keys written
    /// in the mapping itself win over merged ones.
    var mappingPairs: [(key: Node, value: Node)]? {
        guard case .mapping(let mapping) = self else { return nil }
        var own: [(key: Node, value: Node)] = []
        var merged: [(key: Node, value: Node)] = []
        for (key, value) in mapping {
            if key.scalarText == "<<", !key.isQuoted {
                let sources: [Node] = if case .sequence(let items) = value { Array(items) } else { [value] }
                for source in sources {
                    if case .mapping(let inner) = source { merged += inner.map { ($0.key, $0.value) } }
                }
            } else {
                own.append((key, value))
            }
        }
        let ownKeys = Set(own.compactMap(\.key.scalarText))
        var seen = Set<String>()
        let extra = merged.filter { pair in
            guard let key = pair.key.scalarText, !ownKeys.contains(key) else { return false }
            return seen.insert(key).inserted
        }
        return own + extra
    }

    /// The JSON value of this node (for `input:`): YAML null/bool/int/float become JSON ones, other
    /// scalars are strings.
    var jsonValue: JSONValue {
        switch self {
        case .scalar(let scalar):
            if isQuoted { return .string(scalar.string) }
            switch tag.rawValue {
            case "tag:yaml.org,2002:null": return .null
            case "tag:yaml.org,2002:bool": return bool.map(JSONValue.bool) ?? .string(scalar.string)
            case "tag:yaml.org,2002:int", "tag:yaml.org,2002:float":
                // The digits as written when they are a JSON number (exact: `0.1`, `12345678901234567890`);
                // YAML's other spellings (`0x1F`, `1_000`, `010`) through Yams' reading.
                let number = JSONNumber(scalar.string) ?? float.flatMap { JSONNumber($0) }
                return number.map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(sequence.map(\.jsonValue))
        case .mapping:
            var members: [String: JSONValue] = [:]
            for (key, value) in mappingPairs ?? [] { members[key.scalarText ?? ""] = value.jsonValue }
            return .object(members)
        case .alias:
            return .null
        }
    }
}
