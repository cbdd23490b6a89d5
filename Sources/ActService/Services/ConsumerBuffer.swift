/// The consumer's batching, as a state machine without I/O or a clock of its own: deliveries go in as the
/// connection reads them, and ``next(at:)`` says what the batch loop does now — apply a batch, wait (until
/// when), or stop. Table-tested in `ConsumerBufferTests` with instants the test chooses.
///
/// A batch is up to `limit` deliveries whose bodies add up to at most `maxBytes` (at least one delivery,
/// whatever its size). It is applied as soon as it is full, or `batchWait` after its oldest delivery
/// arrived, or at once when reading has finished (graceful shutdown drains what was read).
struct ConsumerBuffer<Element> {
    enum Action {
        /// Apply these, in order.
        case apply([Element])
        /// Nothing to do before this instant (`nil`: until something arrives).
        case wait(until: Duration?)
        /// Reading finished and everything read was handed out.
        case stop
    }

    let limit: Int
    let maxBytes: Int
    let batchWait: Duration
    let bytes: (Element) -> Int
    private var elements: [Element] = []
    /// When the oldest element still held arrived.
    private var oldestArrival: Duration?
    private var finished = false

    init(limit: Int, maxBytes: Int, batchWait: Duration, bytes: @escaping (Element) -> Int) {
        self.limit = max(1, limit)
        self.maxBytes = maxBytes
        self.batchWait = batchWait
        self.bytes = bytes
    }

    var count: Int { elements.count }

    /// Elements read at `now` (an instant on the caller's clock).
    mutating func append(_ new: [Element], at now: Duration) {
        guard !new.isEmpty else { return }
        if elements.isEmpty { oldestArrival = now }
        elements += new
    }

    /// Reading has ended: what is held is applied without waiting, then ``next(at:)`` says stop.
    mutating func finish() {
        finished = true
    }

    mutating func next(at now: Duration) -> Action {
        guard !elements.isEmpty, let oldest = oldestArrival else { return finished ? .stop : .wait(until: nil) }
        var count = 0
        var total = 0
        for element in elements.prefix(limit) {
            if count > 0, total + bytes(element) > maxBytes { break }
            total += bytes(element)
            count += 1
        }
        let full = count == limit || count < elements.count
        guard full || finished || now >= oldest + batchWait else { return .wait(until: oldest + batchWait) }
        let batch = Array(elements.prefix(count))
        elements.removeFirst(count)
        // What is left arrived no later than now; it waits from now at most.
        oldestArrival = elements.isEmpty ? nil : now
        return .apply(batch)
    }
}
