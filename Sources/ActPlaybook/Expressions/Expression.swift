/// An expression of the playbook language (`expr:`, `when:`), parsed once at load time.
///
/// The language is small and safe: paths into the event payload and step outputs, literals,
/// comparisons, `and`/`or`/`not`, `in`, and `step(id).completed|failed|timeout|skipped`. It has no
/// calls, no loops and no access to the host, and its size and depth are bounded by the parser.
public indirect enum Expression: Hashable, Sendable, Codable {
    case literal(JSONValue)
    /// A list literal: `["High", "Critical"]`.
    case list([Expression])
    /// A dotted path: `result.severity`, `payload.amount`, `steps.classify.output.severity`.
    case path([String])
    /// `step(id).completed` and friends.
    case stepCondition(StepID, StepCondition)
    case not(Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(ComparisonOperator, Expression, Expression)
    /// `x in list` (membership) or `"sub" in "string"` (substring).
    case contains(element: Expression, collection: Expression)

    /// The step ids named by `step(…)` anywhere in this expression, for validation.
    public var referencedSteps: [StepID] {
        switch self {
        case .literal, .path: []
        case .list(let items): items.flatMap(\.referencedSteps)
        case .stepCondition(let id, _): [id]
        case .not(let inner): inner.referencedSteps
        case .and(let lhs, let rhs), .or(let lhs, let rhs), .compare(_, let lhs, let rhs),
            .contains(let lhs, let rhs):
            lhs.referencedSteps + rhs.referencedSteps
        }
    }
}

public enum ComparisonOperator: String, Hashable, Sendable, Codable, CaseIterable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
}

/// What `step(id).…` asks about a step.
public enum StepCondition: String, Hashable, Sendable, Codable, CaseIterable {
    case completed
    case failed
    /// The step's SLA was breached, or its wait ran out.
    case timeout
    case skipped
}
