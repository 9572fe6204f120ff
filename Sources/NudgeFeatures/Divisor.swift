/// Floor division and floor modulo by a fixed positive divisor, by one multiply-high instead of a hardware
/// divide: every event divides its time by each window resolution and its bucket by each ring length.
///
/// Accepts values within ±``limit`` (clamped times, the bucket numbers derived from them and a ring's length
/// either side). Method (Granlund & Montgomery 1994, theorem 4.2): a value is shifted by a multiple of `d`
/// into `n` in [0, 2^55), where floor(n / d) = floor(n · m / 2^ℓ) for ℓ = max(64, 55 + ⌈log2 d⌉) and
/// m = ⌈2^ℓ / d⌉, because m·d − 2^ℓ < d ≤ 2^(ℓ − 55). Divisors of 1 and above 2^40 (35 years in
/// milliseconds) skip the multiply.
struct Divisor: Sendable, Equatable {
    /// The divisor, at least 1.
    let value: Int64
    private let magic: UInt64
    /// ℓ − 64.
    private let shift: UInt64
    /// A multiple of `value` at least ``limit``, added so the dividend is never negative.
    private let bias: Int64
    private let biasQuotient: Int64
    private let path: Path

    // Not private: a private type prints with its address in `FeatureSet.recordFormat`, which must be the
    // same in every process.
    enum Path: UInt8, Sendable { case multiply, identity, divide }

    /// Largest magnitude accepted: clamped times (2^53) plus room for window arithmetic around them.
    static let limit: Int64 = (1 << 53) + (1 << 20)

    init(_ divisor: Int64) {
        let d = max(divisor, 1)
        value = d
        if d == 1 {
            (magic, shift, bias, biasQuotient, path) = (0, 0, 0, 0, .identity)
        } else if d > 1 << 40 {
            (magic, shift, bias, biasQuotient, path) = (0, 0, 0, 0, .divide)
        } else {
            let log2Ceiling = UInt64(64 - (d - 1).leadingZeroBitCount)
            let ell = max(64, 55 + log2Ceiling)
            let dividend = (high: UInt64(1) << (ell - 64), low: UInt64(0))
            let (quotient, remainder) = UInt64(d).dividingFullWidth(dividend)
            magic = remainder == 0 ? quotient : quotient + 1
            shift = ell - 64
            let quotientOfBias = (Self.limit + d - 1) / d
            bias = quotientOfBias * d
            biasQuotient = quotientOfBias
            path = .multiply
        }
    }

    /// floor(x / value), also for negative x.
    @inline(__always)
    func floorDiv(_ x: Int64) -> Int64 {
        switch path {
        case .multiply:
            let n = UInt64(bitPattern: x &+ bias)
            return Int64(bitPattern: n.multipliedFullWidth(by: magic).high >> shift) &- biasQuotient
        case .identity:
            return x
        case .divide:
            return BucketMath.floorDiv(x, value)
        }
    }

    /// x mod value, in 0..<value.
    @inline(__always)
    func floorMod(_ x: Int64) -> Int64 { x &- floorDiv(x) &* value }
}
