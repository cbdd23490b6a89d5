public import ActPlaybook

/// Expressions (`expr:`, `when:`) read the run through this conformance:
///
/// | path | value |
/// |---|---|
/// | `payload.…` | the trigger payload |
/// | `result.…` | the output of the most recently completed top-level task, wait or parallel step (a switch is not a result: the switch right after `classify` reads `classify`'s output) |
/// | `steps.<id>.output.…` | the output of the step's latest visit |
/// | `steps.<id>.status` | `running`, `queued`, `awaiting_approval`, `waiting`, `completed`, `failed`, `timeout`, `skipped`, `cancelled` |
/// | `steps.<id>.attempt` / `.visit` | the latest attempt of its (first) task / how often it was entered |
/// | `run.id` | the run id |
///
/// Anything else is absent, which the expression language reads as `null`. A step never entered has no
/// status, and every `step(id).…` condition on it is false.
extension RunState: ExpressionContext {
    public func value(at path: [String]) -> JSONValue? {
        guard let head = path.first else { return nil }
        let rest = path.dropFirst()
        switch head {
        case "payload":
            return payload.value(at: rest)
        case "result":
            return result?.value(at: rest)
        case "run":
            return rest.elementsEqual(["id"]) ? .string(runID.rawValue) : nil
        case "steps":
            guard let id = rest.first, let record = record(StepID(id)), let field = rest.dropFirst().first else {
                return nil
            }
            let tail = rest.dropFirst(2)
            switch field {
            case "output": return record.output?.value(at: tail)
            case "status": return tail.isEmpty ? .string(record.status.rawValue) : nil
            case "attempt": return tail.isEmpty ? .int(record.tasks.first?.attempt ?? 0) : nil
            case "visit": return tail.isEmpty ? .int(record.visit) : nil
            default: return nil
            }
        default:
            return nil
        }
    }

    /// `timeout` holds when the latest visit timed out or breached its SLA (even if it later completed).
    public func step(_ id: StepID, is condition: StepCondition) -> Bool {
        guard let record = record(id) else { return false }
        switch condition {
        case .completed: return record.status == .completed
        case .failed: return record.status == .failed
        case .timeout: return record.status == .timedOut || record.slaBreached
        case .skipped: return record.status == .skipped
        }
    }
}
