/// Who may act, as a step's `allowed:` and the `amqp.actors` setting write it: an exact actor name
/// (`officer#4`), a prefix ending in `*` (`officer#*`, a group by naming convention), or `*` for anyone.
public enum ActorPattern {
    /// Whether `actor` is named by `pattern`.
    public static func matches(_ pattern: String, _ actor: String) -> Bool {
        pattern.hasSuffix("*") ? actor.hasPrefix(pattern.dropLast()) : actor == pattern
    }

    /// Whether `actor` is named by any of `patterns`.
    public static func matches(any patterns: [String], _ actor: String) -> Bool {
        patterns.contains { matches($0, actor) }
    }

    /// What is wrong with `pattern` as a phrase that follows it ("is empty"), or `nil` when it is a pattern.
    public static func problem(with pattern: String) -> String? {
        if pattern.isEmpty { return "is empty" }
        if pattern.contains(where: \.isWhitespace) { return "contains a space; actor names have none" }
        if pattern.dropLast().contains("*") { return "has a * before its end; only a trailing * (a prefix) is supported" }
        return nil
    }
}
