@testable import NudgeFeatures
import NudgeTraffic
import Testing

/// The multiply-high divisor against plain floor division, over its whole documented range.
@Suite struct DivisorTests {
    static let divisors: [Int64] = [1, 2, 3, 5, 7, 12, 15, 30, 255, 256, 257, 511, 512, 513, 1_000, 60_000, 300_000,
                                    3_600_000, 7_200_000, 43_200_000, 86_400_000, 259_200_000, 518_400_000, 604_800_000,
                                    (1 << 40) - 1, 1 << 40, (1 << 40) + 1, 1 << 50, Int64.max]

    @Test func matchesFloorDivisionEverywhere() {
        var random = SplitMix64(seed: 99)
        let limit = Divisor.limit
        for value in Self.divisors {
            let divisor = Divisor(value)
            var samples: [Int64] = [0, 1, -1, limit, -limit, limit - 1, -limit + 1, value, -value, value - 1, -value + 1,
                                    1 << 53, -(1 << 53), Time.t0, -Time.t0]
            for multiple in [Int64(1), 2, 1_000, 1 << 20] where value <= limit / multiple {
                samples += [value * multiple, value * multiple - 1, -value * multiple, -value * multiple + 1]
            }
            for _ in 0..<20_000 { samples.append(Int64.random(in: -limit...limit, using: &random)) }
            for _ in 0..<2_000 { samples.append(Int64.random(in: -100_000...100_000, using: &random)) }
            var wrong = 0
            for x in samples where divisor.floorDiv(x) != BucketMath.floorDiv(x, value)
                || divisor.floorMod(x) != BucketMath.floorMod(x, value) {
                wrong += 1
            }
            #expect(wrong == 0, "divisor \(value)")
        }
        #expect(Divisor(0).floorDiv(-7) == -7)     // sanitized to 1
        #expect(Divisor(-5).floorMod(12) == 0)
    }
}
