import CPrefetch

/// Full feature records of one ``CustomerTable``, for the customers with more than one event (see
/// ``CustomerEntry``), addressed by a 32-bit handle.
///
/// Records live in chunks that never move: the pool grows by adding a chunk, never by copying, so a burst
/// of newly active customers costs first-touch page faults and nothing more, and a record's address stays
/// valid while it is held. A chunk is up to 2 MiB of records in ordinary pages (fewer records for tables
/// expecting few customers), allocated when the first record in it is taken. Freed records chain through
/// their own header (``FreeRecord``) and are reused first.
final class RecordPool {
    /// Bytes per record.
    let stride: Int
    private let perChunk: Int
    private let chunkOf: Divisor
    private let chunkBytes: Int
    @exclusivity(unchecked) private var chunks: UnsafeMutablePointer<LargeBuffer>
    @exclusivity(unchecked) private var chunkCapacity: Int
    @exclusivity(unchecked) private var chunkCount = 0
    /// Records handed out so far, in use or free.
    @exclusivity(unchecked) private var used = 0
    /// The most recently freed record, -1 for none.
    @exclusivity(unchecked) private var freeHead = -1
    /// Records in use.
    @exclusivity(unchecked) private(set) var count = 0

    /// A pool of `stride`-byte records whose chunks hold at most `expectedRecords` records each.
    init(stride: Int, expectedRecords: Int) {
        self.stride = stride
        let perFullChunk = max(LargeBuffer.hugePage / stride, 1)
        // Half of 2 MiB's worth expected or more: 2 MiB chunks, else small ones.
        perChunk = 2 * expectedRecords >= perFullChunk ? perFullChunk : max(expectedRecords, 16)
        chunkOf = Divisor(Int64(perChunk))
        chunkBytes = perChunk * stride
        chunkCapacity = 16
        chunks = .allocate(capacity: chunkCapacity)
    }

    deinit {
        for chunk in 0..<chunkCount { chunks[chunk].release() }
        chunks.deinitialize(count: chunkCount)
        chunks.deallocate()
    }

    /// Bytes of the chunks allocated so far.
    var bytesUsed: Int { chunkCount * chunkBytes }

    /// The record with handle `handle` (one ``take()`` returned and ``free(_:)`` has not given back).
    @inline(__always)
    func record(_ handle: Int) -> UnsafeMutableRawPointer {
        let chunk = Int(chunkOf.floorDiv(Int64(handle)))
        return chunks[chunk].base + (handle - chunk * perChunk) * stride
    }

    /// A record's handle; its bytes are unspecified until the caller fills them.
    func take() -> Int {
        count += 1
        if freeHead >= 0 {
            let handle = freeHead
            freeHead = FreeRecord.next(record(handle))
            return handle
        }
        if used == chunkCount * perChunk { addChunk() }
        used += 1
        return used - 1
    }

    /// Gives a record back for reuse.
    func free(_ handle: Int) {
        FreeRecord.free(record(handle), next: freeHead)
        freeHead = handle
        count -= 1
    }

    /// Starts loading the record `handle` for writing: a hint, so any handle is accepted.
    @inline(__always)
    func prefetch(_ handle: Int) {
        guard handle >= 0, handle < chunkCount * perChunk else { return }
        let start = record(handle)
        var line = 0
        while line < stride {
            nudge_prefetch_write(start + line)
            line += 64
        }
    }

    /// Starts loading the record the next ``take()`` will return, if its memory exists yet: a customer
    /// about to get their first full record writes all of it.
    @inline(__always)
    func prefetchNext() {
        prefetch(freeHead >= 0 ? freeHead : used < chunkCount * perChunk ? used : -1)
    }

    private func addChunk() {
        if chunkCount == chunkCapacity {
            let grown = UnsafeMutablePointer<LargeBuffer>.allocate(capacity: chunkCapacity * 2)
            grown.moveInitialize(from: chunks, count: chunkCount)
            chunks.deallocate()
            chunks = grown
            chunkCapacity *= 2
        }
        // Ordinary pages: chunks are added under load, as customers get their second event, and a
        // huge-page fault there (zeroing 2 MiB, compacting memory first under THP's usual `defrag=madvise`)
        // stalls the shard. In-process, 1M customers: 0.83-0.84 M events/s against 0.69-0.75 with huge pages.
        (chunks + chunkCount).initialize(to: LargeBuffer(byteCount: chunkBytes, hugePages: false))
        chunkCount += 1
    }
}
