import CPrefetch
import NudgeFeatures

/// A 4-byte word per store slot, zero until set, in a ``LargeBuffer`` (huge pages once it is 2 MiB).
///
/// The contact book's handles and the silences' words are read for every event at a random slot: as
/// Swift arrays in 4 KiB pages, the lookahead's prefetch of each missed the TLB, and perf put 8–14 % of
/// `EventProcessor.process`'s own samples right after the two prefetch instructions (3–5 % in huge
/// pages). One 2 MiB page covers half a million slots. The capacity is a power of two, doubled as slots
/// are set, so from 2 MiB on it fills its huge pages exactly. Non-copyable: it owns its memory.
struct SlotWords: ~Copyable {
    private var buffer: LargeBuffer
    private var words: UnsafeMutablePointer<UInt32>
    /// Slots with memory; the words of slots past it read as zero.
    private(set) var capacity: Int

    /// Memory for 1,024 slots; it grows as slots past them are set.
    init() {
        capacity = 1_024
        buffer = LargeBuffer(byteCount: capacity * MemoryLayout<UInt32>.stride)
        words = buffer.base.bindMemory(to: UInt32.self, capacity: capacity)
        words.initialize(repeating: 0, count: capacity)
    }

    deinit { buffer.release() }

    /// Bytes allocated.
    var bytesUsed: Int { buffer.allocatedBytes }

    /// The word of `slot`: zero for a slot never set, or outside the buffer (a negative slot included).
    @inline(__always)
    subscript(slot: Int) -> UInt32 {
        slot >= 0 && slot < capacity ? words[slot] : 0
    }

    /// Sets `slot`'s word (`slot` ≥ 0), growing the buffer to hold it.
    @inline(__always)
    mutating func set(_ slot: Int, to value: UInt32) {
        if slot >= capacity { grow(holding: slot + 1) }
        words[slot] = value
    }

    /// Starts loading `slot`'s word (the shard's lookahead). No copy: the type cannot be copied.
    @inline(__always)
    func prefetch(_ slot: Int) {
        if slot >= 0 && slot < capacity { nudge_prefetch_read(words + slot) }
    }

    /// Doubles (at least) to hold `count` slots: a copy of the words so far and zeros after them.
    private mutating func grow(holding count: Int) {
        var grown = capacity * 2
        while grown < count { grown *= 2 }
        buffer = buffer.grown(toByteCount: grown * MemoryLayout<UInt32>.stride, keeping: capacity * MemoryLayout<UInt32>.stride)
        words = buffer.base.bindMemory(to: UInt32.self, capacity: grown)
        (words + capacity).initialize(repeating: 0, count: grown - capacity)
        capacity = grown
    }
}
