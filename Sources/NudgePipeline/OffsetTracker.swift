import Atomics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NudgeKafka

/// Which offsets of one partition are finished, so that the committed offset never passes a
/// message whose effects (its recommendation, its dead letter) the broker has not acknowledged.
///
/// The consumer thread registers offsets in order; shards and the delivery thread mark them done
/// in any order; the consumer thread advances the contiguous done prefix and commits it. A ring of
/// hold counts bounds how far processing may run ahead of the commit: when it is full, the consumer
/// waits, which is back-pressure rather than unbounded memory.
///
/// An offset is registered with one hold, its processing's. An output the offset must wait for beyond the
/// first (an identity message besides a recommendation, say) takes one more with ``hold(offset:)`` before
/// the processing's is let go; the first output inherits the processing's. Each ``complete(offset:)`` lets
/// one go; the offset is finished at none.
final class OffsetTracker: @unchecked Sendable {
    // Sendable: `holds` are atomics; `arrival` slots are written by the consumer thread before
    // the message is handed to a shard through a queue (release/acquire) and read after completion.
    let partition: TopicPartition
    private let mask: Int64
    /// Holds per offset, by `offset & mask`: 0 is finished.
    private let holds: UnsafeMutablePointer<UnsafeAtomic<UInt8>.Storage>
    private let arrival: UnsafeMutablePointer<UInt64>
    /// Bytes of the one block holding both rings, and whether it is an anonymous mapping (else allocated).
    private let mappedBytes: Int
    private let isMapped: Bool
    /// Next offset to commit: every offset below it is finished.
    let committable = ManagedAtomic<Int64>(-1)
    /// One past the highest registered offset.
    private(set) var registeredEnd: Int64 = -1
    /// Offset last committed to the broker (consumer thread only).
    var lastCommitted: Int64 = -1
    /// Set when the partition is revoked: what is still in flight no longer holds this instance back.
    let revoked = ManagedAtomic<Bool>(false)
    /// Whether the partition is ours, being given up or gone, and which outputs were lost for good. Touched only
    /// when an output is lost and at a revocation or a return, so a lock costs nothing.
    private let fate = Locked(Fate())

    private struct Fate {
        var stage = Stage.owned
        /// Offsets whose output was lost and whose hold is kept until the revocation's commit.
        var held: [Int64] = []
        /// The lowest offset whose output was lost since the partition began to be given up.
        var lostSinceGivingUp: Int64?
    }

    private enum Stage { case owned, givingUp, revoked }

    init(partition: TopicPartition, window: Int) {
        var size: Int64 = 2
        while size < Int64(window) { size <<= 1 }
        self.partition = partition
        mask = size - 1
        // Both rings in one anonymous mapping, which the kernel zeroes page by page as offsets first reach
        // it: a tracker costs memory as its offsets move through the ring, not 576 KiB up front per
        // partition. With 384 partitions, writing the rings at assignment cost the consumer thread about a
        // second of page clearing per start (perf), and all of it in resident memory at once. Zero bytes are
        // valid values of both (trivial) element types.
        let holdBytes = (Int(size) * MemoryLayout<UnsafeAtomic<UInt8>.Storage>.stride + 63) & ~63
        let bytes = holdBytes + Int(size) * MemoryLayout<UInt64>.stride
        mappedBytes = bytes
        var base = UnsafeMutableRawPointer(bitPattern: 0)
        #if os(Linux)
        if let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapped != MAP_FAILED {
            base = mapped
        }
        #endif
        isMapped = base != nil
        let memory = base ?? {
            let allocated = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            allocated.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            return allocated
        }()
        holds = memory.bindMemory(to: UnsafeAtomic<UInt8>.Storage.self, capacity: Int(size))
        arrival = (memory + holdBytes).bindMemory(to: UInt64.self, capacity: Int(size))
    }

    deinit {
        let memory = UnsafeMutableRawPointer(holds)
        #if os(Linux)
        if isMapped {
            munmap(memory, mappedBytes)
            return
        }
        #endif
        memory.deallocate()
    }

    /// Offsets registered and not yet committable.
    var pending: Int64 { registeredEnd < 0 ? 0 : registeredEnd - committable.load(ordering: .acquiring) }

    /// What ``register(offset:arrivalNanos:)`` did with an offset.
    enum Registration {
        /// Tracked: hand the message out, and complete the offset once its outputs are acknowledged.
        case registered
        /// The window is full: advance and retry.
        case full
        /// Below the offsets already registered (librdkafka rewound a partition still ours, as after a log
        /// truncation): not tracked, so release the message without handing it out. Completing it would let
        /// go a hold of the ring slot a later offset owns, and let a commit pass that offset unfinished.
        case behind
    }

    /// Registers the next consumed offset.
    /// Offsets skipped by the log (compaction, transaction markers, retention) count as finished; a skip
    /// wider than the window waits until everything registered has finished, then starts the window over.
    func register(offset: Int64, arrivalNanos: UInt64) -> Registration {
        if registeredEnd < 0 {
            registeredEnd = offset
            committable.store(offset, ordering: .releasing)
        }
        guard offset >= registeredEnd else { return .behind }
        if offset - committable.load(ordering: .acquiring) > mask {
            // Every count below `registeredEnd` is 0 once it is all finished.
            guard committable.load(ordering: .acquiring) == registeredEnd else { return .full }
            registeredEnd = offset
            committable.store(offset, ordering: .releasing)
        }
        while registeredEnd < offset {  // gap: nothing to wait for
            UnsafeAtomic<UInt8>(at: holds + Int(registeredEnd & mask)).store(0, ordering: .releasing)
            registeredEnd += 1
        }
        // The processing's hold. Released to the shard through its queue, like the message.
        UnsafeAtomic<UInt8>(at: holds + Int(offset & mask)).store(1, ordering: .relaxed)
        arrival[Int(offset & mask)] = arrivalNanos
        registeredEnd = offset + 1
        return .registered
    }

    /// Lets one of the offset's holds go: its processing's, or an output's once acknowledged. Any thread.
    func complete(offset: Int64) {
        UnsafeAtomic<UInt8>(at: holds + Int(offset & mask)).wrappingDecrement(ordering: .releasing)
    }

    /// One more output the offset must wait for. Only by the thread holding the offset's processing hold, before
    /// it lets that go: a count that reached 0 may already be committed past. At most a few per offset (a count
    /// is a byte). Any thread.
    func hold(offset: Int64) {
        UnsafeAtomic<UInt8>(at: holds + Int(offset & mask)).wrappingIncrement(ordering: .relaxed)
    }

    /// The output `offset` waits for is lost for good. Returns true while the partition is ours: a fault, since
    /// the offset stays unfinished and holds the partition back until a restart reads it again. Being given up,
    /// the offset stays unfinished too (the revocation's commit must not pass it: the next owner reads it again)
    /// but is no fault; it is finished by ``finishRevocation()``. Revoked, it is finished at once. Either way
    /// the loss is remembered for ``partitionReturned()``. Any thread.
    func outputLost(offset: Int64) -> Bool {
        fate.withLock { fate in
            if fate.stage != .owned { fate.lostSinceGivingUp = min(offset, fate.lostSinceGivingUp ?? offset) }
            switch fate.stage {
            case .owned, .givingUp:
                fate.held.append(offset)
                return fate.stage == .owned
            case .revoked:
                complete(offset: offset)
                return false
            }
        }
    }

    /// The partition is being given up: outputs lost from now on are no fault. Consumer thread, before the drain.
    func beginGivingUp() { fate.withLock { $0.stage = .givingUp } }

    /// The partition is gone and its finished offsets committed: finishes the offsets whose output was lost,
    /// so that the tracker can be freed once the rest of what is in flight finishes. Consumer thread.
    func finishRevocation() {
        fate.withLock { fate in
            fate.stage = .revoked
            revoked.store(true, ordering: .relaxed)
            for offset in fate.held { complete(offset: offset) }
            fate.held = []
        }
    }

    /// The lowest offset whose output was lost since the partition began to be given up, if any.
    var lostSinceGivingUp: Int64? { fate.withLock { $0.lostSinceGivingUp } }

    /// The partition, revoked, is assigned to this instance again while this tracker still has messages in
    /// flight: their outputs are this instance's to deliver again, so a loss from now on is a fault (and holds
    /// the offset). Returns ``lostSinceGivingUp``. Consumer thread.
    func partitionReturned() -> Int64? {
        fate.withLock { fate in
            fate.stage = .owned
            return fate.lostSinceGivingUp
        }
    }

    /// Whether every offset below `end` (default: all registered) is finished or has lost its output, so that
    /// nothing more will finish by waiting. Consumer thread.
    func settled(below end: Int64? = nil) -> Bool {
        advance()
        let end = min(end ?? registeredEnd, registeredEnd)
        var offset = committable.load(ordering: .relaxed)
        guard offset < end else { return true }
        // A set: a refusal that lasts (an authorization, say) can fill the window with lost offsets.
        let lost = fate.withLock { Set($0.held) }
        guard !lost.isEmpty else { return false }
        while offset < end {
            guard UnsafeAtomic<UInt8>(at: holds + Int(offset & mask)).load(ordering: .acquiring) == 0 || lost.contains(offset)
            else { return false }
            offset += 1
        }
        return true
    }

    /// When the consumer received the message at `offset`.
    func arrivalNanos(offset: Int64) -> UInt64 { arrival[Int(offset & mask)] }

    /// Moves `committable` over the finished prefix; returns true when it moved. Consumer thread.
    @discardableResult
    func advance() -> Bool {
        var low = committable.load(ordering: .relaxed)
        let start = low
        while low < registeredEnd, UnsafeAtomic<UInt8>(at: holds + Int(low & mask)).load(ordering: .acquiring) == 0 {
            low += 1
        }
        if low != start { committable.store(low, ordering: .releasing) }
        return low != start
    }
}

/// Trackers by a small index that travels with each message and in each delivery token, so the
/// delivery thread finds a message's tracker without a lookup or a lock.
final class TrackerTable: @unchecked Sendable {
    // Sendable: a slot is written by the consumer thread before any message referring to it is
    // queued (release through the queue), and cleared only after its partition has drained.
    static let capacity = 4096
    private let slots: UnsafeMutablePointer<OffsetTracker?>
    private var free: [Int]
    /// Indices in use (consumer thread only).
    private(set) var active: [Int: TopicPartition] = [:]
    /// Indices of revoked partitions whose messages were still in flight (consumer thread only).
    private(set) var retired: [Int] = []
    /// Partitions whose retired tracker lost an output after they began to be given up, and was freed since:
    /// the lowest such offset (consumer thread only; an entry per partition at most). See ``returned(_:)``.
    private var freedWithLoss: [TopicPartition: Int64] = [:]

    init() {
        slots = .allocate(capacity: Self.capacity)
        slots.initialize(repeating: nil, count: Self.capacity)
        free = Array((0..<Self.capacity).reversed())
    }

    deinit {
        slots.deinitialize(count: Self.capacity)
        slots.deallocate()
    }

    subscript(index: Int) -> OffsetTracker? { slots[index] }

    /// Adds a tracker; nil when every index is taken (4096 partitions on one instance).
    func add(_ tracker: OffsetTracker) -> Int? {
        guard let index = free.popLast() else { return nil }
        slots[index] = tracker
        active[index] = tracker.partition
        return index
    }

    /// Frees an index once nothing in flight refers to it.
    func remove(_ index: Int) {
        if let tracker = slots[index], let lost = tracker.lostSinceGivingUp {
            freedWithLoss[tracker.partition] = min(lost, freedWithLoss[tracker.partition] ?? lost)
        }
        slots[index] = nil
        active[index] = nil
        free.append(index)
    }

    /// A revoked partition's index: freed now if none of its messages is in flight, else by a later
    /// ``sweepRetired()`` once they have all finished. Before, an index with messages still in flight
    /// after the drain timeout was never freed: its tracker (about 600 KB at the default window) leaked
    /// and, after 4,096 such revocations, no partition could be tracked. Consumer thread.
    func retire(_ index: Int) {
        slots[index]?.advance()
        if let tracker = slots[index], tracker.pending > 0 { retired.append(index) } else { remove(index) }
    }

    /// An output the offset in `token` waits for is lost for good (the broker refused it, or the producer
    /// would not take it). Returns that partition and offset while the partition is ours: record a fault,
    /// since the offset stays unfinished, so it is never committed and is read again after a restart. Nil
    /// for a token no offset waits for, and once the partition is being given up: its next owner reads it
    /// again (see ``OffsetTracker/outputLost(offset:)``). Any thread.
    func outputLost(token: UInt64) -> (partition: TopicPartition, offset: Int64)? {
        guard token != DeliveryToken.none, let tracker = self[DeliveryToken.tracker(token)] else { return nil }
        let offset = DeliveryToken.offset(token)
        return tracker.outputLost(offset: offset) ? (tracker.partition, offset) : nil
    }

    /// `partition` is assigned to this instance again. Returns the lowest of its offsets whose output was lost
    /// after it began to be given up, if any: a fault. The revocation's commit stopped below that offset, so it
    /// is read again here, but this instance's duplicate filter still holds the message's id and drops it, and
    /// the output would be lost with no fault; a restart (an empty store) reads it again. Retired trackers of
    /// the partition still in flight count their losses as faults from now on. Consumer thread.
    func returned(_ partition: TopicPartition) -> Int64? {
        var lowest = freedWithLoss.removeValue(forKey: partition)
        for index in retired {
            guard let tracker = slots[index], tracker.partition == partition, let lost = tracker.partitionReturned() else { continue }
            lowest = min(lost, lowest ?? lost)
        }
        return lowest
    }

    /// The first offset of `partition` that a retired tracker (a revocation's, its messages still in flight) has
    /// not finished, if any. The partition assigned back to this instance reads those messages again, and they
    /// come back as duplicates that finish at once: its commit must not pass this offset, or a crash would lose
    /// the first copies' outputs. Consumer thread.
    func retiredFloor(of partition: TopicPartition) -> Int64? {
        var floor: Int64?
        for index in retired {
            guard let tracker = slots[index], tracker.partition == partition else { continue }
            tracker.advance()
            guard tracker.pending > 0 else { continue }
            let first = tracker.committable.load(ordering: .relaxed)
            floor = min(first, floor ?? first)
        }
        return floor
    }

    /// Frees the retired indices whose messages have all finished. Consumer thread, at each commit.
    func sweepRetired() {
        guard !retired.isEmpty else { return }
        retired.removeAll { index in
            guard let tracker = slots[index] else { return true }
            tracker.advance()
            guard tracker.pending == 0 else { return false }
            remove(index)
            return true
        }
    }
}

/// A delivery token: which tracker and offset a produced message completes, and whether it was a
/// recommendation (whose delivery closes a latency measurement). Layout: 16 bits tracker, 1 bit
/// kind, 47 bits offset.
enum DeliveryToken {
    /// Token for messages that complete no offset (timer decisions, metrics snapshots).
    static let none: UInt64 = .max
    static func make(tracker: Int, offset: Int64, recommendation: Bool) -> UInt64 {
        UInt64(tracker) << 48 | (recommendation ? 1 << 47 : 0) | UInt64(offset) & 0x7FFF_FFFF_FFFF
    }
    static func tracker(_ token: UInt64) -> Int { Int(token >> 48) }
    static func isRecommendation(_ token: UInt64) -> Bool { token & (1 << 47) != 0 }
    static func offset(_ token: UInt64) -> Int64 { Int64(token & 0x7FFF_FFFF_FFFF) }
}
