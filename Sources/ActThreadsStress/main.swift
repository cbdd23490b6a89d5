// A short, concurrent workout of ActThreads for the thread sanitizer: scripts/test builds it with
// `--sanitize=thread` (only ActThreads and this file, so the build takes seconds) and runs it; any data
// race fails the run. The unit tests check behaviour; this checks that the locking behind it is sound.
import ActThreads
import Foundation

/// An actor on its own thread, as each PostgreSQL and AMQP connection is.
actor Counter {
    let executor: SerialThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private(set) var value = 0

    init(name: String) throws {
        executor = try SerialThreadExecutor(name: name)
    }

    func add(_ amount: Int) -> Int {
        value += amount
        return value
    }
}

func require(_ condition: Bool, _ message: String) {
    guard condition else {
        FileHandle.standardError.write(Data("ActThreadsStress: \(message)\n".utf8))
        exit(1)
    }
}

// Many tasks call actors on serial thread executors at once.
let counters = try (0..<4).map { try Counter(name: "stress-\($0)") }
await withTaskGroup(of: Void.self) { group in
    for task in 0..<32 {
        group.addTask {
            for step in 0..<500 { _ = await counters[(task + step) % counters.count].add(1) }
        }
    }
}
var total = 0
for counter in counters { total += await counter.value }
require(total == 32 * 500, "lost increments: \(total)")
for counter in counters { counter.executor.shutdown() }

// Signals racing waits, timeouts and cancellations.
let signal = Signal()
await withTaskGroup(of: Void.self) { group in
    for index in 0..<16 {
        group.addTask {
            for _ in 0..<200 {
                if index % 4 == 0 {
                    signal.signal()
                } else if index % 4 == 1 {
                    let waiting = Task { await signal.wait(timeout: .milliseconds(1)) }
                    waiting.cancel()
                    _ = await waiting.value
                } else {
                    await signal.wait(timeout: .microseconds(200))
                }
            }
        }
    }
}

// Waiters resumed, thrown at and cancelled from other tasks.
struct Stop: Error {}
await withTaskGroup(of: Void.self) { group in
    for index in 0..<200 {
        let waiter = Waiter<Int>()
        group.addTask { _ = try? await waiter.wait() }
        group.addTask {
            switch index % 3 {
            case 0: _ = waiter.resume(returning: index)
            case 1: _ = waiter.resume(throwing: Stop())
            default: _ = waiter.takeIfReady()
            }
            _ = waiter.resume(returning: -1)  // a second resume is refused
        }
    }
}
print("ActThreadsStress: no race found")
