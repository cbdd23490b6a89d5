import ActEngine
import ActPlaybook
import PropertyBased
import Testing

/// The service's former account of task statuses (`ActService/Apply/TaskStatusDiff.swift`, deleted when
/// the engine took the task lifecycle over): every (task, attempt) whose visible status differs between
/// the state before and after an event. Kept here as the oracle the engine's own
/// ``RunCommand/taskStatusChanged(_:)`` commands must match, event by event.
enum FormerTaskStatusDiff {
    struct Key: Hashable {
        var task: TaskID
        var attempt: Int
    }

    static func statuses(of state: RunState) -> [Key: (TaskStatus, TaskRecord?)] {
        var statuses: [Key: (TaskStatus, TaskRecord?)] = [:]
        for record in state.steps {
            for task in record.tasks {
                let status: TaskStatus =
                    switch task.state {
                    case .completed: .completed
                    case .failed, .retryScheduled: .failed
                    case .inFlight:
                        record.status.isActive ? .dispatched : (record.status == .timedOut ? .timedOut : .cancelled)
                    }
                statuses[Key(task: task.id, attempt: task.attempt)] = (status, task)
            }
        }
        if let compensation = state.compensation {
            for task in compensation.done + (compensation.current.map { [$0] } ?? []) {
                let status: TaskStatus =
                    switch task.outcome {
                    case .inFlight: state.status == .compensating ? .dispatched : .cancelled
                    case .completed: .completed
                    case .failed, .skipped: .failed
                    }
                statuses[Key(task: task.task, attempt: task.currentAttempt)] = (status, nil)
            }
        }
        return statuses
    }

    static func changes(from before: RunState, to after: RunState) -> [TaskStatusUpdate] {
        let old = statuses(of: before)
        let new = statuses(of: after)
        var changes: [TaskStatusUpdate] = []
        for (key, value) in new {
            guard let previous = old[key]?.0, previous != value.0 else { continue }
            changes.append(TaskStatusUpdate(task: key.task, attempt: key.attempt, status: value.0,
                output: value.1?.output, error: value.1?.error))
        }
        for (key, value) in old where value.0 == .dispatched && new[key] == nil {
            changes.append(TaskStatusUpdate(task: key.task, attempt: key.attempt, status: .failed))
        }
        return changes
    }
}

extension [TaskStatusUpdate] {
    /// In (task, attempt) order: the former diff listed superseded attempts in dictionary order.
    var inKeyOrder: [TaskStatusUpdate] {
        sorted { ($0.task.rawValue, $0.attempt) < ($1.task.rawValue, $1.attempt) }
    }
}

extension [RunCommand] {
    var taskStatusUpdates: [TaskStatusUpdate] {
        compactMap { if case .taskStatusChanged(let update) = $0 { update } else { nil } }
    }
}

/// Checks one handled event's task status commands against the former diff; returns whether any were
/// expected.
@discardableResult
func expectTaskStatusesMatchTheFormerDiff(
    before: RunState, after: RunState, commands: [RunCommand], _ context: @autoclosure () -> String = "",
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) -> Bool {
    let expected = FormerTaskStatusDiff.changes(from: before, to: after).inKeyOrder
    let emitted = commands.taskStatusUpdates
    #expect(emitted.inKeyOrder == expected, "\(context())", sourceLocation: sourceLocation)
    // They come last, after the event's other commands.
    let trailing = commands.suffix(emitted.count).taskStatusUpdates
    #expect(trailing.count == emitted.count, sourceLocation: sourceLocation)
    return !expected.isEmpty
}

extension Simulation {
    /// Plays the script, checking every event's task statuses against the former diff.
    func runCheckingTaskStatuses(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> SimulationReport {
        run(observing: { before, after, commands in
            expectTaskStatusesMatchTheFormerDiff(
                before: before, after: after, commands: commands, "\(playbook.id)", sourceLocation: sourceLocation)
        })
    }
}

@Suite struct TaskStatusTests {
    private func taskLines(_ commands: [RunCommand]) -> [String] {
        summary(commands, taskStatuses: true).filter { $0.hasPrefix("task ") }
    }

    @Test func anAnsweredAttemptIsCompletedWithItsOutput() {
        var machine = drive(Playbooks.sequence, [])
        let commands = machine.handle(.taskCompleted("r/a/1", attempt: 1, output: ["ok": true]), now: at(.seconds(5)))
        #expect(taskLines(commands) == ["task r/a/1#1 completed"])
        #expect(commands.taskStatusUpdates.first?.output == ["ok": true])
        // They follow the event's other commands.
        #expect(summary(commands, taskStatuses: true).last == "task r/a/1#1 completed")
    }

    @Test func aFailedAttemptIsFailedAndItsRetryIsANewAttempt() {
        var machine = drive(Playbooks.retrying, [])
        let failed = machine.handle(
            .taskFailed("r/a/1", attempt: 1, reason: "boom", retryable: true), now: at(.seconds(1)))
        #expect(taskLines(failed) == ["task r/a/1#1 failed"])
        #expect(failed.taskStatusUpdates.first?.error == "boom")
        let retried = machine.handle(.timerFired("r/a/1/retry/2"), now: at(.seconds(11)))
        #expect(retried.dispatches.map(\.idempotencyKey) == ["r/a/1#2"])
        #expect(taskLines(retried).isEmpty)
    }

    @Test func aBreachWithOnTimeoutTimesTheAttemptOut() {
        var machine = drive(Playbooks.sla, [])
        let commands = machine.handle(.timerFired("r/review/1/sla-breach"), now: at(.hours(4)))
        #expect(taskLines(commands) == ["task r/review/1#1 timeout"])
    }

    @Test func aCancelAbandonsTheAttemptsInFlight() {
        var machine = drive(Playbooks.sequence, [])
        let commands = machine.handle(.cancel(reason: "operator"), now: at(.seconds(1)))
        #expect(taskLines(commands) == ["task r/a/1#1 cancelled"])
    }

    @Test func aFailedBranchCancelsTheOtherBranchesAttempts() {
        var machine = drive(Playbooks.parallelBlock, [])
        let commands = machine.handle(
            .taskFailed("r/p.1/1", attempt: 1, reason: "no", retryable: false), now: at(.seconds(1)))
        #expect(taskLines(commands) == ["task r/p.1/1#1 failed", "task r/p.2/1#1 cancelled"])
    }

    @Test func anAttemptSupersededByANewVisitInTheSameEventIsClosedAsFailed() {
        let playbook = Playbook(id: "self-loop", steps: [task("a", sla: .hours(1), onTimeout: "a")])
        var machine = drive(playbook, [])
        let commands = machine.handle(.timerFired("r/a/1/sla-breach"), now: at(.hours(1)))
        #expect(commands.dispatches.map(\.idempotencyKey) == ["r/a/2#1"])
        #expect(taskLines(commands) == ["task r/a/1#1 failed"])
    }

    @Test func compensationsAreReportedWhenTheyAnswer() {
        let playbook = Playbook(id: "undo", steps: [task("a", compensate: .ai("undo_a")), task("b")])
        var machine = drive(playbook, [(.taskCompleted("r/a/1", attempt: 1, output: nil), .seconds(1))])
        let failed = machine.handle(
            .taskFailed("r/b/1", attempt: 1, reason: "no", retryable: false), now: at(.seconds(2)))
        #expect(failed.dispatches.map(\.idempotencyKey) == ["r/a/1/compensate#1"])
        #expect(taskLines(failed) == ["task r/b/1#1 failed"])
        let undone = machine.handle(.taskCompleted("r/a/1/compensate", attempt: 1, output: nil), now: at(.seconds(3)))
        #expect(taskLines(undone) == ["task r/a/1/compensate#1 completed"])
    }

    @Test func dispatchesCarryTheirSLAWarningFromTheirSendingInstant() {
        let playbook = Playbook(
            id: "warned", steps: [task("a", retry: 1, backoff: .seconds(10), sla: .hours(4), warning: .hours(3))])
        var machine = drive(playbook, [])
        let first = RunStateMachine.start(runID: "r", playbook: playbook, payload: nil, now: t0).commands.dispatches
        #expect(first.first?.deadline == at(.hours(4)))
        #expect(first.first?.warnAt == at(.hours(3)))
        _ = machine.handle(.taskFailed("r/a/1", attempt: 1, reason: "x", retryable: true), now: at(.seconds(5)))
        let retry = machine.handle(.timerFired("r/a/1/retry/2"), now: at(.seconds(15))).dispatches
        #expect(retry.first?.deadline == at(.hours(4)))
        #expect(retry.first?.warnAt == at(.seconds(15) + .hours(3)))
        // Without an SLA there is neither.
        let plain = RunStateMachine.start(runID: "r", playbook: Playbooks.sequence, payload: nil, now: t0).commands
        #expect(plain.dispatches.first?.warnAt == nil)
    }

    @Test func generatedRunsReportTheSameStatusesAsTheFormerDiff() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            _ = driveRandomly(seed: seed) { before, after, commands in
                expectTaskStatusesMatchTheFormerDiff(before: before, after: after, commands: commands, "seed \(seed)")
            }
        }
    }

    /// The comparison is only worth something if the generated runs reach every status change.
    @Test func generatedRunsReachEveryKindOfStatusChange() {
        var seen: [String: Int] = [:]
        for seed in UInt64(0)..<500 {
            _ = driveRandomly(seed: seed &* 0x9E37_79B9) { before, after, commands in
                for update in FormerTaskStatusDiff.changes(from: before, to: after) {
                    let superseded = !FormerTaskStatusDiff.statuses(of: after).keys.contains(
                        .init(task: update.task, attempt: update.attempt))
                    seen[superseded ? "superseded" : update.status.rawValue, default: 0] += 1
                }
                #expect(commands.taskStatusUpdates.count == FormerTaskStatusDiff.changes(from: before, to: after).count)
            }
        }
        for kind in ["completed", "failed", "timeout", "cancelled", "superseded"] {
            #expect(seen[kind, default: 0] >= 5, "\(kind): \(seen)")
        }
    }
}
