/// The id bytes of a single-owner table's records (customer ids, identity links' ids, carts' ids), back to
/// back in one ``LargeBuffer``, each found by the offset and length its record keeps.
///
/// Ids are appended; an id that goes becomes dead bytes (``free(_:)``) until the arena next fills. Then it
/// moves to a fresh buffer holding only the live ids, which the owner walks for it (one pass over its
/// records, as costly as a copy): of the same size when the live ids and the new ones need at most half of
/// it, else doubled. Without dead bytes it grows by copying. So an arena stays within about four times
/// its peak live bytes, and a move is paid for by the ids written since the last. Records hold offsets,
/// not pointers, so they survive a move; a pointer into the arena is valid until the next append.
///
/// Non-copyable: it owns its memory. Used by ``CustomerTable``, ``IdentityLinks`` and the pipeline's cart
/// timers; each had its own copy of these rules before.
public struct IdArena: ~Copyable {
    private var buffer: LargeBuffer
    /// Start of the bytes; moves when the arena does.
    public private(set) var base: UnsafeMutableRawPointer
    /// Bytes of room.
    public private(set) var capacity: Int
    /// Bytes written so far, live or dead: the next append goes here.
    public private(set) var used = 0
    /// Bytes of ids gone (counted in ``used``) that the next move drops.
    public private(set) var dead = 0

    /// An empty arena with room for `capacity` bytes (at least 64).
    public init(capacity: Int) {
        self.capacity = max(64, capacity)
        buffer = LargeBuffer(byteCount: self.capacity)
        base = buffer.base
    }

    deinit { buffer.release() }

    /// Bytes allocated.
    public var bytesUsed: Int { buffer.allocatedBytes }

    /// The `count` bytes at `offset`: valid until the next append.
    @inline(__always)
    public func bytes(at offset: Int, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// Room for `count` bytes at the end, moving or growing the arena first when they do not fit; returns
    /// their offset (the bytes are the caller's to write). A move calls `relocate` with a function the owner
    /// calls once for each live id, with its offset and length, and whose result is the id's new offset to
    /// store; ids the owner does not pass are dropped.
    public mutating func reserve(_ count: Int, relocatingLive relocate: (_ move: (_ offset: Int, _ length: Int) -> Int) -> Void) -> Int {
        if used + count > capacity {
            if dead == 0 {
                replace(with: buffer.grown(toByteCount: max(capacity * 2, used + count), keeping: used), used: used)
            } else {
                let needed = used - dead + count
                let moved = LargeBuffer(byteCount: needed * 2 <= capacity ? capacity : max(capacity * 2, needed))
                let old = base
                var written = 0
                relocate { offset, length in
                    (moved.base + written).copyMemory(from: old + offset, byteCount: length)
                    written += length
                    return written - length
                }
                buffer.release()
                replace(with: moved, used: written)
            }
        }
        used += count
        return used - count
    }

    /// Appends `id`; returns its offset (see ``reserve(_:relocatingLive:)``).
    public mutating func append(_ id: UnsafeRawBufferPointer,
                                relocatingLive relocate: (_ move: (_ offset: Int, _ length: Int) -> Int) -> Void) -> Int {
        let offset = reserve(id.count, relocatingLive: relocate)
        if let source = id.baseAddress, id.count > 0 { (base + offset).copyMemory(from: source, byteCount: id.count) }
        return offset
    }

    /// `count` bytes of an id gone: dead until the next move.
    @inline(__always)
    public mutating func free(_ count: Int) { dead += count }

    /// `count` dead bytes written over by an id again (an owner reusing a gone id's place, as
    /// ``CustomerTable`` does for a slot's next customer).
    @inline(__always)
    public mutating func revive(_ count: Int) { dead -= count }

    /// Takes `fresh` in place of the buffer, which the caller has released.
    private mutating func replace(with fresh: consuming LargeBuffer, used: Int) {
        base = fresh.base
        capacity = fresh.byteCount
        buffer = fresh
        self.used = used
        dead = 0
    }
}
