import NudgeEvents

/// A customer's whole feature state lifted out of a ``CustomerTable`` by ``CustomerTable/detach(_:)``, to be
/// folded into another customer with ``CustomerTable/merge(_:into:)`` (identity stitching: an anonymous
/// visitor's history becomes the known customer's). A plain value: it may cross threads to the shard that
/// owns the other customer, and only a table with the same ``FeatureSet`` can merge it.
public struct DetachedCustomer: Sendable {
    /// The record bytes (the layout's stride); the id fields of the header are meaningless here.
    public let record: [UInt8]

    /// State as bytes from another process (the identity topic), or nil when its header is not one a table
    /// writes: a channel byte that is no channel (it could mark the target's slot free), or a newest time
    /// beyond the ±2^53 ms clamp. A record of another stride is ignored by ``CustomerTable/merge(_:into:)``.
    public init?(validating record: [UInt8]) {
        guard record.count >= CustomerRecord.headerSize else { return nil }
        let (newest, channel) = record.withUnsafeBytes {
            ($0.loadUnaligned(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self), $0[CustomerRecord.channel])
        }
        guard newest == .min || (-CustomerRecord.timeLimit...CustomerRecord.timeLimit).contains(newest),
              channel == CustomerRecord.noChannel || Channel(rawValue: channel) != nil else { return nil }
        self.record = record
    }

    init(record: [UInt8]) { self.record = record }

    /// Newest event time in the detached state; `Int64.min` if it had no event.
    public var newestEventMillis: Int64 {
        record.withUnsafeBytes { $0.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self) }
    }
}

/// How two records of one layout fold into one, aggregation by aggregation, so that the result is what the
/// table would hold had it seen both customers' events as one customer's:
/// - rings: both are first advanced to the newer of the two newest times (buckets that leave the ring are
///   outside every window read from then on); then counts add (saturating, as a bucket does), sums add,
///   minima and maxima take the extreme, distinct-count bitmaps OR;
/// - lifetime counts and sums add, minima and maxima take the extreme, bitmaps OR, "ever matched" bits OR;
/// - `last` and latest times take the newer; on equal times the target's stays (the source's events count
///   as the earlier arrivals);
/// - gauges (open and net counts) add: open tickets and cart items of both identities;
/// - header: the newer newest time and its channel (ties: the target's).
enum RecordMerge {
    /// Folds the ring cells of `source` into `target`; both rings already advanced to the same head. One loop
    /// per cell kind: the kind is the ring's, not the bucket's.
    static func combineRing(_ ring: BucketRing, _ source: UnsafeRawPointer, into target: UnsafeMutableRawPointer) {
        let count = Int(ring.length)
        let from = source + ring.offset
        let to = target + ring.offset
        func fold<T: BitwiseCopyable>(_ type: T.Type, _ combine: (T, T) -> T) {
            for offset in stride(from: 0, to: count * MemoryLayout<T>.stride, by: MemoryLayout<T>.stride) {
                to.storeBytes(of: combine(to.load(fromByteOffset: offset, as: T.self), from.load(fromByteOffset: offset, as: T.self)),
                              toByteOffset: offset, as: T.self)
            }
        }
        switch ring.cell {
        case .count8: fold(UInt8.self) { let (sum, over) = $0.addingReportingOverflow($1); return over ? .max : sum }
        case .count16: fold(UInt16.self) { let (sum, over) = $0.addingReportingOverflow($1); return over ? .max : sum }
        case .sum32: fold(Float32.self) { $0 + $1 }
        case .min32: fold(Float32.self) { min($0, $1) }
        case .max32: fold(Float32.self) { max($0, $1) }
        case .bits64: fold(UInt64.self) { $0 | $1 }
        }
    }

    /// Folds the scalar state of `updater` (if it owns scalar state) and its "ever matched" bit.
    static func combineScalar(_ updater: StateUpdater, _ source: UnsafeRawPointer, into target: UnsafeMutableRawPointer) {
        if updater.seen.mask != 0 && updater.seen.isSet(source) { updater.seen.set(target) }
        let offset = updater.offset
        switch updater.operation {
        case .ringCount8, .ringCount16, .ringFiniteCount, .ringSum, .ringMinimum, .ringMaximum, .ringBits:
            return  // rings are combined whole
        case .lifetimeCount, .lifetimeFiniteCount:
            let sum = UInt64(target.load(fromByteOffset: offset, as: UInt32.self)) + UInt64(source.load(fromByteOffset: offset, as: UInt32.self))
            target.storeBytes(of: UInt32(min(sum, UInt64(UInt32.max))), toByteOffset: offset, as: UInt32.self)
        case .lifetimeSum:
            let (a, b) = (target.load(fromByteOffset: offset, as: Double.self), source.load(fromByteOffset: offset, as: Double.self))
            if !b.isNaN { target.storeBytes(of: (a.isNaN ? 0 : a) + b, toByteOffset: offset, as: Double.self) }
        case .lifetimeMinimum:
            let (a, b) = (target.load(fromByteOffset: offset, as: Double.self), source.load(fromByteOffset: offset, as: Double.self))
            if !b.isNaN, a.isNaN || b < a { target.storeBytes(of: b, toByteOffset: offset, as: Double.self) }
        case .lifetimeMaximum:
            let (a, b) = (target.load(fromByteOffset: offset, as: Double.self), source.load(fromByteOffset: offset, as: Double.self))
            if !b.isNaN, a.isNaN || b > a { target.storeBytes(of: b, toByteOffset: offset, as: Double.self) }
        case .lifetimeBits:
            target.storeBytes(of: target.load(fromByteOffset: offset, as: UInt64.self) | source.load(fromByteOffset: offset, as: UInt64.self),
                              toByteOffset: offset, as: UInt64.self)
        case .last:
            if source.load(fromByteOffset: offset, as: Int64.self) > target.load(fromByteOffset: offset, as: Int64.self) {
                (target + offset).copyMemory(from: source + offset, byteCount: 16)
            }
        case .latestTime:
            let (a, b) = (target.load(fromByteOffset: offset, as: Int64.self), source.load(fromByteOffset: offset, as: Int64.self))
            target.storeBytes(of: max(a, b), toByteOffset: offset, as: Int64.self)
        case .gauge:
            let a = target.load(fromByteOffset: offset, as: UInt16.self)
            let b = source.load(fromByteOffset: offset, as: UInt16.self)
            guard b != StateUpdater.gaugeNever else { return }
            let level = (a == StateUpdater.gaugeNever ? 0 : UInt32(a)) + UInt32(b)
            target.storeBytes(of: UInt16(min(level, UInt32(StateUpdater.gaugeLimit))), toByteOffset: offset, as: UInt16.self)
        }
    }
}
