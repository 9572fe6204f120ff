import CPrefetch

/// An open-addressing index from 64-bit hashes to slot numbers, for a table that keeps its records in a flat
/// slot array and can give each record's full hash (stored, as ``IdentityLinks`` does, or recomputed from
/// the id, as ``CustomerTable`` does).
///
/// Linear probing from a Fibonacci home (the top bits of hash × 2^64/φ, so weak low bits do not cluster), at
/// load ≤ 3/4, doubling past it. An entry is one word: the hash's upper 32 bits beside the slot, so a probe
/// reads 8 bytes a position and asks the owner about a slot only on a tag match. Deletion is backward-shift,
/// not tombstones, so churn never lengthens probe runs. The index does not keep full hashes: it asks the owner
/// for a slot's (`hashOf`) to re-home entries when it deletes or grows.
///
/// Slots must stay below 2^32 - 1 (all ones marks a vacant entry). Non-copyable: it owns its memory. Used by
/// ``CustomerTable`` (customers by id), ``IdentityLinks`` (links by anonymous id) and the pipeline's cart
/// timers (carts by customer id); its lookups are inlinable, as other modules call them for every event.
public struct SlotIndex: ~Copyable {
    private var buffer: LargeBuffer
    @usableFromInline var entries: UnsafeMutablePointer<UInt64>
    /// Positions, a power of two.
    public private(set) var capacity: Int
    @usableFromInline var shift: UInt64
    /// Slots indexed.
    public private(set) var count = 0

    @usableFromInline static let vacant = UInt64.max
    @usableFromInline static let tagMask: UInt64 = 0xFFFF_FFFF_0000_0000
    @usableFromInline static let slotMask: UInt64 = 0x0000_0000_FFFF_FFFF

    /// An empty index of `capacity` positions (rounded up to a power of two, at least 16).
    public init(capacity: Int = 32) {
        var positions = 16
        while positions < capacity { positions *= 2 }
        (buffer, entries) = Self.allocate(positions)
        self.capacity = positions
        shift = UInt64(64 - positions.trailingZeroBitCount)
    }

    deinit { buffer.release() }

    /// Bytes held.
    public var bytesUsed: Int { buffer.allocatedBytes }

    /// The indexed slot with hash `hash` that `matches` accepts (asked only on a tag match), if any.
    @inlinable @inline(__always)
    public func slot(for hash: UInt64, where matches: (Int) -> Bool) -> Int? {
        let mask = capacity - 1
        let tag = hash & Self.tagMask
        var position = home(hash)
        while true {
            let entry = entries[position]
            if entry == Self.vacant { return nil }
            if entry & Self.tagMask == tag, matches(Self.slot(of: entry)) { return Self.slot(of: entry) }
            position = (position + 1) & mask
        }
    }

    /// Starts loading the entry a lookup of `hash` reads first (a lookahead's first step).
    @inlinable @inline(__always)
    public func prefetch(hash: UInt64) { nudge_prefetch_read(entries + home(hash)) }

    /// The slot of the first entry carrying `hash`'s tag among the first `limit` of its probe run, without
    /// asking the owner: a hint for prefetching (a tag can match another hash, 1 in 2^32).
    @inlinable @inline(__always)
    public func likelySlot(for hash: UInt64, within limit: Int) -> Int? {
        let mask = capacity - 1
        let tag = hash & Self.tagMask
        var position = home(hash)
        for _ in 0..<limit {
            let entry = entries[position]
            if entry == Self.vacant { return nil }
            if entry & Self.tagMask == tag { return Self.slot(of: entry) }
            position = (position + 1) & mask
        }
        return nil
    }

    /// Indexes `slot`, whose record's hash is `hash` (not indexed yet), doubling the index first past load 3/4.
    public mutating func insert(slot: Int, hash: UInt64, hashOf: (Int) -> UInt64) {
        if (count + 1) * 4 > capacity * 3 { grow(hashOf: hashOf) }
        entries[vacantPosition(for: hash)] = Self.entry(hash: hash, slot: slot)
        count += 1
    }

    /// Unindexes `slot`, whose record's hash is `hash`: each later member of its probe run moves back into the
    /// hole unless its home lies cyclically in (hole, member], so every remaining entry stays reachable from its home.
    public mutating func remove(slot: Int, hash: UInt64, hashOf: (Int) -> UInt64) {
        let mask = capacity - 1
        var hole = home(hash)
        while entries[hole] != Self.vacant && Self.slot(of: entries[hole]) != slot { hole = (hole + 1) & mask }
        guard entries[hole] != Self.vacant else { return }
        var next = hole
        while true {
            next = (next + 1) & mask
            let entry = entries[next]
            if entry == Self.vacant { break }
            let wanted = home(hashOf(Self.slot(of: entry)))
            let stays = hole <= next ? (hole < wanted && wanted <= next) : (hole < wanted || wanted <= next)
            if stays { continue }
            entries[hole] = entry
            hole = next
        }
        entries[hole] = Self.vacant
        count -= 1
    }

    /// Doubles the positions and re-homes every entry (growth is rare; entries stay one word without a full hash).
    private mutating func grow(hashOf: (Int) -> UInt64) {
        let (oldBuffer, old, oldCapacity) = (buffer, entries, capacity)
        capacity *= 2
        shift -= 1
        (buffer, entries) = Self.allocate(capacity)
        for position in 0..<oldCapacity where old[position] != Self.vacant {
            entries[vacantPosition(for: hashOf(Self.slot(of: old[position])))] = old[position]
        }
        oldBuffer.release()
    }

    @inlinable @inline(__always)
    func home(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    private func vacantPosition(for hash: UInt64) -> Int {
        let mask = capacity - 1
        var position = home(hash)
        while entries[position] != Self.vacant { position = (position + 1) & mask }
        return position
    }

    @inlinable @inline(__always)
    static func slot(of entry: UInt64) -> Int { Int(truncatingIfNeeded: entry & slotMask) }

    @inline(__always)
    private static func entry(hash: UInt64, slot: Int) -> UInt64 {
        (hash & tagMask) | UInt64(UInt32(truncatingIfNeeded: slot))
    }

    private static func allocate(_ positions: Int) -> (LargeBuffer, UnsafeMutablePointer<UInt64>) {
        let buffer = LargeBuffer(byteCount: positions * MemoryLayout<UInt64>.stride)
        let entries = buffer.base.bindMemory(to: UInt64.self, capacity: positions)
        entries.initialize(repeating: vacant, count: positions)
        return (buffer, entries)
    }
}
