import CPrefetch
import NudgeEvents

/// A bounded duplicate filter on message ids.
///
/// Keeps 64-bit hashes (nudgeHash64) of ids in two generations, each an open-addressing table preallocated
/// for `horizon` entries at load ≤ 1/2. New ids go into the current generation; when it holds `horizon`
/// ids, the older generation is cleared and becomes the current one. So the filter always remembers at
/// least the `horizon` most recent new ids, forgets any id after at most 2 × `horizon` newer ones, and
/// never grows: memory is 2 × nextPowerOfTwo(2 × horizon) × 8 bytes (32 MiB for a horizon of one million).
/// The clear is one memset of a generation every `horizon` inserts (amortized O(1)).
///
/// False positives: a new id is wrongly reported as seen only if its 64-bit hash equals one of the at most
/// 2 × `horizon` remembered hashes: probability ≤ 2 × horizon / 2^64, about 1.1e-13 per event for a horizon
/// of one million (one wrong drop per ~10^13 events). Duplicates are never missed within the horizon.
///
/// The tables are a ``LargeBuffer`` (huge pages): every lookup lands on a random line of 32 MiB, and with
/// 4 KiB pages each one also missed the TLB. Non-copyable, because it owns that memory.
public struct RecentMessageIDs: ~Copyable, @unchecked Sendable {
    /// Two tables back to back: generation g occupies `[g * capacity, (g + 1) * capacity)`. 0 marks a
    /// free entry, so a hash of 0 is stored as 1 (merging those two hashes changes nothing measurable).
    private let buffer: LargeBuffer
    private let table: UnsafeMutablePointer<UInt64>
    private let capacity: Int
    private var current = 0
    private var currentCount = 0
    private var previousCount = 0
    /// How many of the most recent new ids are always remembered.
    public let horizon: Int

    /// The largest horizon accepted; larger requests are clamped to it (2^26 ids: 2 GiB of tables).
    public static let maxHorizon = 1 << 26

    /// A filter remembering at least the `horizon` most recent new ids (clamped to 1...``maxHorizon``).
    public init(horizon: Int) {
        self.horizon = min(max(horizon, 1), Self.maxHorizon)
        var capacity = 16
        while capacity < self.horizon * 2 { capacity *= 2 }
        self.capacity = capacity
        buffer = LargeBuffer(byteCount: capacity * 2 * MemoryLayout<UInt64>.stride)
        table = buffer.base.bindMemory(to: UInt64.self, capacity: capacity * 2)
        table.initialize(repeating: 0, count: capacity * 2)
    }

    deinit { buffer.release() }

    /// Records `id`; true if it is new, false if it was seen within the horizon (a duplicate).
    public mutating func insert(_ id: RawText) -> Bool {
        insert(hash: nudgeHash64(id.bytes))
    }

    /// Records an id by its nudgeHash64; true if new. For callers that already hashed the id.
    public mutating func insert(hash: UInt64) -> Bool {
        let (key, home) = slot(of: hash)
        guard case .vacant(let position) = probe(table + current * capacity, for: key, from: home),
              case .vacant = probe(table + (1 - current) * capacity, for: key, from: home) else { return false }
        table[current * capacity + position] = key
        currentCount += 1
        if currentCount == horizon { rotate() }
        return true
    }

    /// Forgets an id by its nudgeHash64, so that it reads as new again: for a message turned away after it was
    /// recorded (a late event dead-lettered, which its sender may correct and send again). A no-op for an id
    /// not remembered.
    public mutating func remove(hash: UInt64) {
        let (key, home) = slot(of: hash)
        for step in 0..<2 {
            let generation = step == 0 ? current : 1 - current
            let base = table + generation * capacity
            guard case .found(let position) = probe(base, for: key, from: home) else { continue }
            erase(position, in: base)
            if generation == current { currentCount -= 1 } else { previousCount -= 1 }
            return
        }
    }

    /// Empties `position` and moves later entries of its probe run back over it (backward-shift deletion), so
    /// that every remaining key is still found from its home without tombstones.
    private func erase(_ position: Int, in base: UnsafeMutablePointer<UInt64>) {
        let mask = capacity - 1
        var hole = position
        var next = position
        while true {
            next = (next + 1) & mask
            let entry = base[next]
            if entry == 0 { break }
            // The entry may fill the hole only if its home is not in (hole, next], cyclically.
            let home = slot(of: entry).home
            let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                base[hole] = entry
                hole = next
            }
        }
        base[hole] = 0
    }

    /// Where a linear probe of one generation for `key` ends: at `key`, or at the free entry it would take.
    private enum Probe { case found(Int), vacant(Int) }

    @inline(__always)
    private func probe(_ generation: UnsafeMutablePointer<UInt64>, for key: UInt64, from home: Int) -> Probe {
        let mask = capacity - 1
        var position = home
        while true {
            let entry = generation[position]
            if entry == key { return .found(position) }
            if entry == 0 { return .vacant(position) }
            position = (position + 1) & mask
        }
    }

    /// Starts loading the two entries ``insert(hash:)`` will read first for `hash`, so that inserting it a
    /// few events later does not wait on memory (the tables are far larger than the caches).
    @inline(__always)
    public func prefetch(hash: UInt64) {
        let home = slot(of: hash).home
        nudge_prefetch_write(table + current * capacity + home)
        nudge_prefetch_read(table + (1 - current) * capacity + home)
    }

    /// The stored form of `hash` (0 marks a free entry, so 0 is stored as 1) and its home position in
    /// either generation (Fibonacci hashing on the top bits).
    @inline(__always)
    private func slot(of hash: UInt64) -> (key: UInt64, home: Int) {
        let key = hash == 0 ? 1 : hash
        return (key, Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - capacity.trailingZeroBitCount)))
    }

    /// Ids currently remembered (between `horizon` and 2 × `horizon` once warmed up).
    public var count: Int { currentCount + previousCount }

    /// Bytes held by the two generations; fixed at init.
    public var bytesUsed: Int { buffer.allocatedBytes }


    /// Clears the older generation and makes it current.
    private mutating func rotate() {
        current = 1 - current
        previousCount = currentCount
        currentCount = 0
        (table + current * capacity).update(repeating: 0, count: capacity)
    }
}
