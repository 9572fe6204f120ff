import Atomics

/// Which source partitions this instance is assigned, by offset-tracker slot, for the shards' watermarks:
/// an assigned partition holds a shard's watermark back from its assignment on, before its first message
/// reaches that shard (so a partition with a backlog is not late just because another started first), until
/// it idles out. Written by the consumer thread on rebalance, read by shard threads when ``version`` moves.
final class PartitionAssignments: @unchecked Sendable {
    // Sendable: every slot is an atomic; `lastEpoch` is touched by the consumer thread only.
    /// Bumped after every change, so shards re-read the slots only after a rebalance.
    let version = ManagedAtomic<UInt64>(0)
    private let epochs: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    private var lastEpoch: UInt64 = 0
    /// Slots there are (the tracker table's).
    let capacity: Int

    init(capacity: Int = TrackerTable.capacity) {
        self.capacity = capacity
        epochs = .allocate(capacity: capacity)
        epochs.initialize(repeating: .init(0), count: capacity)
    }

    deinit {
        epochs.deinitialize(count: capacity)
        epochs.deallocate()
    }

    /// Slot `slot` now holds a newly assigned partition. Consumer thread, before any of its messages is queued.
    func assign(_ slot: Int) {
        guard slot >= 0, slot < capacity else { return }
        lastEpoch += 1
        UnsafeAtomic<UInt64>(at: epochs + slot).store(lastEpoch, ordering: .releasing)
        version.wrappingIncrement(ordering: .releasing)
    }

    /// Slot `slot`'s partition was revoked. Consumer thread.
    func revoke(_ slot: Int) {
        guard slot >= 0, slot < capacity else { return }
        UnsafeAtomic<UInt64>(at: epochs + slot).store(0, ordering: .releasing)
        version.wrappingIncrement(ordering: .releasing)
    }

    /// The assignment number of the partition in `slot`, 0 when none is assigned there. Any thread.
    func epoch(of slot: Int) -> UInt64 { UnsafeAtomic<UInt64>(at: epochs + slot).load(ordering: .acquiring) }
}
