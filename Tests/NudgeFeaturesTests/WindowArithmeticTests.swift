import NudgeEvents
import NudgeFeatures
import Testing

/// Hand-computed window edges, late events, ring wrap-around and evaluation after the newest event.
@Suite struct WindowArithmeticTests {
    let fiveMinutes = 5 * Time.minute

    @Test func eventCountsUntilItsBucketLeavesTheWindow() {
        // views_1h is 1h@5m: B = 12. An event in bucket 0 counts while floor(t/5m) <= 11, i.e. t < t0 + 1h.
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0)
        shop.send(.productViewed, at: Time.t0 + fiveMinutes - 1) // still bucket 0
        shop.send(.productViewed, at: Time.t0 + fiveMinutes)     // bucket 1
        #expect(shop.value("views_1h", at: Time.t0 + fiveMinutes) == 3)
        #expect(shop.value("views_1h", at: Time.t0 + Time.hour - 1) == 3)
        #expect(shop.value("views_1h", at: Time.t0 + Time.hour) == 1)
        #expect(shop.value("views_1h", at: Time.t0 + Time.hour + fiveMinutes - 1) == 1)
        #expect(shop.value("views_1h", at: Time.t0 + Time.hour + fiveMinutes) == 0)
        // views_24h is 24h@2h: all three sit in bucket 0, in the window until t0 + 24h.
        #expect(shop.value("views_24h", at: Time.t0 + 24 * Time.hour - 1) == 3)
        #expect(shop.value("views_24h", at: Time.t0 + 24 * Time.hour) == 0)
    }

    @Test func outOfOrderEventLandsInItsOwnBucket() {
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0 + 10 * fiveMinutes)
        shop.send(.productViewed, at: Time.t0 + 3 * fiveMinutes + 7_000) // late, bucket 3
        #expect(shop.value("views_1h", at: Time.t0 + 14 * fiveMinutes) == 2) // window (2, 14]
        #expect(shop.value("views_1h", at: Time.t0 + 15 * fiveMinutes) == 1) // window (3, 15]: bucket 3 gone
        #expect(shop.value("views_1h", at: Time.t0 + 21 * fiveMinutes) == 1) // window (9, 21]
        #expect(shop.value("views_1h", at: Time.t0 + 22 * fiveMinutes) == 0) // window (10, 22]
    }

    @Test func eventOlderThanTheRingOnlyAffectsLifetimeState() throws {
        let lifetimeViews = FeatureDefinition(name: "views_ever", filter: .kinds(.productViewed), aggregation: .count)
        let lifetimeSpend = FeatureDefinition(name: "spend_ever", filter: .kinds(.orderCompleted), aggregation: .sum(.amount))
        let shop = TestShop(try FeatureSet(FeatureSet.standard.definitions + [lifetimeViews, lifetimeSpend]))
        shop.send(.productViewed, at: Time.t0 + 20 * fiveMinutes) // views_1h head: bucket 20, ring (8, 20]
        shop.send(.productViewed, at: Time.t0 + 8 * fiveMinutes)  // bucket 8: left the ring already
        shop.send(.productViewed, at: Time.t0 + 9 * fiveMinutes)  // bucket 9: still in the ring
        let now = Time.t0 + 20 * fiveMinutes
        #expect(shop.value("views_1h", at: now) == 2)
        #expect(shop.value("views_24h", at: now) == 3) // one 24h@2h ring holds all three
        #expect(shop.value("views_ever", at: now) == 3)
        #expect(shop.value("days_since_last_seen", at: now) == 0) // the late events do not move "last seen" back

        // revenue_90d is 90d@6d: head bucket 16 (day 100), ring (1, 16]; day 5 is bucket 0: dropped.
        shop.send(.orderCompleted, at: Time.t0 + 100 * Time.day, amount: 50)
        shop.send(.orderCompleted, at: Time.t0 + 5 * Time.day, amount: 20)
        shop.send(.orderCompleted, at: Time.t0 + 12 * Time.day, amount: 7) // bucket 2: kept
        let later = Time.t0 + 100 * Time.day
        #expect(shop.value("revenue_90d", at: later) == 57)
        #expect(shop.value("orders_90d", at: later) == 2)
        #expect(shop.value("spend_ever", at: later) == 77)
        #expect(shop.value("days_since_last_order", at: later) == 0)
    }

    @Test func ringAdvanceClearsExactlyThePassedBuckets() {
        let shop = TestShop()
        for bucket in Int64(0)..<12 { shop.send(.productViewed, at: Time.t0 + bucket * fiveMinutes + 1_000) }
        #expect(shop.value("views_1h", at: Time.t0 + 11 * fiveMinutes) == 12)
        shop.send(.productViewed, at: Time.t0 + 16 * fiveMinutes) // ring (4, 16]: buckets 5...11 survive
        #expect(shop.value("views_1h", at: Time.t0 + 16 * fiveMinutes) == 8)
        #expect(shop.value("views_1h", at: Time.t0 + 23 * fiveMinutes) == 1)
    }

    @Test func twoHundredDaysOfSilenceClearsEveryWindow() {
        let shop = TestShop()
        let names = FeatureSet.standard.names
        shop.send(.productViewed, at: Time.t0)
        shop.send(.productAdded, at: Time.t0 + 1)
        shop.send(.ticketOpened, at: Time.t0 + 2)
        shop.send(.complaintFiled, at: Time.t0 + 3)
        shop.send(.orderRefunded, at: Time.t0 + 4)
        shop.send(.surveyAnswered, at: Time.t0 + 5, score: 3)
        shop.send(.orderCompleted, at: Time.t0 + 6, amount: 120)
        shop.send(.productAdded, at: Time.t0 + 7)
        shop.send(.page, at: Time.t0 + 8)
        let busy = Dictionary(uniqueKeysWithValues: zip(names, shop.values(at: Time.t0 + 8)))
        #expect(busy == ["views_1h": 1, "views_24h": 1, "adds_24h": 2, "orders_30d": 1, "orders_90d": 1,
                         "revenue_90d": 120, "days_since_last_order": 2.0 / 86_400_000, "tickets_open": 1,
                         "complaints_30d": 1, "refunds_90d": 1, "nps_last": 3, "cart_items": 1, "sessions_7d": 2,
                         "days_since_last_seen": 0])

        let silent = Time.t0 + 200 * Time.day + 8
        shop.send(.page, at: silent)
        let quiet = Dictionary(uniqueKeysWithValues: zip(names, shop.values(at: silent)))
        #expect(quiet == ["views_1h": 0, "views_24h": 0, "adds_24h": 0, "orders_30d": 0, "orders_90d": 0,
                          "revenue_90d": 0, "days_since_last_order": 200.0 + 2.0 / 86_400_000, "tickets_open": 1,
                          "complaints_30d": 0, "refunds_90d": 0, "nps_last": 3, "cart_items": 1, "sessions_7d": 1,
                          "days_since_last_seen": 0])
    }

    @Test func evaluationLaterThanTheNewestEvent() {
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0 + 30 * Time.minute)
        shop.send(.orderCompleted, at: Time.t0 + 30 * Time.minute, amount: 10)
        #expect(shop.value("views_24h", at: Time.t0 + 23 * Time.hour + 59 * Time.minute) == 1)
        #expect(shop.value("views_24h", at: Time.t0 + 24 * Time.hour) == 0)
        #expect(shop.value("days_since_last_order", at: Time.t0 + 30 * Time.minute + 10 * Time.day + 12 * Time.hour) == 10.5)
        #expect(shop.value("days_since_last_seen", at: Time.t0 + 30 * Time.minute + 3 * Time.day) == 3)
        #expect(shop.value("days_since_last_order", at: Time.t0 + 400 * Time.day) == 365) // capped
        #expect(shop.value("orders_30d", at: Time.t0 + 29 * Time.day) == 1)  // 30d@3d: bucket 0 in (−1, 9]
        #expect(shop.value("orders_30d", at: Time.t0 + 30 * Time.day) == 0)
        #expect(shop.value("revenue_90d", at: Time.t0 + 89 * Time.day) == 10)  // 90d@6d: bucket 0 in (−1, 14]
        #expect(shop.value("revenue_90d", at: Time.t0 + 90 * Time.day) == 0)
    }

    @Test func timesBefore1970UseFloorBuckets() throws {
        let window = FeatureDefinition(name: "adds_5m", filter: .kinds(.productAdded), aggregation: .count,
                                       window: .minutes(5, resolutionMillis: Time.minute))
        let shop = TestShop(try FeatureSet([window]))
        shop.send(.productAdded, at: -1) // bucket -1, not 0
        #expect(shop.value("adds_5m", at: 0) == 1)                    // window (-5, 0]
        #expect(shop.value("adds_5m", at: 3 * Time.minute + 59_999) == 1) // window (-2, 3]
        #expect(shop.value("adds_5m", at: 4 * Time.minute) == 0)      // window (-1, 4]
    }

    @Test func neverSeenFeaturesReportTheirMissingValue() {
        let shop = TestShop()
        shop.send(.identify, at: Time.t0)
        let values = Dictionary(uniqueKeysWithValues: zip(FeatureSet.standard.names, shop.values(at: Time.t0)))
        #expect(values["days_since_last_order"] == 365)
        #expect(values["nps_last"] == -1)
        #expect(values["views_1h"] == 0)
        #expect(values["tickets_open"] == 0)
        #expect(values["days_since_last_seen"] == 0)
    }

    @Test func windowedLastAndTimeSinceLastGoMissingWhenTheNewestLeaves() throws {
        let nps = FeatureDefinition(name: "nps_30d", filter: .kinds(.surveyAnswered), aggregation: .last(.score),
                                    window: .days(30), missingValue: -1)
        let since = FeatureDefinition(name: "days_since_complaint_7d", filter: .kinds(.complaintFiled),
                                      aggregation: .timeSinceLast, window: .days(7, resolutionMillis: Time.day), missingValue: 8)
        let shop = TestShop(try FeatureSet([nps, since]))
        shop.send(.surveyAnswered, at: Time.t0, score: 9)
        shop.send(.complaintFiled, at: Time.t0 + Time.day / 2)
        #expect(shop.values(at: Time.t0 + 3 * Time.day) == [9, 2.5])
        #expect(shop.values(at: Time.t0 + 7 * Time.day - 1) == [9, 6.5 - 1.0 / 86_400_000])
        #expect(shop.values(at: Time.t0 + 7 * Time.day) == [9, 8])
        #expect(shop.values(at: Time.t0 + 30 * Time.day) == [-1, 8])
    }
}
