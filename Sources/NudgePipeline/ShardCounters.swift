import Atomics

/// A counter written by one thread and read by others: a plain load and store, no locked
/// read-modify-write, so counting costs a shard nothing measurable.
struct OwnedCounter: ~Copyable {
    private let storage = UnsafeAtomic<Int>.create(0)
    deinit { storage.destroy() }
    /// Adds to the counter. Only the owning thread calls this.
    @inline(__always) func add(_ n: Int = 1) {
        storage.store(storage.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }
    /// Sets a gauge. Only the owning thread calls this.
    @inline(__always) func set(_ n: Int) { storage.store(n, ordering: .relaxed) }
    /// Reads from any thread.
    var value: Int { storage.load(ordering: .relaxed) }
}

/// One shard's operating counters.
final class ShardCounters: @unchecked Sendable {
    // Sendable: every field is an atomic with a single writer (the shard thread).
    static let maxActions = 63
    /// Messages handled by this shard (decoded, dead-lettered or dropped as duplicates).
    let eventsIn = OwnedCounter()
    let deadLetters = OwnedCounter()
    let duplicates = OwnedCounter()
    let forwarded = OwnedCounter()
    let customers = OwnedCounter()
    let storeBytes = OwnedCounter()
    let sendFailures = OwnedCounter()
    /// Decisions by action: slot 0 is `none`, slot i+1 is the NBA model's action i.
    private let decisions: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    init() {
        decisions = .allocate(capacity: Self.maxActions + 1)
        decisions.initialize(repeating: .init(0), count: Self.maxActions + 1)
    }

    deinit {
        decisions.deinitialize(count: Self.maxActions + 1)
        decisions.deallocate()
    }

    /// Counts a decision (`nil` is `none`). Shard thread only.
    @inline(__always) func countDecision(action: Int?) {
        let slot = action.map { min($0 + 1, Self.maxActions) } ?? 0
        let a = UnsafeAtomic<Int>(at: decisions + slot)
        a.store(a.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Decisions for an action slot (0 = none).
    func decisions(slot: Int) -> Int { UnsafeAtomic<Int>(at: decisions + slot).load(ordering: .relaxed) }
}
