import ActPlaybook

/// `for_each:` steps: one task per item of a list.
///
/// The list is evaluated once, when the visit starts, and kept in ``StepRecord/items`` (so a retry or a
/// later item sees the same list). Items start in order, at most `max_concurrency` in flight at a time (an
/// item waiting for its retry keeps its place); each finished item starts the next. The step completes when
/// every item finished and no more failed than `tolerated_failures` allows, with the output
/// `{"results": [...], "failed": [{"index", "error"}]}` (results in item order, `null` for a failed item).
/// One failure past the tolerance fails the step at once, and the items in flight are abandoned.
extension RunStateMachine {
    /// Evaluates the list and starts the first items.
    /// - Returns: How the visit ended when it ends at once: an empty list completes it, something that is
    ///   not a list or is longer than ``EngineConfiguration/maxForEachItems`` fails it.
    mutating func startItems(_ step: Step, _ spec: TaskSpec, _ forEach: ForEach, _ r: Int) -> Outcome? {
        let value = forEach.items.evaluate(in: state)
        guard case .array(let items) = value else {
            let kind =
                switch value {
                case .null: "null"
                case .array, .object: "an " + value.typeName
                case .bool, .number, .string: "a " + value.typeName
                }
            return .failed("for_each: \(forEach.itemsSource) is not a list (it is \(kind))", reported: false)
        }
        guard items.count <= configuration.maxForEachItems else {
            return .failed("for_each: \(forEach.itemsSource) has \(items.count) items; at most "
                + "\(configuration.maxForEachItems) are taken (engine.max_for_each_items)", reported: false)
        }
        state.steps[r].items = items
        guard !items.isEmpty else { return .completed(Self.mapOutput(state.steps[r])) }
        startNextItems(step, spec, forEach, r)
        return nil
    }

    /// Starts items in order until `max_concurrency` are in flight or none is left.
    private mutating func startNextItems(_ step: Step, _ spec: TaskSpec, _ forEach: ForEach, _ r: Int) {
        guard let count = state.steps[r].items?.count else { return }
        var open = state.steps[r].tasks.count { $0.state == .inFlight || $0.state == .retryScheduled }
        while open < forEach.maxConcurrency, state.steps[r].tasks.count < count {
            let index = state.steps[r].tasks.count
            let route = routes(for: spec.assignee, skills: spec.skills, mode: .single).first
            let id = TaskID.item(run: state.runID, step: step.id, visit: state.steps[r].visit, index: index)
            var task = TaskRecord(id: id, attempt: 1, agent: route?.agent,
                target: route?.target ?? .routingKey(spec.assignee.routingKey), dispatchedAt: now)
            task.item = index
            state.steps[r].tasks.append(task)
            didCreateAttempt(id, 1)
            dispatch(step: step, assignee: spec.assignee, task: task, input: state.steps[r].input ?? spec.input)
            open += 1
        }
    }

    /// An item completed or failed for good: fail the step past the tolerance, else start the next items, and
    /// complete the step once every item finished.
    mutating func itemSettled(_ r: Int, _ step: Step, _ spec: TaskSpec) {
        guard let forEach = spec.forEach, let count = state.steps[r].items?.count else { return }
        let failed = state.steps[r].tasks.filter { $0.state == .failed }
        let allowed = forEach.tolerated.allowed(of: count)
        if failed.count > allowed, let first = failed.min(by: { ($0.item ?? 0) < ($1.item ?? 0) }) {
            finish(step.id, .failed("for_each: \(failed.count) of \(count) items failed, more than the \(allowed) "
                + "tolerated (tolerated_failures: \(forEach.tolerated)); item \(first.item ?? 0): \(first.error ?? "failed")",
                reported: false))
            return
        }
        startNextItems(step, spec, forEach, r)
        let tasks = state.steps[r].tasks
        guard tasks.count == count, tasks.allSatisfy({ $0.state == .completed || $0.state == .failed }) else { return }
        finish(step.id, .completed(Self.mapOutput(state.steps[r])))
    }

    /// `{"results": [...], "failed": [{"index", "error"}]}`, in item order.
    static func mapOutput(_ record: StepRecord) -> JSONValue {
        let tasks = record.tasks.sorted { ($0.item ?? 0) < ($1.item ?? 0) }
        let results = tasks.map { $0.state == .completed ? ($0.output ?? .null) : .null }
        let failed = tasks.filter { $0.state == .failed }.map { task -> JSONValue in
            ["index": .int(task.item ?? 0), "error": .string(task.error ?? "failed")]
        }
        return ["results": .array(results), "failed": .array(failed)]
    }
}

/// What `input:` of a `for_each:` item reads: `item` (the item) and `index` (from 0) besides the run.
struct ItemContext: ExpressionContext {
    let run: RunState
    let item: JSONValue
    let index: Int

    func value(at path: [String]) -> JSONValue? {
        switch path.first {
        case "item": item.value(at: path.dropFirst())
        case "index": path.count == 1 ? .int(index) : nil
        default: run.value(at: path)
        }
    }

    func step(_ id: StepID, is condition: StepCondition) -> Bool {
        run.step(id, is: condition)
    }
}
