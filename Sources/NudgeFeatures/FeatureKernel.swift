import NudgeEvents

/// One compiled feature: how it folds an event into a customer record and reads its value back.
///
/// Plain data (masks, offsets, numbers) so the per-event loop over kernels touches no heap object.
struct FeatureKernel: Sendable {
    enum Operation: UInt8, Sendable {
        case windowCount, windowSum, lifetimeCount, lifetimeSum, last, timeSinceLast, openCount, netCount
    }

    let operation: Operation
    /// Kinds that match (gauges: add one).
    let kinds: ByteSet
    /// Kinds that take one away from a gauge.
    let minusKinds: ByteSet
    /// Kinds that reset a gauge to 0.
    let resetKinds: ByteSet
    /// Any kind this feature reacts to: a quick reject for the rest.
    let interest: ByteSet
    let channels: ByteSet
    /// Offset of the 8-byte state (ring head, value or time); `last` keeps its value at +8.
    let stateOffset: Int
    /// Offset of the Float32 ring (windowed count/sum only).
    let ringOffset: Int
    /// Ring length B; for `last`/`timeSinceLast` with a window, the window's B.
    let buckets: Int64
    /// Bucket width r; 0 for lifetime.
    let resolution: Int64
    let missingValue: Double
    let cap: Double

    static let dayMillis = Double(FeatureWindow.dayMillis)

    init(_ definition: FeatureDefinition, stateOffset: Int, ringOffset: Int) {
        let windowed = !definition.window.isLifetime
        switch definition.aggregation {
        case .count: operation = windowed ? .windowCount : .lifetimeCount
        case .sum: operation = windowed ? .windowSum : .lifetimeSum
        case .last: operation = .last
        case .timeSinceLast: operation = .timeSinceLast
        case .openCount: operation = .openCount
        case .netCount: operation = .netCount
        }
        var minus: Set<EventKind> = []
        var resets: Set<EventKind> = []
        switch definition.aggregation {
        case .openCount(let closes): minus = closes
        case .netCount(let removes, let resetting): minus = removes; resets = resetting
        default: break
        }
        kinds = definition.filter.kindMask
        minusKinds = ByteSet(minus.map(\.rawValue))
        resetKinds = ByteSet(resets.map(\.rawValue))
        interest = ByteSet((definition.filter.kinds.union(minus).union(resets)).map(\.rawValue))
        channels = definition.filter.channelMask
        self.stateOffset = stateOffset
        self.ringOffset = ringOffset
        // Sanitized so that even an unvalidated definition cannot divide by zero or size a negative ring.
        resolution = windowed ? max(definition.window.resolutionMillis, 1) : 0
        buckets = windowed ? max(definition.window.durationMillis / resolution, 1) : 0
        missingValue = definition.missingValue
        cap = definition.cap ?? .infinity
    }

    /// Bytes of 8-byte-aligned state this definition needs.
    static func stateBytes(for definition: FeatureDefinition) -> Int {
        definition.aggregation == .last ? 16 : 8
    }

    /// Bytes of Float32 ring this kernel needs.
    var ringBytes: Int {
        switch operation {
        case .windowCount, .windowSum: Int(buckets) * MemoryLayout<Float32>.stride
        default: 0
        }
    }

    /// Writes the "never seen" state into a fresh record (rings are already zero).
    func initialize(_ record: UnsafeMutableRawPointer) {
        switch operation {
        case .windowCount, .windowSum, .last, .timeSinceLast:
            record.storeBytes(of: Int64.min, toByteOffset: stateOffset, as: Int64.self)
        case .lifetimeCount:
            record.storeBytes(of: 0.0, toByteOffset: stateOffset, as: Double.self)
        case .lifetimeSum:
            record.storeBytes(of: Double.nan, toByteOffset: stateOffset, as: Double.self)
        case .openCount, .netCount:
            record.storeBytes(of: Int64(-1), toByteOffset: stateOffset, as: Int64.self)
        }
    }

    // MARK: Folding events

    /// Folds one event (time already clamped) into `record`.
    @inline(__always)
    func apply(kind: UInt8, channel: UInt8, time: Int64, event: SegmentEvent, to record: UnsafeMutableRawPointer) {
        guard interest.contains(kind), channels.contains(channel) else { return }
        switch operation {
        case .windowCount:
            addToRing(1, at: time, record)
        case .windowSum:
            addToRing(Float32(Self.finite(event.amount)), at: time, record)
        case .lifetimeCount:
            let value = record.load(fromByteOffset: stateOffset, as: Double.self)
            record.storeBytes(of: value + 1, toByteOffset: stateOffset, as: Double.self)
        case .lifetimeSum:
            let value = record.load(fromByteOffset: stateOffset, as: Double.self)
            let sum = (value.isNaN ? 0 : value) + Self.finite(event.amount)
            record.storeBytes(of: sum, toByteOffset: stateOffset, as: Double.self)
        case .last:
            let score = event.score
            guard score.isFinite, time >= record.load(fromByteOffset: stateOffset, as: Int64.self) else { return }
            record.storeBytes(of: time, toByteOffset: stateOffset, as: Int64.self)
            record.storeBytes(of: score, toByteOffset: stateOffset + 8, as: Double.self)
        case .timeSinceLast:
            if time > record.load(fromByteOffset: stateOffset, as: Int64.self) {
                record.storeBytes(of: time, toByteOffset: stateOffset, as: Int64.self)
            }
        case .openCount, .netCount:
            let level = max(record.load(fromByteOffset: stateOffset, as: Int64.self), 0)
            let next: Int64
            if kinds.contains(kind) {
                next = level + 1
            } else if minusKinds.contains(kind) {
                next = max(level - 1, 0)
            } else {
                next = 0 // a reset kind: the only other kind of interest
            }
            record.storeBytes(of: next, toByteOffset: stateOffset, as: Int64.self)
        }
    }

    /// Adds `amount` to the bucket of `time`, advancing the ring (and zeroing the buckets it passes) when
    /// `time` is newer than its head; a time at or before head - B has left the ring and is dropped.
    @inline(__always)
    private func addToRing(_ amount: Float32, at time: Int64, _ record: UnsafeMutableRawPointer) {
        let bucket = BucketMath.floorDiv(time, resolution)
        let head = record.load(fromByteOffset: stateOffset, as: Int64.self)
        let ring = (record + ringOffset).assumingMemoryBound(to: Float32.self)
        if head == .min || bucket - head >= buckets {
            ring.update(repeating: 0, count: Int(buckets))
            record.storeBytes(of: bucket, toByteOffset: stateOffset, as: Int64.self)
        } else if bucket > head {
            var index = BucketMath.floorMod(head, buckets)
            for _ in 0..<(bucket - head) {
                index += 1
                if index == buckets { index = 0 }
                ring[Int(index)] = 0
            }
            record.storeBytes(of: bucket, toByteOffset: stateOffset, as: Int64.self)
        } else if bucket <= head - buckets {
            return
        }
        ring[Int(BucketMath.floorMod(bucket, buckets))] += amount
    }

    // MARK: Reading values

    /// The feature's value at `time` (already clamped), capped, or `missingValue`.
    @inline(__always)
    func value(of record: UnsafeRawPointer, at time: Int64) -> Double {
        switch operation {
        case .windowCount, .windowSum:
            let head = record.load(fromByteOffset: stateOffset, as: Int64.self)
            guard head != .min else { return missingValue }
            return min(ringSum(record, head: head, at: time), cap)
        case .lifetimeCount:
            let value = record.load(fromByteOffset: stateOffset, as: Double.self)
            return value == 0 ? missingValue : min(value, cap)
        case .lifetimeSum:
            let value = record.load(fromByteOffset: stateOffset, as: Double.self)
            return value.isNaN ? missingValue : min(value, cap)
        case .last:
            let seen = record.load(fromByteOffset: stateOffset, as: Int64.self)
            guard seen != .min, inWindow(seen, at: time) else { return missingValue }
            return min(record.load(fromByteOffset: stateOffset + 8, as: Double.self), cap)
        case .timeSinceLast:
            let seen = record.load(fromByteOffset: stateOffset, as: Int64.self)
            guard seen != .min, inWindow(seen, at: time) else { return missingValue }
            return min(Double(max(time - seen, 0)) / Self.dayMillis, cap)
        case .openCount, .netCount:
            let level = record.load(fromByteOffset: stateOffset, as: Int64.self)
            return level < 0 ? missingValue : min(Double(level), cap)
        }
    }

    /// Sum of the buckets in (floor(t/r) - B, floor(t/r)] that the ring still holds: (head - B, head].
    /// They are at most two contiguous runs of the ring (before and after its wrap point).
    @inline(__always)
    private func ringSum(_ record: UnsafeRawPointer, head: Int64, at time: Int64) -> Double {
        let now = BucketMath.floorDiv(time, resolution)
        let low = max(now, head) - buckets + 1
        let high = min(now, head)
        guard low <= high else { return 0 }
        let ring = (record + ringOffset).assumingMemoryBound(to: Float32.self)
        let count = Int(high - low + 1)
        let start = Int(BucketMath.floorMod(low, buckets))
        let firstRun = min(count, Int(buckets) - start)
        return Self.sum(ring + start, firstRun) + Self.sum(ring, count - firstRun)
    }

    /// Sum of `count` floats in Double, four independent accumulators so the adds pipeline.
    @inline(__always)
    private static func sum(_ values: UnsafePointer<Float32>, _ count: Int) -> Double {
        var (a, b, c, d) = (0.0, 0.0, 0.0, 0.0)
        var index = 0
        while index + 4 <= count {
            a += Double(values[index])
            b += Double(values[index + 1])
            c += Double(values[index + 2])
            d += Double(values[index + 3])
            index += 4
        }
        while index < count {
            a += Double(values[index])
            index += 1
        }
        return (a + b) + (c + d)
    }

    /// Whether an event at `eventTime` falls in the window at `time`; always true for lifetime.
    @inline(__always)
    private func inWindow(_ eventTime: Int64, at time: Int64) -> Bool {
        guard resolution > 0 else { return true }
        let bucket = BucketMath.floorDiv(eventTime, resolution)
        let now = BucketMath.floorDiv(time, resolution)
        return bucket > now - buckets && bucket <= now
    }

    @inline(__always)
    private static func finite(_ amount: Double) -> Double { amount.isFinite ? amount : 0 }
}
