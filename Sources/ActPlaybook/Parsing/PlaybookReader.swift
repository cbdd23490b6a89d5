internal import Yams
import Foundation

/// Reads a composed YAML tree into a ``Playbook``, accepting every spelling of the chapters and
/// reporting each problem at its node.
struct PlaybookReader {
    var source: YAMLSource
    var map = SourceMap()
    /// Top-level steps written with `parallel: true` (chapter 003's FAQ): each run of consecutive ones
    /// becomes one parallel block (``groupParallelFlags(_:)``).
    var parallelFlagged: Set<StepID> = []

    init(source: YAMLSource) { self.source = source }

    static let topLevelKeys = [
        "id", "description", "trigger", "start", "key", "on_failure", "schedules", "concurrency", "priority", "steps",
    ]
    static let concurrencyKeys = ["key", "limit", "on_limit"]
    static let scheduleKeys = ["id", "cron", "every", "timezone", "catch_up", "catch_up_window", "overlap", "jitter", "payload"]
    static let commonStepKeys = [
        "id", "type", "description", "when", "next", "on_complete", "on_failure", "on_timeout", "sla", "retry",
        "compensate",
    ]
    static let taskKeys = [
        "agent", "actor", "service", "call", "playbook", "skills", "mode", "pause", "input", "form", "for_each",
        "max_concurrency", "tolerated_failures", "concurrency", "allowed",
    ]
    static let choiceKeys = ["expr", "cases", "default"]
    static let parallelKeys = ["parallel", "join"]
    static let waitKeys = ["wait", "wait_days", "wait_hours", "wait_minutes", "until_signal"]
    static let allStepKeys = commonStepKeys + taskKeys + choiceKeys + parallelKeys + waitKeys
    static let retryKeys = ["max", "backoff", "initial", "max_interval"]
    static let slaKeys = ["duration", "warn_at"]
    static let compensateKeys = ["service", "call", "actor", "agent"]
    static let formFieldKeys = ["name", "type", "label", "required", "options"]

    static let durationForms = "500ms, 30s, 5m, 4h, 48h, 5d, or combined like 1h30m"

    // MARK: Top level

    mutating func read(_ root: Node) -> Playbook {
        var playbook = Playbook(id: "", steps: [], location: source.location(root))
        guard let pairs = root.mappingPairs else {
            source.error(
                "wrong-type", "expected a playbook (a mapping with id and steps), got \(root.kindDescription)",
                fix: "start the file with `id: MyPlaybook.v1` and `steps:`", at: root)
            return playbook
        }
        let fields = collect(pairs, allowed: Self.topLevelKeys, context: "at the top level of a playbook")
        if let id = fields["id"] {
            playbook.id = PlaybookID(readString(id, what: "a playbook id like NoiseComplaint.v1") ?? "")
        }
        if let description = fields["description"] {
            playbook.description = readString(description, what: "a description")
        }
        if let trigger = fields["trigger"], let start = fields["start"] {
            source.error(
                "conflicting-keys", "both 'trigger:' and 'start:' are given; they mean the same",
                fix: "keep one of them", at: start.key)
            _ = trigger
        }
        if let trigger = fields["trigger"] ?? fields["start"] {
            playbook.triggers = readStringList(trigger, what: "an event type like noise.complaint.filed")
        }
        if let key = fields["key"] { playbook.key = readExpression(key.value) }
        if let onFailure = fields["on_failure"] { playbook.onFailure = readFailurePolicy(onFailure) }
        if let schedules = fields["schedules"] { playbook.schedules = readSchedules(schedules) }
        if let concurrency = fields["concurrency"] { playbook.concurrency = readConcurrency(concurrency, of: "runs") }
        if let priority = fields["priority"] {
            if let number = priority.value.int {
                if (0...9).contains(number) {
                    playbook.priority = .literal(.int(number))
                } else {
                    source.error("bad-value", "priority \(number) is out of range",
                        fix: "give 0 (lowest) to 9 (highest), or an expression like `payload.urgency`", at: priority.value)
                }
            } else {
                playbook.priority = readExpression(priority.value)
            }
        }
        if let steps = fields["steps"] {
            map.steps = source.location(steps.key)
            if case .sequence(let items) = steps.value {
                for (offset, item) in items.enumerated() {
                    if let step = readStep(item, number: offset + 1, block: nil) { playbook.steps.append(step) }
                }
                playbook.steps = groupParallelFlags(playbook.steps)
            } else if !steps.value.isNull {
                source.error(
                    "wrong-type", "expected a list of steps, got \(steps.value.kindDescription)",
                    fix: "write each step as a list item: `- id: intake`", at: steps.value)
            }
        }
        return playbook
    }

    // MARK: Steps

    enum KindName: String {
        case task, choice, parallel, wait
        var keys: [String] {
            switch self {
            case .task: PlaybookReader.taskKeys
            case .choice: PlaybookReader.choiceKeys
            case .parallel: PlaybookReader.parallelKeys
            case .wait: PlaybookReader.waitKeys
            }
        }
        var written: String {
            switch self {
            case .task: "task"
            case .choice: "switch"
            case .parallel: "parallel"
            case .wait: "wait"
            }
        }
    }

    mutating func readStep(_ node: Node, number: Int, block: StepID?) -> Step? {
        guard let pairs = node.mappingPairs else {
            source.error(
                "wrong-type", "expected a step (a mapping with id and what to do), got \(node.kindDescription)",
                fix: "write a step as `- id: name` followed by its keys, each on its own line", at: node)
            return nil
        }
        var fields = collect(pairs, allowed: Self.allStepKeys, context: "in a step")
        // `parallel: true|false` flags a task to run beside its flagged neighbours; a list is a parallel block.
        var flaggedParallel: (key: Node, value: Node)?
        if let parallel = fields["parallel"], case .scalar = parallel.value, !parallel.value.isNull {
            flaggedParallel = parallel
            fields["parallel"] = nil
        }
        var id: StepID = ""
        if let idField = fields["id"] {
            let text = readString(idField, what: "a step id") ?? ""
            if !text.isEmpty, !Self.isValidStepID(text) {
                source.error(
                    "bad-step-id", "'\(text)' is not a usable step id",
                    fix: "use letters, digits, '_', '-' and '.' only, e.g. `human_review`", at: idField.value)
            }
            id = StepID(text)
        } else if let block {
            id = StepID("\(block.rawValue).\(number)")
        }
        let location = source.location(fields["id"]?.value ?? node)
        map.record(id, "id", location)

        // What kind of step this is: `type:` when written, else the keys it has.
        var kind: KindName?
        if let type = fields["type"] {
            switch readString(type, what: "a step type")?.lowercased() {
            case "task"?: kind = .task
            case "switch"?, "choice"?: kind = .choice
            case "parallel"?: kind = .parallel
            case "wait"?: kind = .wait
            case let other?:
                source.error(
                    "unknown-step-type", "unknown step type '\(other)'",
                    fix: "use task, switch, parallel or wait", at: type.value)
            case nil: break
            }
        }
        let indicated = [KindName.task, .choice, .parallel, .wait].filter { candidate in
            candidate.keys.contains { fields[$0] != nil }
        }
        if kind == nil {
            if indicated.count > 1 {
                let keys = indicated.flatMap { candidate in candidate.keys.filter { fields[$0] != nil } }
                source.error(
                    "conflicting-step-kind",
                    "step '\(id)' mixes keys of different kinds of step: \(keys.joined(separator: ", "))",
                    fix: "a step is one of: a task (agent/actor/service/call), a switch (expr/cases), a parallel block or a wait; split it into several steps",
                    at: node)
            }
            kind = indicated.first ?? .task
        }
        let stepKind = kind ?? .task
        for other in [KindName.task, .choice, .parallel, .wait] where other != stepKind {
            for key in other.keys {
                guard let field = fields[key], indicated.count <= 1 || fields["type"] != nil else { continue }
                source.error(
                    "key-not-allowed", "'\(key)' does not belong on a \(stepKind.written) step",
                    fix: "remove '\(key)', or make '\(id)' a \(other.written) step", at: field.key)
            }
        }
        if block != nil {
            if stepKind != .task {
                source.error(
                    "branch-not-a-task", "a parallel branch must be a task, but '\(id)' is a \(stepKind.written) step",
                    fix: "move the \(stepKind.written) out of the parallel block", at: node)
            }
            for key in ["next", "on_complete"] {
                if let field = fields[key] {
                    source.error(
                        "key-not-allowed", "'\(key)' does not belong on a parallel branch: the block joins its branches",
                        fix: "put '\(key)' on the parallel step itself", at: field.key)
                }
            }
        }

        if let flag = flaggedParallel, readBool(flag.value, what: "parallel (true, or a list of branch steps)") == true {
            if block != nil {
                source.error("key-not-allowed", "'parallel: true' does not belong on a parallel branch: it already runs in parallel",
                    fix: "remove 'parallel: true'", at: flag.key)
            } else if stepKind != .task {
                source.error("key-not-allowed", "'parallel: true' is for task steps, but '\(id)' is a \(stepKind.written) step",
                    fix: "remove 'parallel: true', or list the steps under a parallel block (`parallel:` with a list)",
                    at: flag.key)
            } else if let field = fields["next"] ?? fields["on_complete"] {
                source.error("key-not-allowed", "'\(field.key.scalarText ?? "next")' does not belong on a step with "
                    + "'parallel: true': the steps beside it are joined before the next one",
                    fix: "remove it; the step after the parallel ones follows them", at: field.key)
            } else {
                parallelFlagged.insert(id)
            }
        }

        var step = Step(id: id, kind: .task(TaskSpec(assignee: Assignee(kind: .topic, name: id.rawValue))),
            location: location)
        if let description = fields["description"] { step.description = readString(description, what: "a description") }
        if let when = fields["when"] {
            map.record(id, "when", source.location(when.value))
            step.when = readExpression(when.value)
        }
        if let next = fields["next"], let onComplete = fields["on_complete"] {
            source.error(
                "conflicting-keys", "both 'next:' and 'on_complete:' are given; they mean the same",
                fix: "keep one of them", at: onComplete.key)
            _ = next
        }
        if let next = fields["next"] ?? fields["on_complete"] {
            map.record(id, "next", source.location(next.value))
            step.next = readStepReference(next)
        }
        if let onFailure = fields["on_failure"] {
            map.record(id, "on_failure", source.location(onFailure.value))
            step.onFailure = readStepReference(onFailure)
        }
        if let onTimeout = fields["on_timeout"] {
            map.record(id, "on_timeout", source.location(onTimeout.value))
            step.onTimeout = readStepReference(onTimeout)
        }
        if let sla = fields["sla"] { step.sla = readSLA(sla.value) }
        if let retry = fields["retry"] { step.retry = readRetry(retry.value) ?? .none }
        if let compensate = fields["compensate"] { step.compensate = readCompensate(compensate.value) }

        switch stepKind {
        case .task:
            step.kind = .task(readTask(fields, id: id))
        case .choice:
            step.kind = .choice(readChoice(fields, id: id, node: node))
        case .parallel:
            step.kind = .parallel(readParallel(fields, id: id, node: node))
        case .wait:
            step.kind = .wait(readWait(fields, id: id))
        }
        return step
    }

    /// Each run of two or more consecutive top-level steps written with `parallel: true` becomes one parallel
    /// block `parallel.<first id>` whose branches are those steps, in order, joined before the next step; a
    /// flagged step alone stays a plain step.
    func groupParallelFlags(_ steps: [Step]) -> [Step] {
        guard !parallelFlagged.isEmpty else { return steps }
        var grouped: [Step] = []
        var run: [Step] = []
        func flush() {
            if run.count >= 2 {
                grouped.append(Step(id: StepID("parallel." + run[0].id.rawValue),
                    kind: .parallel(Parallel(branches: run)), location: run[0].location))
            } else {
                grouped += run
            }
            run = []
        }
        for step in steps {
            if parallelFlagged.contains(step.id) {
                run.append(step)
            } else {
                flush()
                grouped.append(step)
            }
        }
        flush()
        return grouped
    }

    static func isValidStepID(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.properties.isAlphabetic || ("0"..."9").contains(first) || first == "_"
        else { return false }
        return text.unicodeScalars.allSatisfy {
            $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" || $0 == "."
        }
    }

    mutating func readTask(_ fields: [String: (key: Node, value: Node)], id: StepID) -> TaskSpec {
        var spec = TaskSpec(assignee: Assignee(kind: .topic, name: id.rawValue))
        let given = ["agent", "actor", "service", "call", "playbook"].filter { fields[$0] != nil }
        if given.count > 1, let second = fields[given[1]] {
            source.error(
                "conflicting-keys",
                "step '\(id)' names its assignee twice (\(given.map { "'\($0):'" }.joined(separator: " and ")))",
                fix: "keep one of agent:, actor:, service:, call: or playbook:", at: second.key)
        }
        if let field = fields["playbook"] {
            map.record(id, "playbook", source.location(field.value))
            for key in ["skills", "mode", "pause", "form"] {
                guard let other = fields[key] else { continue }
                source.error("key-not-allowed", "'\(key)' does not belong on a sub-playbook step ('\(id)' runs playbook "
                    + "\(field.value.scalarText ?? "?")): the child run does the work",
                    fix: "remove '\(key)', and put it on the steps of the child playbook", at: other.key)
            }
        }
        if let key = given.first, let field = fields[key], let assignee = readAssignee(key: key, field.value) {
            spec.assignee = assignee
        }
        if let skills = fields["skills"] { spec.skills = readStringList(skills, what: "a skill like noise-meter") }
        if let mode = fields["mode"] {
            switch readString(mode, what: "a dispatch mode")?.lowercased() {
            case "fan-out"?, "fanout"?, "fan_out"?: spec.mode = .fanOut
            case "single"?: spec.mode = .single
            case let other?:
                source.error("bad-value", "unknown mode '\(other)'", fix: "use `mode: fan-out` or `mode: single`",
                    at: mode.value)
            case nil: break
            }
        }
        if let pause = fields["pause"] { spec.requiresApproval = readBool(pause.value, what: "pause") ?? false }
        if let input = fields["input"] {
            spec.input = input.value.jsonValue
            map.record(id, "input", source.location(input.value))
        }
        if let form = fields["form"] { spec.form = readForm(form, step: id) }
        spec.forEach = readForEach(fields, step: id)
        if let concurrency = fields["concurrency"] { spec.concurrency = readConcurrency(concurrency, of: "steps") }
        if let allowed = fields["allowed"] {
            spec.allowed = readStringList(allowed, what: "an actor pattern like officer#*")
            map.record(id, "allowed", source.location(allowed.value))
        }
        return spec
    }

    /// `for_each:` with `max_concurrency:` and `tolerated_failures:`; those two alone are refused.
    mutating func readForEach(_ fields: [String: (key: Node, value: Node)], step: StepID) -> ForEach? {
        guard let field = fields["for_each"] else {
            for key in ["max_concurrency", "tolerated_failures"] {
                guard let other = fields[key] else { continue }
                source.error("key-not-allowed", "'\(key)' is for a step with 'for_each:', and '\(step)' has none",
                    fix: "add `for_each: ${payload.items}` (the list to run the task over), or remove '\(key)'",
                    at: other.key)
            }
            return nil
        }
        map.record(step, "for_each", source.location(field.value))
        for key in ["mode", "pause", "form"] {
            guard let other = fields[key] else { continue }
            source.error("key-not-allowed", "'\(key)' does not belong on a step with 'for_each:' ('\(step)' runs one task per item)",
                fix: "remove '\(key)'; to fan out or ask for approval per item, run a sub-playbook per item "
                    + "(`playbook:` with `for_each:`)", at: other.key)
        }
        guard let text = readString(field, what: "a list expression like ${payload.attachments}") else { return nil }
        // Written with or without `${…}`.
        let written = text.trimmingSpaces()
        let inner = JSONValue.string(written).templateExpression.map(String.init) ?? written
        var forEach = ForEach(items: .literal(.null), itemsSource: inner)
        do {
            forEach.items = try ExpressionParser.parse(inner)
        } catch {
            source.error("bad-expression", "invalid expression in 'for_each' of step '\(step)': \(error.message) "
                + "(column \(error.column) of `\(inner)`)",
                fix: "name the list: `for_each: ${payload.attachments}` or `for_each: ${steps.collect.output.files}`",
                at: field.value)
            return nil
        }
        if let limit = fields["max_concurrency"] {
            forEach.maxConcurrency = readInt(limit.value, key: "max_concurrency", range: 1...1_000) ?? forEach.maxConcurrency
        }
        if let tolerated = fields["tolerated_failures"] {
            forEach.tolerated = readTolerance(tolerated.value) ?? forEach.tolerated
        }
        return forEach
    }

    /// `tolerated_failures: 3` or `10%`.
    mutating func readTolerance(_ node: Node) -> ForEach.FailureTolerance? {
        if case .scalar(let scalar) = node, !node.isQuoted || scalar.string.hasSuffix("%") {
            let text = scalar.string.trimmingSpaces()
            if text.hasSuffix("%"), let percent = Double(String(text.dropLast()).trimmingSpaces()), (0...100).contains(percent) {
                return .percent(percent)
            }
            if let count = Int(text), count >= 0 { return .count(count) }
        }
        source.error("bad-value", "expected a count like 3 or a percentage like 10% for 'tolerated_failures', got "
            + node.kindDescription, fix: "write `tolerated_failures: 0` (the default: any failed item fails the step), "
            + "`tolerated_failures: 5` or `tolerated_failures: 10%`", at: node)
        return nil
    }

    /// `form:`: a list of fields, each `{name, type?, label?, required?, options?}`.
    mutating func readForm(_ field: (key: Node, value: Node), step: StepID) -> [FormField] {
        guard case .sequence(let items) = field.value else {
            source.error("wrong-type", "expected the form of step '\(step)' as a list of fields, got \(field.value.kindDescription)",
                fix: "write e.g. `form: [{name: verdict, type: choice, options: [confirmed, dismissed]}]`", at: field.value)
            return []
        }
        var form: [FormField] = []
        var names: Set<String> = []
        for item in items {
            guard let pairs = item.mappingPairs else {
                source.error("wrong-type", "expected a form field (a mapping with name and type), got \(item.kindDescription)",
                    fix: "write e.g. `- {name: noise_level_db, type: number, required: true}`", at: item)
                continue
            }
            let fields = collect(pairs, allowed: Self.formFieldKeys, context: "in a form field of step '\(step)'")
            guard let nameField = fields["name"], let name = readString(nameField, what: "a field name like verdict")
            else {
                if fields["name"] == nil {
                    source.error("missing-key", "a form field of step '\(step)' has no 'name:'",
                        fix: "add `name:`, the key of the task's output it fills", at: item)
                }
                continue
            }
            guard Self.isValidStepID(name) else {
                source.error("bad-value", "form field name '\(name)' is not a plain name",
                    fix: "use letters, digits, '_' and '-', like noise_level_db", at: nameField.value)
                continue
            }
            guard names.insert(name).inserted else {
                source.error("duplicate-field", "step '\(step)' has two form fields named '\(name)'",
                    fix: "give each field its own name", at: nameField.value)
                continue
            }
            var formField = FormField(name: name)
            if let type = fields["type"], let text = readString(type, what: "a field type") {
                if let kind = FormField.Kind(rawValue: text) {
                    formField.kind = kind
                } else {
                    source.error("bad-value", "unknown form field type '\(text)'",
                        fix: Suggestion.didYouMean(text, in: FormField.Kind.allCases.map(\.rawValue))
                            ?? "use one of " + FormField.Kind.allCases.map(\.rawValue).joined(separator: ", "),
                        at: type.value)
                }
            }
            if let label = fields["label"], let text = readString(label, what: "a label") { formField.label = text }
            if let required = fields["required"] { formField.required = readBool(required.value, what: "required") ?? false }
            if let options = fields["options"] {
                formField.options = readStringList(options, what: "an option")
                if formField.kind != .choice {
                    source.error("bad-value", "'options:' is for a choice, but field '\(name)' is a \(formField.kind.rawValue)",
                        fix: "add `type: choice`, or remove `options:`", at: options.key)
                }
            }
            if formField.kind == .choice, formField.options.isEmpty {
                source.error("missing-key", "choice field '\(name)' has no options",
                    fix: "add e.g. `options: [confirmed, dismissed]`", at: nameField.value)
            }
            form.append(formField)
        }
        return form
    }

    mutating func readChoice(_ fields: [String: (key: Node, value: Node)], id: StepID, node: Node) -> Choice {
        var choice = Choice(expression: .literal(.null), expressionSource: "", cases: [])
        if let expr = fields["expr"] {
            map.record(id, "expr", source.location(expr.value))
            choice.expressionSource = expr.value.scalarText ?? ""
            if let expression = readExpression(expr.value) { choice.expression = expression }
        } else {
            source.error(
                "missing-key", "switch '\(id)' has no 'expr:' to decide on",
                fix: "add e.g. `expr: \"result.severity\"`", at: node)
        }
        if let cases = fields["cases"] {
            if let pairs = cases.value.mappingPairs {
                for (key, value) in pairs {
                    guard let match = key.scalarText else { continue }
                    guard let target = readString((key, value), what: "a step id") else { continue }
                    choice.cases.append(Choice.Case(match: match, target: StepID(target), location: source.location(value)))
                }
            } else {
                source.error(
                    "wrong-type", "expected the cases as a mapping (value: step id), got \(cases.value.kindDescription)",
                    fix: "write each case on its own line, e.g. `High: human_review`", at: cases.value)
            }
        }
        if let defaultTarget = fields["default"] {
            map.record(id, "default", source.location(defaultTarget.value))
            choice.defaultTarget = readStepReference(defaultTarget)
        }
        if fields["cases"] == nil, fields["default"] == nil {
            source.error(
                "missing-key", "switch '\(id)' has no 'cases:'",
                fix: "add `cases:` mapping each value to a step id, e.g. `High: human_review`", at: node)
        }
        return choice
    }

    mutating func readParallel(_ fields: [String: (key: Node, value: Node)], id: StepID, node: Node) -> Parallel {
        var parallel = Parallel(branches: [])
        if let branches = fields["parallel"] {
            if case .sequence(let items) = branches.value, items.count > 0 {
                for (offset, item) in items.enumerated() {
                    if let branch = readStep(item, number: offset + 1, block: id) { parallel.branches.append(branch) }
                }
            } else {
                source.error(
                    "wrong-type", "expected a list of branch steps under 'parallel:', got \(branches.value.kindDescription)",
                    fix: "list each branch as `- call: POST /notify/email` (one per line)", at: branches.value)
            }
        } else {
            source.error("missing-key", "parallel step '\(id)' has no 'parallel:' list of branches",
                fix: "add `parallel:` with one list item per branch", at: node)
        }
        if let join = fields["join"] {
            switch readString(join, what: "a join policy") {
            case "all"?: parallel.join = .allMustSucceed
            case "all_finished"?: parallel.join = .allMustFinish
            case let other?:
                source.error("bad-value", "unknown join policy '\(other)'", fix: "use `join: all` or `join: all_finished`",
                    at: join.value)
            case nil: break
            }
        }
        return parallel
    }

    mutating func readWait(_ fields: [String: (key: Node, value: Node)], id: StepID) -> Wait {
        var wait = Wait(duration: nil, signal: id.rawValue)
        let given = ["wait", "wait_days", "wait_hours", "wait_minutes"].filter { fields[$0] != nil }
        if given.count > 1, let second = fields[given[1]] {
            source.error(
                "conflicting-keys", "the wait length is given twice (\(given.map { "'\($0):'" }.joined(separator: " and ")))",
                fix: "keep one of wait:, wait_days:, wait_hours: or wait_minutes:", at: second.key)
        }
        if let key = given.first, let field = fields[key] {
            switch key {
            case "wait":
                if !(field.value.scalarText.map { ["true", "signal"].contains($0) } ?? false) {
                    wait.duration = readDuration(field.value, what: "wait")
                }
            case "wait_days": wait.duration = readCount(field.value, key: key, unit: 86_400_000)
            case "wait_hours": wait.duration = readCount(field.value, key: key, unit: 3_600_000)
            default: wait.duration = readCount(field.value, key: key, unit: 60_000)
            }
        }
        if let signal = fields["until_signal"], let name = readString(signal, what: "a signal name") {
            wait.signal = name
        }
        return wait
    }

    // MARK: Values

    /// The fields of a mapping by key, reporting unknown keys (with a "did you mean") and keys that are
    /// not strings.
    mutating func collect(
        _ pairs: [(key: Node, value: Node)], allowed: [String], context: String
    ) -> [String: (key: Node, value: Node)] {
        var fields: [String: (key: Node, value: Node)] = [:]
        for (key, value) in pairs {
            guard let name = key.scalarText, !key.isNull else {
                source.error("non-string-key", "a mapping key must be a plain string", at: key)
                continue
            }
            guard allowed.contains(name) else {
                let suggestion = Suggestion.didYouMean(name, in: allowed)
                source.error(
                    "unknown-key", "unknown key '\(name)' \(context)",
                    fix: suggestion ?? "known keys: \(allowed.joined(separator: ", "))", at: key)
                continue
            }
            fields[name] = (key, value)
        }
        return fields
    }

    mutating func readString(_ field: (key: Node, value: Node), what: String) -> String? {
        let node = field.value
        guard case .scalar(let scalar) = node, !node.isNull else {
            source.error("wrong-type", "expected \(what) for '\(field.key.scalarText ?? "")', got \(node.kindDescription)",
                at: node.isNull ? field.key : node)
            return nil
        }
        return scalar.string
    }

    mutating func readStringList(_ field: (key: Node, value: Node), what: String) -> [String] {
        switch field.value {
        case .scalar:
            return readString(field, what: what).map { [$0] } ?? []
        case .sequence(let items):
            return items.compactMap { readString((field.key, $0), what: what) }
        case .mapping, .alias:
            source.error("wrong-type",
                "expected \(what) or a list of them for '\(field.key.scalarText ?? "")', got \(field.value.kindDescription)",
                at: field.value)
            return []
        }
    }

    mutating func readStepReference(_ field: (key: Node, value: Node)) -> StepID? {
        readString(field, what: "a step id").map(StepID.init(rawValue:))
    }

    /// The playbook's `on_failure: incident | fail`.
    mutating func readFailurePolicy(_ field: (key: Node, value: Node)) -> FailurePolicy? {
        guard let text = readString(field, what: "incident or fail") else { return nil }
        if let policy = FailurePolicy(rawValue: text) { return policy }
        source.error(
            "bad-value", "'\(text)' is not a failure policy; at the top level 'on_failure' says what an unhandled step failure does",
            fix: "write `on_failure: incident` (the run waits for an operator) or `on_failure: fail`; a step's own `on_failure:` names a step",
            at: field.value)
        return nil
    }

    mutating func readBool(_ node: Node, what: String) -> Bool? {
        if !node.isQuoted, node.tag.rawValue == "tag:yaml.org,2002:bool", let value = node.bool { return value }
        source.error("wrong-type", "expected true or false for '\(what)', got \(node.kindDescription)",
            fix: "write `\(what): true`", at: node)
        return nil
    }

    mutating func readInt(_ node: Node, key: String, range: ClosedRange<Int>) -> Int? {
        if !node.isQuoted, node.tag.rawValue == "tag:yaml.org,2002:int", let value = node.int, range.contains(value) {
            return value
        }
        source.error(
            "wrong-type", "expected a whole number from \(range.lowerBound) to \(range.upperBound) for '\(key)', got \(node.kindDescription)",
            at: node)
        return nil
    }

    /// `wait_days: 5` (whole or decimal) as a span of `unit` milliseconds each.
    mutating func readCount(_ node: Node, key: String, unit: Int64) -> TimeSpan? {
        let tag = node.tag.rawValue
        if !node.isQuoted, tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float", let value = node.float,
            value > 0, value <= Double(TimeSpan.longest.milliseconds) / Double(unit)
        {
            return TimeSpan(milliseconds: Int64((value * Double(unit)).rounded()))
        }
        source.error(
            "bad-duration", "expected a positive number for '\(key)', got \(node.kindDescription)",
            fix: "write e.g. `\(key): 5`, or `wait: 5d` with a unit", at: node)
        return nil
    }

    /// `4h`, `"5m"`, `48h`, `5d`, `1h30m`.
    mutating func readDuration(_ node: Node, what: String) -> TimeSpan? {
        guard case .scalar(let scalar) = node, !node.isNull else {
            source.error(
                "wrong-type", "expected a duration like 4h for '\(what)', got \(node.kindDescription)",
                fix: "write one of \(Self.durationForms)", at: node)
            return nil
        }
        guard let span = TimeSpan(parsing: scalar.string) else {
            let isNumber = !node.isQuoted && ["tag:yaml.org,2002:int", "tag:yaml.org,2002:float"].contains(node.tag.rawValue)
            source.error(
                "bad-duration",
                isNumber
                    ? "'\(scalar.string)' for '\(what)' has no unit"
                    : "'\(scalar.string)' is not a duration (for '\(what)')",
                fix: "write a number with a unit: \(Self.durationForms)", at: node)
            return nil
        }
        guard span.milliseconds > 0 else {
            source.error("bad-duration", "the duration for '\(what)' must be longer than 0",
                fix: "write one of \(Self.durationForms)", at: node)
            return nil
        }
        guard span <= TimeSpan.longest else {
            // A deadline this far away would validate here and then fail in the database (SQLSTATE 22008).
            source.error("bad-duration",
                "'\(scalar.string)' for '\(what)' is longer than \(TimeSpan.longest) (10 years), the longest span a timer holds",
                fix: "write a duration of at most \(TimeSpan.longest), e.g. `\(what): 365d`", at: node)
            return nil
        }
        return span
    }

    mutating func readSLA(_ node: Node) -> SLA? {
        if let pairs = node.mappingPairs {
            let fields = collect(pairs, allowed: Self.slaKeys, context: "in 'sla'")
            guard let durationField = fields["duration"] else {
                source.error("missing-key", "'sla' has no 'duration'", fix: "write `sla: {duration: 4h, warn_at: 3h}`",
                    at: node)
                return nil
            }
            guard let duration = readDuration(durationField.value, what: "sla.duration") else { return nil }
            var sla = SLA(duration: duration)
            if let warnAt = fields["warn_at"], let warning = readDuration(warnAt.value, what: "sla.warn_at") {
                if warning < duration {
                    sla.warning = warning
                } else {
                    source.error(
                        "bad-duration", "the SLA warning (\(warning)) must come before the deadline (\(duration))",
                        fix: "make warn_at shorter than duration", at: warnAt.value)
                }
            }
            return sla
        }
        return readDuration(node, what: "sla").map { SLA(duration: $0) }
    }

    mutating func readRetry(_ node: Node) -> RetryPolicy? {
        if let pairs = node.mappingPairs {
            let fields = collect(pairs, allowed: Self.retryKeys, context: "in 'retry'")
            guard let maxField = fields["max"] else {
                source.error("missing-key", "'retry' has no 'max' (how many retries after the first attempt)",
                    fix: "write `retry: {max: 3, backoff: exponential, initial: 1s, max_interval: 5m}`", at: node)
                return nil
            }
            guard let max = readInt(maxField.value, key: "retry.max", range: 0...100) else { return nil }
            var policy = RetryPolicy(maxRetries: max)
            if let backoff = fields["backoff"] {
                switch readString(backoff, what: "a backoff") {
                case "fixed"?: policy.backoff = .fixed
                case "exponential"?: policy.backoff = .exponential
                case let other?:
                    source.error("bad-value", "unknown backoff '\(other)'", fix: "use `backoff: fixed` or `backoff: exponential`",
                        at: backoff.value)
                case nil: break
                }
            }
            if let initial = fields["initial"], let span = readDuration(initial.value, what: "retry.initial") {
                policy.initial = span
            }
            if let maxInterval = fields["max_interval"],
                let span = readDuration(maxInterval.value, what: "retry.max_interval")
            {
                policy.maxInterval = span
            }
            return policy
        }
        if case .scalar = node {
            return readInt(node, key: "retry", range: 0...100).map { RetryPolicy(maxRetries: $0) }
        }
        source.error("wrong-type", "expected a retry count like 2 or a mapping {max, backoff, initial, max_interval}, got \(node.kindDescription)",
            at: node)
        return nil
    }

    mutating func readCompensate(_ node: Node) -> Assignee? {
        if let pairs = node.mappingPairs {
            let fields = collect(pairs, allowed: Self.compensateKeys, context: "in 'compensate'")
            let given = Self.compensateKeys.filter { fields[$0] != nil }
            guard given.count == 1, let key = given.first, let field = fields[key] else {
                source.error("bad-value", "'compensate' must name exactly one action",
                    fix: "write e.g. `compensate: achSvc.refund` or `compensate: {call: POST /finance/unfreeze}`", at: node)
                return nil
            }
            return readAssignee(key: key, field.value)
        }
        return readAssignee(key: "service", node)
    }

    /// `agent:`/`actor:` (`AI:x`, `ai.x`…), `service:` or `call:` into an ``Assignee``.
    mutating func readAssignee(key: String, _ node: Node) -> Assignee? {
        guard case .scalar(let scalar) = node, !node.isNull else {
            source.error("wrong-type", "expected a name for '\(key)', got \(node.kindDescription)", at: node)
            return nil
        }
        let text = scalar.string.trimmingSpaces()
        switch key {
        case "service":
            guard !text.isEmpty, !text.contains(where: \.isWhitespace) else {
                source.error("bad-service", "'\(text)' is not a service name",
                    fix: "write the service and its operation without spaces, e.g. `service: achSvc.charge`", at: node)
                return nil
            }
            return Assignee(kind: .service, name: text, written: text)
        case "playbook":
            guard !text.isEmpty, !text.contains(where: { $0.isWhitespace || $0 == "/" }) else {
                source.error("bad-playbook-reference", "'\(text)' is not a playbook id",
                    fix: "write the id of the playbook to run as a child, e.g. `playbook: SiteInspection.v1`", at: node)
                return nil
            }
            return Assignee(kind: .playbook, name: text, written: text)
        case "call":
            let parts = text.split(whereSeparator: \.isWhitespace)
            let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
            guard parts.count == 2, methods.contains(parts[0].uppercased()), parts[1].hasPrefix("/") else {
                source.error("bad-call", "'\(text)' is not an HTTP call",
                    fix: "write the method and a path starting with '/', e.g. `call: POST /finance/freeze`", at: node)
                return nil
            }
            return Assignee(kind: .call, name: String(parts[1]), method: parts[0].uppercased(), written: text)
        default:
            if let assignee = Self.actor(text) { return assignee }
            let shown = text.split(separator: ":").first.map(String.init) ?? text
            source.error(
                "unknown-actor-type",
                text.contains(":") || text.contains(".")
                    ? "unknown actor type in '\(text)'" : "'\(text)' has no actor type",
                fix: "use AI:, HUMAN: or SVC: (or ai./human./svc.), e.g. `\(key): HUMAN:\(Self.bareName(shown))`",
                at: node)
            return nil
        }
    }

    private static func bareName(_ text: String) -> String {
        guard let dot = text.firstIndex(of: ".") else { return text }
        return String(text[text.index(after: dot)...])
    }

    /// `AI:x`, `HUMAN:x`, `SVC:x` or the labels `ai.x`, `human.x`, `svc.x`.
    static func actor(_ text: String) -> Assignee? {
        func kind(_ prefix: Substring) -> Assignee.Kind? {
            switch prefix.lowercased() {
            case "ai": .ai
            case "human": .human
            case "svc": .service
            default: nil
            }
        }
        for separator in [Character(":"), "."] {
            guard let index = text.firstIndex(of: separator) else { continue }
            let name = text[text.index(after: index)...]
            guard let kind = kind(text[..<index]), !name.isEmpty, !name.contains(where: \.isWhitespace) else {
                continue
            }
            return Assignee(kind: kind, name: String(name), written: text)
        }
        return nil
    }

    /// Parses an expression, mapping an error's column inside the expression to the file column
    /// when the expression sits on one line of the file as written.
    mutating func readExpression(_ node: Node) -> Expression? {
        guard case .scalar(let scalar) = node, !node.isNull else {
            source.error("wrong-type", "expected an expression like `result.severity == \"High\"`, got \(node.kindDescription)",
                at: node)
            return nil
        }
        do {
            return try ExpressionParser.parse(scalar.string)
        } catch {
            var location = source.location(node)
            if let mark = node.mark {
                let offset = node.isQuoted ? 1 : 0
                let start = mark.column - 1 + offset
                let expression = Array(scalar.string.unicodeScalars)
                if mark.line - 1 < source.lines.count {
                    let line = source.lines[mark.line - 1]
                    if start + expression.count <= line.count, Array(line[start..<start + expression.count]) == expression {
                        let scalarColumn = scalar.string.prefix(max(0, error.column - 1)).unicodeScalars.count
                        location = source.location(line: mark.line, column: start + scalarColumn + 1)
                    }
                }
            }
            source.diagnostics.append(
                .error(
                    "bad-expression", "invalid expression: \(error.message) (column \(error.column) of the expression)",
                    fix: "expressions use paths (result.severity), literals (\"High\", 3, true), == != < <= > >=, and/or/not, in, and step(id).completed|failed|timeout|skipped",
                    at: location))
            return nil
        }
    }

    // MARK: Schedules

    /// `schedules:`: a list of `{id?, cron | every, timezone?, catch_up?, catch_up_window?, overlap?, jitter?,
    /// payload?}`.
    mutating func readSchedules(_ field: (key: Node, value: Node)) -> [Schedule] {
        guard case .sequence(let items) = field.value else {
            source.error("wrong-type", "expected a list of schedules, got \(field.value.kindDescription)",
                fix: "write `schedules: [{id: nightly, cron: \"0 2 * * *\", timezone: Europe/Berlin}]`", at: field.value)
            return []
        }
        var schedules: [Schedule] = []
        var seen: Set<String> = []
        for (offset, item) in items.enumerated() {
            guard let pairs = item.mappingPairs else {
                source.error("wrong-type", "expected a schedule (a mapping with cron or every), got \(item.kindDescription)",
                    fix: "write e.g. `- {id: nightly, cron: \"0 2 * * *\"}`", at: item)
                continue
            }
            let fields = collect(pairs, allowed: Self.scheduleKeys, context: "in a schedule")
            var id = "schedule-\(offset + 1)"
            if let idField = fields["id"], let text = readString(idField, what: "a schedule id like nightly") {
                guard Self.isValidStepID(text) else {
                    source.error("bad-value", "'\(text)' is not a usable schedule id",
                        fix: "use letters, digits, '_', '-' and '.', like nightly", at: idField.value)
                    continue
                }
                id = text
            }
            guard seen.insert(id).inserted else {
                source.error("duplicate-id", "the schedule id '\(id)' is used twice", fix: "give each schedule its own id",
                    at: fields["id"]?.value ?? item)
                continue
            }
            let spec: Schedule.Spec
            switch (fields["cron"], fields["every"]) {
            case (let cron?, nil):
                guard let text = readString(cron, what: "a cron expression like \"0 2 * * *\"") else { continue }
                do {
                    spec = .cron(try CronExpression(parsing: text))
                } catch {
                    source.error("bad-cron", "'\(text)' is not a cron expression: \(error.message)", fix: error.fix,
                        at: cron.value)
                    continue
                }
            case (nil, let every?):
                guard let span = readDuration(every.value, what: "every") else { continue }
                guard span >= .seconds(1) else {
                    source.error("bad-duration", "'every: \(span)' is shorter than a second",
                        fix: "schedules fire at most once a second: write `every: 1s` or longer", at: every.value)
                    continue
                }
                spec = .every(span)
            case (.some, .some(let every)):
                source.error("conflicting-keys", "schedule '\(id)' has both 'cron:' and 'every:'", fix: "keep one of them",
                    at: every.key)
                continue
            case (nil, nil):
                source.error("missing-key", "schedule '\(id)' says neither 'cron:' nor 'every:'",
                    fix: "add `cron: \"0 2 * * *\"` (five fields, or @daily, @hourly…) or `every: 15m`", at: item)
                continue
            }
            var schedule = Schedule(id: id, spec: spec, location: source.location(fields["id"]?.value ?? item))
            if let zone = fields["timezone"], let text = readString(zone, what: "an IANA time zone like Europe/Berlin") {
                if TimeZone(identifier: text) == nil {
                    source.error("bad-value", "'\(text)' is not a time zone this system knows",
                        fix: "use an IANA name like Europe/Berlin, America/New_York or UTC", at: zone.value)
                } else {
                    schedule.timeZone = text
                }
            }
            if let catchUp = fields["catch_up"], let text = readString(catchUp, what: "none, one or all") {
                if let value = Schedule.CatchUp(rawValue: text) {
                    schedule.catchUp = value
                } else {
                    source.error("bad-value", "unknown catch_up '\(text)'",
                        fix: "use none (skip missed fires), one (the latest) or all", at: catchUp.value)
                }
            }
            if let window = fields["catch_up_window"], let span = readDuration(window.value, what: "catch_up_window") {
                schedule.catchUpWindow = span
            }
            if let overlap = fields["overlap"], let text = readString(overlap, what: "skip, buffer_one, allow or cancel_previous") {
                if let value = Schedule.Overlap(rawValue: text) {
                    schedule.overlap = value
                } else {
                    source.error("bad-value", "unknown overlap '\(text)'",
                        fix: "use skip, buffer_one, allow or cancel_previous", at: overlap.value)
                }
            }
            if let jitter = fields["jitter"], let span = readDuration(jitter.value, what: "jitter") { schedule.jitter = span }
            if let payload = fields["payload"] {
                guard case .object = payload.value.jsonValue else {
                    source.error("wrong-type", "expected the payload of schedule '\(id)' as a mapping, got "
                        + payload.value.kindDescription, fix: "write e.g. `payload: {scope: open_permits}`", at: payload.value)
                    continue
                }
                schedule.payload = payload.value.jsonValue
            }
            schedules.append(schedule)
        }
        return schedules
    }

    // MARK: Concurrency

    /// `concurrency: {key, limit?, on_limit?}` at the top level (limiting `runs`) or on a task step (`steps`).
    mutating func readConcurrency(_ field: (key: Node, value: Node), of limited: String) -> Concurrency? {
        guard let pairs = field.value.mappingPairs else {
            source.error("wrong-type", "expected concurrency as a mapping, got \(field.value.kindDescription)",
                fix: "write `concurrency: {key: ${payload.address}, limit: 1, on_limit: queue}`", at: field.value)
            return nil
        }
        let fields = collect(pairs, allowed: Self.concurrencyKeys, context: "in 'concurrency'")
        guard let keyField = fields["key"], let text = readString(keyField, what: "an expression like ${payload.address}")
        else {
            if fields["key"] == nil {
                source.error("missing-key", "'concurrency' has no 'key:' (what \(limited) are limited per)",
                    fix: "add `key: ${payload.address}`: at most `limit` \(limited) at once per address", at: field.key)
            }
            return nil
        }
        // Written with or without `${…}`.
        let written = text.trimmingSpaces()
        let inner = JSONValue.string(written).templateExpression.map(String.init) ?? written
        var concurrency = Concurrency(key: .literal(.null), keySource: inner)
        do {
            concurrency.key = try ExpressionParser.parse(inner)
        } catch {
            source.error("bad-expression", "invalid expression in 'concurrency.key': \(error.message) (column "
                + "\(error.column) of `\(inner)`)", fix: "name a value of the payload: `key: ${payload.address}`",
                at: keyField.value)
            return nil
        }
        if let limit = fields["limit"] {
            concurrency.limit = readInt(limit.value, key: "concurrency.limit", range: 1...10_000) ?? concurrency.limit
        }
        if let onLimit = fields["on_limit"], let text = readString(onLimit, what: "queue, cancel_newest or cancel_in_progress") {
            if let value = Concurrency.OnLimit(rawValue: text) {
                concurrency.onLimit = value
            } else {
                source.error("bad-value", "unknown on_limit '\(text)'",
                    fix: "use queue (wait for a slot), cancel_newest or cancel_in_progress", at: onLimit.value)
            }
        }
        return concurrency
    }
}
