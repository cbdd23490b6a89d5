internal import Yams

/// Limits that keep hostile YAML from making a load slow or large.
struct YAMLLimits: Sendable {
    /// The largest file accepted, in bytes (UTF-8).
    var maxBytes = 256 * 1024
    /// The most aliases (`*name`) accepted: each one can double the expanded document (an "alias bomb").
    var maxAliases = 100
    /// The deepest nesting of mappings, lists and flow collections accepted.
    var maxDepth = 64
    /// The most nodes a document may expand to once aliases are followed.
    var maxNodes = 100_000

    static let standard = YAMLLimits()
}

/// Checks YAML text before Yams composes it, and the composed tree before it is read.
///
/// Yams itself accepts custom tags silently and follows aliases without bound (a 520-byte alias bomb
/// grew to 1.5 GB in 30 s), and its composer recurses once per nesting level. So the text is scanned
/// first, without building anything: size, aliases, nesting depth, several documents, tags and keys
/// that are not plain scalars. Then the composed tree is walked once with a node budget.
enum YAMLGuard {
    private static let resolvedStandardTags: Set<String> = [
        "", "!", "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
        // What Yams' resolver assigns to plain scalars (`<<`, `2024-01-15`, `=`): resolution rewrites a
        // node's tag in place, so these show up even though nobody wrote them.
        "tag:yaml.org,2002:merge", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value",
    ]

    /// Lexical checks on the raw text; any diagnostic returned is an error and the text must not be composed.
    static func scan(_ text: String, file: String?, limits: YAMLLimits = .standard) -> [Diagnostic] {
        let byteCount = text.utf8.count
        guard byteCount <= limits.maxBytes else {
            return [
                .error(
                    "file-too-large",
                    "the file is \(byteCount) bytes; at most \(limits.maxBytes) bytes (\(limits.maxBytes / 1024) KiB) are accepted",
                    fix: "split the workflow into smaller playbooks",
                    at: SourceLocation(file: file, line: 1, column: 1)
                )
            ]
        }
        var scanner = Scanner(file: file, limits: limits)
        scanner.run(text)
        return scanner.diagnostics
    }

    private struct Scanner {
        let file: String?
        let limits: YAMLLimits
        var diagnostics: [Diagnostic] = []
        var flowDepth = 0
        var inDouble = false
        var inSingle = false
        var blockScalarParentIndent: Int?
        var indentStack: [Int] = []
        var sawContent = false
        var documentEnded = false
        var aliasCount = 0
        var stop = false

        init(file: String?, limits: YAMLLimits) {
            self.file = file
            self.limits = limits
        }

        func location(_ line: Int, _ column: Int) -> SourceLocation {
            SourceLocation(file: file, line: line, column: column)
        }

        mutating func report(_ diagnostic: Diagnostic) {
            diagnostics.append(diagnostic)
            if diagnostics.count >= 20 { stop = true }
        }

        mutating func run(_ text: String) {
            var lineNumber = 0
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNumber += 1
                var scalars = Array(rawLine.unicodeScalars)
                if scalars.last == "\r" { scalars.removeLast() }
                scanLine(scalars, lineNumber)
                if stop { return }
            }
        }

        static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }
        static func isFlowIndicator(_ c: Unicode.Scalar) -> Bool { "[]{},".unicodeScalars.contains(c) }

        mutating func scanLine(_ line: [Unicode.Scalar], _ lineNumber: Int) {
            var indent = 0
            while indent < line.count, line[indent] == " " { indent += 1 }
            let isBlank = line[indent...].allSatisfy(Self.isSpace)
            if let parent = blockScalarParentIndent {
                if isBlank || indent > parent { return }
                blockScalarParentIndent = nil
            }
            var index = indent
            let plainStart = !inDouble && !inSingle && flowDepth == 0
            if plainStart {
                if isBlank || line[indent] == "#" { return }
                if indent == 0, line.count >= 3, line[0] == "-", line[1] == "-", line[2] == "-",
                    line.count == 3 || Self.isSpace(line[3])
                {
                    if sawContent {
                        report(
                            .error(
                                "multiple-documents",
                                "the file holds more than one YAML document ('---' starts another)",
                                fix: "put each playbook in a file of its own",
                                at: location(lineNumber, 1)
                            )
                        )
                        stop = true
                        return
                    }
                    index = 3
                } else if indent == 0, line.count >= 3, line[0] == ".", line[1] == ".", line[2] == ".",
                    line.count == 3 || Self.isSpace(line[3])
                {
                    documentEnded = true
                    return
                } else if documentEnded {
                    report(
                        .error(
                            "multiple-documents",
                            "the file holds more than one YAML document (content after '...')",
                            fix: "put each playbook in a file of its own",
                            at: location(lineNumber, indent + 1)
                        )
                    )
                    stop = true
                    return
                }
                while let last = indentStack.last, last > indent { indentStack.removeLast() }
                if indentStack.last != indent { indentStack.append(indent) }
            }
            var blockDepth = indentStack.count
            // Whether a node may start here: quotes, aliases, `?`, flow collections and block scalar
            // indicators mean something only there (inside a plain scalar they are just text).
            var nodeStart = true
            var lineHasContent = false
            while index < line.count {
                let c = line[index]
                if inDouble {
                    if c == "\\" {
                        index += 2
                        continue
                    }
                    if c == "\"" { inDouble = false }
                    index += 1
                    continue
                }
                if inSingle {
                    if c == "'" {
                        if index + 1 < line.count, line[index + 1] == "'" {
                            index += 2
                            continue
                        }
                        inSingle = false
                    }
                    index += 1
                    continue
                }
                if c == "#", index == 0 || Self.isSpace(line[index - 1]) { break }
                if Self.isSpace(c) {
                    index += 1
                    continue
                }
                lineHasContent = true
                let next: Unicode.Scalar? = index + 1 < line.count ? line[index + 1] : nil
                let nextIsBreak = next.map(Self.isSpace) ?? true
                let column = index + 1
                if nodeStart, c == "-", nextIsBreak, flowDepth == 0 {
                    blockDepth += 1  // `- - x` nests a list per dash
                    checkDepth(blockDepth, lineNumber, column)
                    if stop { return }
                    index += 1
                    continue
                }
                if nodeStart, c == "\"" {
                    inDouble = true
                    nodeStart = false
                } else if nodeStart, c == "'" {
                    inSingle = true
                    nodeStart = false
                } else if (c == "[" || c == "{") && (nodeStart || flowDepth > 0) {
                    flowDepth += 1
                    nodeStart = true
                    checkDepth(blockDepth + flowDepth, lineNumber, column)
                    if stop { return }
                } else if (c == "]" || c == "}") && flowDepth > 0 {
                    flowDepth -= 1
                    nodeStart = false
                    if followedByKeyColon(line, from: index + 1) {
                        report(nonStringKey(lineNumber, column, "a list or mapping"))
                    }
                } else if c == ",", flowDepth > 0 {
                    nodeStart = true
                } else if c == ":", nextIsBreak || flowDepth > 0 {
                    nodeStart = true
                } else if nodeStart, c == "*", let next, !Self.isSpace(next), !Self.isFlowIndicator(next) {
                    aliasCount += 1
                    if aliasCount == limits.maxAliases + 1 {
                        report(
                            .error(
                                "too-many-aliases",
                                "the file uses more than \(limits.maxAliases) YAML aliases; aliases can expand exponentially (an 'alias bomb')",
                                fix: "write the values out instead of repeating them with aliases",
                                at: location(lineNumber, column)
                            )
                        )
                        stop = true
                        return
                    }
                    var end = index + 1
                    while end < line.count, !Self.isSpace(line[end]), !Self.isFlowIndicator(line[end]) { end += 1 }
                    if followedByKeyColon(line, from: end) {
                        report(nonStringKey(lineNumber, column, "an alias"))
                    }
                    index = end
                    nodeStart = false
                    continue
                } else if nodeStart, c == "&" || c == "!" {
                    // An anchor or a tag: a property of the node that follows (tags are checked once
                    // composed, where their meaning is certain).
                    while index < line.count, !Self.isSpace(line[index]), !Self.isFlowIndicator(line[index]) {
                        index += 1
                    }
                    continue
                } else if nodeStart, c == "?", nextIsBreak {
                    report(nonStringKey(lineNumber, column, "an explicit '?' key"))
                } else if nodeStart, c == "|" || c == ">", flowDepth == 0,
                    line[(index + 1)...].prefix(while: { !Self.isSpace($0) }).allSatisfy({
                        "+-0123456789".unicodeScalars.contains($0)
                    })
                {
                    var rest = index + 1
                    while rest < line.count, !Self.isSpace(line[rest]) { rest += 1 }
                    while rest < line.count, Self.isSpace(line[rest]) { rest += 1 }
                    if rest == line.count || line[rest] == "#" {
                        blockScalarParentIndent = indent
                        sawContent = true
                        return
                    }
                    nodeStart = false
                } else {
                    nodeStart = false
                }
                index += 1
            }
            if lineHasContent { sawContent = true }
        }

        func followedByKeyColon(_ line: [Unicode.Scalar], from start: Int) -> Bool {
            var index = start
            while index < line.count, Self.isSpace(line[index]) { index += 1 }
            guard index < line.count, line[index] == ":" else { return false }
            return index + 1 == line.count || Self.isSpace(line[index + 1]) || Self.isFlowIndicator(line[index + 1])
                || flowDepth > 0
        }

        mutating func checkDepth(_ depth: Int, _ lineNumber: Int, _ column: Int) {
            guard depth > limits.maxDepth else { return }
            report(
                .error(
                    "too-deep",
                    "the YAML is nested more than \(limits.maxDepth) levels deep",
                    fix: "a playbook needs only a few levels: flatten the structure",
                    at: location(lineNumber, column)
                )
            )
            stop = true
        }

        func nonStringKey(_ line: Int, _ column: Int, _ what: String) -> Diagnostic {
            .error(
                "non-string-key",
                "\(what) is used as a mapping key; keys must be plain strings",
                fix: "write the key as a plain name, e.g. `id:`",
                at: location(line, column)
            )
        }
    }

    static func unknownTag(_ tag: String, _ location: SourceLocation?) -> Diagnostic {
        .error(
            "unknown-tag",
            "the YAML tag '\(tag)' is not supported",
            fix: "remove the tag; only the standard tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) are accepted",
            at: location
        )
    }

    /// Walks a composed tree once: counts nodes against the budget (aliases are followed, so this is
    /// the expanded size), bounds depth, and refuses custom tags and keys that are not scalars.
    static func inspect(_ root: Node, file: String?, limits: YAMLLimits = .standard) -> [Diagnostic] {
        var walker = Walker(file: file, limits: limits)
        walker.visit(root, depth: 1)
        return walker.diagnostics
    }

    private struct Walker {
        let file: String?
        let limits: YAMLLimits
        var diagnostics: [Diagnostic] = []
        var count = 0
        var stop = false

        init(file: String?, limits: YAMLLimits) {
            self.file = file
            self.limits = limits
        }

        func location(_ node: Node) -> SourceLocation? {
            node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        }

        mutating func visit(_ node: Node, depth: Int) {
            guard !stop else { return }
            count += 1
            if count > limits.maxNodes {
                diagnostics.append(
                    .error(
                        "too-large",
                        "the YAML expands to more than \(limits.maxNodes) nodes (aliases are expanded)",
                        fix: "write a smaller playbook without aliases",
                        at: location(node)
                    )
                )
                stop = true
                return
            }
            if depth > limits.maxDepth {
                diagnostics.append(
                    .error(
                        "too-deep", "the YAML is nested more than \(limits.maxDepth) levels deep",
                        fix: "a playbook needs only a few levels: flatten the structure", at: location(node)))
                stop = true
                return
            }
            switch node {
            case .scalar(let scalar):
                checkTag(scalar.tag.rawValue, node)
            case .sequence(let sequence):
                checkTag(sequence.tag.rawValue, node)
                for item in sequence { visit(item, depth: depth + 1) }
            case .mapping(let mapping):
                checkTag(mapping.tag.rawValue, node)
                for (key, value) in mapping {
                    switch key {
                    case .scalar:
                        visit(key, depth: depth + 1)
                    case .mapping, .sequence, .alias:
                        diagnostics.append(
                            .error(
                                "non-string-key", "a list or mapping is used as a mapping key; keys must be plain strings",
                                fix: "write the key as a plain name, e.g. `id:`", at: location(key)))
                    }
                    visit(value, depth: depth + 1)
                }
            case .alias:
                diagnostics.append(
                    .error("unresolved-alias", "an alias could not be resolved", at: location(node)))
            }
        }

        mutating func checkTag(_ raw: String, _ node: Node) {
            guard !YAMLGuard.resolvedStandardTags.contains(raw) else { return }
            diagnostics.append(YAMLGuard.unknownTag(raw, location(node)))
        }
    }
}
