import NudgeEvents
import NudgeFeatures
import Testing

/// Window defaults, the standard schema and every validation error.
@Suite struct FeatureSetTests {
    @Test func defaultResolutions() {
        #expect(FeatureWindow.minutes(5) == FeatureWindow(durationMillis: 5 * Time.minute, resolutionMillis: Time.minute))
        #expect(FeatureWindow.hours(1).resolutionMillis == 5 * Time.minute)
        #expect(FeatureWindow.hours(24).resolutionMillis == Time.hour)
        #expect(FeatureWindow.days(7).resolutionMillis == 6 * Time.hour)
        #expect(FeatureWindow.days(30).resolutionMillis == Time.day)
        #expect(FeatureWindow.days(90).resolutionMillis == 3 * Time.day)
        #expect(FeatureWindow.minutes(7).resolutionMillis == Time.minute)
        #expect(FeatureWindow.hours(37).resolutionMillis == Time.hour)        // 37 buckets: no coarser step divides
        #expect(FeatureWindow.days(7, resolutionMillis: Time.day).buckets == 7)
        #expect(FeatureWindow.days(90).description == "90d@3d")
        #expect(FeatureWindow.days(7).description == "7d@6h")
        #expect(FeatureWindow.hours(1).description == "1h@5m")
        #expect(FeatureWindow.lifetime.description == "lifetime")
        #expect(FeatureWindow.lifetime.isLifetime)
    }

    @Test func standardSchema() throws {
        #expect(FeatureSet.standard.names == [
            "views_1h", "views_24h", "adds_24h", "orders_30d", "orders_90d", "revenue_90d", "days_since_last_order",
            "tickets_open", "complaints_30d", "refunds_90d", "nps_last", "cart_items", "sessions_7d",
            "days_since_last_seen",
        ])
        #expect(FeatureSet.standard.bytesPerCustomer == 1104)
        #expect(FeatureSet.standard.index(of: "nps_last") == 10)
        // The built-in set skips validation at startup; it must pass it.
        #expect(try FeatureSet(FeatureSet.standard.definitions) == FeatureSet.standard)
    }

    static func definition(_ name: String = "f", filter: EventFilter = .kinds(.page), aggregation: Aggregation = .count,
                           window: FeatureWindow = .lifetime, missingValue: Double = 0, cap: Double? = nil) -> FeatureDefinition {
        FeatureDefinition(name: name, filter: filter, aggregation: aggregation, window: window,
                          missingValue: missingValue, cap: cap)
    }

    static let invalid: [(definitions: [FeatureDefinition], error: FeatureSetError)] = [
        ([definition("ok"), definition("")], .emptyName(position: 1)),
        ([definition("twice"), definition("twice")], .duplicateName("twice")),
        ([definition("nothing", filter: EventFilter(kinds: []))], .noKinds(feature: "nothing")),
        ([definition("nowhere", filter: EventFilter(kinds: [.page], channels: []))], .noChannels(feature: "nowhere")),
        ([definition("zero", window: FeatureWindow(durationMillis: Time.hour, resolutionMillis: 0))],
         .nonPositiveWindow(feature: "zero", window: FeatureWindow(durationMillis: Time.hour, resolutionMillis: 0))),
        ([definition("negative", window: .days(-3))], .nonPositiveWindow(feature: "negative", window: .days(-3))),
        ([definition("ragged", window: .hours(24, resolutionMillis: 7 * Time.hour))],
         .resolutionDoesNotDivide(feature: "ragged", window: .hours(24, resolutionMillis: 7 * Time.hour))),
        ([definition("fine", window: .days(90, resolutionMillis: Time.hour))],
         .tooManyBuckets(feature: "fine", window: .days(90, resolutionMillis: Time.hour), buckets: 2160, limit: 512)),
        ([definition("gauge", aggregation: .openCount(closes: [.ticketClosed]), window: .days(7))],
         .gaugeNeedsLifetimeWindow(feature: "gauge", aggregation: "openCount")),
        ([definition("loop", filter: .kinds(.ticketOpened), aggregation: .openCount(closes: [.ticketOpened]))],
         .conflictingKinds(feature: "loop", kinds: [EventKind.ticketOpened.wireName])),
        ([definition("cart", filter: .kinds(.productAdded),
                     aggregation: .netCount(removes: [.productRemoved], resets: [.productRemoved]))],
         .conflictingKinds(feature: "cart", kinds: [EventKind.productRemoved.wireName])),
        ([definition("nan", missingValue: .nan)], .nonFiniteValue(feature: "nan", field: "missingValue")),
        ([definition("inf", cap: .infinity)], .nonFiniteValue(feature: "inf", field: "cap")),
    ]

    @Test("invalid definitions are refused with an error naming the feature", arguments: invalid.indices)
    func validationErrors(case index: Int) {
        let (definitions, expected) = Self.invalid[index]
        #expect(throws: expected) { try FeatureSet(definitions) }
        let name: String
        switch expected {
        case .emptyName: name = "#1"
        case .duplicateName(let feature): name = "'\(feature)'"
        default: name = "'\(definitions[0].name)'"
        }
        #expect(expected.description.contains(name))
    }

    @Test func emptySetIsValid() throws {
        let empty = try FeatureSet([])
        #expect(empty.count == 0)
        #expect(empty.bytesPerCustomer == 32)
    }
}
