/// The fixed header at the start of every customer's record in a ``CustomerTable`` slab.
///
/// The record holds everything about the customer (identity location and hash included), so the slab plus
/// the identity arena is the whole state: the hash index can be rebuilt from the records, which keeps a
/// later snapshot a matter of compressing two contiguous buffers.
enum CustomerRecord {
    /// Int64: newest event time applied, `Int64.min` before the first event.
    static let newestMillis = 0
    /// Int64: byte offset of the customer id in the identity arena.
    static let idOffset = 8
    /// UInt64: nudgeHash64 of the customer id.
    static let idHash = 16
    /// UInt32: length of the customer id in bytes.
    static let idLength = 24
    /// UInt8: raw value of the channel of the newest event.
    static let channel = 28
    /// UInt8: 1 once `channel` holds a channel.
    static let hasChannel = 29
    /// Bytes before the first feature's state (8-aligned).
    static let headerSize = 32

    /// Event times are clamped to ±2^53 ms (±285,000 years) so bucket arithmetic can never overflow.
    static let timeLimit: Int64 = 1 << 53

    @inline(__always)
    static func clampTime(_ millis: Int64) -> Int64 { min(max(millis, -timeLimit), timeLimit) }
}

/// Bucket numbering shared by the live rings and anything that must agree with them.
enum BucketMath {
    /// floor(a / b) for b > 0, also for negative a (times before 1970).
    @inline(__always)
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && a < 0) ? q - 1 : q
    }

    /// a mod b in 0..<b for b > 0.
    @inline(__always)
    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r < 0 ? r + b : r
    }
}
