import NudgeEvents
import NudgeFeatures
import Testing

/// Gauges, last values, channels and filters, by hand.
@Suite struct AggregationTests {
    @Test func openTicketsNeverGoBelowZero() {
        let shop = TestShop()
        shop.send(.ticketClosed, at: Time.t0)      // closing an unseen ticket: 0, not -1
        #expect(shop.value("tickets_open", at: Time.t0) == 0)
        shop.send(.ticketOpened, at: Time.t0 + 1)
        shop.send(.ticketOpened, at: Time.t0 + 2)
        shop.send(.ticketClosed, at: Time.t0 + 3)
        #expect(shop.value("tickets_open", at: Time.t0 + 3) == 1)
    }

    @Test func cartItemsAddRemoveAndResetOnOrder() {
        let shop = TestShop()
        shop.send(.productAdded, at: Time.t0)
        shop.send(.productAdded, at: Time.t0 + 1)
        shop.send(.productRemoved, at: Time.t0 + 2)
        shop.send(.productRemoved, at: Time.t0 + 3)
        shop.send(.productRemoved, at: Time.t0 + 4)
        #expect(shop.value("cart_items", at: Time.t0 + 4) == 0)
        shop.send(.productAdded, at: Time.t0 + 5)
        shop.send(.productAdded, at: Time.t0 + 6)
        #expect(shop.value("cart_items", at: Time.t0 + 6) == 2)
        shop.send(.orderCompleted, at: Time.t0 + 7, amount: 30)
        #expect(shop.value("cart_items", at: Time.t0 + 7) == 0)
        shop.send(.productAdded, at: Time.t0 + 8)
        #expect(shop.value("cart_items", at: Time.t0 + 8) == 1)
        #expect(shop.value("adds_24h", at: Time.t0 + 8) == 5)
    }

    @Test func npsLastFollowsEventTimeAndIgnoresMissingScores() {
        let shop = TestShop()
        shop.send(.surveyAnswered, at: Time.t0 + 10, score: 8)
        shop.send(.surveyAnswered, at: Time.t0 + 20, score: .nan)  // no score: ignored
        #expect(shop.value("nps_last", at: Time.t0 + 20) == 8)
        shop.send(.surveyAnswered, at: Time.t0 + 5, score: 2)      // late but older: does not override
        #expect(shop.value("nps_last", at: Time.t0 + 20) == 8)
        shop.send(.surveyAnswered, at: Time.t0 + 10, score: 6)     // same millisecond: the later arrival wins
        #expect(shop.value("nps_last", at: Time.t0 + 20) == 6)
    }

    @Test func lastChannelIsTheNewestByEventTime() throws {
        let shop = TestShop()
        shop.send(.page, at: Time.t0)
        let slot = try #require(shop.slot("c-1"))
        #expect(shop.table.lastChannel(of: slot) == .web)
        shop.send(.page, at: Time.t0 + 100, channel: .email)
        shop.send(.page, at: Time.t0 + 50, channel: .store)     // late: older than the email event
        #expect(shop.table.lastChannel(of: slot) == .email)
        #expect(shop.table.newestEventMillis(of: slot) == Time.t0 + 100)
        shop.send(.page, at: Time.t0 + 100, channel: .sms)      // tie: the later arrival wins
        #expect(shop.table.lastChannel(of: slot) == .sms)
    }

    @Test func channelFilterRestrictsMatches() throws {
        var filter = EventFilter(kinds: [.orderCompleted], channels: [.web])
        var event = SegmentEvent()
        event.kind = .orderCompleted
        event.channel = .web
        #expect(filter.matches(event))
        event.channel = .app
        #expect(!filter.matches(event))
        filter.channels = nil            // masks follow edits
        #expect(filter.matches(event))
        filter.kinds = [.orderRefunded]
        #expect(!filter.matches(event))
        #expect(EventFilter.anyEvent.matches(event))

        let webOrders = FeatureDefinition(name: "web_orders", filter: EventFilter(kinds: [.orderCompleted], channels: [.web]),
                                          aggregation: .count, window: .days(30))
        let storeTickets = FeatureDefinition(name: "store_tickets",
                                             filter: EventFilter(kinds: [.ticketOpened], channels: [.store]),
                                             aggregation: .openCount(closes: [.ticketClosed]))
        let shop = TestShop(try FeatureSet([webOrders, storeTickets]))
        shop.send(.orderCompleted, at: Time.t0, channel: .web)
        shop.send(.orderCompleted, at: Time.t0, channel: .app)
        shop.send(.ticketOpened, at: Time.t0, channel: .store)
        shop.send(.ticketOpened, at: Time.t0, channel: .store)
        shop.send(.ticketClosed, at: Time.t0, channel: .email) // not the feature's channel: ignored
        shop.send(.ticketClosed, at: Time.t0, channel: .store)
        #expect(shop.values(at: Time.t0) == [1, 1])
    }

    @Test func capBoundsComputedValuesButNotTheMissingValue() throws {
        let adds = FeatureDefinition(name: "adds_capped", filter: .kinds(.productAdded), aggregation: .count,
                                     window: .hours(1), missingValue: 99, cap: 2)
        let shop = TestShop(try FeatureSet([adds]))
        shop.send(.page, at: Time.t0)
        #expect(shop.values(at: Time.t0) == [99])
        for offset in Int64(0)..<5 { shop.send(.productAdded, at: Time.t0 + offset) }
        #expect(shop.values(at: Time.t0 + 5) == [2])
    }

    @Test func sumsIgnoreNonFiniteAmounts() {
        let shop = TestShop()
        shop.send(.orderCompleted, at: Time.t0, amount: 19.99)
        shop.send(.orderCompleted, at: Time.t0 + 1, amount: .nan)
        shop.send(.orderCompleted, at: Time.t0 + 2, amount: .infinity)
        shop.send(.orderCompleted, at: Time.t0 + 3, amount: 0.01)
        #expect(abs(shop.value("revenue_90d", at: Time.t0 + 3) - 20) < 1e-5) // Float32 buckets
        #expect(shop.value("orders_90d", at: Time.t0 + 3) == 4)
    }

    @Test func evaluateWritesOnlyWhatFitsAndForeignSlotsReadAsMissing() throws {
        let shop = TestShop()
        shop.send(.orderCompleted, at: Time.t0, amount: 5)
        let slot = try #require(shop.slot("c-1"))
        var short = [Double](repeating: -7, count: 4)
        short.withUnsafeMutableBufferPointer { shop.table.evaluate(slot, atMillis: Time.t0, into: $0) }
        #expect(short == [0, 0, 0, 1])

        let other = TestShop()
        other.send(.page, at: Time.t0, for: "a")
        other.send(.page, at: Time.t0, for: "b")
        let foreign = try #require(other.slot("b")) // index 1: beyond the one-customer table
        var values = [Double](repeating: -7, count: FeatureSet.standard.count)
        values.withUnsafeMutableBufferPointer { shop.table.evaluate(foreign, atMillis: Time.t0, into: $0) }
        #expect(values == FeatureSet.standard.definitions.map(\.missingValue))
        #expect(shop.table.lastChannel(of: foreign) == nil)
        #expect(shop.table.newestEventMillis(of: foreign) == .min)
        #expect(shop.table.customerId(of: foreign) == "")
    }
}
