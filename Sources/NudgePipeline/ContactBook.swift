import CPrefetch
import NudgeDecisions
import NudgeEvents

/// The contact histories of one shard's customers, by slot, paid for only by customers Nudge has contacted.
///
/// Most customers are never recommended anything (in the benchmark's traffic, about one in ten is), so a
/// history per slot (64 bytes) would mostly hold nothing. Each slot has a 4-byte handle instead: 0 for no
/// contacts, else 1 + the position of its history in a pool, which freed histories are reused from. One
/// shard thread owns a book, as it owns the store.
struct ContactBook {
    private var handles: [UInt32] = []
    private var pool: [ContactHistory] = []
    private var freeHistories: [UInt32] = []

    /// Room for `expectedSlots` slots before the handles grow.
    init(expectedSlots: Int) {
        handles.reserveCapacity(expectedSlots)
    }

    /// Bytes allocated: handles, histories and the free list, by capacity.
    var bytesUsed: Int {
        handles.capacity * MemoryLayout<UInt32>.stride + pool.capacity * MemoryLayout<ContactHistory>.stride
            + freeHistories.capacity * MemoryLayout<UInt32>.stride
    }

    /// Histories held (customers with at least one contact kept).
    var count: Int { pool.count - freeHistories.count }

    /// The history of `slot`: empty for a slot never contacted.
    subscript(slot: Int) -> ContactHistory {
        existing(slot).map { pool[$0] } ?? ContactHistory()
    }

    /// Remembers a recommendation to `slot`'s customer at event time `atMillis`.
    mutating func record(slot: Int, atMillis: Int64, channel: Channel, action: UInt8) {
        guard let history = position(creatingFor: slot) else { return }
        pool[history].record(atMillis: atMillis, channel: channel, action: action)
    }

    /// Folds contacts made under another id into `slot`'s history (identity stitching).
    mutating func absorb(_ other: ContactHistory, into slot: Int) {
        guard other.count > 0, let history = position(creatingFor: slot) else { return }
        pool[history].absorb(other)
    }

    /// Removes and returns `slot`'s history (empty if none): the slot is freed or its customer leaves.
    @discardableResult
    mutating func take(_ slot: Int) -> ContactHistory {
        guard let history = existing(slot) else { return ContactHistory() }
        handles[slot] = 0
        let taken = pool[history]
        pool[history] = ContactHistory()
        freeHistories.append(UInt32(history + 1))
        return taken
    }

    /// Starts loading `slot`'s handle (the shard's lookahead).
    ///
    /// `mutating` though it changes nothing: on the processor's stored property, a non-mutating call copies
    /// the struct, retaining and releasing its arrays on every event (perf: 5 % of the in-process time).
    @inline(__always)
    mutating func prefetch(slot: Int) {
        handles.withUnsafeBufferPointer { all in
            if slot >= 0, slot < all.count, let base = all.baseAddress { nudge_prefetch_read(base + slot) }
        }
    }

    /// The pool position of `slot`'s history, if it has one.
    private func existing(_ slot: Int) -> Int? {
        guard slot >= 0, slot < handles.count, handles[slot] != 0 else { return nil }
        return Int(handles[slot] - 1)
    }

    /// The pool position of `slot`'s history, made for a slot without one (nil only for a negative slot or
    /// a pool past 2^32 histories).
    private mutating func position(creatingFor slot: Int) -> Int? {
        if let history = existing(slot) { return history }
        guard slot >= 0 else { return nil }
        if slot >= handles.count { handles.append(contentsOf: repeatElement(0, count: slot + 1 - handles.count)) }
        if let reused = freeHistories.popLast() {
            handles[slot] = reused
        } else {
            guard pool.count < Int(UInt32.max) else { return nil }
            pool.append(ContactHistory())
            handles[slot] = UInt32(pool.count)
        }
        return Int(handles[slot] - 1)
    }
}
