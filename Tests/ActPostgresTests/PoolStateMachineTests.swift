@testable import ActPostgres
import Testing

/// Who gets which connection or slot, who waits, whose wait ends: tables of pool events and the actions they
/// must produce. Connections are named `c1`, `c2`, …, waiters by letters. No server; a manual clock.
@Suite struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<String, String, ManualClock.Instant>

    enum Event: Sendable, CustomStringConvertible {
        /// Caller `name` asks for a connection.
        case lease(String)
        /// A healthy connection comes back.
        case returned(String)
        /// A lent connection came back broken, or opening one failed.
        case broken
        /// The timer of waiter `name` fires now.
        case timer(String)
        /// The task of waiter `name` is cancelled.
        case cancel(String)
        case advance(Duration)
        case shutdown

        var description: String {
            switch self {
            case .lease(let name): "lease \(name)"
            case .returned(let connection): "return \(connection)"
            case .broken: "broken"
            case .timer(let name): "timer \(name)"
            case .cancel(let name): "cancel \(name)"
            case .advance(let duration): "advance \(duration)"
            case .shutdown: "shutdown"
            }
        }
    }

    enum Effect: Hashable, Sendable {
        case lent(String, to: String)
        case opens(String)
        case failed(String, Machine.Failure)
        case waits(String)
        case keptIdle(String)
        case handedOver(String, to: String)
        case closed(String)
        case slotFreed
        case opensFor(String)
        case timedOut(String)
        case shutdown(close: [String], fail: [String])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var maxConnections: Int
        var events: [Event]
        var effects: [Effect]
        /// Idle + lent + being opened after the last event.
        var slotsInUse: Int
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "leases open connections up to the maximum, then wait",
            maxConnections: 2,
            events: [.lease("A"), .lease("B"), .lease("C")],
            effects: [.opens("A"), .opens("B"), .waits("C")],
            slotsInUse: 2),
        Case(
            name: "returned connections go to the waiters first come, first served",
            maxConnections: 1,
            events: [.lease("A"), .lease("B"), .lease("C"), .returned("c1"), .returned("c1"), .returned("c1"), .lease("D")],
            effects: [
                .opens("A"), .waits("B"), .waits("C"), .handedOver("c1", to: "B"), .handedOver("c1", to: "C"),
                .keptIdle("c1"), .lent("c1", to: "D"),
            ],
            slotsInUse: 1),
        Case(
            name: "idle connections are lent most recently returned first",
            maxConnections: 2,
            events: [.lease("A"), .lease("B"), .returned("c1"), .returned("c2"), .lease("C"), .lease("D"), .lease("E")],
            effects: [
                .opens("A"), .opens("B"), .keptIdle("c1"), .keptIdle("c2"), .lent("c2", to: "C"), .lent("c1", to: "D"),
                .waits("E"),
            ],
            slotsInUse: 2),
        Case(
            name: "a timeout removes exactly the waiter whose deadline passed",
            maxConnections: 1,
            events: [
                .lease("A"), .lease("B"), .advance(.seconds(4)), .lease("C"), .advance(.seconds(6)), .timer("B"),
                .timer("C"), .returned("c1"),
            ],
            effects: [.opens("A"), .waits("B"), .waits("C"), .timedOut("B"), .handedOver("c1", to: "C")],
            slotsInUse: 1),
        Case(
            name: "the timer of a waiter already served does nothing",
            maxConnections: 1,
            events: [.lease("A"), .lease("B"), .returned("c1"), .advance(.seconds(10)), .timer("B")],
            effects: [.opens("A"), .waits("B"), .handedOver("c1", to: "B")],
            slotsInUse: 1),
        Case(
            name: "a cancelled waiter leaves the line and the next one is served",
            maxConnections: 1,
            events: [.lease("A"), .lease("B"), .lease("C"), .cancel("B"), .returned("c1"), .advance(.seconds(10)), .timer("B")],
            effects: [.opens("A"), .waits("B"), .waits("C"), .handedOver("c1", to: "C")],
            slotsInUse: 1),
        Case(
            name: "a broken connection's slot goes to the first waiter, who opens a replacement",
            maxConnections: 1,
            events: [.lease("A"), .lease("B"), .broken, .broken, .lease("C")],
            effects: [.opens("A"), .waits("B"), .opensFor("B"), .slotFreed, .opens("C")],
            slotsInUse: 1),
        Case(
            name: "a broken connection with nobody waiting frees its slot",
            maxConnections: 2,
            events: [.lease("A"), .lease("B"), .broken],
            effects: [.opens("A"), .opens("B"), .slotFreed],
            slotsInUse: 1),
        Case(
            name: "shutdown fails the waiters, then returned connections close and leases fail",
            maxConnections: 1,
            events: [.lease("A"), .lease("B"), .lease("C"), .shutdown, .returned("c1"), .lease("D"), .timer("B")],
            effects: [
                .opens("A"), .waits("B"), .waits("C"), .shutdown(close: [], fail: ["B", "C"]), .closed("c1"),
                .failed("D", .poolClosed),
            ],
            slotsInUse: 0),
        Case(
            name: "shutdown closes the idle connections",
            maxConnections: 3,
            events: [.lease("A"), .lease("B"), .lease("C"), .returned("c1"), .returned("c2"), .shutdown, .broken],
            effects: [
                .opens("A"), .opens("B"), .opens("C"), .keptIdle("c1"), .keptIdle("c2"),
                .shutdown(close: ["c1", "c2"], fail: []), .slotFreed,
            ],
            slotsInUse: 0),
    ]

    @Test(arguments: cases)
    func transitions(_ table: Case) {
        var machine = Machine(configuration: .init(maxConnections: table.maxConnections, acquireTimeout: .seconds(10)))
        var clock = ManualClock()
        var requests: [String: Machine.RequestID] = [:]
        var effects: [Effect] = []
        for event in table.events {
            switch event {
            case .lease(let name):
                switch machine.leaseRequested(name, now: clock.now) {
                case .lend(let connection): effects.append(.lent(connection, to: name))
                case .open: effects.append(.opens(name))
                case .fail(let failure): effects.append(.failed(name, failure))
                case .wait(let id, let deadline):
                    #expect(deadline == clock.now.advanced(by: .seconds(10)))
                    requests[name] = id
                    effects.append(.waits(name))
                }
            case .returned(let connection):
                switch machine.connectionReturned(connection) {
                case .keepIdle: effects.append(.keptIdle(connection))
                case .handOver(let connection, let waiter): effects.append(.handedOver(connection, to: waiter))
                case .close(let connection): effects.append(.closed(connection))
                }
            case .broken:
                switch machine.connectionBroken() {
                case .none: effects.append(.slotFreed)
                case .openFor(let waiter): effects.append(.opensFor(waiter))
                }
            case .timer(let name):
                guard let id = requests[name] else {
                    Issue.record("\(name) never waited")
                    return
                }
                switch machine.leaseTimedOut(id, now: clock.now) {
                case .none: break
                case .failWaiter(let waiter): effects.append(.timedOut(waiter))
                }
            case .cancel(let name):
                guard let id = requests[name] else {
                    Issue.record("\(name) never waited")
                    return
                }
                machine.leaseCancelled(id)
            case .advance(let duration):
                clock.advance(by: duration)
            case .shutdown:
                let action = machine.shutdown()
                effects.append(.shutdown(close: action.closeIdle, fail: action.failWaiters))
            }
            #expect(machine.slotsInUse <= table.maxConnections, "after \(event)")
            #expect(machine.slotsInUse >= machine.idle.count, "after \(event)")
        }
        #expect(effects == table.effects, "events: \(table.events)")
        #expect(machine.slotsInUse == table.slotsInUse)
    }

    /// Random traffic against a model of who holds what: the pool never exceeds its size, never lends one
    /// connection twice, and serves waiters in the order they came.
    @Test(arguments: [1, 2, 4])
    func randomTrafficKeepsTheInvariants(maxConnections: Int) {
        var machine = Machine(configuration: .init(maxConnections: maxConnections, acquireTimeout: .seconds(1)))
        var clock = ManualClock()
        var generator = SplitMix64(seed: UInt64(maxConnections))
        var lent: [String] = []  // connections held by callers
        var opened = 0
        var line: [(name: String, id: Machine.RequestID)] = []
        var served: [String] = []
        var nextCaller = 0
        for _ in 0..<5_000 {
            switch generator.next() % 5 {
            case 0, 1:
                nextCaller += 1
                let name = "w\(nextCaller)"
                switch machine.leaseRequested(name, now: clock.now) {
                case .lend(let connection): lent.append(connection)
                case .open:
                    opened += 1
                    lent.append("c\(opened)")
                case .fail: Issue.record("the pool is running")
                case .wait(let id, _): line.append((name, id))
                }
            case 2 where !lent.isEmpty:
                let connection = lent.remove(at: Int(generator.next() % UInt64(lent.count)))
                switch machine.connectionReturned(connection) {
                case .keepIdle: break
                case .handOver(let connection, let waiter):
                    #expect(waiter == line.first?.name)
                    served.append(line.removeFirst().name)
                    lent.append(connection)
                case .close: Issue.record("the pool is running")
                }
            case 3 where !lent.isEmpty:
                lent.remove(at: Int(generator.next() % UInt64(lent.count)))
                switch machine.connectionBroken() {
                case .none: break
                case .openFor(let waiter):
                    #expect(waiter == line.first?.name)
                    served.append(line.removeFirst().name)
                    opened += 1
                    lent.append("c\(opened)")
                }
            default:
                clock.advance(by: .milliseconds(300))
                for entry in line {
                    if case .failWaiter(let waiter) = machine.leaseTimedOut(entry.id, now: clock.now) {
                        #expect(waiter == entry.name)
                        line.removeAll { $0.name == waiter }
                    }
                }
            }
            #expect(machine.slotsInUse <= maxConnections)
            #expect(machine.slotsInUse == lent.count + machine.idle.count)
            #expect(Set(lent).count == lent.count, "a connection was lent twice")
            #expect(Set(lent).isDisjoint(with: machine.idle))
            #expect(machine.waitersInLine == line.map(\.name))
        }
        #expect(!served.isEmpty)
    }
}

/// A small deterministic generator, so that a failing random run repeats.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
