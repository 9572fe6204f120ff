import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing

/// The bounded duplicate filter. (`insert` is mutating, so results are taken before `#expect`.)
@Suite struct RecentMessageIDsTests {
    @Test func duplicatesWithinTheHorizonAreDetected() {
        let pool = TextPool()
        let horizon = 1_000
        var recent = RecentMessageIDs(horizon: horizon)
        var missedNew = 0
        var missedDuplicates = 0
        for number in 0..<10_000 {
            if !recent.insert(pool.text("msg-\(number)")) { missedNew += 1 }
            // Any of the `horizon` most recent ids is still remembered.
            let back = number - (number * 7919) % min(number + 1, horizon)
            if recent.insert(pool.text("msg-\(back)")) { missedDuplicates += 1 }
        }
        for number in (10_000 - horizon)..<10_000 where recent.insert(pool.text("msg-\(number)")) {
            missedDuplicates += 1
        }
        #expect(missedNew == 0)
        #expect(missedDuplicates == 0)
    }

    /// `remove` against a set: removed ids read as new again and every other id stays seen, in a table small
    /// enough that probe runs cluster and wrap around its end, across both generations.
    @Test func removedIdsReadAsNewAndTheRestStaySeen() {
        var random = SplitMix64(seed: 29)
        var wrong = 0
        for _ in 0..<2_000 {
            var recent = RecentMessageIDs(horizon: 8)  // 16 entries a generation
            // 12 ids: the first 8 move to the older generation, 4 stay in the current one.
            let ids = (0..<12).map { _ in random.next() }
            for id in ids { _ = recent.insert(hash: id) }
            let removed = Set(ids.filter { _ in Bool.random(using: &random) })
            for id in removed { recent.remove(hash: id) }
            recent.remove(hash: random.next())  // one it never held: nothing changes
            for id in ids where !removed.contains(id) {
                let seen = !recent.insert(hash: id)
                if !seen { wrong += 1 }
            }
            for id in removed {
                let new = recent.insert(hash: id)
                if !new { wrong += 1 }
            }
        }
        #expect(wrong == 0)
    }

    @Test func oldIdsAreForgottenAfterTwiceTheHorizon() {
        let pool = TextPool()
        var recent = RecentMessageIDs(horizon: 100)
        let firstIsNew = recent.insert(pool.text("first"))
        var fillersNew = 0
        for number in 0..<99 where recent.insert(pool.text("filler-\(number)")) { fillersNew += 1 }
        let rememberedWithinHorizon = !recent.insert(pool.text("first")) // a duplicate does not count as new
        for number in 99..<200 where recent.insert(pool.text("filler-\(number)")) { fillersNew += 1 }
        let forgottenAfterTwiceHorizon = recent.insert(pool.text("first"))
        #expect(firstIsNew)
        #expect(fillersNew == 200)
        #expect(rememberedWithinHorizon, "remembered while fewer than horizon newer ids")
        #expect(forgottenAfterTwiceHorizon, "forgotten after 2 × horizon newer ids")
    }

    @Test func memoryStaysBounded() {
        var recent = RecentMessageIDs(horizon: 5_000)
        let before = recent.bytesUsed
        #expect(before == 2 * 16_384 * 8) // two generations of nextPowerOfTwo(2 × 5000) hashes
        var random = SplitMix64(seed: 7)
        for _ in 0..<100_000 { _ = recent.insert(hash: random.next()) }
        #expect(recent.bytesUsed == before)
        #expect(recent.count >= 5_000 && recent.count < 10_000)
        #expect(recent.horizon == 5_000)
    }

    @Test func zeroHashAndTinyHorizonsWork() {
        var recent = RecentMessageIDs(horizon: 0) // clamped to 1
        let results = [recent.insert(hash: 0), recent.insert(hash: 0), recent.insert(hash: 42), recent.insert(hash: 42)]
        #expect(recent.horizon == 1)
        #expect(results == [true, false, true, false])
    }

    /// Against the obvious model (two sets that rotate after `horizon` new ids), on streams heavy with
    /// repeats and with hashes forced into the same probe chains (few distinct high bits).
    @Test(arguments: [1, 3, 64, 1_000])
    func agreesWithTwoSetsThatRotate(horizon: Int) {
        var recent = RecentMessageIDs(horizon: horizon)
        var current = Set<UInt64>()
        var previous = Set<UInt64>()
        var random = SplitMix64(seed: UInt64(horizon))
        var mismatches = 0
        for _ in 0..<50_000 {
            // Draw from a pool of 3 × horizon ids so that repeats fall inside, at and beyond the horizon;
            // multiplying by a large odd constant keeps them distinct while colliding in the table's home bits.
            let id = (random.next() % UInt64(3 * horizon + 2)) &* 0x1000_0000_0000_0001 | 1
            let expected = !current.contains(id) && !previous.contains(id)
            if expected {
                current.insert(id)
                if current.count == recent.horizon { previous = current; current = [] }
            }
            if recent.insert(hash: id) != expected { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
}
