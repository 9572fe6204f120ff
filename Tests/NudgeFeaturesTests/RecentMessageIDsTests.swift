import NudgeEvents
import NudgeFeatures
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
}
