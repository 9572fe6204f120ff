/// The `Customer Silent` timers of one shard: one per known customer in the hot tier, keyed by the
/// customer's store slot, so that a timer costs a 16-byte queue entry and four bytes per slot rather than a
/// record, an index entry and a copy of the id.
///
/// **Rule** (event time): a known customer (one with a userId) is silent at their newest event time + the
/// delay. The store already keeps that newest time, so events do not touch a queued timer: one is queued
/// when a known customer has none (their first event, or the first after a firing) and the silence is
/// still ahead of the watermark, so a late event that does not move the newest time cannot fire one again.
/// When the entry comes due, the store's newest time decides: moved on (the customer came back) → queued
/// again there; else it fires. Once per silence.
///
/// **Slots.** Each slot has a word: a generation (bits 1…31) and a "queued" bit (bit 0). A slot the store
/// frees (eviction to the cold tier, identity detach) is ``forget(slot:)``-ed: its generation moves on, so
/// the queued entry, left in the heap (lazy cancellation), is dropped when it comes due, and the slot's next
/// customer starts with none. So a customer evicted before their silence comes due loses it (counted in
/// ``forgotten``). With the idle TTL longer than the silence delay (30 and 14 days by default) a silence
/// comes due first, and the shard does not evict while silences are due and unfired. Customers moved out
/// early (the hot tier's cap) leave entries that would wait for their deadlines: once stale entries
/// outnumber live ones (and 4,096), the queue drops them, so it holds at most about two per hot customer.
struct SilenceTimers: ~Copyable {
    private let delay: Int64?
    private var words = SlotWords()
    private var queue = TimerQueue()

    /// Silences fired.
    private(set) var fired = 0
    /// Queued silences whose customer left the hot tier before they came due.
    private(set) var forgotten = 0
    /// Entries in the queue whose customer left their slot (dropped when they come due, or compacted).
    private var stale = 0

    /// Silences after `delayMillis` (nil turns them off).
    init(delayMillis: Int64?) {
        delay = delayMillis.map { max(0, $0) }
    }

    /// Entries queued (live or stale).
    var scheduled: Int { queue.count }

    /// Bytes allocated: the slot words and the queue, by capacity.
    var bytesUsed: Int { words.bytesUsed + queue.bytesUsed }

    /// Starts loading `slot`'s word (the shard's lookahead).
    @inline(__always)
    func prefetch(slot: Int) { words.prefetch(slot) }

    /// Folds an applied event of the customer in `slot` (`known`: keyed by a userId) whose newest event
    /// time in the store is now `newest`, at the shard's `watermark`.
    @inline(__always)
    mutating func observe(slot: Int, known: Bool, newest: Int64, watermark: Int64) {
        guard known, let delay, slot >= 0 else { return }
        let word = words[slot]
        if word & 1 != 0 { return }
        let deadline = newest.addingSaturating(delay)
        guard deadline > watermark else { return }
        words.set(slot, to: word | 1)
        queue.push(QueuedTimer(deadline: deadline, record: Int32(truncatingIfNeeded: slot), generation: word >> 1))
    }

    /// The slot's customer left it (evicted or detached): its queued silence, if any, is dropped.
    mutating func forget(slot: Int) {
        guard slot >= 0, slot < words.capacity else { return }  // past it: never queued, word still 0
        let word = words[slot]
        if word & 1 != 0 {
            forgotten += 1
            stale += 1
        }
        words.set(slot, to: (word >> 1 &+ 1) << 1)
        if stale > 4_096 && stale > queue.count - stale {
            var live = TimerQueue()
            swap(&live, &queue)  // the closure reads the words while the queue is rebuilt
            live.removeAll(keeping: { words[Int($0.record)] == $0.generation << 1 | 1 })
            queue = live
            stale = 0
        }
    }

    /// Whether `slot`'s customer, whose newest event time is `newest`, has a silence queued and due at
    /// `watermark` (it fires at the shard's next turns: not a customer to evict before).
    func isDue(slot: Int, newest: Int64, watermark: Int64) -> Bool {
        guard let delay, slot >= 0 else { return false }
        return words[slot] & 1 != 0 && newest.addingSaturating(delay) <= watermark
    }

    /// The earliest queued deadline (live or stale), `Int64.max` when none.
    var earliestDeadline: Int64 { queue.earliest?.deadline ?? .max }

    /// Pops the next silence due at `watermark` with a deadline at most `bound` (another queue's head, so
    /// that timers of all kinds fire in deadline order) and returns its slot and deadline, skipping stale
    /// entries and customers who came back; nil when none is. `newestEventMillis` gives the newest event
    /// time of the customer in a slot.
    mutating func nextDue(watermark: Int64, through bound: Int64 = .max,
                          newestEventMillis: (Int) -> Int64) -> (slot: Int, deadline: Int64)? {
        guard let delay else { return nil }
        while let top = queue.earliest, top.deadline <= min(watermark, bound) {
            _ = queue.popEarliest()
            let slot = Int(top.record)
            guard words[slot] == top.generation << 1 | 1 else {  // forgotten
                stale -= 1
                continue
            }
            let deadline = newestEventMillis(slot).addingSaturating(delay)
            if deadline > top.deadline {
                // Came back: silent from their newest event on.
                queue.push(QueuedTimer(deadline: deadline, record: top.record, generation: top.generation))
                continue
            }
            words.set(slot, to: words[slot] & ~1)
            fired += 1
            return (slot, top.deadline)
        }
        return nil
    }
}
