extension Playbook {
    /// Checks the playbook as a whole and lists every problem found.
    ///
    /// For playbooks built from code or JSON (chapter 004's `Workflow(id:steps:)`); the loader runs the
    /// same checks on every YAML file. Checked: no steps, missing and duplicate ids (steps and parallel
    /// branches), references to missing steps (`next`, `on_*`, `cases`, `default`, `step(x)`) with a
    /// "did you mean", unreachable steps, cycles with no way out, switches without `default`
    /// (a warning), switch cases pointing at their own switch, and, when `agents` are given, assignees
    /// and skills no agent provides (warnings).
    ///
    /// - Parameter agents: The agent registry to check assignees against; empty skips those checks.
    /// - Returns: Errors and warnings, errors first, in source order where locations are known.
    public func validate(agents: [Agent] = []) -> [Diagnostic] {
        validate(agents: agents, sourceMap: nil)
    }

    func validate(agents: [Agent], sourceMap: SourceMap?) -> [Diagnostic] {
        var validator = PlaybookValidator(playbook: self, sourceMap: sourceMap ?? SourceMap())
        validator.run(agents: agents)
        return validator.diagnostics.sortedForReport()
    }
}

private struct PlaybookValidator {
    let playbook: Playbook
    let sourceMap: SourceMap
    var diagnostics: [Diagnostic] = []
    /// Top-level step ids: the only targets of `next`, `on_*`, `cases` and `default`.
    let topLevel: [StepID: Int]
    /// Every step id, branches included: what `step(x)` may name.
    let allIDs: Set<StepID>

    init(playbook: Playbook, sourceMap: SourceMap) {
        self.playbook = playbook
        self.sourceMap = sourceMap
        var topLevel: [StepID: Int] = [:]
        for (index, step) in playbook.steps.enumerated() where topLevel[step.id] == nil { topLevel[step.id] = index }
        self.topLevel = topLevel
        var all = Set(playbook.steps.map(\.id))
        for step in playbook.steps {
            if case .parallel(let parallel) = step.kind { all.formUnion(parallel.branches.map(\.id)) }
        }
        self.allIDs = all
    }

    func location(_ step: Step, _ field: String) -> SourceLocation? {
        sourceMap.location(step.id, field) ?? step.location
    }

    mutating func run(agents: [Agent]) {
        if playbook.id.rawValue.isEmpty {
            diagnostics.append(.error("missing-id", "the playbook has no id",
                fix: "add `id: MyPlaybook.v1` at the top", at: playbook.location))
        }
        if playbook.triggers.isEmpty, (playbook.schedules ?? []).isEmpty {
            diagnostics.append(.warning(
                "no-trigger", "the playbook has no trigger: no event starts it, so it runs only when started explicitly",
                fix: "add `trigger: <event type>` (or `start:`) to start it from an event", at: playbook.location))
        }
        guard !playbook.steps.isEmpty else {
            diagnostics.append(.error("empty-playbook", "the playbook has no steps",
                fix: "add `steps:` with at least one step, e.g. `- id: intake` and `agent: ai.auto_intake`",
                at: sourceMap.steps ?? playbook.location))
            return
        }
        checkIDs()
        for step in playbook.steps {
            checkReferences(step)
            if case .parallel(let parallel) = step.kind {
                for branch in parallel.branches { checkReferences(branch) }
            }
        }
        checkGraph()
        for step in playbook.steps {
            checkSubPlaybook(step)
            checkForEach(step)
            checkAllowed(step)
            if case .parallel(let parallel) = step.kind {
                parallel.branches.forEach { checkSubPlaybook($0); checkForEach($0); checkAllowed($0) }
            }
        }
        if !agents.isEmpty { checkAgents(agents) }
    }

    // MARK: Maps

    /// A `for_each:` step runs one task per item: no fan-out, approval or form, a concurrency of 1…1000 and a
    /// tolerance of 0 or more (0…100%). (The YAML reader reports these at their keys; this covers models built
    /// in code.)
    mutating func checkForEach(_ step: Step) {
        guard case .task(let spec) = step.kind, let forEach = spec.forEach,
            sourceMap.location(step.id, "for_each") == nil
        else { return }
        var problems: [String] = []
        if spec.mode == .fanOut || spec.requiresApproval || spec.form != nil { problems.append("fan-out, pause or a form") }
        if !(1...1_000).contains(forEach.maxConcurrency) { problems.append("max_concurrency \(forEach.maxConcurrency)") }
        switch forEach.tolerated {
        case .count(let count) where count < 0: problems.append("tolerated_failures \(count)")
        case .percent(let percent) where !(0...100).contains(percent): problems.append("tolerated_failures \(percent)%")
        case .count, .percent: break
        }
        guard !problems.isEmpty else { return }
        diagnostics.append(.error("bad-value", "for_each step '\(step.id)' cannot have \(problems.joined(separator: ", "))",
            fix: "one task per item, max_concurrency 1…1000, tolerated_failures a count ≥ 0 or 0…100%",
            at: step.location))
    }

    // MARK: Who may answer

    /// `allowed:` lists at least one ``ActorPattern``, and only on a step someone outside answers: a
    /// sub-playbook's child run and a `call:` step's HTTP response complete their steps themselves.
    mutating func checkAllowed(_ step: Step) {
        guard case .task(let spec) = step.kind, let allowed = spec.allowed else { return }
        let at = location(step, "allowed")
        switch spec.assignee.kind {
        case .playbook, .call:
            let who = spec.assignee.kind == .playbook ? "its child run" : "hms-act, on the HTTP call's response,"
            diagnostics.append(.error("key-not-allowed",
                "'allowed' does not belong on step '\(step.id)' (\(spec.assignee.written)): \(who) completes it, nobody answers it",
                fix: "remove 'allowed:'" + (spec.assignee.kind == .playbook
                    ? ", and put it on the steps of \(spec.assignee.name) that people or workers answer" : ""),
                at: at))
            return
        default:
            break
        }
        guard !allowed.isEmpty else {
            diagnostics.append(.error("bad-value", "'allowed' of step '\(step.id)' is an empty list, so nobody could answer it",
                fix: "list who may, e.g. `allowed: [officer#*, supervisor#4]`, or remove 'allowed:' to accept anyone "
                    + "the credentials allow", at: at))
            return
        }
        for pattern in allowed {
            guard let problem = ActorPattern.problem(with: pattern) else { continue }
            diagnostics.append(.error("bad-value", "'\(pattern)' in 'allowed' of step '\(step.id)' \(problem)",
                fix: "write an actor name (supervisor#4), a prefix ending in * (officer#*), or * for anyone", at: at))
        }
    }

    // MARK: Sub-playbooks

    /// A `playbook:` step: one child run, so no skills, fan-out, approval or form; its `${…}` input values
    /// must be expressions.
    mutating func checkSubPlaybook(_ step: Step) {
        guard case .task(let spec) = step.kind, spec.assignee.kind == .playbook else { return }
        let at = location(step, "playbook")
        // The YAML reader reported these keys at their own positions already (it records where `playbook:` is).
        let read = sourceMap.location(step.id, "playbook") != nil
        if !read, !spec.skills.isEmpty || spec.mode == .fanOut || spec.requiresApproval || spec.form != nil {
            diagnostics.append(.error("key-not-allowed",
                "sub-playbook step '\(step.id)' cannot have skills, fan-out, pause or a form: the child run does the work",
                fix: "remove them, and put them on the steps of \(spec.assignee.name)", at: at))
        }
        for template in spec.input?.templates ?? [] {
            do {
                _ = try ExpressionParser.parse(String(template.expression))
            } catch {
                let path = template.path.isEmpty ? "input" : "input." + template.path
                diagnostics.append(.error("bad-expression",
                    "invalid expression in \(path) of step '\(step.id)': \(error.message) (column \(error.column) of "
                        + "`\(template.expression)`)",
                    fix: "write `${payload.address}`, `${result.severity}` or `${steps.classify.output.level}`: a path or "
                        + "any expression of the playbook language between `${` and `}`",
                    at: location(step, "input")))
            }
        }
    }

    // MARK: Ids

    mutating func checkIDs() {
        var seen: [StepID: Step] = [:]
        func check(_ step: Step, diagnostics: inout [Diagnostic]) {
            if step.id.rawValue.isEmpty {
                diagnostics.append(.error("missing-id", "a step has no id",
                    fix: "add `id: <name>` to the step", at: step.location))
                return
            }
            if let first = seen[step.id] {
                let firstAt = first.location.map { " (first at line \($0.line))" } ?? ""
                diagnostics.append(.error("duplicate-id", "the step id '\(step.id)' is used twice\(firstAt)",
                    fix: "give each step its own id", at: step.location))
            } else {
                seen[step.id] = step
            }
        }
        for step in playbook.steps {
            check(step, diagnostics: &diagnostics)
            if case .parallel(let parallel) = step.kind {
                for branch in parallel.branches { check(branch, diagnostics: &diagnostics) }
            }
        }
    }

    // MARK: References

    mutating func checkReferences(_ step: Step) {
        func target(_ id: StepID?, _ field: String, _ at: SourceLocation?) {
            guard let id else { return }
            checkTarget(id, from: step, field: field, at: at)
        }
        target(step.next, "next", location(step, "next"))
        target(step.onFailure, "on_failure", location(step, "on_failure"))
        target(step.onTimeout, "on_timeout", location(step, "on_timeout"))
        if let when = step.when { checkExpression(when, in: step, field: "when") }
        switch step.kind {
        case .choice(let choice):
            for item in choice.cases {
                if item.target == step.id {
                    diagnostics.append(.error("self-case",
                        "case '\(item.match)' of switch '\(step.id)' goes back to the switch itself, which would loop forever",
                        fix: "point the case at the step that should run for '\(item.match)'",
                        at: item.location ?? step.location))
                } else {
                    checkTarget(item.target, from: step, field: "case '\(item.match)'", at: item.location ?? step.location)
                }
            }
            if let defaultTarget = choice.defaultTarget {
                if defaultTarget == step.id {
                    diagnostics.append(.error("self-case",
                        "the default of switch '\(step.id)' goes back to the switch itself, which would loop forever",
                        fix: "point the default at the step to run when no case matches",
                        at: location(step, "default")))
                } else {
                    checkTarget(defaultTarget, from: step, field: "default", at: location(step, "default"))
                }
            } else {
                diagnostics.append(.warning("switch-without-default",
                    "switch '\(step.id)' has no default: the run fails when no case matches",
                    fix: "add `default: <step id>` for values no case names", at: step.location))
            }
            checkExpression(choice.expression, in: step, field: "expr")
        case .task, .parallel, .wait:
            break
        }
    }

    mutating func checkTarget(_ id: StepID, from step: Step, field: String, at location: SourceLocation?) {
        if topLevel[id] != nil { return }
        if allIDs.contains(id) {
            diagnostics.append(.error("not-a-top-level-step",
                "\(field) of step '\(step.id)' goes to '\(id)', a branch inside a parallel block",
                fix: "go to the parallel step itself, or to a top-level step", at: location))
            return
        }
        let suggestion = Suggestion.didYouMean(id.rawValue, in: topLevel.keys.map(\.rawValue).sorted())
        diagnostics.append(.error("missing-step",
            "\(field) of step '\(step.id)' goes to '\(id)', which is not a step of this playbook",
            fix: suggestion ?? "use one of: \(playbook.steps.map(\.id.rawValue).joined(separator: ", "))",
            at: location))
    }

    mutating func checkExpression(_ expression: Expression, in step: Step, field: String) {
        for id in expression.referencedSteps where !allIDs.contains(id) {
            let suggestion = Suggestion.didYouMean(id.rawValue, in: allIDs.map(\.rawValue).sorted())
            diagnostics.append(.error("missing-step",
                "'\(field)' of step '\(step.id)' asks about step(\(id)), which is not a step of this playbook",
                fix: suggestion ?? "name one of: \(playbook.steps.map(\.id.rawValue).joined(separator: ", "))",
                at: location(step, field)))
        }
    }

    // MARK: Flow

    /// Successors of each top-level step; `steps.count` stands for the end of the run.
    func successors() -> [[Int]] {
        let end = playbook.steps.count
        return playbook.steps.enumerated().map { index, step in
            var next: [Int] = []
            func add(_ id: StepID?) {
                if let id, let target = topLevel[id] { next.append(target) }
            }
            switch step.kind {
            case .choice(let choice):
                // A case back to the switch itself is reported as `self-case`, not as a cycle too.
                for item in choice.cases where item.target != step.id { add(item.target) }
                if choice.defaultTarget != step.id { add(choice.defaultTarget) }
            case .task, .wait, .parallel:
                if let target = step.next {
                    add(target)
                } else {
                    next.append(index + 1 < end ? index + 1 : end)
                }
            }
            add(step.onTimeout)
            add(step.onFailure)
            if case .parallel(let parallel) = step.kind {
                for branch in parallel.branches {
                    add(branch.onTimeout)
                    add(branch.onFailure)
                }
            }
            return next
        }
    }

    mutating func checkGraph() {
        let graph = successors()
        let count = playbook.steps.count
        // Reachability from the first step.
        var reached = [Bool](repeating: false, count: count + 1)
        var stack = [0]
        reached[0] = true
        while let node = stack.popLast() {
            guard node < count else { continue }
            for next in graph[node] where !reached[next] {
                reached[next] = true
                stack.append(next)
            }
        }
        for (index, step) in playbook.steps.enumerated() where !reached[index] && !step.id.rawValue.isEmpty {
            diagnostics.append(.error("unreachable-step",
                "step '\(step.id)' can never run: no path from the first step '\(playbook.steps[0].id)' leads to it",
                fix: "go to it with `next:`, a switch case or `on_timeout:`/`on_failure:`, or remove it",
                at: step.location))
        }
        // Cycles with no way out: strongly connected components with no edge leaving them.
        for component in stronglyConnectedComponents(graph, count: count) {
            let members = Set(component)
            let isCycle = component.count > 1 || graph[component[0]].contains(component[0])
            guard isCycle else { continue }
            let leaves = component.contains { graph[$0].contains { !members.contains($0) } }
            guard !leaves else { continue }
            let ordered = component.sorted()
            let names = ordered.map { "'\(playbook.steps[$0].id)'" }
            let first = playbook.steps[ordered[0]]
            diagnostics.append(.error("cycle-without-exit",
                "steps \(names.joined(separator: ", ")) form a cycle with no way out: a run entering it never ends",
                fix: "give one of them a `next:`, case or `default:` that leaves the cycle", at: first.location))
        }
    }

    /// Kosaraju's algorithm with explicit stacks (no recursion: a playbook may have thousands of steps).
    func stronglyConnectedComponents(_ graph: [[Int]], count: Int) -> [[Int]] {
        var order: [Int] = []
        var visited = [Bool](repeating: false, count: count)
        for start in 0..<count where !visited[start] {
            var stack: [(node: Int, edge: Int)] = [(start, 0)]
            visited[start] = true
            while var top = stack.popLast() {
                let edges = graph[top.node]
                if top.edge < edges.count {
                    let next = edges[top.edge]
                    top.edge += 1
                    stack.append(top)
                    if next < count, !visited[next] {
                        visited[next] = true
                        stack.append((next, 0))
                    }
                } else {
                    order.append(top.node)
                }
            }
        }
        var reverse = [[Int]](repeating: [], count: count)
        for (node, edges) in graph.enumerated() {
            for next in edges where next < count { reverse[next].append(node) }
        }
        var component = [Int](repeating: -1, count: count)
        var components: [[Int]] = []
        for start in order.reversed() where component[start] < 0 {
            var members: [Int] = []
            var stack = [start]
            component[start] = components.count
            while let node = stack.popLast() {
                members.append(node)
                for previous in reverse[node] where component[previous] < 0 {
                    component[previous] = components.count
                    stack.append(previous)
                }
            }
            components.append(members)
        }
        return components
    }

    // MARK: Agents

    mutating func checkAgents(_ agents: [Agent]) {
        let ids = Set(agents.map(\.id.rawValue))
        func check(_ step: Step) {
            guard case .task(let spec) = step.kind else { return }
            switch spec.assignee.kind {
            case .ai, .human:
                let label = spec.assignee.label
                if !ids.contains(label) {
                    diagnostics.append(.warning("unknown-agent",
                        "step '\(step.id)' goes to agent '\(label)', which is not in the agent registry",
                        fix: Suggestion.didYouMean(label, in: ids.sorted()) ?? "add agents/\(label).json",
                        at: step.location))
                }
            case .service, .call, .topic, .playbook:
                break
            }
            if !spec.skills.isEmpty, !agents.contains(where: { agent in spec.skills.allSatisfy(agent.skills.contains) }) {
                diagnostics.append(.warning("no-agent-with-skills",
                    "no agent has all the skills step '\(step.id)' needs (\(spec.skills.joined(separator: ", ")))",
                    fix: "add the skills to an agent file, or change the step's skills", at: step.location))
            }
        }
        for step in playbook.steps {
            check(step)
            if case .parallel(let parallel) = step.kind { parallel.branches.forEach(check) }
        }
    }
}
