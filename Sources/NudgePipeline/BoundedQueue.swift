import Atomics
import Dispatch

/// A bounded lock-free multi-producer queue of plain values (Vyukov's bounded MPMC ring): the
/// consumer thread and other shards push, one shard thread pops. Every slot carries a sequence
/// number, so producers and the consumer never take a lock and never allocate after `init`.
///
/// Why hand-written: swift-atomics gives the atomics but no queue; the ring is a few dozen lines
/// and is the hot path between the Kafka consumer and the shards.
final class BoundedQueue<Element: BitwiseCopyable>: @unchecked Sendable {
    // Sendable: all shared state is reached through atomics; a value is written before its slot's
    // sequence is published (release) and read after it is observed (acquire).
    private let mask: Int
    private let sequences: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    private let values: UnsafeMutablePointer<Element>
    private let head = ManagedAtomic<Int>(0)  // next slot to fill
    private let tail = ManagedAtomic<Int>(0)  // next slot to drain
    private let sleeping = ManagedAtomic<Bool>(false)
    private let wakeup = DispatchSemaphore(value: 0)
    /// A producer is blocked in ``push(_:unless:)`` until the consumer makes room.
    private let producerSleeping = ManagedAtomic<Bool>(false)
    private let room = DispatchSemaphore(value: 0)

    /// Capacity is rounded up to a power of two.
    init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        sequences = .allocate(capacity: size)
        values = .allocate(capacity: size)
        for i in 0..<size { (sequences + i).initialize(to: UnsafeAtomic<Int>.Storage(i)) }
    }

    deinit {
        sequences.deinitialize(count: mask + 1)
        sequences.deallocate()
        values.deallocate()
    }

    /// The ring's size.
    var capacity: Int { mask + 1 }

    /// Approximate number of queued values (for metrics).
    var approximateCount: Int { max(0, head.load(ordering: .relaxed) - tail.load(ordering: .relaxed)) }

    /// Adds a value; false when the ring is full (the caller decides how to wait).
    func tryPush(_ value: Element) -> Bool {
        var pos = head.load(ordering: .relaxed)
        while true {
            let seq = UnsafeAtomic<Int>(at: sequences + (pos & mask)).load(ordering: .acquiring)
            let dif = seq - pos
            if dif == 0 {
                let (won, current) = head.weakCompareExchange(expected: pos, desired: pos + 1, ordering: .relaxed)
                if won {
                    values[pos & mask] = value
                    UnsafeAtomic<Int>(at: sequences + (pos & mask)).store(pos + 1, ordering: .releasing)
                    wakeConsumer()
                    return true
                }
                pos = current
            } else if dif < 0 {
                return false
            } else {
                pos = head.load(ordering: .relaxed)
            }
        }
    }

    /// Adds a value, blocking while the ring is full until the consumer makes room (``wakeProducer()``),
    /// or until `giveUp` holds (checked at least every 10 ms while waiting): then false, and nothing added.
    /// For the one producer allowed to wait on this queue (the Kafka consumer thread on a shard's inbox):
    /// on two cores, a producer spinning or yielding on a full queue takes the time the shard it waits
    /// for needs.
    @discardableResult
    func push(_ value: Element, unless giveUp: () -> Bool = { false }) -> Bool {
        while !tryPush(value) {
            if giveUp() { return false }
            producerSleeping.store(true, ordering: .sequentiallyConsistent)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if tryPush(value) {
                // The consumer may have seen the flag and will signal: consume that signal if so.
                if !producerSleeping.exchange(false, ordering: .sequentiallyConsistent) { room.wait() }
                return true
            }
            // The timeout only bounds the cost of a missed wake-up; the consumer wakes us as it takes values.
            if room.wait(timeout: .now() + .milliseconds(10)) == .timedOut {
                if !producerSleeping.exchange(false, ordering: .sequentiallyConsistent) { room.wait() }
            }
        }
        return true
    }

    /// Wakes a producer blocked in ``push(_:unless:)``: call after taking values. A relaxed load when none waits.
    func wakeProducer() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if producerSleeping.load(ordering: .relaxed), producerSleeping.exchange(false, ordering: .sequentiallyConsistent) {
            room.signal()
        }
    }

    /// Takes the oldest value, if any. Only the owning shard thread calls this.
    func pop() -> Element? {
        let pos = tail.load(ordering: .relaxed)
        let seq = UnsafeAtomic<Int>(at: sequences + (pos & mask)).load(ordering: .acquiring)
        guard seq == pos + 1 else { return nil }
        let value = values[pos & mask]
        tail.store(pos + 1, ordering: .relaxed)
        UnsafeAtomic<Int>(at: sequences + (pos & mask)).store(pos + mask + 1, ordering: .releasing)
        return value
    }

    /// True when a value is ready for `pop`.
    var hasValue: Bool {
        let pos = tail.load(ordering: .relaxed)
        return UnsafeAtomic<Int>(at: sequences + (pos & mask)).load(ordering: .acquiring) == pos + 1
    }

    /// Blocks the consumer until a value may be ready, `otherWork` holds, or `timeout` passes. Spins
    /// briefly first: under load the next value is microseconds away and a futex sleep costs more than it
    /// saves. `otherWork` lets one thread sleep on several queues: whoever makes it true must call
    /// ``wakeConsumer()`` on this queue afterwards, as a push does.
    func waitForValue(timeout: DispatchTimeInterval, otherWork: () -> Bool = { false }) {
        func ready() -> Bool { hasValue || otherWork() }
        for _ in 0..<256 where !ready() { spinPause() }
        if ready() { return }
        sleeping.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if ready() {
            // A producer may have seen the flag and will signal: consume that signal if so.
            if !sleeping.exchange(false, ordering: .sequentiallyConsistent) { wakeup.wait() }
            return
        }
        if wakeup.wait(timeout: .now() + timeout) == .timedOut {
            if !sleeping.exchange(false, ordering: .sequentiallyConsistent) { wakeup.wait() }
        }
    }

    /// Wakes a consumer blocked in `waitForValue` (used for values and for shutdown).
    func wakeConsumer() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .relaxed), sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            wakeup.signal()
        }
    }
}

@inline(__always)
func spinPause() {
    #if arch(x86_64) || arch(i386)
    // A hint to the CPU that this is a spin loop; nothing portable exists in Swift.
    _ = 0
    #endif
}
