import NudgeEvents
import NudgeFeatures
import Testing

/// Identity merges at the table, case by case (FeaturePropertyTests checks random streams).
@Suite struct IdentityMergeTests {
    /// Links `anonymous` into `user` as the pipeline does: detach, then merge into the user's slot.
    @discardableResult
    static func link(_ shop: TestShop, _ anonymous: String, into user: String) -> Bool {
        guard let (detached, _) = shop.table.detach(shop.pool.text(anonymous)) else { return false }
        shop.table.merge(detached, into: shop.table.slot(for: shop.pool.text(user)))
        return true
    }

    @Test("Counts, sums and gauges of both identities add up in the known customer")
    func historiesAdd() {
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0, for: "a-1")
        shop.send(.productViewed, at: Time.t0 + Time.minute, for: "a-1")
        shop.send(.productAdded, at: Time.t0 + 2 * Time.minute, for: "a-1", amount: 20)
        shop.send(.ticketOpened, at: Time.t0 + 3 * Time.minute, for: "a-1")
        shop.send(.productViewed, at: Time.t0 + Time.hour, for: "c-1")
        shop.send(.orderCompleted, at: Time.t0 + Time.hour, for: "c-1", amount: 80)
        shop.send(.ticketOpened, at: Time.t0 + Time.hour, for: "c-1")

        #expect(Self.link(shop, "a-1", into: "c-1"))
        let at = Time.t0 + 2 * Time.hour
        #expect(shop.value("views_24h", at: at) == 3)
        #expect(shop.value("adds_24h", at: at) == 1)
        #expect(shop.value("orders_90d", at: at) == 1)
        #expect(shop.value("tickets_open", at: at) == 2)
        // Gauges add: they fold in arrival order, and two identities' events have no order between them, so
        // c-1's order (which reset c-1's cart) does not empty the visitor's.
        #expect(shop.value("cart_items", at: at) == 1)
        #expect(shop.slot("a-1") == nil)
        #expect(shop.table.count == 1)
        #expect(!Self.link(shop, "a-1", into: "c-1"), "a linked id has nothing left to merge")
    }

    @Test("On equal times the known customer's last value and channel stay")
    func tiesGoToTheTarget() {
        let shop = TestShop()
        shop.send(.surveyAnswered, at: Time.t0, for: "a-1", channel: .app, score: 3)
        shop.send(.surveyAnswered, at: Time.t0, for: "c-1", channel: .store, score: 8)
        Self.link(shop, "a-1", into: "c-1")
        #expect(shop.value("nps_last", at: Time.t0) == 8)
        #expect(shop.slot("c-1").flatMap { shop.table.lastChannel(of: $0) } == .store)

        // A newer anonymous answer wins, with its channel.
        shop.send(.surveyAnswered, at: Time.t0 + Time.hour, for: "a-2", channel: .web, score: 10)
        Self.link(shop, "a-2", into: "c-1")
        #expect(shop.value("nps_last", at: Time.t0 + Time.hour) == 10)
        #expect(shop.slot("c-1").flatMap { shop.table.lastChannel(of: $0) } == .web)
        #expect(shop.slot("c-1").map { shop.table.newestEventMillis(of: $0) } == Time.t0 + Time.hour)
    }

    @Test("Windows line up when one identity is far ahead: old buckets leave, recent ones add")
    func ringsAlignOnTheNewerClock() {
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0, for: "a-1")                    // 3 days before c-1's newest
        shop.send(.productViewed, at: Time.t0 + 71 * Time.hour, for: "a-1")   // within c-1's 24h
        shop.send(.productViewed, at: Time.t0 + 72 * Time.hour, for: "c-1")
        Self.link(shop, "a-1", into: "c-1")
        #expect(shop.value("views_24h", at: Time.t0 + 72 * Time.hour) == 2)
        #expect(shop.value("views_24h", at: Time.t0 + 95 * Time.hour) == 1)

        // The other way round: the anonymous history is the newer one.
        shop.send(.productViewed, at: Time.t0, for: "c-2")
        shop.send(.productViewed, at: Time.t0 + 72 * Time.hour, for: "a-2")
        Self.link(shop, "a-2", into: "c-2")
        #expect(shop.value("views_24h", "c-2", at: Time.t0 + 72 * Time.hour) == 1)
        #expect(shop.slot("c-2").map { shop.table.newestEventMillis(of: $0) } == Time.t0 + 72 * Time.hour)
    }

    @Test("A visitor in the cold tier is merged from there, history intact")
    func coldVisitorMerges() {
        let shop = TestShop()
        shop.send(.orderCompleted, at: Time.t0, for: "a-1", amount: 40)
        shop.send(.productViewed, at: Time.t0 + 40 * Time.day, for: "c-1")
        while shop.table.evictIdle(olderThanMillis: Time.t0 + Time.day, limit: 64) > 0 {}
        #expect(shop.table.coldCount == 1)
        #expect(Self.link(shop, "a-1", into: "c-1"))
        #expect(shop.table.coldCount == 0)
        #expect(shop.value("orders_90d", at: Time.t0 + 40 * Time.day) == 1)
        #expect(shop.value("revenue_90d", at: Time.t0 + 40 * Time.day) == 40)
    }
}
