import NudgeDecisions
import NudgeEvents

/// The contact histories of one shard's customers, by slot, paid for only by customers Nudge has contacted.
///
/// Most customers are never recommended anything (in the benchmark's traffic, about one in ten is), so a
/// history per slot (64 bytes) would mostly hold nothing. Each slot has a 4-byte handle instead: 0 for no
/// contacts, else 1 + the position of its history in a pool, which freed histories are reused from. One
/// shard thread owns a book, as it owns the store.
struct ContactBook: ~Copyable {
    private var handles = SlotWords()
    private var pool: [ContactHistory] = []
    private var freeHistories: [UInt32] = []

    /// An empty book.
    init() {}

    /// Bytes allocated: handles, histories and the free list, by capacity.
    var bytesUsed: Int {
        handles.bytesUsed + pool.capacity * MemoryLayout<ContactHistory>.stride
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
        handles.set(slot, to: 0)
        let taken = pool[history]
        pool[history] = ContactHistory()
        freeHistories.append(UInt32(history + 1))
        return taken
    }

    /// Starts loading `slot`'s handle (the shard's lookahead).
    @inline(__always)
    func prefetch(slot: Int) { handles.prefetch(slot) }

    /// The pool position of `slot`'s history, if it has one.
    private func existing(_ slot: Int) -> Int? {
        let handle = handles[slot]
        return handle == 0 ? nil : Int(handle - 1)
    }

    /// The pool position of `slot`'s history, made for a slot without one (nil only for a negative slot or
    /// a pool past 2^32 histories).
    private mutating func position(creatingFor slot: Int) -> Int? {
        if let history = existing(slot) { return history }
        guard slot >= 0 else { return nil }
        if let reused = freeHistories.popLast() {
            handles.set(slot, to: reused)
        } else {
            guard pool.count < Int(UInt32.max) else { return nil }
            pool.append(ContactHistory())
            handles.set(slot, to: UInt32(pool.count))
        }
        return Int(handles[slot] - 1)
    }
}
