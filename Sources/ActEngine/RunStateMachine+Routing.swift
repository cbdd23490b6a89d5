public import ActPlaybook

extension RunStateMachine {
    /// Where one task of a step goes.
    struct Route: Hashable {
        var agent: AgentID?
        var target: DispatchTarget
        /// Fan-out to registry agents: the task id gets the agent id as suffix.
        var perAgent: Bool
    }

    /// Routes the tasks of a step at the current instant.
    ///
    /// - A sub-playbook (`playbook:`): one task, to a child run of that playbook.
    /// - Single, with skills: the first agent (by id) having every skill and on shift; its queue, else its
    ///   routing key, else `task.<agent id>`. Nobody on shift: the assignee's routing key.
    /// - Single, without skills: the agent whose id is the assignee label, through its queue (or its own
    ///   routing key; not at all for a pull agent); otherwise, for a `call:` hms-act performs
    ///   (``EngineConfiguration/calls``), over HTTP; otherwise the assignee's routing key. Shifts are not
    ///   checked: the task names its agent.
    /// - Fan-out: one task per matching agent — with skills, those having them all and on shift; without,
    ///   those whose id is the label or starts with label + `#` (`human.inspector#3`). Nobody matches: one
    ///   task to the assignee's routing key.
    func routes(for assignee: Assignee, skills: [String], mode: DispatchMode) -> [Route] {
        if assignee.kind == .playbook {
            return [Route(agent: nil, target: .playbook(PlaybookID(assignee.name)), perAgent: false)]
        }
        let fallback = Route(agent: nil, target: .routingKey(assignee.routingKey), perAgent: false)
        let label = assignee.label
        switch mode {
        case .single:
            if !skills.isEmpty {
                guard let agent = index.agents.first(where: { qualifies($0, skills: skills) }) else { return [fallback] }
                return [Route(agent: agent.id, target: Self.target(of: agent), perAgent: false)]
            }
            guard let agent = index.agents.first(where: { $0.id.rawValue == label }) else {
                if configuration.calls.performs(assignee) { return [Route(agent: nil, target: .http, perAgent: false)] }
                return [fallback]
            }
            let target: DispatchTarget =
                agent.delivery == .pull ? .pull
                : agent.queue.map { .queue($0) } ?? .routingKey(agent.routingKey ?? assignee.routingKey)
            return [Route(agent: agent.id, target: target, perAgent: false)]
        case .fanOut:
            let matching: [Agent]
            if skills.isEmpty {
                matching = index.agents.filter { $0.id.rawValue == label || $0.id.rawValue.hasPrefix(label + "#") }
            } else {
                matching = index.agents.filter { qualifies($0, skills: skills) }
            }
            guard !matching.isEmpty else { return [fallback] }
            return matching.map { Route(agent: $0.id, target: Self.target(of: $0), perAgent: true) }
        }
    }

    private func qualifies(_ agent: Agent, skills: [String]) -> Bool {
        skills.allSatisfy(agent.skills.contains) && agent.isOnShift(at: now)
    }

    private static func target(of agent: Agent) -> DispatchTarget {
        if agent.delivery == .pull { return .pull }
        if let queue = agent.queue { return .queue(queue) }
        return .routingKey(agent.routingKey ?? "task.\(agent.id.rawValue)")
    }
}

extension Agent {
    /// Whether the agent works at `instant`; an agent without a shift always does.
    public func isOnShift(at instant: Instant) -> Bool {
        shift?.contains(epochMilliseconds: instant.millisecondsSinceEpoch) ?? true
    }
}
