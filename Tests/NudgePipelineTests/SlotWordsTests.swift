import Testing

@testable import NudgePipeline
@testable import NudgeTraffic

@Suite struct SlotWordsTests {
    /// Random writes, some far past the capacity (so the words grow several times, across the 2 MiB huge-page
    /// threshold), read back like a dictionary that holds zero for every slot never written.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func readsBackLikeADictionaryAcrossGrowth(seed: UInt64) {
        var random = Xoshiro256StarStar(seed: seed)
        var words = SlotWords()
        var reference: [Int: UInt32] = [:]
        for step in 0..<20_000 {
            // Mostly low slots, now and then one up to 2^20 (4 MiB of words).
            let slot = step % 50 == 0 ? Int(random.next() % (1 << 20)) : Int(random.next() % 4_096)
            let value = UInt32(truncatingIfNeeded: random.next())
            words.prefetch(slot)
            words.set(slot, to: value)
            reference[slot] = value
            let probe = Int(random.next() % (1 << 21))
            #expect(words[probe] == reference[probe] ?? 0, "step \(step), slot \(probe)")
        }
        for (slot, value) in reference { #expect(words[slot] == value) }
        #expect(words.capacity >= (reference.keys.max() ?? 0) + 1)
        #expect(words.bytesUsed == words.capacity * 4)
    }

    /// Slots outside the buffer read as zero and prefetching them is harmless.
    @Test func outsideSlotsReadZero() {
        let words = SlotWords()
        #expect(words.capacity == 1_024)
        for slot in [-1, Int.min, 1_024, Int.max] {
            words.prefetch(slot)
            #expect(words[slot] == 0)
        }
    }
}
