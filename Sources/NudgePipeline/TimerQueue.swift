/// The event-time timers Nudge keeps per customer.
enum TimerKind: UInt8, CaseIterable, Sendable {
    /// Items in the cart and no checkout or order for the configured delay after the latest add.
    case cartAbandoned
    /// A known customer with no event for the configured delay.
    case customerSilent

    /// The name recommendations carry in `trigger.event`.
    var wireName: String {
        switch self {
        case .cartAbandoned: "Cart Abandoned"
        case .customerSilent: "Customer Silent"
        }
    }
}

/// One entry of the timer queue: a deadline for one timer of one customer record. An entry is live
/// only while its record (or slot) still has this generation and still queues this deadline
/// (lazy cancellation: nothing is ever removed from the middle of the heap).
struct QueuedTimer {
    /// Event time at which the entry comes due (Unix ms).
    var deadline: Int64
    /// The customer's record in ``CartTimers``, or their store slot in ``SilenceTimers``.
    var record: Int32
    /// The record's generation when queued: a reused record does not inherit the entry.
    var generation: UInt32
    // No kind: each kind has its own queue, so an entry is 16 bytes.
}

extension Array {
    /// Makes room for `count` elements, growing (when it must) to a capacity whose storage, with the
    /// array's 32-byte header, is a power of two bytes. An allocator's size classes (jemalloc's are 25 %
    /// apart past 16 KiB) hand an array more than it asked for, and an array growing from such a capacity
    /// keeps the excess: a million silences took 20 MiB rather than 16 that way.
    @inline(__always)
    mutating func reserveInPowersOfTwo(holding count: Int) {
        guard count > capacity else { return }
        let stride = MemoryLayout<Element>.stride
        var bytes = 1_024
        while (bytes - 32) / stride < count { bytes *= 2 }
        reserveCapacity((bytes - 32) / stride)
    }
}

/// A binary min-heap of queued timers by deadline. Push and pop are O(log n) and allocation-free once
/// the array has grown to its peak.
struct TimerQueue {
    private var heap: [QueuedTimer] = []

    /// Entries queued (live or stale).
    var count: Int { heap.count }
    /// Bytes allocated.
    var bytesUsed: Int { heap.capacity * MemoryLayout<QueuedTimer>.stride }
    /// The entry with the earliest deadline.
    var earliest: QueuedTimer? { heap.first }

    /// Reserves room for `n` entries.
    mutating func reserve(_ n: Int) { heap.reserveCapacity(n) }

    /// Queues an entry.
    mutating func push(_ entry: QueuedTimer) {
        heap.reserveInPowersOfTwo(holding: heap.count + 1)
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Drops the entries `keep` refuses and restores the heap order in one O(n) pass: for queues whose
    /// cancelled entries would otherwise wait for their deadlines.
    mutating func removeAll(keeping keep: (QueuedTimer) -> Bool) {
        heap.removeAll { !keep($0) }
        var parent = heap.count / 2
        while parent > 0 {
            parent -= 1
            siftDown(from: parent)
        }
    }

    /// Removes and returns the entry with the earliest deadline.
    mutating func popEarliest() -> QueuedTimer? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return first }
        heap[0] = last
        siftDown(from: 0)
        return first
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let child = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            parent = child
        }
    }
}
