import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): expands one 64-bit seed into well-mixed words.
///
/// Used only to seed ``Xoshiro256StarStar`` (its authors' recommendation: a raw seed such as 42 has
/// too few set bits to start xoshiro directly) and to derive fixed, seed-independent values; the tests
/// use it as their seeded generator.
public struct SplitMix64: RandomNumberGenerator {
    /// The generator's one word of state.
    public var state: UInt64

    /// A generator whose first state is `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next word.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the generator's source of randomness.
///
/// Why not `SystemRandomNumberGenerator`: it cannot be seeded, and the traffic must be reproducible
/// byte for byte from `TrafficConfig.seed`. xoshiro256** is a few instructions per draw, passes
/// BigCrush, and its state is four words, so it lives inline in the generator with no allocation.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Seeds the four state words from SplitMix64; `stream` separates independent generators
    /// drawn from the same user seed (the simulated world and the injected noise).
    init(seed: UInt64, stream: UInt64 = 0) {
        var mixer = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
        // The all-zero state is the one state xoshiro never leaves; SplitMix64 practically never
        // produces it, but a fixed non-zero word keeps the guarantee unconditional.
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let shifted = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= shifted
        s3 = rotateLeft(s3, 45)
        return result
    }

    @inline(__always)
    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 &- k))
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    @inline(__always)
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// True with probability `p` (p <= 0 never, p >= 1 always).
    @inline(__always)
    mutating func chance(_ p: Double) -> Bool {
        unit() < p
    }

    /// Uniform in 0..<n by the multiply-high method (Lemire); the bias is below n/2^64, far
    /// beneath anything a traffic simulation can show. Returns 0 when n <= 0.
    @inline(__always)
    mutating func below(_ n: Int) -> Int {
        guard n > 0 else { return 0 }
        return Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Uniform in lo..<hi (lo when the range is empty).
    @inline(__always)
    mutating func between(_ lo: Int64, _ hi: Int64) -> Int64 {
        guard hi > lo else { return lo }
        let span = UInt64(bitPattern: hi &- lo)
        return lo &+ Int64(bitPattern: next().multipliedFullWidth(by: span).high)
    }

    /// Exponentially distributed with the given mean (inverse CDF; 1 - u is in (0, 1], so log is finite).
    @inline(__always)
    mutating func exponential(mean: Double) -> Double {
        -mean * log(1.0 - unit())
    }

    /// A duration in milliseconds: `minimum` plus an exponential tail of mean `mean` (both in ms).
    @inline(__always)
    mutating func delay(minimum: Int64, mean: Double) -> Int64 {
        let tail = exponential(mean: mean)
        // Clamp so a freak draw cannot overflow Int64 arithmetic on event times.
        return minimum &+ Int64(min(tail, 1.0e12))
    }

    /// Index drawn from cumulative weights (last entry is the total); the last index if rounding leaves a gap.
    @inline(__always)
    mutating func pick(cumulative weights: [Double]) -> Int {
        guard let total = weights.last else { return 0 }
        let target = unit() * total
        for (index, bound) in weights.enumerated() where target < bound {
            return index
        }
        return weights.count - 1
    }
}

/// Running sums of plain weights, the form `Xoshiro256StarStar.pick(cumulative:)` expects.
func cumulativeWeights(_ weights: [Double]) -> [Double] {
    var running = 0.0
    return weights.map { weight in
        running += max(0, weight)
        return running
    }
}
