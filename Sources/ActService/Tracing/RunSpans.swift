internal import ActEngine
internal import ActStore
internal import ActPlaybook

/// The spans of one committed batch, made from what it did (its inputs, plan and messages).
///
/// Each run is one trace (its `trace_id`: the trigger's own when it came with a `traceparent`), shaped so:
///
/// ```text
/// process noise.complaint.filed   (consumer; the run's root, child of the trigger's traceparent)
/// ├─ dispatch inspection #1       (producer; its message's traceparent names this span: workers continue it)
/// │  └─ (the worker's spans)
/// │     └─ result inspection #1   (consumer; child of the result's traceparent, linked to the dispatch)
/// ├─ sla.warning inspection       (internal; a timer)
/// ├─ dispatch inspection #2 …
/// └─ run.completed                (internal; the run's end)
/// ```
///
/// A step that waits days (a desk, `wait:`, a signal) is no open span: its dispatch ends when the batch
/// commits, and the result that ends it links back to the dispatch. A child run's root is a child of the
/// parent's dispatch span. The batch itself is a span of a trace of its own (PostgreSQL's transaction),
/// linked to every run span it made.
public struct RunSpans: Sendable {
    public var exchanges: ServiceConfiguration.AMQP.Exchanges
    /// `db.namespace`: the PostgreSQL schema.
    public var schema: String

    public init(exchanges: ServiceConfiguration.AMQP.Exchanges, schema: String) {
        self.exchanges = exchanges
        self.schema = schema
    }

    /// The spans of a batch that applied `inputs` (in plan order) as `plan`, from `start` to `end` (Unix
    /// nanoseconds); `source` is `messages` or `timers`; `batchIDs` makes the batch span's own trace.
    public func spans(inputs: [BatchInput], plan: BatchPlanner.Plan, start: UInt64, end: UInt64, source: String,
        batchIDs: (traceID: String, spanID: String)) -> [SpanData]
    {
        let runs = Dictionary(plan.batch.runs.map { ($0.runID, $0) }, uniquingKeysWith: { _, last in last })
        var spans: [SpanData] = []
        func span(_ run: RunRow, id: String, parent: String?, name: String, kind: SpanData.Kind,
            _ attributes: [SpanData.Attribute], links: [SpanData.Link] = [], status: SpanData.Status = .unset)
        {
            spans.append(SpanData(traceID: run.traceID, spanID: id, parentSpanID: parent, name: name, kind: kind,
                startNanoseconds: start, endNanoseconds: end,
                attributes: [.init("hms.run_id", .string(run.runID)), .init("hms.playbook", .string(run.playbookID))]
                    + attributes,
                links: links, status: status))
        }

        // Roots: runs started by a trigger, an HTTP start or a parent run.
        let startedByEvent = Dictionary(grouping: plan.started.compactMap { runs[$0.rawValue] }) { $0.triggerEventID ?? "" }
        var rooted = Set<String>()
        for (input, outcome) in zip(inputs, plan.outcomes) where outcome == .applied {
            let event: TriggerEvent
            let isMessage: Bool
            switch input {
            case .trigger(let trigger): (event, isMessage) = (trigger, true)
            case .start(_, let trigger): (event, isMessage) = (trigger, false)
            default: continue
            }
            for run in startedByEvent[event.id] ?? [] where !rooted.contains(run.runID) {
                let id = run.runID
                rooted.insert(id)
                let remote = SpanData.parse(traceparent: event.traceparent)
                let parent = remote.flatMap { $0.traceID == run.traceID ? $0.spanID : nil }
                var attributes: [SpanData.Attribute] = [
                    .init("cloudevents.event_id", .string(event.id)), .init("cloudevents.event_type", .string(event.type)),
                ]
                if isMessage {
                    attributes += [
                        .init("messaging.system", "rabbitmq"), .init("messaging.operation.type", "process"),
                        .init("messaging.operation.name", "process"),
                        .init("messaging.destination.name", .string(exchanges.events)),
                        .init("messaging.rabbitmq.destination.routing_key", .string(event.type)),
                        .init("messaging.message.id", .string(event.id)),
                    ]
                }
                span(run, id: SpanData.rootSpanID(run: id), parent: parent,
                    name: isMessage ? "process \(event.type)" : "start \(run.playbookID)",
                    kind: isMessage ? .consumer : .internal, attributes)
            }
        }
        for id in plan.started.map(\.rawValue) where !rooted.contains(id) {
            guard let run = runs[id] else { continue }
            var attributes: [SpanData.Attribute] = []
            var parent: String?
            if let link = plan.states[id]?.parent {
                parent = SpanData.dispatchSpanID(task: link.task.rawValue, attempt: link.attempt)
                attributes = [.init("hms.parent.run_id", .string(link.run.rawValue)),
                    .init("hms.parent.task_id", .string(link.task.rawValue))]
            }
            span(run, id: SpanData.rootSpanID(run: id), parent: parent, name: "start \(run.playbookID)",
                kind: .internal, attributes)
        }

        // Results, signals and approvals applied.
        let finishedSteps = Dictionary(plan.emitted.compactMap { event -> (String, GovernanceEvent)? in
            guard event.kind == .stepCompleted || event.kind == .stepFailed, let task = event.task,
                let attempt = event.attempt
            else { return nil }
            return ("\(task.rawValue)#\(attempt)", event)
        }, uniquingKeysWith: { first, _ in first })
        for (input, outcome) in zip(inputs, plan.outcomes) where outcome == .applied {
            guard case .worker(let message, let messageID) = input else { continue }
            switch message {
            case .taskResult(let result):
                guard let run = runs[TaskID(rawValue: result.taskID).runID.rawValue] else { continue }
                let key = "\(result.taskID)#\(result.attempt)"
                let dispatch = SpanData.dispatchSpanID(task: result.taskID, attempt: result.attempt)
                let remote = SpanData.parse(traceparent: result.traceparent)
                let parent = remote.flatMap { $0.traceID == run.traceID ? $0.spanID : nil } ?? dispatch
                let step = finishedSteps[key]?.step?.rawValue
                    ?? result.taskID.split(separator: "/").dropFirst().first.map(String.init) ?? "?"
                var attributes: [SpanData.Attribute] = [
                    .init("hms.step_id", .string(step)), .init("hms.task_id", .string(result.taskID)),
                    .init("hms.attempt", .int(Int64(result.attempt))),
                    .init("messaging.system", "rabbitmq"), .init("messaging.operation.type", "process"),
                    .init("messaging.operation.name", "process"),
                    .init("messaging.destination.name", .string(exchanges.results)),
                ]
                if let messageID { attributes.append(.init("messaging.message.id", .string(messageID))) }
                if let agent = result.agent { attributes.append(.init("hms.agent", .string(agent))) }
                let status: SpanData.Status
                switch result.outcome {
                case .completed:
                    attributes.append(.init("hms.outcome", "completed"))
                    status = .unset
                case .failed(let reason, let retryable):
                    attributes += [.init("hms.outcome", "failed"), .init("hms.retryable", .bool(retryable))]
                    status = .error(reason)
                }
                span(run, id: SpanData.spanID("result|\(key)|\(result.outcome.isCompleted)"), parent: parent,
                    name: "result \(step) #\(result.attempt)", kind: .consumer, attributes,
                    links: [SpanData.Link(traceID: run.traceID, spanID: dispatch,
                        attributes: [.init("hms.link", "dispatch")])],
                    status: status)
            case .signal(let runID, let name, _):
                guard let run = runs[runID] else { continue }
                span(run, id: SpanData.spanID("signal|\(runID)|\(messageID ?? name)|\(start)"),
                    parent: SpanData.rootSpanID(run: runID), name: "signal \(name)", kind: .consumer,
                    [.init("hms.signal", .string(name))])
            case .approval(let approval):
                guard let run = runs[approval.runID] else { continue }
                span(run, id: SpanData.spanID("approval|\(approval.runID)|\(approval.stepID)"),
                    parent: SpanData.rootSpanID(run: approval.runID), name: "approval \(approval.stepID)",
                    kind: .consumer, [.init("hms.step_id", .string(approval.stepID)),
                        .init("hms.approved", .bool(approval.approved)), .init("enduser.id", .string(approval.actor))])
            }
        }

        // Dispatches, SLA lights and ends, from the governance events of the batch.
        let published = Dictionary(plan.batch.outbox.filter { $0.type == "hms.task" }.map { ($0.messageID, $0) },
            uniquingKeysWith: { first, _ in first })
        let pulled = Dictionary(plan.batch.pullTasks.map { ("\($0.taskID)#\($0.attempt)", $0.assignee) },
            uniquingKeysWith: { first, _ in first })
        for event in plan.emitted {
            guard let run = runs[event.run.rawValue] else { continue }
            let root = SpanData.rootSpanID(run: event.run.rawValue)
            var attributes: [SpanData.Attribute] = []
            if let step = event.step { attributes.append(.init("hms.step_id", .string(step.rawValue))) }
            if let task = event.task { attributes.append(.init("hms.task_id", .string(task.rawValue))) }
            if let attempt = event.attempt { attributes.append(.init("hms.attempt", .int(Int64(attempt)))) }
            if let agent = event.agent { attributes.append(.init("hms.agent", .string(agent.rawValue))) }
            if let assignee = event.assignee { attributes.append(.init("hms.assignee", .string(assignee))) }
            if event.isCompensation { attributes.append(.init("hms.compensation", true)) }
            let step = event.step?.rawValue ?? "?"
            switch event.kind {
            case .stepStarted:
                guard let task = event.task, let attempt = event.attempt else { continue }
                let key = "\(task.rawValue)#\(attempt)"
                var kind = SpanData.Kind.internal
                if let message = published[key] {
                    kind = .producer
                    attributes += [
                        .init("messaging.system", "rabbitmq"), .init("messaging.operation.type", "send"),
                        .init("messaging.operation.name", "publish"),
                        .init("messaging.destination.name", .string(message.exchange.isEmpty ? message.routingKey : message.exchange)),
                        .init("messaging.rabbitmq.destination.routing_key", .string(message.routingKey)),
                        .init("messaging.message.id", .string(key)),
                    ]
                } else if let assignee = pulled[key] {
                    if assignee == PullTask.httpCaller { kind = .client }
                    attributes.append(.init("hms.delivery", .string(assignee == PullTask.httpCaller ? "call" : "pull")))
                } else {
                    attributes.append(.init("hms.delivery", "playbook"))
                }
                span(run, id: SpanData.dispatchSpanID(task: task.rawValue, attempt: attempt), parent: root,
                    name: "dispatch \(step) #\(attempt)", kind: kind, attributes)
            case .slaWarning, .slaViolation:
                // The step's tasks, linked by their attempts' dispatch spans (SLA events name the step only).
                let tasks = event.step.flatMap { plan.states[event.run.rawValue]?.record($0)?.tasks } ?? []
                let links = tasks.map { task in
                    SpanData.Link(traceID: run.traceID, spanID: SpanData.dispatchSpanID(task: task.id.rawValue,
                        attempt: task.attempt), attributes: [.init("hms.link", "dispatch")])
                }
                span(run, id: SpanData.spanID("\(event.kind.rawValue)|\(event.task?.rawValue ?? step)|\(event.attempt ?? 0)"),
                    parent: root, name: "\(event.kind.rawValue) \(step)", kind: .internal, attributes, links: links,
                    status: event.kind == .slaViolation ? .error(event.detail ?? "SLA breached") : .unset)
            case .runCompleted, .runFailed, .runCancelled:
                span(run, id: SpanData.spanID("\(event.kind.rawValue)|\(event.run.rawValue)"), parent: root,
                    name: event.kind.rawValue, kind: .internal, attributes + [.init("hms.run.status", .string(run.status))],
                    status: event.kind == .runFailed ? .error(event.detail ?? "run failed") : .unset)
            case .stepCompleted, .stepFailed, .incidentOpened:
                continue
            }
        }

        guard !spans.isEmpty else { return [] }
        let batch = SpanData(traceID: batchIDs.traceID, spanID: batchIDs.spanID, parentSpanID: nil,
            name: "apply batch", kind: .internal, startNanoseconds: start, endNanoseconds: end,
            attributes: [
                .init("db.system.name", "postgresql"), .init("db.namespace", .string(schema)),
                .init("db.operation.name", "COMMIT"), .init("hms.batch.source", .string(source)),
                .init("hms.batch.inputs", .int(Int64(inputs.count))), .init("hms.batch.runs", .int(Int64(runs.count))),
            ],
            links: spans.prefix(128).map { SpanData.Link(traceID: $0.traceID, spanID: $0.spanID) })
        return [batch] + spans
    }
}

extension WorkerMessage.TaskResult.Outcome {
    fileprivate var isCompleted: Bool {
        if case .completed = self { return true }
        return false
    }
}
