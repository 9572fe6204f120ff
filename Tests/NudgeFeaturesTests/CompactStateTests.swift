import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing

/// The compact state's documented edges, by hand: shared ring heads, counter saturation, the new
/// aggregations, property conditions and derived features.
@Suite struct CompactStateTests {
    static func set(_ definitions: [FeatureDefinition]) -> FeatureSet {
        do { return try FeatureSet(definitions) } catch {
            Issue.record("invalid test features: \(error)")
            return .standard
        }
    }

    @Test func anyNewerEventAdvancesEveryRing() {
        let shop = TestShop()
        shop.send(.productViewed, at: Time.t0)
        shop.send(.identify, at: Time.t0 + 2 * Time.hour) // not a view, but it moves every ring's head
        // Late view in 5m bucket 1: views_1h's ring now holds (12, 24], so it is dropped there; the 2h ring
        // of views_24h holds (−12, 1] and keeps it. Both are what the windows at t0 + 2h contain.
        shop.send(.productViewed, at: Time.t0 + 5 * Time.minute)
        #expect(shop.value("views_1h", at: Time.t0 + 2 * Time.hour) == 0)
        #expect(shop.value("views_24h", at: Time.t0 + 2 * Time.hour) == 2)
        #expect(shop.value("sessions_7d", at: Time.t0 + 2 * Time.hour) == 2)
        #expect(shop.value("days_since_last_seen", at: Time.t0 + 2 * Time.hour) == 0)
    }

    @Test func countBucketsSaturateAtTheirWidth() throws {
        let shop = TestShop()
        for offset in Int64(0)..<300 { shop.send(.productViewed, at: Time.t0 + offset) }
        #expect(shop.value("views_1h", at: Time.t0 + 300) == 255)     // 8-bit: a 5m bucket
        #expect(shop.value("views_24h", at: Time.t0 + 300) == 300)    // 16-bit: browsing kind at 2h
        #expect(shop.value("sessions_7d", at: Time.t0 + 300) == 300)  // 16-bit: browsing kinds at 12h
        for offset in Int64(0)..<300 { shop.send(.orderCompleted, at: Time.t0 + offset, amount: 1) }
        shop.send(.orderCompleted, at: Time.t0 + 7 * Time.day, amount: 1) // next 6d bucket
        let later = Time.t0 + 7 * Time.day
        #expect(shop.value("orders_90d", at: later) == 256)          // 8-bit: orders are low-volume
        #expect(shop.value("orders_30d", at: later) == 256)
        #expect(shop.value("revenue_90d", at: later) == 301)         // sums do not saturate
        #expect(shop.value("days_since_last_order", at: later) == 0)
    }

    @Test func gaugesSaturateBelowTheirSentinel() {
        let shop = TestShop()
        for offset in Int64(0)..<65_600 { shop.send(.ticketOpened, at: Time.t0 + offset) }
        #expect(shop.value("tickets_open", at: Time.t0 + 65_600) == 65_534)
        shop.send(.ticketClosed, at: Time.t0 + 65_600)
        #expect(shop.value("tickets_open", at: Time.t0 + 65_600) == 65_533)
    }

    static let values = set([
        FeatureDefinition(name: "max_order_30d", filter: .kinds(.orderCompleted), aggregation: .maximum(.amount),
                          window: .days(30), missingValue: -1),
        FeatureDefinition(name: "min_order_30d", filter: .kinds(.orderCompleted), aggregation: .minimum(.amount),
                          window: .days(30), missingValue: -1),
        FeatureDefinition(name: "avg_order_30d", filter: .kinds(.orderCompleted), aggregation: .average(.amount),
                          window: .days(30), missingValue: -1),
        FeatureDefinition(name: "min_order_ever", filter: .kinds(.orderCompleted), aggregation: .minimum(.amount), missingValue: -1),
        FeatureDefinition(name: "nps_average", filter: .kinds(.surveyAnswered), aggregation: .average(.score), missingValue: -1),
        FeatureDefinition(name: "nps_max_7d", filter: .kinds(.surveyAnswered), aggregation: .maximum(.score),
                          window: .days(7), missingValue: -1),
    ])

    @Test func minimumMaximumAndAverage() {
        let shop = TestShop(Self.values)
        shop.send(.page, at: Time.t0)
        #expect(shop.values(at: Time.t0) == [-1, -1, -1, -1, -1, -1])
        shop.send(.orderCompleted, at: Time.t0, amount: 10)
        shop.send(.orderCompleted, at: Time.t0 + 1, amount: 250.5)
        shop.send(.orderCompleted, at: Time.t0 + 2, amount: .nan)       // ignored by all three
        shop.send(.orderCompleted, at: Time.t0 + 3, amount: -5)
        shop.send(.surveyAnswered, at: Time.t0 + 4, score: 9)
        shop.send(.surveyAnswered, at: Time.t0 + 5, score: .nan)        // no score: ignored
        shop.send(.surveyAnswered, at: Time.t0 + 6, score: 6)
        let values = shop.values(at: Time.t0 + Time.day)
        #expect(values[0] == 250.5)
        #expect(values[1] == -5)
        #expect(abs(values[2] - 255.5 / 3) < 1e-4)                      // Float32 bucket sums
        #expect(values[3] == -5)
        #expect(values[4] == 7.5)
        #expect(values[5] == 9)
        // 30d@3d: the orders' bucket 0 leaves the window at day 30; the lifetime minimum stays.
        let later = shop.values(at: Time.t0 + 30 * Time.day)
        #expect(later == [-1, -1, -1, -5, 7.5, -1])
    }

    @Test func distinctCountEstimatesFromSixtyFourBits() {
        let distinct = Self.set([
            FeatureDefinition(name: "categories_7d", filter: .kinds(.productViewed), aggregation: .distinctCount(.category),
                              window: .days(7), missingValue: -1),
        ])
        let shop = TestShop(distinct)
        shop.send(.page, at: Time.t0)
        #expect(shop.values(at: Time.t0) == [-1])                          // never matched
        shop.send(.productViewed, at: Time.t0)                            // no category: matched, nothing counted
        #expect(shop.values(at: Time.t0) == [0])
        shop.send(.productViewed, at: Time.t0, category: "outdoor")
        shop.send(.productViewed, at: Time.t0 + 1, category: "outdoor")
        #expect(shop.values(at: Time.t0 + 1) == [1])                      // one value reads exactly 1
        shop.send(.productViewed, at: Time.t0 + 2, category: "kitchen")
        let bit = { (text: String) in Array(text.utf8).withUnsafeBytes { nudgeHash64($0) } >> 58 }
        let expected = bit("outdoor") == bit("kitchen") ? 1 : log(62.0 / 64) / log(63.0 / 64)
        #expect(shop.values(at: Time.t0 + 2) == [expected])               // ≈ 2.016
        #expect(shop.values(at: Time.t0 + 7 * Time.day) == [0])           // left the window
    }

    @Test func distinctCountStaysWithinItsDocumentedError() {
        // Relative RMS error of the table's estimate over 300 customers per size, each viewing that many
        // random categories: the standard errors `Aggregation.distinctCount` documents (6-9% to 20 values,
        // 11% at 60, 13% at 100, 17% at 150) with room for sampling noise (seed 7 reads 7.9%, 9.3%, 11.4%,
        // 12.1% and 17.2%).
        let shop = TestShop(Self.set([
            FeatureDefinition(name: "categories", filter: .kinds(.productViewed), aggregation: .distinctCount(.category)),
        ]))
        var random = SplitMix64(seed: 7)
        for (size, bound) in [(5, 0.11), (20, 0.12), (60, 0.14), (100, 0.16), (150, 0.21)] {
            var squares = 0.0
            let customers = 300
            for c in 0..<customers {
                let customer = "d-\(size)-\(c)"
                for i in 0..<size {
                    shop.send(.productViewed, at: Time.t0 + Int64(i), for: customer, category: "v-\(random.next() as UInt64)")
                }
                let estimate = shop.value("categories", customer, at: Time.t0 + Int64(size))
                squares += pow((estimate - Double(size)) / Double(size), 2)
            }
            #expect((squares / Double(customers)).squareRoot() < bound, "size \(size)")
        }
    }

    @Test func propertyConditionsFilterEvents() {
        let filtered = Self.set([
            FeatureDefinition(name: "outdoor_views", filter: EventFilter(kinds: [.productViewed], conditions: [.textIn(.category, ["outdoor"])]),
                              aggregation: .count, window: .days(7)),
            FeatureDefinition(name: "other_views", filter: EventFilter(kinds: [.productViewed], conditions: [.textNotIn(.category, ["outdoor"])]),
                              aggregation: .count, window: .days(7)),
            FeatureDefinition(name: "big_store_orders",
                              filter: EventFilter(kinds: [.orderCompleted], channels: [.store],
                                                  conditions: [.number(.amount, .greaterOrEqual, 100), .number(.amount, .less, 1_000)]),
                              aggregation: .count),
            FeatureDefinition(name: "detractors", filter: EventFilter(kinds: [.surveyAnswered], conditions: [.number(.score, .lessOrEqual, 6)]),
                              aggregation: .count),
        ])
        let shop = TestShop(filtered)
        shop.send(.productViewed, at: Time.t0, category: "outdoor")
        shop.send(.productViewed, at: Time.t0, category: "outdoors")
        shop.send(.productViewed, at: Time.t0)                                 // absent category: not "outdoor"
        shop.send(.orderCompleted, at: Time.t0, channel: .store, amount: 100)
        shop.send(.orderCompleted, at: Time.t0, channel: .store, amount: 99.99)
        shop.send(.orderCompleted, at: Time.t0, channel: .store, amount: 1_000)
        shop.send(.orderCompleted, at: Time.t0, channel: .web, amount: 500)
        shop.send(.surveyAnswered, at: Time.t0, score: 3)
        shop.send(.surveyAnswered, at: Time.t0, score: 7)
        shop.send(.surveyAnswered, at: Time.t0, score: .nan)                   // absent score satisfies nothing
        #expect(shop.values(at: Time.t0) == [1, 2, 1, 1])
        var event = SegmentEvent()
        event.kind = .surveyAnswered
        #expect(!filtered.definitions[3].filter.matches(event))
        event.score = 6
        #expect(filtered.definitions[3].filter.matches(event))
    }

    @Test func derivedFeaturesComputeFromOtherValues() throws {
        let derived = Self.set(FeatureSet.standard.definitions + [
            FeatureDefinition(name: "add_to_cart_rate", expression: try FeatureExpression.parse("adds_24h / max(views_24h, 1)")),
            FeatureDefinition(name: "percent", expression: try FeatureExpression.parse("add_to_cart_rate * 100"), cap: 250),
            FeatureDefinition(name: "per_view", expression: try FeatureExpression.parse("adds_24h / views_24h"), missingValue: -1),
            FeatureDefinition(name: "mixed", expression: try FeatureExpression.parse("-(sqrt(abs(nps_last)) + log1p(cart_items)) * 2 - min(3, 1, 2)")),
        ])
        let shop = TestShop(derived)
        shop.send(.productAdded, at: Time.t0)
        shop.send(.productAdded, at: Time.t0)
        shop.send(.productAdded, at: Time.t0)
        var values = Array(shop.values(at: Time.t0).suffix(4))
        #expect(values[0] == 3)
        #expect(values[1] == 250)     // 300, capped
        #expect(values[2] == -1)      // 3 / 0 is not finite: missing
        #expect(values[3] == -(1 + log1p(3)) * 2 - 1) // nps_last missing is -1: sqrt(|-1|) = 1
        for _ in 0..<4 { shop.send(.productViewed, at: Time.t0 + 1) }
        values = Array(shop.values(at: Time.t0 + 1).suffix(4))
        #expect(values[0] == 0.75)
        #expect(values[1] == 75)
        #expect(values[2] == 0.75)

        // An output shorter than the set still gets the right leading values.
        let slot = try #require(shop.slot("c-1"))
        var short = [Double](repeating: .nan, count: 3)
        short.withUnsafeMutableBufferPointer { shop.table.evaluate(slot, atMillis: Time.t0 + 1, into: $0) }
        #expect(short == [4, 4, 3])
    }

    @Test func expressionsParseAndRefuseWithPositions() throws {
        let parsed = try FeatureExpression.parse(" a / max(b, 1) - -2.5e1 * (c + d) ")
        #expect(parsed.references == ["a", "b", "c", "d"])
        #expect(try FeatureExpression.parse(parsed.description) == parsed)
        let bad: [(String, Int)] = [("a +", 3), ("max(a)", 0), ("foo(a)", 0), ("(a", 2), ("a b", 2), ("1..2", 0), ("", 0), ("a $ b", 2)]
        for (text, position) in bad {
            #expect(throws: ExpressionError.self, "\(text)") { try FeatureExpression.parse(text) }
            do { _ = try FeatureExpression.parse(text) } catch { #expect(error.position == position, "\(text): \(error)") }
        }
        let deep = String(repeating: "(", count: 100) + "a" + String(repeating: ")", count: 100)
        #expect(throws: ExpressionError.self) { try FeatureExpression.parse(deep) }
    }
}
