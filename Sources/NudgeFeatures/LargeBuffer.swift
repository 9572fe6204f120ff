#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for big, randomly read buffers (the table's entries, record chunks, index and arena; the pipeline's timer records
/// and index), in transparent huge pages where the kernel offers them: records are read at random, so with 4 KiB pages nearly every event also misses the TLB
/// (and under virtualization a TLB miss is a two-level page walk). One 2 MiB page covers ~8,000 records.
///
/// Linux, 2 MiB or more: an anonymous `mmap` starting on a 2 MiB boundary, rounded up to 4 KiB, plus
/// `madvise(MADV_HUGEPAGE)` (a hint: with THP off it is ordinary memory). The kernel backs the whole 2 MiB
/// ranges with huge pages and the rest with ordinary ones, so a buffer holds at most 4 KiB more than asked
/// (rounding up to 2 MiB made 3.7 MB of a 100,000-customer table's 10.9 MB slack). Smaller buffers, other
/// systems, or a failed `mmap`: an aligned allocation, so small tables (tests, tiny shards) never pin a
/// 2 MiB page each.
public struct LargeBuffer {
    /// Start of the buffer, 64-byte aligned.
    public let base: UnsafeMutableRawPointer
    /// Bytes asked for.
    public let byteCount: Int
    private let mappedLength: Int

    /// Bytes of one transparent huge page: buffers at least this large are mapped in them.
    public static let hugePage = 2 << 20

    /// At least `byteCount` bytes; contents unspecified (callers initialise what they use). `hugePages`
    /// false asks for ordinary pages whatever the size (for buffers that grow under load, see
    /// ``RecordPool``).
    public init(byteCount: Int, hugePages: Bool = true) {
        self.byteCount = max(byteCount, 1)
        #if os(Linux)
        if hugePages && self.byteCount >= Self.hugePage {
            let page = 4_096
            let length = (self.byteCount + page - 1) / page * page
            // One huge page more than needed, then the unaligned ends given back: the kernel backs only
            // 2 MiB-aligned ranges with huge pages, and mmap aligns to 4 KiB.
            if let mapped = mmap(nil, length + Self.hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
               mapped != MAP_FAILED {
                let address = UInt(bitPattern: mapped)
                let aligned = (address + UInt(Self.hugePage) - 1) & ~(UInt(Self.hugePage) - 1)
                let head = Int(aligned - address)
                if head > 0 { _ = munmap(mapped, head) }
                let start = mapped + head
                let tail = Self.hugePage - head
                if tail > 0 { _ = munmap(start + length, tail) }
                _ = madvise(start, length, MADV_HUGEPAGE)
                base = start
                mappedLength = length
                return
            }
        }
        #endif
        base = .allocate(byteCount: self.byteCount, alignment: 64)
        mappedLength = 0
    }

    /// Bytes it holds: the mapping (what was asked, rounded up to 4 KiB), or what was asked of the allocator.
    public var allocatedBytes: Int { mappedLength > 0 ? mappedLength : byteCount }

    /// A buffer of `byteCount` bytes that starts with this one's first `keeping` bytes; this one is released.
    /// How the store's arrays double as they fill (a copy: a huge-page mapping cannot grow in place).
    public func grown(toByteCount byteCount: Int, keeping: Int) -> LargeBuffer {
        let fresh = LargeBuffer(byteCount: byteCount)
        fresh.base.copyMemory(from: base, byteCount: keeping)
        release()
        return fresh
    }

    /// Gives the memory back; the buffer must not be used afterwards.
    public func release() {
        #if os(Linux)
        if mappedLength > 0 {
            _ = munmap(base, mappedLength)
            return
        }
        #endif
        base.deallocate()
    }
}
