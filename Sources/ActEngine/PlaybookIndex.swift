import ActPlaybook

/// Lookups over one playbook that the engine needs on every event: every step by id (top-level steps and
/// parallel branches), where it sits, and the agents in routing order.
///
/// Built once per machine from values; a playbook with duplicate ids (refused by validation) keeps the
/// first, so nothing here can trap on input.
struct PlaybookIndex: Sendable {
    enum Location: Hashable, Sendable {
        case topLevel(Int)
        case branch(block: StepID, index: Int)
    }

    private(set) var steps: [StepID: Step] = [:]
    private(set) var locations: [StepID: Location] = [:]
    private let order: [StepID]
    /// The agents sorted by id: "the first matching agent" is stable whatever order the registry lists.
    let agents: [Agent]

    init(playbook: Playbook, agents: [Agent]) {
        self.order = playbook.steps.map(\.id)
        self.agents = agents.sorted { $0.id < $1.id }
        for (position, step) in playbook.steps.enumerated() where steps[step.id] == nil {
            steps[step.id] = step
            locations[step.id] = .topLevel(position)
        }
        for (position, step) in playbook.steps.enumerated() {
            guard case .parallel(let block) = step.kind, locations[step.id] == .topLevel(position) else { continue }
            for (position, branch) in block.branches.enumerated() where steps[branch.id] == nil {
                steps[branch.id] = branch
                locations[branch.id] = .branch(block: step.id, index: position)
            }
        }
    }

    func step(_ id: StepID) -> Step? { steps[id] }

    func isTopLevel(_ id: StepID) -> Bool {
        guard case .topLevel = locations[id] else { return false }
        return true
    }

    /// The top-level step written after `id`, if any.
    func following(_ id: StepID) -> StepID? {
        guard case .topLevel(let position) = locations[id], position + 1 < order.count else { return nil }
        return order[position + 1]
    }
}
