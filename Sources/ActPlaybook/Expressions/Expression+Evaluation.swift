/// What an expression can see while it is evaluated. The engine implements it over a run's state.
public protocol ExpressionContext {
    /// The value at a dotted path (`result.severity`, `payload.amount`); `nil` when absent.
    func value(at path: [String]) -> JSONValue?
    /// Whether the step has reached the condition (`step(wait_for_fix).timeout`).
    func step(_ id: StepID, is condition: StepCondition) -> Bool
}

extension Expression {
    /// Evaluates the expression. Never throws: a missing path is `null`, and comparing values of
    /// different types is `false` (except `!=`, which is `true`), so a run never crashes on data it did
    /// not expect.
    public func evaluate(in context: some ExpressionContext) -> JSONValue {
        switch self {
        case .literal(let value):
            return value
        case .list(let items):
            return .array(items.map { $0.evaluate(in: context) })
        case .path(let components):
            return context.value(at: components) ?? .null
        case .stepCondition(let id, let condition):
            return .bool(context.step(id, is: condition))
        case .not(let inner):
            return .bool(!inner.evaluate(in: context).isTruthy)
        case .and(let lhs, let rhs):
            return .bool(lhs.evaluate(in: context).isTruthy && rhs.evaluate(in: context).isTruthy)
        case .or(let lhs, let rhs):
            return .bool(lhs.evaluate(in: context).isTruthy || rhs.evaluate(in: context).isTruthy)
        case .compare(let op, let lhs, let rhs):
            return .bool(Self.compare(op, lhs.evaluate(in: context), rhs.evaluate(in: context)))
        case .contains(let element, let collection):
            let needle = element.evaluate(in: context)
            switch collection.evaluate(in: context) {
            case .array(let items):
                return .bool(items.contains(needle))
            case .string(let haystack):
                guard case .string(let substring) = needle else { return .bool(false) }
                return .bool(haystack.contains(substring))
            case .object(let members):
                guard case .string(let key) = needle else { return .bool(false) }
                return .bool(members[key] != nil)
            case .null, .bool, .number:
                return .bool(false)
            }
        }
    }

    /// Whether the expression holds (its value is truthy).
    public func holds(in context: some ExpressionContext) -> Bool {
        evaluate(in: context).isTruthy
    }

    private static func compare(_ op: ComparisonOperator, _ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        switch op {
        case .equal: return lhs == rhs
        case .notEqual: return lhs != rhs
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (lhs, rhs) {
            case (.number(let a), .number(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            case (.string(let a), .string(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            default: return false
            }
            switch op {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            case .equal, .notEqual: preconditionFailure("handled above")
            }
        }
    }
}

extension JSONValue {
    /// The text a `switch` case key is matched against: strings as they are, integers in plain digits
    /// (``JSONNumber/keyText``: `42`, `9007199254740993`), other numbers in their canonical text (`0.5`),
    /// `true`/`false`, `null`.
    public var caseKey: String {
        switch self {
        case .null: "null"
        case .bool(let bool): bool ? "true" : "false"
        case .number(let number): number.keyText
        case .string(let string): string
        case .array, .object: ""
        }
    }
}
