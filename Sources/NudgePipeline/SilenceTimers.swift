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
/// frees is ``forget(slot:)``-ed (identity detach) or ``leave(slot:hash:newest:)``-ed (eviction to the cold
/// tier): its generation moves on, so the queued entry, left in the heap (lazy cancellation), is dropped
/// when it comes due, and the slot's next customer starts with none. Once stale entries outnumber live
/// ones (and 4,096), the queue drops them, so it holds at most about two per hot customer.
///
/// **Cold customers.** A customer who leaves for the cold tier with a silence queued keeps it: the deadline
/// goes into a second queue under the id's 64-bit hash (16 bytes, no id), and into the customer's cold
/// attachment. When it comes due, the caller looks the hash up in the cold tier and, only if the customer
/// there still carries that deadline, brings them back, which queues the silence here again
/// (``restore(slot:deadline:)``) to fire in turn: one who came back (and was maybe evicted again, with a
/// new deadline) or whom the cold tier dropped is skipped. With the idle TTL longer than the delay (30 and
/// 14 days by default) a TTL eviction never carries one (the TTL sweep waits while silences are due and
/// unfired); customers the hot tier's cap moves out early do.
struct SilenceTimers: ~Copyable {
    private let delay: Int64?
    private var words = SlotWords()
    private var queue = TimerQueue()
    /// Silences of cold customers, by id hash (``QueuedTimer/record`` its low half, `generation` its high).
    private var coldQueue = TimerQueue()

    /// Silences fired.
    private(set) var fired = 0
    /// Queued silences dropped before they came due: their customer was detached by identity stitching.
    private(set) var forgotten = 0
    /// Entries in the queue whose customer left their slot (dropped when they come due, or compacted).
    private var stale = 0

    /// A silence that came due.
    enum Due: Equatable {
        /// Of the hot customer in `slot`: fire it.
        case hot(slot: Int, deadline: Int64)
        /// Of a cold customer whose id hashes to `hash`, if they still carry this deadline: bring them back
        /// to the hot tier, where ``restore(slot:deadline:)`` queues it again, to fire in turn.
        case cold(hash: UInt64, deadline: Int64)
    }

    /// Silences after `delayMillis` (nil turns them off).
    init(delayMillis: Int64?) {
        delay = delayMillis.map { max(0, $0) }
    }

    /// Entries queued (live or stale), hot and cold.
    var scheduled: Int { queue.count + coldQueue.count }

    /// Entries queued for cold customers (live or stale).
    var coldScheduled: Int { coldQueue.count }

    /// Bytes allocated: the slot words and the queues, by capacity.
    var bytesUsed: Int { words.bytesUsed + queue.bytesUsed + coldQueue.bytesUsed }

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

    /// The slot's customer was detached (identity stitching): their queued silence, if any, is dropped.
    mutating func forget(slot: Int) {
        if release(slot: slot) { forgotten += 1 }
    }

    /// The slot's customer, whose id hashes to `hash` and whose newest event time is `newest`, leaves for the
    /// cold tier: returns the deadline of their queued silence, which moves to the cold queue (keep it in
    /// their attachment, to check when ``nextDue(watermark:through:newestEventMillis:)`` hands it back), or nil.
    mutating func leave(slot: Int, hash: UInt64, newest: Int64) -> Int64? {
        guard release(slot: slot), let delay else { return nil }
        let deadline = newest.addingSaturating(delay)
        coldQueue.push(QueuedTimer(deadline: deadline, record: Int32(truncatingIfNeeded: hash),
                                   generation: UInt32(truncatingIfNeeded: hash >> 32)))
        return deadline
    }

    /// The slot's customer came back from the cold tier carrying a silence due at `deadline`: it is queued
    /// here again (and fires at the next turn if already due), and its cold entry goes stale.
    mutating func restore(slot: Int, deadline: Int64) {
        guard delay != nil, slot >= 0 else { return }
        let word = words[slot]
        guard word & 1 == 0 else { return }
        words.set(slot, to: word | 1)
        queue.push(QueuedTimer(deadline: deadline, record: Int32(truncatingIfNeeded: slot), generation: word >> 1))
    }

    /// Drops the cold entries `stillDue` refuses (given the hash and deadline): customers who came back or
    /// whom the cold tier dropped. Call it when the cold queue outgrows what the cold tier could hold.
    mutating func compactCold(keeping stillDue: (UInt64, Int64) -> Bool) {
        coldQueue.removeAll { stillDue(Self.hash(of: $0), $0.deadline) }
    }

    /// Moves the slot's generation on; true if a silence was queued (its entry is stale from now on).
    private mutating func release(slot: Int) -> Bool {
        guard slot >= 0, slot < words.capacity else { return false }  // past it: never queued, word still 0
        let word = words[slot]
        let queued = word & 1 != 0
        if queued { stale += 1 }
        words.set(slot, to: (word >> 1 &+ 1) << 1)
        if stale > 4_096 && stale > queue.count - stale {
            var live = TimerQueue()
            swap(&live, &queue)  // the closure reads the words while the queue is rebuilt
            live.removeAll(keeping: { words[Int($0.record)] == $0.generation << 1 | 1 })
            queue = live
            stale = 0
        }
        return queued
    }

    /// The id hash a cold entry carries.
    private static func hash(of entry: QueuedTimer) -> UInt64 {
        UInt64(UInt32(bitPattern: entry.record)) | UInt64(entry.generation) << 32
    }

    /// The earliest queued deadline (live or stale, hot or cold), `Int64.max` when none.
    var earliestDeadline: Int64 { min(queue.earliest?.deadline ?? .max, coldQueue.earliest?.deadline ?? .max) }

    /// Pops the next silence due at `watermark` with a deadline at most `bound` (another queue's head, so
    /// that timers of all kinds fire in deadline order), hot or cold in deadline order, skipping stale hot
    /// entries and hot customers who came back; nil when none is. `newestEventMillis` gives the newest event
    /// time of the customer in a slot. A hot silence returned counts as fired.
    mutating func nextDue(watermark: Int64, through bound: Int64 = .max, newestEventMillis: (Int) -> Int64) -> Due? {
        guard let delay else { return nil }
        let limit = min(watermark, bound)
        while true {
            let hotHead = queue.earliest?.deadline ?? .max
            if let cold = coldQueue.earliest, cold.deadline <= limit, cold.deadline < hotHead {
                _ = coldQueue.popEarliest()
                return .cold(hash: Self.hash(of: cold), deadline: cold.deadline)
            }
            guard let top = queue.earliest, top.deadline <= limit else { return nil }
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
            return .hot(slot: slot, deadline: top.deadline)
        }
    }
}
