/// What one bucket of a ring holds.
enum BucketCell: UInt8, Sendable {
    /// Saturating UInt8 count.
    case count8
    /// Saturating UInt16 count.
    case count16
    /// Float32 sum.
    case sum32
    /// Float32 minimum, +∞ when empty.
    case min32
    /// Float32 maximum, -∞ when empty.
    case max32
    /// UInt64 bitmap of hashed values.
    case bits64

    /// Bytes per bucket.
    var width: Int {
        switch self {
        case .count8: 1
        case .count16: 2
        case .sum32, .min32, .max32: 4
        case .bits64: 8
        }
    }
}

/// A ring of buckets at some resolution inside a customer record. Bucket `b` lives at position `b mod length`;
/// the ring holds buckets `(head - length, head]` where head = floor(newest event time / resolution).
struct BucketRing: Sendable {
    /// Byte offset of bucket position 0 in the record.
    let offset: Int
    let cell: BucketCell
    /// Buckets in the ring: the longest window reading it.
    let length: Int64
    /// Index of the ring's resolution group.
    let group: Int
    /// Bucket width.
    let resolution: Divisor
    /// `length`, for positions.
    let positions: Divisor

    init(offset: Int, cell: BucketCell, length: Int64, group: Int, resolution: Divisor) {
        self.offset = offset
        self.cell = cell
        self.length = max(length, 1)
        self.group = group
        self.resolution = resolution
        positions = Divisor(self.length)
    }

    /// A placeholder for readers and updaters that use no ring.
    static let none = BucketRing(offset: 0, cell: .count8, length: 1, group: 0, resolution: Divisor(1))

    /// Empties every bucket (cold path: fresh records).
    func clearAll(_ record: UnsafeMutableRawPointer) {
        withUnsafePointer(to: self) { Self.clear($0, record, from: 0, count: Int(length)) }
    }

    /// Empties buckets `old + 1 ... new` of the ring at `ring` (every bucket when that is the whole ring or
    /// more), as its head moves from `old` to `new`.
    @inline(__always)
    static func advance(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeMutableRawPointer, from old: Int64, to new: Int64) {
        let length = ring.pointee.length
        let passed = new &- old
        if passed >= length {
            clear(ring, record, from: 0, count: Int(length))
            return
        }
        let start = Int(ring.pointee.positions.floorMod(old &+ 1))
        let first = min(Int(passed), Int(length) - start)
        clear(ring, record, from: start, count: first)
        clear(ring, record, from: 0, count: Int(passed) - first)
    }

    @inline(__always)
    private static func clear(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeMutableRawPointer, from position: Int, count: Int) {
        guard count > 0 else { return }
        let cell = ring.pointee.cell
        let base = record + ring.pointee.offset + position * cell.width
        // One bucket is the common case (the clock moved on by one step): a plain store, no memset call.
        switch cell {
        case .count8:
            if count == 1 { base.storeBytes(of: 0, as: UInt8.self) } else { base.initializeMemory(as: UInt8.self, repeating: 0, count: count) }
        case .count16:
            if count == 1 { base.storeBytes(of: 0, as: UInt16.self) } else { base.initializeMemory(as: UInt16.self, repeating: 0, count: count) }
        case .sum32:
            if count == 1 { base.storeBytes(of: 0, as: Float32.self) } else { base.initializeMemory(as: Float32.self, repeating: 0, count: count) }
        case .bits64:
            if count == 1 { base.storeBytes(of: 0, as: UInt64.self) } else { base.initializeMemory(as: UInt64.self, repeating: 0, count: count) }
        case .min32:
            base.initializeMemory(as: Float32.self, repeating: .infinity, count: count)
        case .max32:
            base.initializeMemory(as: Float32.self, repeating: -.infinity, count: count)
        }
    }

    /// The ring positions of the buckets of a window of `buckets` ending at bucket `nows[group]` that the
    /// ring at `ring` holds (it holds `(head - length, head]`, head = `heads[group]`).
    @inline(__always)
    static func span(_ ring: UnsafePointer<BucketRing>, buckets: Int64, nows: UnsafePointer<Int64>,
                     heads: UnsafePointer<Int64>) -> BucketSpan {
        let group = ring.pointee.group
        let length = ring.pointee.length
        let now = nows[group]
        let head = heads[group]
        let low = max(now &- buckets &+ 1, head &- length &+ 1)
        let high = min(now, head)
        guard low <= high else { return BucketSpan(start: 0, first: 0, second: 0) }
        let count = Int(high &- low &+ 1)
        let start = Int(ring.pointee.positions.floorMod(low))
        let first = min(count, Int(length) - start)
        return BucketSpan(start: start, first: first, second: count - first)
    }
}

/// Where a window's buckets sit in a ring: `first` from position `start`, then `second` from position 0.
struct BucketSpan {
    let start: Int
    let first: Int
    let second: Int
}

/// A stream's "ever matched" bit, so windowed features can tell "never" (missing) from "not lately" (0).
struct SeenBit: Sendable {
    let offset: Int
    /// 0: no bit (readers treat it as seen, updaters set nothing).
    let mask: UInt8

    static let none = SeenBit(offset: 0, mask: 0)

    @inline(__always)
    func set(_ record: UnsafeMutableRawPointer) {
        guard mask != 0 else { return }
        let byte = record.load(fromByteOffset: offset, as: UInt8.self)
        record.storeBytes(of: byte | mask, toByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    func isSet(_ record: UnsafeRawPointer) -> Bool {
        mask == 0 || record.load(fromByteOffset: offset, as: UInt8.self) & mask != 0
    }
}
