@testable import ActService
import Testing

/// The consumer's batching decisions, at instants the test chooses.
@Suite("consumer buffer")
struct ConsumerBufferTests {
    /// Elements are their own size in bytes.
    static func buffer(limit: Int = 3, maxBytes: Int = 100, wait: Int = 10) -> ConsumerBuffer<Int> {
        ConsumerBuffer(limit: limit, maxBytes: maxBytes, batchWait: .milliseconds(wait)) { $0 }
    }

    static func ms(_ value: Int) -> Duration { .milliseconds(value) }

    static func applied(_ action: ConsumerBuffer<Int>.Action) -> [Int]? {
        if case .apply(let batch) = action { return batch }
        return nil
    }

    static func waits(_ action: ConsumerBuffer<Int>.Action) -> Duration?? {
        if case .wait(let until) = action { return .some(until) }
        return nil
    }

    @Test func anEmptyBufferWaitsForDeliveriesAndStopsOnceReadingFinished() {
        var buffer = Self.buffer()
        #expect(Self.waits(buffer.next(at: Self.ms(0))) == .some(nil))
        buffer.finish()
        guard case .stop = buffer.next(at: Self.ms(0)) else {
            Issue.record("did not stop")
            return
        }
    }

    @Test func aPartBatchWaitsUntilTheBatchWaitPassedSinceItsOldestDelivery() {
        var buffer = Self.buffer()
        buffer.append([1], at: Self.ms(100))
        buffer.append([2], at: Self.ms(105))
        #expect(Self.waits(buffer.next(at: Self.ms(106))) == .some(Self.ms(110)))
        #expect(Self.applied(buffer.next(at: Self.ms(110))) == [1, 2])
        #expect(buffer.count == 0)
    }

    @Test func aFullBatchGoesAtOnceAndTheRestWaitsFromNow() {
        var buffer = Self.buffer(limit: 3)
        buffer.append([1, 2, 3, 4], at: Self.ms(0))
        #expect(Self.applied(buffer.next(at: Self.ms(1))) == [1, 2, 3])
        #expect(Self.waits(buffer.next(at: Self.ms(1))) == .some(Self.ms(11)))
        #expect(Self.applied(buffer.next(at: Self.ms(11))) == [4])
    }

    @Test(arguments: [
        // (sizes, max bytes, first batch)
        ([60, 30, 20], 100, [60, 30]),
        ([150, 10], 100, [150]),  // at least one, whatever its size
        ([50, 50, 1], 100, [50, 50]),
        ([10, 10, 10], 30, [10, 10, 10]),
    ])
    func batchesAreBoundedInBytes(sizes: [Int], maxBytes: Int, first: [Int]) {
        var buffer = Self.buffer(limit: 3, maxBytes: maxBytes)
        buffer.append(sizes, at: Self.ms(0))
        #expect(Self.applied(buffer.next(at: Self.ms(0))) == first)
    }

    @Test func finishingDrainsWhatIsHeldWithoutWaiting() {
        var buffer = Self.buffer(limit: 2)
        buffer.append([1, 2, 3], at: Self.ms(0))
        buffer.finish()
        #expect(Self.applied(buffer.next(at: Self.ms(0))) == [1, 2])
        #expect(Self.applied(buffer.next(at: Self.ms(0))) == [3])
        guard case .stop = buffer.next(at: Self.ms(0)) else {
            Issue.record("did not stop")
            return
        }
    }

    @Test func noBatchWaitAppliesWhateverArrived() {
        var buffer = Self.buffer(wait: 0)
        buffer.append([7], at: Self.ms(5))
        #expect(Self.applied(buffer.next(at: Self.ms(5))) == [7])
    }
}
