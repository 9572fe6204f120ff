import Atomics

/// A counter written by one thread and read by others: a plain load and store, no locked
/// read-modify-write, so counting costs a shard nothing measurable.
struct OwnedCounter: ~Copyable {
    private let storage: UnsafeAtomic<Int>
    /// A counter (or gauge) starting at `initial`.
    init(_ initial: Int = 0) { storage = .create(initial) }
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
    /// The cold tier: customers held, moves out and back, and customers dropped at its memory budget.
    let coldCustomers = OwnedCounter()
    let evictions = OwnedCounter()
    /// Evictions before the idle TTL, at the hot tier's cap.
    let forcedEvictions = OwnedCounter()
    let restores = OwnedCounter()
    let coldDropped = OwnedCounter()
    /// Outputs `send` refused for good (part of `delivery_failures`).
    let sendFailures = OwnedCounter()
    /// Events older than the shard's watermark (applied at it, or dead-lettered, per the late policy).
    let lateEvents = OwnedCounter()
    /// Events stamped beyond the allowed clock skew (applied at the shard's newest event time, or dead-lettered).
    let futureEvents = OwnedCounter()
    /// The shard's watermark and newest event time (Unix ms; `Int.min` when none yet).
    let watermarkMillis = OwnedCounter(.min)
    let newestEventMillis = OwnedCounter(.min)
    /// Timers queued now, fired by kind (``TimerKind`` order), and refused or orphaned.
    let timersScheduled = OwnedCounter()
    let timersFiredCartAbandoned = OwnedCounter()
    let timersFiredCustomerSilent = OwnedCounter()
    let timersDropped = OwnedCounter()
    /// Identity: links held, merges folded in, links forgotten (expired or at capacity), messages sent to
    /// other shards, and aliased events that found no link.
    let identityLinks = OwnedCounter()
    let identityMerges = OwnedCounter()
    let identityLinksForgotten = OwnedCounter()
    let identityMessages = OwnedCounter()
    let identityMisses = OwnedCounter()
    static let maxModels = 16
    /// Decisions by action slot (see `CounterNames`; slot 0 is `none`) and by NBA model version.
    private let decisions: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    private let byModel: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    /// Offer outcomes by model-version slot: `outcomes[slot * 4 + outcome]`.
    private let outcomes: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    init() {
        outcomes = .allocate(capacity: Self.maxModels * OfferOutcome.allCases.count)
        outcomes.initialize(repeating: .init(0), count: Self.maxModels * OfferOutcome.allCases.count)
        decisions = .allocate(capacity: Self.maxActions + 1)
        decisions.initialize(repeating: .init(0), count: Self.maxActions + 1)
        byModel = .allocate(capacity: Self.maxModels)
        byModel.initialize(repeating: .init(0), count: Self.maxModels)
    }

    deinit {
        decisions.deinitialize(count: Self.maxActions + 1)
        decisions.deallocate()
        byModel.deinitialize(count: Self.maxModels)
        byModel.deallocate()
        outcomes.deinitialize(count: Self.maxModels * OfferOutcome.allCases.count)
        outcomes.deallocate()
    }

    /// Counts an offer outcome toward a model-version slot. Shard thread only.
    @inline(__always) func countOutcome(_ outcome: OfferOutcome, modelSlot: Int) {
        let o = UnsafeAtomic<Int>(at: outcomes + min(modelSlot, Self.maxModels - 1) * OfferOutcome.allCases.count + outcome.rawValue)
        o.store(o.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Offer outcomes counted toward a model-version slot.
    func outcomes(_ outcome: OfferOutcome, modelSlot: Int) -> Int {
        UnsafeAtomic<Int>(at: outcomes + modelSlot * OfferOutcome.allCases.count + outcome.rawValue).load(ordering: .relaxed)
    }

    /// Counts a decision. Shard thread only.
    @inline(__always) func countDecision(actionSlot: Int, modelSlot: Int) {
        let a = UnsafeAtomic<Int>(at: decisions + min(actionSlot, Self.maxActions))
        a.store(a.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        let m = UnsafeAtomic<Int>(at: byModel + min(modelSlot, Self.maxModels - 1))
        m.store(m.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Decisions for an action slot (0 = none).
    func decisions(slot: Int) -> Int { UnsafeAtomic<Int>(at: decisions + slot).load(ordering: .relaxed) }

    /// Decisions made by a model-version slot.
    func decisions(modelSlot: Int) -> Int { UnsafeAtomic<Int>(at: byModel + modelSlot).load(ordering: .relaxed) }
}
