#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a feature's value is read from the customer record.
enum ReadOperation: UInt8, Sendable {
    case windowCount, windowSum, windowMinimum, windowMaximum, windowAverage, windowDistinct
    case lifetimeCount, lifetimeSum, lifetimeMinimum, lifetimeMaximum, lifetimeAverage, lifetimeDistinct
    case last, timeSinceLast, gauge, derived
}

/// One feature compiled to a read of the record: which ring or scalar, which window, missing value and cap.
struct FeatureReader: Sendable {
    var operation: ReadOperation = .derived
    /// Windowed: index of the ring read in the table's ring list (averages: the sum ring).
    var ring: Int32 = 0
    /// Averages: index of the count ring.
    var secondRing: Int32 = 0
    /// Window length in buckets (B).
    let buckets: Int64
    /// Scalar offset (averages: the sum).
    var offset = 0
    /// Averages: the count.
    var secondOffset = 0
    var seen: SeenBit = .none
    /// The window's bucket width, for `last` and `timeSinceLast` (1 for lifetime, where `buckets` is 0).
    let window: Divisor
    let missingValue: Double
    let cap: Double
    /// Derived: `program[programStart ..< programEnd]`.
    var programStart: Int32 = 0
    var programEnd: Int32 = 0

    static let dayMillis = Double(FeatureWindow.dayMillis)
    /// Linear counting's bitmap size.
    static let bitmapBits = 64.0

    init(_ definition: FeatureDefinition) {
        let windowed = !definition.window.isLifetime
        // Sanitized so that even an unvalidated definition cannot divide by zero.
        let resolution = windowed ? max(definition.window.resolutionMillis, 1) : 1
        window = Divisor(resolution)
        buckets = windowed ? max(definition.window.durationMillis / resolution, 1) : 0
        missingValue = definition.missingValue
        cap = definition.cap ?? .infinity
    }

    /// The value of the reader at `reader` (by address: a method call on the struct in a buffer would copy
    /// it first) at `time` (clamped), before derived features. `nows` and `heads` hold floor(time / r) and
    /// floor(newest / r) per resolution group; `rings` is the table's ring list.
    @inline(__always)
    static func value(_ reader: UnsafePointer<FeatureReader>, of record: UnsafeRawPointer, at time: Int64,
                      nows: UnsafePointer<Int64>, heads: UnsafePointer<Int64>, rings: UnsafePointer<BucketRing>) -> Double {
        let missing = reader.pointee.missingValue
        let cap = reader.pointee.cap
        let buckets = reader.pointee.buckets
        let offset = reader.pointee.offset
        switch reader.pointee.operation {
        case .windowCount:
            guard reader.pointee.seen.isSet(record) else { return missing }
            let ring = rings + Int(reader.pointee.ring)
            return min(Double(countSum(ring, record, BucketRing.span(ring, buckets: buckets, nows: nows, heads: heads))), cap)
        case .windowSum:
            guard reader.pointee.seen.isSet(record) else { return missing }
            let ring = rings + Int(reader.pointee.ring)
            return min(floatSum(ring, record, BucketRing.span(ring, buckets: buckets, nows: nows, heads: heads)), cap)
        case .windowMinimum, .windowMaximum:
            let ring = rings + Int(reader.pointee.ring)
            let extreme = self.extreme(ring, record, BucketRing.span(ring, buckets: buckets, nows: nows, heads: heads),
                                       minimum: reader.pointee.operation == .windowMinimum)
            return extreme.isFinite ? min(Double(extreme), cap) : missing
        case .windowAverage:
            let sums = rings + Int(reader.pointee.ring)
            let counts = rings + Int(reader.pointee.secondRing)
            let count = countSum(counts, record, BucketRing.span(counts, buckets: buckets, nows: nows, heads: heads))
            guard count > 0 else { return missing }
            return min(floatSum(sums, record, BucketRing.span(sums, buckets: buckets, nows: nows, heads: heads)) / Double(count), cap)
        case .windowDistinct:
            guard reader.pointee.seen.isSet(record) else { return missing }
            let ring = rings + Int(reader.pointee.ring)
            return min(distinctEstimate(union(ring, record, BucketRing.span(ring, buckets: buckets, nows: nows, heads: heads))), cap)
        case .lifetimeCount:
            let count = record.load(fromByteOffset: offset, as: UInt32.self)
            return count == 0 ? missing : min(Double(count), cap)
        case .lifetimeSum, .lifetimeMinimum, .lifetimeMaximum:
            let value = record.load(fromByteOffset: offset, as: Double.self)
            return value.isNaN ? missing : min(value, cap)
        case .lifetimeAverage:
            let count = record.load(fromByteOffset: reader.pointee.secondOffset, as: UInt32.self)
            guard count > 0 else { return missing }
            return min(record.load(fromByteOffset: offset, as: Double.self) / Double(count), cap)
        case .lifetimeDistinct:
            guard reader.pointee.seen.isSet(record) else { return missing }
            return min(distinctEstimate(record.load(fromByteOffset: offset, as: UInt64.self)), cap)
        case .last:
            let seenAt = record.load(fromByteOffset: offset, as: Int64.self)
            guard seenAt != .min, inWindow(reader, seenAt, at: time) else { return missing }
            return min(record.load(fromByteOffset: offset + 8, as: Double.self), cap)
        case .timeSinceLast:
            let seenAt = record.load(fromByteOffset: offset, as: Int64.self)
            guard seenAt != .min, inWindow(reader, seenAt, at: time) else { return missing }
            return min(Double(max(time - seenAt, 0)) / dayMillis, cap)
        case .gauge:
            let level = record.load(fromByteOffset: offset, as: UInt16.self)
            return level == StateUpdater.gaugeNever ? missing : min(Double(level), cap)
        case .derived:
            return missing // computed afterwards from the other values
        }
    }

    /// Whether an event at `eventTime` falls in the reader's window at `time`; always true for lifetime.
    @inline(__always)
    private static func inWindow(_ reader: UnsafePointer<FeatureReader>, _ eventTime: Int64, at time: Int64) -> Bool {
        let buckets = reader.pointee.buckets
        guard buckets > 0 else { return true }
        let bucket = reader.pointee.window.floorDiv(eventTime)
        let now = reader.pointee.window.floorDiv(time)
        return bucket > now &- buckets && bucket <= now
    }

    /// Linear counting: the number of values whose expected count of clear bits is the observed one,
    /// ln(z / 64) / ln(63 / 64) for z clear bits (z = 1 when none is clear).
    @inline(__always)
    static func distinctEstimate(_ bits: UInt64) -> Double {
        guard bits != 0 else { return 0 } // not -0.0
        let zeros = Double(max(64 - bits.nonzeroBitCount, 1))
        return log(zeros / bitmapBits) / logOneBitClear
    }

    /// ln(63 / 64): the log-probability that one value leaves a given bit clear.
    static let logOneBitClear = log(63.0 / 64.0)

    // MARK: Folding a window's buckets

    @inline(__always)
    private static func countSum(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeRawPointer, _ span: BucketSpan) -> Int {
        let base = record + ring.pointee.offset
        if ring.pointee.cell == .count8 {
            let cells = base.assumingMemoryBound(to: UInt8.self)
            return sum(cells + span.start, span.first) &+ sum(cells, span.second)
        }
        let cells = base.assumingMemoryBound(to: UInt16.self)
        return sum(cells + span.start, span.first) &+ sum(cells, span.second)
    }

    @inline(__always)
    private static func sum<T: FixedWidthInteger>(_ cells: UnsafePointer<T>, _ count: Int) -> Int {
        var total = 0
        for index in 0..<count { total &+= Int(cells[index]) }
        return total
    }

    @inline(__always)
    private static func floatSum(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeRawPointer, _ span: BucketSpan) -> Double {
        let cells = (record + ring.pointee.offset).assumingMemoryBound(to: Float32.self)
        var total = 0.0
        for index in 0..<span.first { total += Double(cells[span.start + index]) }
        for index in 0..<span.second { total += Double(cells[index]) }
        return total
    }

    @inline(__always)
    private static func extreme(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeRawPointer, _ span: BucketSpan,
                                minimum: Bool) -> Float32 {
        let cells = (record + ring.pointee.offset).assumingMemoryBound(to: Float32.self)
        var result: Float32 = minimum ? .infinity : -.infinity
        for index in 0..<span.first { result = minimum ? min(result, cells[span.start + index]) : max(result, cells[span.start + index]) }
        for index in 0..<span.second { result = minimum ? min(result, cells[index]) : max(result, cells[index]) }
        return result
    }

    @inline(__always)
    private static func union(_ ring: UnsafePointer<BucketRing>, _ record: UnsafeRawPointer, _ span: BucketSpan) -> UInt64 {
        let cells = (record + ring.pointee.offset).assumingMemoryBound(to: UInt64.self)
        var bits: UInt64 = 0
        for index in 0..<span.first { bits |= cells[span.start + index] }
        for index in 0..<span.second { bits |= cells[index] }
        return bits
    }
}

/// Runs derived features' postfix programs over the values already evaluated.
enum ExpressionMachine {
    /// Evaluates `program[start ..< end]` with `stack` (deep enough: ``FeatureLayout/stackDepth``);
    /// NaN when the program is empty.
    @inline(__always)
    static func run(_ program: UnsafeMutablePointer<ExpressionStep>, from start: Int, to end: Int,
                    values: UnsafeMutableBufferPointer<Double>, stack: UnsafeMutablePointer<Double>) -> Double {
        var top = 0 // number of values on the stack
        for index in start..<end {
            let step = program[index]
            switch step.operation {
            case .constant: stack[top] = step.constant; top += 1
            case .feature: stack[top] = values[Int(step.index)]; top += 1
            case .add: top -= 1; stack[top - 1] += stack[top]
            case .subtract: top -= 1; stack[top - 1] -= stack[top]
            case .multiply: top -= 1; stack[top - 1] *= stack[top]
            case .divide: top -= 1; stack[top - 1] /= stack[top]
            // Missing (NaN) in either argument is missing out: Swift.min(1, .nan) would be 1.
            case .min: top -= 1; stack[top - 1] = stack[top].isNaN ? .nan : Swift.min(stack[top - 1], stack[top])
            case .max: top -= 1; stack[top - 1] = stack[top].isNaN ? .nan : Swift.max(stack[top - 1], stack[top])
            case .negate: stack[top - 1] = -stack[top - 1]
            case .abs: stack[top - 1] = Swift.abs(stack[top - 1])
            case .log1p: stack[top - 1] = log1p(stack[top - 1])
            case .sqrt: stack[top - 1] = stack[top - 1].squareRoot()
            }
        }
        return top > 0 ? stack[top - 1] : .nan
    }
}
