import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing

/// CustomerTable.evictOverCapacity: a flood of new customers cannot grow the hot tier past its cap; those
/// idle longest go first, and come back whole.
@Suite(.timeLimit(.minutes(2))) struct HotCapacityTests {
    static let capacity = 1_024

    /// Sends `count` new customers, one event each a second apart from `first` on (or all at `sameTime`), and
    /// keeps the cap between batches of 64 the way a shard does; returns the largest hot count seen.
    @discardableResult
    static func flood(_ shop: TestShop, _ count: Int, from first: Int = 0, sameTime: Int64? = nil) -> Int {
        var largest = 0
        for i in first..<first + count {
            shop.send(.page, at: sameTime ?? Time.t0 + Int64(i) * 1_000, for: "flood-\(i)")
            if i % 64 == 63 { shop.table.evictOverCapacity(capacity, limit: 32 * 1_024, atMost: 1_024) }
            largest = max(largest, shop.table.count)
        }
        return largest
    }

    @Test("a flood of new ids stays within the cap plus one batch")
    func floodStaysBounded() {
        let shop = TestShop(ColdTierTests.lifetime, coldBudgetBytes: 64 << 20)
        let largest = Self.flood(shop, 50_000)
        #expect(largest <= Self.capacity + 64, "hot tier reached \(largest) customers")
        #expect(shop.table.forcedEvictions >= 50_000 - Self.capacity - 64)
        #expect(shop.table.evictions == shop.table.forcedEvictions)
        #expect(shop.table.coldCount + shop.table.count == 50_000, "nobody lost: the cold budget holds them all")
    }

    @Test("every new id at the same time (nothing to tell them apart by) stays bounded too")
    func floodAtOneTimeStaysBounded() {
        let shop = TestShop(ColdTierTests.lifetime)
        let largest = Self.flood(shop, 20_000, sameTime: Time.t0)
        #expect(largest <= Self.capacity + 64, "hot tier reached \(largest) customers")
    }

    /// Those idle longest go cold, not those the sweep meets first: customers seen again in a random order
    /// (so that their slots say nothing of their age), then a flood of newer ones. The newer half of them,
    /// and the flood, stay hot (a lookup restores none); the oldest went cold.
    @Test("those idle longest go first", arguments: 1...3)
    func oldestGoFirst(seed: Int) {
        let shop = TestShop(ColdTierTests.lifetime)
        var random = SplitMix64(seed: UInt64(seed))
        for i in 0..<900 { shop.send(.page, at: Time.t0, for: "base-\(i)") }
        let order = (0..<900).shuffled(using: &random)
        for (k, i) in order.enumerated() { shop.send(.page, at: Time.t0 + Int64(k + 1) * 1_000, for: "base-\(i)") }
        Self.flood(shop, 300, from: 1_000)
        #expect(shop.table.forcedEvictions >= 1_200 - Self.capacity)
        let restoresBefore = shop.table.restores
        for i in order.suffix(450) { #expect(shop.slot("base-\(i)") != nil) }
        for i in 1_000..<1_300 { #expect(shop.slot("flood-\(i)") != nil) }
        #expect(shop.table.restores == restoresBefore, "\(shop.table.restores - restoresBefore) of the newest 750 had been evicted")
        let cold = shop.table.coldCount
        _ = shop.slot("base-\(order[0])")
        #expect(shop.table.coldCount == cold - 1, "the customer idle longest was still hot")
    }

    /// A regular customer pushed out by a flood keeps their history when they come back.
    @Test("a customer moved out early comes back whole")
    func evictedEarlyComesBackWhole() {
        let shop = TestShop(ColdTierTests.lifetime)
        for k in 0..<3 { shop.send(.productAdded, at: Time.t0 - Time.day + Int64(k), for: "regular", amount: 10) }
        Self.flood(shop, 5_000)
        #expect(shop.table.forcedEvictions > 0)
        let restoresBefore = shop.table.restores
        shop.send(.productAdded, at: Time.t0 + Time.hour, for: "regular", amount: 5)
        #expect(shop.table.restores == restoresBefore + 1, "the regular customer was not evicted: the test proves nothing")
        #expect(shop.value("adds", "regular", at: Time.t0 + Time.hour) == 4)
        #expect(shop.value("spend", "regular", at: Time.t0 + Time.hour) == 35)
    }

    /// Under the cap nothing is moved early, however old.
    @Test func underTheCapNothingMoves() {
        let shop = TestShop(ColdTierTests.lifetime)
        for i in 0..<Self.capacity { shop.send(.page, at: Time.t0 - Int64(i) * Time.day, for: "old-\(i)") }
        #expect(shop.table.evictOverCapacity(Self.capacity, limit: 10_000) == 0)
        #expect(shop.table.count == Self.capacity && shop.table.evictions == 0)
    }
}
