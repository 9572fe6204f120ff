import Atomics
import NudgeKafka

/// Which customers this instance owns when several instances share the input partitions: those whose id
/// the upstream partitioner puts on an input partition assigned here. Shards ask it before sending an
/// identity message to a customer's shard: when the customer lives on another instance, the message goes
/// through the identity topic instead (see ``Pipeline``).
///
/// Written by the consumer thread on rebalance, read by the shards without locks. Until the partition count
/// is known, and while this instance holds every partition, everything is local.
final class InstanceOwnership: @unchecked Sendable {
    // Sendable: every field is an atomic, or immutable.
    /// Most input partitions tracked; beyond it partitions count as local.
    static let capacity = 4_096
    let partitioner: KeyPartitioner
    private let knownPartitionCount = ManagedAtomic<Int>(0)
    private let ownedCount = ManagedAtomic<Int>(0)
    /// Monotonic time at which the last owned partition was revoked; 0 before any was.
    private let emptiedAtNanos = ManagedAtomic<UInt64>(0)
    /// How long after losing its last partition the instance counts as between assignments.
    private let rebalanceGraceNanos: UInt64
    private let owned: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    /// Ownership by `partitioner`; `rebalanceGrace` is how long after losing its last partition the instance
    /// counts as between assignments: by default well past a rebalance, and well short of leaving due timers
    /// waiting for good when the assignment stays empty.
    init(partitioner: KeyPartitioner, rebalanceGrace: Duration = .seconds(60)) {
        self.partitioner = partitioner
        rebalanceGraceNanos = UInt64(max(0, rebalanceGrace.wholeMilliseconds)) * 1_000_000
        owned = .allocate(capacity: Self.capacity / 64)
        owned.initialize(repeating: .init(0), count: Self.capacity / 64)
    }

    deinit {
        owned.deinitialize(count: Self.capacity / 64)
        owned.deallocate()
    }

    /// The input topics' partition count; 0 until known.
    var partitionCount: Int { knownPartitionCount.load(ordering: .acquiring) }

    /// The input topics' partition count (they must all have it, as the identity topic must).
    func setPartitionCount(_ count: Int) { knownPartitionCount.store(max(0, count), ordering: .releasing) }

    /// Input partition `partition` is now assigned here (or no longer).
    func set(_ partition: Int32, owned isOwned: Bool) {
        let p = Int(partition)
        guard p >= 0, p < Self.capacity else { return }
        let word = UnsafeAtomic<UInt64>(at: owned + p / 64)
        let bit = UInt64(1) << UInt64(p % 64)
        let before = isOwned ? word.loadThenBitwiseOr(with: bit, ordering: .acquiringAndReleasing)
            : word.loadThenBitwiseAnd(with: ~bit, ordering: .acquiringAndReleasing)
        if isOwned && before & bit == 0 { ownedCount.wrappingIncrement(ordering: .releasing) }
        if !isOwned && before & bit != 0, ownedCount.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 {
            emptiedAtNanos.store(max(1, monotonicNanos()), ordering: .releasing)
        }
    }

    /// Whether the instance lost its last input partition less than its rebalance grace ago and has none
    /// yet: between the revocation and the assignment of an eager rebalance, which revokes everything first.
    /// Who owns a customer is not known then, so nothing should be decided for good on ``owns(_:)``. An
    /// assignment that stays empty (more instances than partitions) is taken as such after the grace.
    var isBetweenAssignments: Bool {
        guard knownPartitionCount.load(ordering: .acquiring) > 0, ownedCount.load(ordering: .acquiring) == 0 else { return false }
        let emptied = emptiedAtNanos.load(ordering: .acquiring)
        return emptied != 0 && monotonicNanos() &- emptied < rebalanceGraceNanos
    }

    /// Whether the customer with this id lives on this instance.
    func owns(_ id: UnsafeRawBufferPointer) -> Bool {
        let count = knownPartitionCount.load(ordering: .acquiring)
        guard count > 0, count <= Self.capacity, ownedCount.load(ordering: .acquiring) < count else { return true }
        let p = Int(partitioner.partition(of: id, count: Int32(count)))
        return UnsafeAtomic<UInt64>(at: owned + p / 64).load(ordering: .acquiring) & (UInt64(1) << UInt64(p % 64)) != 0
    }
}
