/// The fixed header at the start of every full customer record (and, for its first 21 bytes, of every
/// ``CustomerEntry``) in a ``CustomerTable``.
///
/// The entry holds the customer's identity location, so entries, records and the identity arena are the
/// whole state: the hash index is rebuilt by hashing the ids again. A full record's id fields are unused;
/// they stay so that entries, records and their free lists share one header layout. Feature state
/// follows, packed by ``FeatureLayout``.
enum CustomerRecord {
    /// Int64: newest event time applied, `Int64.min` before the first event. Every window's ring is
    /// advanced to this time, so it is also the head of every ring (see ``FeatureLayout``).
    static let newestMillis = 0
    /// Int64: byte offset of the customer id in the identity arena.
    static let idOffset = 8
    /// UInt32: length of the customer id in bytes.
    static let idLength = 16
    /// UInt8: raw value of the channel of the newest event, ``noChannel`` before any event.
    static let channel = 20
    /// Bytes before the first feature field (fields are packed from here, aligned to their size).
    static let headerSize = 21

    /// The `channel` byte of a customer with no event yet (channel raw values are small).
    static let noChannel: UInt8 = 0xFF

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
