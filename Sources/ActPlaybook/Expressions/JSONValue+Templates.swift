extension JSONValue {
    /// The expression a string stands for when it is exactly `${expression}` (`${payload.address}`), else `nil`.
    public var templateExpression: Substring? {
        guard case .string(let text) = self, text.hasPrefix("${"), text.hasSuffix("}"), text.count >= 3 else { return nil }
        return text.dropFirst(2).dropLast()
    }

    /// Every `${…}` string inside this value, with the path to it (`address`, `items.2`), in a stable order.
    public var templates: [(path: String, expression: Substring)] {
        var found: [(String, Substring)] = []
        func walk(_ value: JSONValue, _ path: [String]) {
            switch value {
            case .string:
                if let expression = value.templateExpression { found.append((path.joined(separator: "."), expression)) }
            case .array(let items):
                for (offset, item) in items.enumerated() { walk(item, path + [String(offset)]) }
            case .object(let members):
                for key in members.keys.sorted() { walk(members[key]!, path + [key]) }
            case .null, .bool, .number:
                break
            }
        }
        walk(self, [])
        return found
    }

    /// This value with every `${expression}` string replaced by the expression's value in `context` (a
    /// missing path gives `null`); everything else is kept as written. A string that is not a valid expression
    /// is kept too (the validator reports it when the playbook is loaded).
    public func resolvingTemplates(in context: some ExpressionContext) -> JSONValue {
        switch self {
        case .string:
            guard let text = templateExpression, let expression = try? ExpressionParser.parse(String(text)) else {
                return self
            }
            return expression.evaluate(in: context)
        case .array(let items):
            return .array(items.map { $0.resolvingTemplates(in: context) })
        case .object(let members):
            return .object(members.mapValues { $0.resolvingTemplates(in: context) })
        case .null, .bool, .number:
            return self
        }
    }
}
