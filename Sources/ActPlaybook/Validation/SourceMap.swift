/// Where the parts of a playbook were written, finer than ``Step/location``: the loader records the
/// position of each `next:`, `on_timeout:`, `when:`… value so validation can point at the exact value.
struct SourceMap: Sendable {
    /// Field locations per step id (first step with that id wins), keyed by YAML key name.
    private var fields: [StepID: [String: SourceLocation]] = [:]
    /// Where the `steps:` key was written.
    var steps: SourceLocation?

    mutating func record(_ step: StepID, _ field: String, _ location: SourceLocation?) {
        guard let location else { return }
        if fields[step]?[field] == nil { fields[step, default: [:]][field] = location }
    }

    func location(_ step: StepID, _ field: String) -> SourceLocation? {
        fields[step]?[field]
    }
}
