#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One shard's evicted customers: for each, its id and an opaque payload (the compressed record), in a
/// fixed byte budget, oldest dropped first.
///
/// Layout, nothing per customer beyond one allocation:
/// - **entries**: a slab of 32-byte ``Entry`` values (hash, lengths, the blob, links); free entries are chained;
/// - **blobs**: one heap block per customer holding its id bytes then its payload;
/// - **index**: open addressing (linear probing, load ≤ 1/2) of 4-byte entry numbers; a probe compares the
///   full 64-bit hash and then the id bytes, so two ids with one hash stay two customers. Deletion is
///   backward-shift (no tombstones), so probe lengths never degrade with churn;
/// - **age list**: entries doubly linked in the order they came in, so the oldest is dropped in O(1) and a
///   restored customer unlinks in O(1).
///
/// The slab and index are sized once, from the budget (together at most half of it), and never grow: a
/// doubling would rehash every cold customer in one call (34 ms at 262,000 measured), a stall on the shard
/// thread. The index is written whole at once (8 bytes per entry of capacity: 4 MiB for the default
/// budget); the slab's pages are backed only as entries are first used.
///
/// **Budget**: ``bytesUsed`` (the index, the slab's used part, and the blobs, each counted as the allocator
/// sizes it) never exceeds ``budgetBytes``. When a customer would not fit, in bytes or in entries, the
/// oldest are dropped: their history is gone, and if they come back they start afresh (counted in
/// ``dropped``). They were idle longest, so what they lose is mostly lifetime state: every window they had
/// was older than the hot tier's TTL when they were evicted (unless the hot tier's cap moved them out
/// early, in a flood). Memory never shrinks below its peak, which the budget bounds.
///
/// Single writer, like the ``CustomerTable`` that owns it: not `Sendable`.
final class ColdCustomers {
    /// An evicted customer's bookkeeping. `blob == nil` marks a free entry (its `newer` chains the free list).
    struct Entry {
        var blob: UnsafeMutableRawPointer?
        var hash: UInt64
        var idLength: UInt32
        var payloadLength: UInt32
        /// Age list neighbours (entry numbers; -1 at either end).
        var older: Int32
        var newer: Int32
    }

    /// A customer found in the cold tier; valid until the next insert or removal.
    struct Handle {
        fileprivate let entry: Int32
    }

    /// Budgets below this are raised to it: a useful slab and index must fit in half of it.
    static let minimumBudget = 4_096

    /// The most ``bytesUsed`` may reach.
    let budgetBytes: Int
    /// The most customers held at once: the slab's length, half the index's.
    let capacity: Int
    /// Customers held.
    private(set) var count = 0
    /// Customers dropped to stay within the budget, ever (including payloads too big for it on their own).
    private(set) var dropped = 0

    private let entries: UnsafeMutablePointer<Entry>
    private let index: UnsafeMutablePointer<Int32>
    private let mask: Int
    private let indexShift: UInt64
    private var freeHead: Int32 = -1
    /// Never-used entries start here (entries below are in use or on the free list).
    private var fresh = 0
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private var blobBytes = 0

    private static let vacant: Int32 = -1
    /// Slab plus index bytes per entry of capacity (an entry and two index slots).
    private static let bytesPerEntry = MemoryLayout<Entry>.stride + 2 * MemoryLayout<Int32>.stride
    /// 2^26 cold customers a shard (a 512 MiB index) is past any sensible budget; entry numbers are Int32.
    private static let maximumIndexSlots = 1 << 27

    /// An empty tier that holds at most `budgetBytes` (at least ``minimumBudget``).
    init(budgetBytes: Int) {
        self.budgetBytes = max(budgetBytes, Self.minimumBudget)
        // The largest power-of-two index whose slab and index take at most half the budget: doubling to
        // 2 × slots gives `slots` entries, slots × bytesPerEntry bytes.
        var slots = 32
        while slots < Self.maximumIndexSlots && slots * Self.bytesPerEntry <= self.budgetBytes / 2 { slots *= 2 }
        capacity = slots / 2
        mask = slots - 1
        indexShift = UInt64(64 - slots.trailingZeroBitCount)
        entries = .allocate(capacity: capacity)
        index = .allocate(capacity: slots)
        index.initialize(repeating: Self.vacant, count: slots)
    }

    deinit {
        // Entries below `fresh` are initialized (in use or free); a free one's blob is nil.
        for position in 0..<fresh { entries[position].blob?.deallocate() }
        entries.deallocate()
        index.deallocate()
    }

    /// Bytes held: the index, the slab up to the most entries ever used, and every blob as the allocator
    /// sizes it.
    var bytesUsed: Int { 2 * capacity * MemoryLayout<Int32>.stride + fresh * MemoryLayout<Entry>.stride + blobBytes }

    /// The customer with this id, if held. `hash` must be `nudgeHash64(id)` (tests pass others to force collisions).
    func find(_ id: UnsafeRawBufferPointer, hash: UInt64) -> Handle? {
        guard count > 0, let position = position(of: id, hash: hash) else { return nil }
        return Handle(entry: index[position])
    }

    /// A customer whose id hashes to `hash`, if one is held (the first found, should two ids share it): for
    /// a caller that kept only the hash, and checks the payload is the one it expects.
    func find(hash: UInt64) -> Handle? {
        guard count > 0 else { return nil }
        var position = home(hash)
        while true {
            let number = index[position]
            if number == Self.vacant { return nil }
            if entries[Int(number)].hash == hash { return Handle(entry: number) }
            position = (position + 1) & mask
        }
    }

    /// The id bytes stored for `handle`.
    func id(of handle: Handle) -> UnsafeRawBufferPointer {
        let entry = entries[Int(handle.entry)]
        return UnsafeRawBufferPointer(start: entry.blob, count: entry.blob == nil ? 0 : Int(entry.idLength))
    }

    /// The payload stored for `handle`.
    func payload(of handle: Handle) -> UnsafeRawBufferPointer {
        let entry = entries[Int(handle.entry)]
        guard let blob = entry.blob else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: blob + Int(entry.idLength), count: Int(entry.payloadLength))
    }

    /// Forgets the customer at `handle` (it went back to the hot tier).
    func remove(_ handle: Handle) {
        let number = handle.entry
        let entry = entries[Int(number)]
        guard let blob = entry.blob else { return }
        if let position = position(ofEntry: number, hash: entry.hash) { deleteIndex(at: position) }
        unlink(number)
        blobBytes -= Self.allocationCost(Int(entry.idLength) + Int(entry.payloadLength))
        blob.deallocate()
        entries[Int(number)].blob = nil
        entries[Int(number)].newer = freeHead
        freeHead = number
        count -= 1
    }

    /// Keeps `payload` for the customer `id` (not already held) as the newest, dropping the oldest as the
    /// budget requires. False if the customer alone needs more than half the budget: it is dropped at once.
    @discardableResult
    func insert(id: UnsafeRawBufferPointer, hash: UInt64, payload: UnsafeRawBufferPointer) -> Bool {
        let length = id.count + payload.count
        let cost = Self.allocationCost(length)
        // The slab and index never pass half the budget, so a customer within the other half always fits.
        guard id.count <= Int(UInt32.max), payload.count <= Int(UInt32.max), cost <= budgetBytes / 2 else {
            dropped += 1
            return false
        }
        if count == capacity { dropOldest() }
        let blob = UnsafeMutableRawPointer.allocate(byteCount: max(length, 1), alignment: 8)
        if let source = id.baseAddress { blob.copyMemory(from: source, byteCount: id.count) }
        if let source = payload.baseAddress { (blob + id.count).copyMemory(from: source, byteCount: payload.count) }
        let number = takeEntry()
        let entry = Entry(blob: blob, hash: hash, idLength: UInt32(id.count), payloadLength: UInt32(payload.count),
                          older: newest, newer: -1)
        (entries + Int(number)).initialize(to: entry)
        if newest >= 0 { entries[Int(newest)].newer = number } else { oldest = number }
        newest = number
        index[vacantPosition(for: hash)] = number
        blobBytes += cost
        count += 1
        // The new customer is the newest and fits on its own, so this stops before reaching it.
        while bytesUsed > budgetBytes && count > 1 { dropOldest() }
        return true
    }

    // MARK: Internals

    /// What the allocator really holds for `bytes` (glibc malloc: an 8-byte header, 16-byte granules,
    /// 32 bytes at least); close for other allocators.
    static func allocationCost(_ bytes: Int) -> Int { max(32, (bytes + 8 + 15) & ~15) }

    private func dropOldest() {
        guard oldest >= 0 else { return }
        remove(Handle(entry: oldest))
        dropped += 1
    }

    private func takeEntry() -> Int32 {
        if freeHead >= 0 {
            let number = freeHead
            freeHead = entries[Int(number)].newer
            return number
        }
        // `count < capacity` and the free list is empty, so a never-used entry remains.
        let number = Int32(fresh)
        fresh += 1
        return number
    }

    private func unlink(_ number: Int32) {
        let entry = entries[Int(number)]
        if entry.older >= 0 { entries[Int(entry.older)].newer = entry.newer } else { oldest = entry.newer }
        if entry.newer >= 0 { entries[Int(entry.newer)].older = entry.older } else { newest = entry.older }
    }

    /// Fibonacci hashing, as in ``CustomerTable``: the top bits of hash × 2^64/φ.
    @inline(__always)
    private func home(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> indexShift) }

    private func position(of id: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        var position = home(hash)
        while true {
            let number = index[position]
            if number == Self.vacant { return nil }
            let entry = entries[Int(number)]
            if entry.hash == hash, Int(entry.idLength) == id.count, let blob = entry.blob {
                if id.count == 0 { return position }
                if let bytes = id.baseAddress, memcmp(blob, bytes, id.count) == 0 { return position }
            }
            position = (position + 1) & mask
        }
    }

    private func position(ofEntry number: Int32, hash: UInt64) -> Int? {
        var position = home(hash)
        while true {
            let found = index[position]
            if found == Self.vacant { return nil }
            if found == number { return position }
            position = (position + 1) & mask
        }
    }

    private func vacantPosition(for hash: UInt64) -> Int {
        var position = home(hash)
        while index[position] != Self.vacant { position = (position + 1) & mask }
        return position
    }

    /// Backward-shift deletion: later members of the probe run move back into the hole unless their home
    /// lies cyclically in (hole, member], so every remaining key stays reachable from its home.
    private func deleteIndex(at position: Int) {
        var hole = position
        var next = position
        while true {
            next = (next + 1) & mask
            let number = index[next]
            if number == Self.vacant { break }
            let wanted = home(entries[Int(number)].hash)
            let stays = hole <= next ? (hole < wanted && wanted <= next) : (hole < wanted || wanted <= next)
            if stays { continue }
            index[hole] = number
            hole = next
        }
        index[hole] = Self.vacant
    }
}
