/// Parses the playbook expression language (`expr:`, `when:`) into an ``Expression``.
///
/// A hand-written recursive-descent parser over this grammar:
///
/// ```
/// or         := and (("or" | "||") and)*
/// and        := not (("and" | "&&") not)*
/// not        := ("not" | "!") not | comparison
/// comparison := primary (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") primary)?
/// primary    := literal | list | path | "step" "(" id ")" "." condition | "(" or ")"
/// path       := name ("." (name | digits))*          result.severity, payload.items.0
/// literal    := "text" | 'text' | number | true | false | null
/// list       := "[" (or ("," or)*)? "]"
/// ```
///
/// Input is bounded (``maxLength`` characters, ``maxDepth`` levels of nesting), so a hostile playbook
/// cannot make registration slow or overflow the stack.
public enum ExpressionParser {
    /// The longest expression accepted, in characters.
    public static let maxLength = 1024
    /// The deepest nesting accepted (parentheses, `not`, lists).
    public static let maxDepth = 32

    /// Parses `text` into an expression.
    ///
    /// - Parameter text: The expression as written, e.g. `result.severity == "High"`.
    /// - Returns: The parsed expression.
    /// - Throws: ``ExpressionParseError`` saying what was expected at which 1-based column.
    public static func parse(_ text: String) throws(ExpressionParseError) -> Expression {
        let characters = Array(text)
        guard characters.count <= maxLength else {
            throw ExpressionParseError(
                message: "expression is \(characters.count) characters long; at most \(maxLength) are allowed",
                column: maxLength + 1
            )
        }
        var lexer = Lexer(characters)
        var parser = Parser(tokens: try lexer.tokens())
        let expression = try parser.parseOr(depth: 0)
        guard case .end = parser.current.kind else {
            throw parser.unexpected("an operator (==, !=, <, <=, >, >=, in, and, or) or the end of the expression")
        }
        return expression
    }
}

/// Why an expression could not be parsed, and where (1-based column inside the expression).
public struct ExpressionParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    /// 1-based column, counted in characters from the start of the expression.
    public var column: Int

    public init(message: String, column: Int) {
        self.message = message
        self.column = column
    }

    public var description: String { "column \(column): \(message)" }
}

// MARK: - Lexer

private struct Token {
    enum Kind: Equatable {
        case name(String)
        case number(JSONNumber)
        case string(String)
        case symbol(String)
        case end
    }

    var kind: Kind
    /// 1-based column of the token's first character.
    var column: Int
    /// The token as written, for messages.
    var text: String
}

private struct Lexer {
    let characters: [Character]
    var index = 0

    init(_ characters: [Character]) { self.characters = characters }

    private static let symbols = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", "."]

    mutating func tokens() throws(ExpressionParseError) -> [Token] {
        var tokens: [Token] = []
        while true {
            while index < characters.count, characters[index].isWhitespace { index += 1 }
            let column = index + 1
            guard index < characters.count else {
                tokens.append(Token(kind: .end, column: column, text: "end of expression"))
                return tokens
            }
            let character = characters[index]
            if character == "\"" || character == "'" {
                tokens.append(try string(quote: character, column: column))
            } else if character.isASCII, character.isNumber
                || (character == "-" && index + 1 < characters.count && characters[index + 1].isASCII
                    && characters[index + 1].isNumber)
            {
                tokens.append(try number(column: column))
            } else if Self.isNameStart(character) {
                let start = index
                while index < characters.count, Self.isNamePart(characters[index]) { index += 1 }
                let name = String(characters[start..<index])
                tokens.append(Token(kind: .name(name), column: column, text: name))
            } else if let symbol = Self.symbols.first(where: { matches($0) }) {
                index += symbol.count
                tokens.append(Token(kind: .symbol(symbol), column: column, text: symbol))
            } else if character == "=" {
                throw ExpressionParseError(message: "'=' is not an operator; use '==' to compare", column: column)
            } else {
                throw ExpressionParseError(message: "unexpected character '\(character)'", column: column)
            }
        }
    }

    private func matches(_ symbol: String) -> Bool {
        let symbolCharacters = Array(symbol)
        guard index + symbolCharacters.count <= characters.count else { return false }
        return Array(characters[index..<index + symbolCharacters.count]) == symbolCharacters
    }

    static func isNameStart(_ c: Character) -> Bool { c == "_" || c == "$" || (c.isLetter) }
    static func isNamePart(_ c: Character) -> Bool { isNameStart(c) || (c.isASCII && c.isNumber) || c == "-" }

    private mutating func string(quote: Character, column: Int) throws(ExpressionParseError) -> Token {
        index += 1
        var value = ""
        while index < characters.count {
            let character = characters[index]
            if character == quote {
                index += 1
                return Token(kind: .string(value), column: column, text: "\(quote)\(value)\(quote)")
            }
            if character == "\\" {
                guard index + 1 < characters.count else { break }
                let escaped = characters[index + 1]
                switch escaped {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "\\", "\"", "'": value.append(escaped)
                default:
                    throw ExpressionParseError(
                        message: "unknown escape '\\\(escaped)' (use \\\\, \\\", \\', \\n or \\t)",
                        column: index + 1
                    )
                }
                index += 2
                continue
            }
            value.append(character)
            index += 1
        }
        throw ExpressionParseError(message: "string is not closed: expected \(quote) before the end", column: column)
    }

    private mutating func number(column: Int) throws(ExpressionParseError) -> Token {
        let start = index
        if characters[index] == "-" { index += 1 }
        func digits() { while index < characters.count, characters[index].isASCII, characters[index].isNumber { index += 1 } }
        digits()
        if index + 1 < characters.count, characters[index] == ".", characters[index + 1].isASCII,
            characters[index + 1].isNumber
        {
            index += 1
            digits()
        }
        if index < characters.count, characters[index] == "e" || characters[index] == "E" {
            var lookahead = index + 1
            if lookahead < characters.count, characters[lookahead] == "+" || characters[lookahead] == "-" {
                lookahead += 1
            }
            if lookahead < characters.count, characters[lookahead].isASCII, characters[lookahead].isNumber {
                index = lookahead
                digits()
            }
        }
        let text = String(characters[start..<index])
        guard let value = JSONNumber(lenient: text) else {
            throw ExpressionParseError(message: "'\(text)' is not a number", column: column)
        }
        if index < characters.count, Self.isNameStart(characters[index]) {
            throw ExpressionParseError(
                message: "expected an operator after the number \(text), found '\(characters[index])'",
                column: index + 1
            )
        }
        return Token(kind: .number(value), column: column, text: text)
    }
}

// MARK: - Parser

private struct Parser {
    let tokens: [Token]
    var position = 0

    init(tokens: [Token]) { self.tokens = tokens }

    var current: Token { tokens[position] }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    func unexpected(_ expected: String) -> ExpressionParseError {
        let found: String
        switch current.kind {
        case .end: found = "the end of the expression"
        case .name, .number, .string, .symbol: found = "'\(current.text)'"
        }
        return ExpressionParseError(message: "expected \(expected), found \(found)", column: current.column)
    }

    func isName(_ name: String) -> Bool { current.kind == .name(name) }
    func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }

    func checkDepth(_ depth: Int) throws(ExpressionParseError) {
        guard depth <= ExpressionParser.maxDepth else {
            throw ExpressionParseError(
                message: "expression is nested more than \(ExpressionParser.maxDepth) levels deep",
                column: current.column
            )
        }
    }

    mutating func parseOr(depth: Int) throws(ExpressionParseError) -> Expression {
        try checkDepth(depth)
        var lhs = try parseAnd(depth: depth)
        while isName("or") || isSymbol("||") {
            advance()
            lhs = .or(lhs, try parseAnd(depth: depth))
        }
        return lhs
    }

    mutating func parseAnd(depth: Int) throws(ExpressionParseError) -> Expression {
        var lhs = try parseNot(depth: depth)
        while isName("and") || isSymbol("&&") {
            advance()
            lhs = .and(lhs, try parseNot(depth: depth))
        }
        return lhs
    }

    mutating func parseNot(depth: Int) throws(ExpressionParseError) -> Expression {
        if isName("not") || isSymbol("!") {
            try checkDepth(depth + 1)
            advance()
            return .not(try parseNot(depth: depth + 1))
        }
        return try parseComparison(depth: depth)
    }

    mutating func parseComparison(depth: Int) throws(ExpressionParseError) -> Expression {
        let lhs = try parsePrimary(depth: depth)
        if case .symbol(let symbol) = current.kind, let op = ComparisonOperator(rawValue: symbol) {
            advance()
            return .compare(op, lhs, try parsePrimary(depth: depth))
        }
        if isName("in") {
            advance()
            return .contains(element: lhs, collection: try parsePrimary(depth: depth))
        }
        if isName("not"), position + 1 < tokens.count, tokens[position + 1].kind == .name("in") {
            advance()
            advance()
            return .not(.contains(element: lhs, collection: try parsePrimary(depth: depth)))
        }
        return lhs
    }

    mutating func parsePrimary(depth: Int) throws(ExpressionParseError) -> Expression {
        let token = current
        switch token.kind {
        case .string(let value):
            advance()
            return .literal(.string(value))
        case .number(let value):
            advance()
            return .literal(.number(value))
        case .symbol("("):
            try checkDepth(depth + 1)
            advance()
            let inner = try parseOr(depth: depth + 1)
            guard isSymbol(")") else { throw unexpected("')' to close the '(' at column \(token.column)") }
            advance()
            return inner
        case .symbol("["):
            try checkDepth(depth + 1)
            advance()
            var items: [Expression] = []
            if !isSymbol("]") {
                while true {
                    items.append(try parseOr(depth: depth + 1))
                    if isSymbol(",") {
                        advance()
                        continue
                    }
                    guard isSymbol("]") else {
                        throw unexpected("',' or ']' to close the list opened at column \(token.column)")
                    }
                    break
                }
            }
            advance()
            return .list(items)
        case .name(let name):
            switch name {
            case "true":
                advance()
                return .literal(.bool(true))
            case "false":
                advance()
                return .literal(.bool(false))
            case "null":
                advance()
                return .literal(.null)
            case "and", "or", "not", "in":
                throw unexpected("a value (a path, a literal, a list or step(id).…)")
            default:
                break
            }
            if name == "step", position + 1 < tokens.count, tokens[position + 1].kind == .symbol("(") {
                return try parseStepCondition()
            }
            return try parsePath()
        case .symbol, .end:
            throw unexpected("a value (a path, a literal, a list or step(id).…)")
        }
    }

    mutating func parsePath() throws(ExpressionParseError) -> Expression {
        guard case .name(let first) = current.kind else { throw unexpected("a name") }
        var components = [first]
        advance()
        while isSymbol(".") {
            advance()
            switch current.kind {
            case .name(let name):
                components.append(name)
            case .number where current.text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }):
                // `items.0.1` lexes `0.1` as one number: it is two indexes.
                components.append(contentsOf: current.text.split(separator: ".").map(String.init))
            case .number, .string, .symbol, .end:
                throw unexpected("a name or an index after '.'")
            }
            advance()
        }
        return .path(components)
    }

    mutating func parseStepCondition() throws(ExpressionParseError) -> Expression {
        advance()  // step
        advance()  // (
        let id: String
        switch current.kind {
        case .name(let name): id = name
        case .string(let string) where !string.isEmpty: id = string
        case .number, .string, .symbol, .end: throw unexpected("a step id inside step(…)")
        }
        advance()
        guard isSymbol(")") else { throw unexpected("')' after the step id") }
        advance()
        let conditions = StepCondition.allCases.map(\.rawValue).joined(separator: ", ")
        guard isSymbol(".") else { throw unexpected("'.' and one of \(conditions) after step(\(id))") }
        advance()
        guard case .name(let name) = current.kind, let condition = StepCondition(rawValue: name) else {
            throw unexpected("one of \(conditions)")
        }
        advance()
        return .stepCondition(StepID(id), condition)
    }
}
