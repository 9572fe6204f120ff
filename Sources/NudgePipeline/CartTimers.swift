import CPrefetch
import NudgeEvents
import NudgeFeatures

/// A customer's cart as the timers see it: what an identity merge carries from one customer to another.
struct CartState: Sendable {
    /// Items in the cart the timer counts (added since it was last closed, minus removes).
    var items: Int32
    /// Event time of the latest `Product Added`; `Int64.min` for none.
    var lastAdd: Int64
    /// Event time of the latest checkout or order (or the add a firing used up); `Int64.min` for none.
    var settled: Int64
}

/// The `Cart Abandoned` timers of one shard: at most one per customer, keyed by customer id (never by store
/// slot, which the cold tier frees and reuses: a cart outlives its customer's eviction, and identity
/// stitching moves it between ids). Silences are ``SilenceTimers``.
///
/// **Rules** (event time throughout): the timer is armed while the cart holds items and the latest
/// `Product Added` is newer than the cart's settle time; its deadline is that add + the configured delay.
/// The settle time is the latest `Checkout Started` or `Order Completed`, or the add that a firing used up:
/// each closes the cart. Items are those added since the cart was last closed, minus removes, floored at
/// 0: a settle newer than the latest add empties the cart (an older one, arriving after that add, leaves
/// the one item the add is known to hold), and so does a firing. So a cart holds items only while armed,
/// and a record freed once nothing of it is queued forgets nothing that counts. They are counted here so
/// that timers do not depend on the feature file (the standard `cart_items` feature folds in arrival
/// order, and a checkout does not empty it). Adds and
/// settles compare by event time, not by arrival, so out-of-order input cannot fire a wrong cart: a late
/// checkout newer than the latest add cancels the timer (if it arrives before the watermark passes the
/// deadline, i.e. within the allowed lateness), a late add older than a checkout already seen does not arm
/// one, and an add later than the allowed lateness is ignored. A timer fires when the shard's watermark
/// reaches its deadline, once.
///
/// **Structure.** One 56-byte record per customer with a cart (one buffer with a free list), a
/// ``SlotIndex`` from the id's 64-bit hash to its record, the ids in an ``IdArena`` (read only to fire),
/// and a ``TimerQueue`` of deadlines. A customer
/// is identified by the 64-bit hash of their id: two ids with the same hash (about one pair in 10^7 at two
/// million customers) would share a cart, the price of a lookup touching two cache lines rather than three.
/// Moving an armed timer's deadline later only writes the record; when the queued entry comes due it is
/// re-queued at the current deadline, fired, or dropped if cancelled (lazy cancellation). So an event costs
/// nothing unless it touches a cart (one hash lookup then), and nothing allocates once warm.
///
/// **Bounds.** At most `capacity` records: past it, customers get no cart timer and ``dropped`` counts the
/// refusals. A record is freed when nothing of it is queued: its timer has fired or been cancelled and the
/// watermark has passed its settle time (kept until then, so that an add within the lateness but older than
/// a checkout already seen stays settled).
final class CartTimers {
    private struct Record {
        var hash: UInt64 = 0
        var idStart = 0
        /// -1 for a free record.
        var idLength: Int32 = -1
        var generation: UInt32 = 0
        var cartItems: Int32 = 0
        var lastAdd = Int64.min
        var cartSettled = Int64.min
        /// Deadline of this record's live queue entry; `Int64.max` when none.
        var cartQueued = Int64.max
    }

    /// What an event does to a cart.
    private enum CartEffect {
        case none, add, remove, settle

        init(_ kind: EventKind) {
            switch kind {
            case .productAdded: self = .add
            case .productRemoved: self = .remove
            case .checkoutStarted, .orderCompleted: self = .settle
            default: self = .none
            }
        }
    }

    private let cartDelay: Int64?
    private let capacity: Int
    // Single-threaded by contract (one shard thread): unchecked exclusivity keeps the per-event path free
    // of runtime access tracking, as in CustomerTable. Records and index sit in huge pages where possible
    // (LargeBuffer): lookups land in them at random.
    @exclusivity(unchecked) private var recordBuffer: LargeBuffer
    @exclusivity(unchecked) private var records: UnsafeMutablePointer<Record>
    @exclusivity(unchecked) private var recordCapacity: Int
    /// Records ever handed out (the high-water mark); freed ones below it are in `freeRecords`.
    @exclusivity(unchecked) private var recordsUsed = 0
    @exclusivity(unchecked) private var freeRecords: [Int32] = []
    /// Records by their customer id's hash.
    @exclusivity(unchecked) private var index: SlotIndex
    /// Customer ids: a record's id is a plain pointer until the next insert.
    @exclusivity(unchecked) private var arena: IdArena
    @exclusivity(unchecked) private var cartQueue = TimerQueue()

    /// Customers with a record.
    @exclusivity(unchecked) private(set) var customers = 0
    /// Timers refused at the capacity.
    @exclusivity(unchecked) private(set) var dropped = 0
    /// Firings so far.
    @exclusivity(unchecked) private(set) var fired = 0

    /// Cart timers after `cartAbandonedAfterMillis` (nil turns them off), for at most `capacity` customers,
    /// with room for `expectedCarts` before the buffers grow.
    init(cartAbandonedAfterMillis: Int64?, capacity: Int, expectedCarts: Int) {
        cartDelay = cartAbandonedAfterMillis.map { max(0, $0) }
        self.capacity = min(max(0, capacity), Int(Int32.max) - 1)
        let expected = cartDelay == nil ? 16 : min(max(16, expectedCarts), max(16, self.capacity))
        recordCapacity = expected
        recordBuffer = LargeBuffer(byteCount: expected * MemoryLayout<Record>.stride)
        records = recordBuffer.base.bindMemory(to: Record.self, capacity: expected)
        index = SlotIndex(capacity: (expected * 4 + 2) / 3)  // the carts expected fit at load ≤ 3/4
        cartQueue.reserve(min(expected, 1 << 16))
        arena = IdArena(capacity: expected * 16)
    }

    deinit {
        records.deinitialize(count: recordsUsed)
        recordBuffer.release()
    }

    /// Queue entries (armed timers, plus markers keeping a settled cart until the watermark passes it).
    var scheduled: Int { cartQueue.count }

    /// Bytes allocated.
    var bytesUsed: Int {
        recordBuffer.allocatedBytes + index.bytesUsed
            + freeRecords.capacity * 4 + arena.bytesUsed + cartQueue.bytesUsed
    }

    /// Starts loading the index entry a lookup of the id hashing to `hash` reads first (the shard's
    /// lookahead; see ``EventLookahead``).
    @inline(__always)
    func prefetchIndex(hash: UInt64) { index.prefetch(hash: hash) }

    /// Starts loading the record the index entry of `hash` points to, if its tag matches (a hint: the
    /// index entry should be in the cache by now).
    @inline(__always)
    func prefetchRecord(hash: UInt64) {
        if let r = index.likelySlot(for: hash, within: 1), r < recordsUsed { nudge_prefetch_read(records + r) }
    }

    /// Folds an applied event of customer `id` (`hash` its nudgeHash64) at event time `t` into their cart;
    /// `watermark` is the shard's. A `late` add (older than the watermark, applied at it) changes nothing:
    /// at the watermark it would look newer than a checkout or order already seen (and re-arm a bought cart),
    /// and its own time, from before anything the timer could still fire for, is not known here. Nor does a
    /// late remove: it would take an item the timer never counted (an offline till flushing an add and its
    /// remove would empty a cart holding a later item, whose timer then never fired).
    @inline(__always)
    func observe(customer id: UnsafeRawBufferPointer, hash: UInt64, kind: EventKind, at t: Int64, late: Bool = false, watermark: Int64) {
        let cart = cartDelay == nil ? .none : CartEffect(kind)
        guard cart != .none, !(late && (cart == .add || cart == .remove)) else { return }
        // A settle behind the watermark needs no memory: no in-lateness add can be as old. One at the watermark
        // does: an add in the same millisecond is not late, and the settle closes its cart.
        let create = cart == .add || (cart == .settle && t >= watermark)
        guard let r = record(of: id, hash: hash, create: create) else { return }
        switch cart {
        case .none: return
        case .add:
            if records[r].cartItems < .max { records[r].cartItems += 1 }
            records[r].lastAdd = max(records[r].lastAdd, t)
        case .remove:
            records[r].cartItems = max(0, records[r].cartItems - 1)
        case .settle:
            // Closes the cart as of its time: adds after it (arrived first) stay. Which of the items came
            // after it is not kept; the latest add is one.
            records[r].cartItems = t >= records[r].lastAdd ? 0 : min(records[r].cartItems, 1)
            records[r].cartSettled = max(records[r].cartSettled, t)
        }
        closeIfSettled(r)
        scheduleCart(r, watermark: watermark)
        freeIfIdle(r)
    }

    /// Takes the cart of customer `id` away (identity stitching moves an anonymous visitor's cart to the
    /// known customer, see ``adoptCart(_:customer:watermark:)``): its timer is cancelled here. Nil when the
    /// customer has no cart state.
    func detachCart(customer id: UnsafeRawBufferPointer) -> CartState? {
        guard cartDelay != nil, let r = record(of: id, create: false) else { return nil }
        let cart = CartState(items: records[r].cartItems, lastAdd: records[r].lastAdd, settled: records[r].cartSettled)
        records[r].cartItems = 0
        records[r].lastAdd = .min
        records[r].cartSettled = .min
        freeIfIdle(r)
        return cart.items == 0 && cart.lastAdd == .min && cart.settled == .min ? nil : cart
    }

    /// Folds a cart taken from another identity into customer `id`'s: items add, and the latest add and
    /// settle win, so a checkout by either identity newer than every add settles the merged cart, and the
    /// timer is (re)armed from the merged state.
    func adoptCart(_ cart: CartState, customer id: UnsafeRawBufferPointer, watermark: Int64) {
        guard cartDelay != nil, let r = record(of: id, create: true) else { return }
        records[r].cartItems = Int32(clamping: Int64(records[r].cartItems) + Int64(cart.items))
        records[r].lastAdd = max(records[r].lastAdd, cart.lastAdd)
        records[r].cartSettled = max(records[r].cartSettled, cart.settled)
        closeIfSettled(r)
        scheduleCart(r, watermark: watermark)
        freeIfIdle(r)
    }

    /// The earliest queued deadline (live or stale), `Int64.max` when none.
    var earliestDeadline: Int64 { cartQueue.earliest?.deadline ?? .max }

    /// Pops the next cart timer due at `watermark` with a deadline at most `bound` (another queue's head, so
    /// that timers of all kinds fire in deadline order), skipping cancelled and moved ones, copies its
    /// customer's id into `customerId` and returns its deadline; nil when none is.
    func nextDue(watermark: Int64, through bound: Int64 = .max, customerId: inout [UInt8]) -> Int64? {
        while let top = cartQueue.earliest, top.deadline <= min(watermark, bound) {
            _ = cartQueue.popEarliest()
            let r = Int(top.record)
            guard r < recordsUsed, records[r].idLength >= 0, records[r].generation == top.generation,
                  records[r].cartQueued == top.deadline else { continue }  // freed, reused or superseded
            records[r].cartQueued = .max
            var due: Int64?
            if let deadline = cartDeadline(records[r]) {
                if deadline <= top.deadline {
                    records[r].cartSettled = records[r].lastAdd
                    records[r].cartItems = 0  // the firing closes the cart
                    fired += 1
                    due = deadline
                    customerId.removeAll(keepingCapacity: true)
                    customerId.append(contentsOf: idBytes(r))
                } else {
                    schedule(r, at: deadline)  // moved later while queued
                }
            } else {
                scheduleCart(r, watermark: watermark)  // cancelled: keep the settle until it is passed
            }
            freeIfIdle(r)
            if let due { return due }
        }
        return nil
    }

    // MARK: Rules

    /// A cart whose latest add is no newer than its settle time is closed: it holds nothing the timer counts
    /// (an add older than a settle or firing already seen belonged to the closed cart).
    private func closeIfSettled(_ r: Int) {
        if records[r].lastAdd <= records[r].cartSettled { records[r].cartItems = 0 }
    }

    private func cartDeadline(_ record: Record) -> Int64? {
        guard let cartDelay, record.cartItems > 0, record.lastAdd > record.cartSettled else { return nil }
        return record.lastAdd.addingSaturating(cartDelay)
    }

    /// Queues the cart's deadline, or, with none armed, a marker just past the settle time while the watermark
    /// has not passed it: it comes due once no add in lateness can be as old as the settle (a marker already
    /// due would be popped and queued again forever).
    private func scheduleCart(_ r: Int, watermark: Int64) {
        if let deadline = cartDeadline(records[r]) {
            schedule(r, at: deadline)
        } else if records[r].cartQueued == .max, records[r].cartSettled >= watermark {
            schedule(r, at: records[r].cartSettled &+ 1)
        }
    }

    /// Makes sure an entry at or before `deadline` is queued for the record. A later queued entry is left in
    /// place only if it is not later: moving a deadline later costs nothing now.
    private func schedule(_ r: Int, at deadline: Int64) {
        guard deadline < records[r].cartQueued else { return }
        cartQueue.push(QueuedTimer(deadline: deadline, record: Int32(r), generation: records[r].generation))
        records[r].cartQueued = deadline
    }

    // MARK: Records

    /// Record `r`'s id bytes: valid until the next insert (which may move the arena).
    private func idBytes(_ r: Int) -> UnsafeRawBufferPointer {
        arena.bytes(at: records[r].idStart, count: Int(records[r].idLength))
    }

    /// The record of the customer whose id hashes to `hash`, created when `create` and there is room.
    @inline(__always)
    private func record(of id: UnsafeRawBufferPointer, create: Bool) -> Int? {
        record(of: id, hash: nudgeHash64(id), create: create)
    }

    /// ``record(of:create:)`` for an id whose `nudgeHash64` is `hash`.
    @inline(__always)
    private func record(of id: UnsafeRawBufferPointer, hash: UInt64, create: Bool) -> Int? {
        let records = records  // captured instead of self, which would be retained around the call
        if let r = index.slot(for: hash, where: { records[$0].hash == hash }) { return r }
        guard create else { return nil }
        return insert(id, hash: hash)
    }

    /// A new record for `id`, indexed.
    private func insert(_ id: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        guard customers < capacity, id.count <= Int(Int32.max) else {
            dropped += 1
            return nil
        }
        let idStart = arena.append(id, relocatingLive: relocateIds)
        let r: Int
        if let reused = freeRecords.popLast() {
            r = Int(reused)
        } else {
            if recordsUsed == recordCapacity { growRecords() }
            r = recordsUsed
            (records + r).initialize(to: Record())
            recordsUsed += 1
        }
        records[r] = Record(hash: hash, idStart: idStart, idLength: Int32(clamping: id.count), generation: records[r].generation)
        customers += 1
        let records = records
        index.insert(slot: r, hash: hash, hashOf: { records[$0].hash })
        return r
    }

    private func freeIfIdle(_ r: Int) {
        guard records[r].idLength >= 0, records[r].cartQueued == .max else { return }
        let records = records
        index.remove(slot: r, hash: records[r].hash, hashOf: { records[$0].hash })
        arena.free(Int(records[r].idLength))
        records[r].idLength = -1
        records[r].generation &+= 1
        freeRecords.append(Int32(r))
        customers -= 1
    }

    private func growRecords() {
        recordCapacity *= 2
        recordBuffer = recordBuffer.grown(toByteCount: recordCapacity * MemoryLayout<Record>.stride,
                                          keeping: recordsUsed * MemoryLayout<Record>.stride)
        records = recordBuffer.base.bindMemory(to: Record.self, capacity: recordCapacity)
    }

    /// Walks the live records for an arena move.
    private func relocateIds(_ move: (Int, Int) -> Int) {
        for r in 0..<recordsUsed where records[r].idLength >= 0 {
            records[r].idStart = move(records[r].idStart, Int(records[r].idLength))
        }
    }
}
