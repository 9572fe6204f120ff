import NudgeEvents
import NudgeFeatures
import Testing

/// Window defaults, the standard schema and every validation error.
@Suite struct FeatureSetTests {
    @Test func defaultResolutions() {
        // A ladder step (1m 5m 15m 1h 2h 6h 12h 1d 3d 6d 7d) giving 10 to 15 buckets.
        #expect(FeatureWindow.hours(1).resolutionMillis == 5 * Time.minute)   // 12 buckets
        #expect(FeatureWindow.hours(24).resolutionMillis == 2 * Time.hour)    // 12
        #expect(FeatureWindow.days(7).resolutionMillis == 12 * Time.hour)     // 14
        #expect(FeatureWindow.days(30).resolutionMillis == 3 * Time.day)      // 10
        #expect(FeatureWindow.days(90).resolutionMillis == 6 * Time.day)      // 15
        #expect(FeatureWindow.days(14).resolutionMillis == Time.day)          // 14
        // Else whole seconds: as many buckets as divide it, up to 15 (the ladder would give 5, 7, 6, 4, 4 and 1).
        #expect(FeatureWindow.minutes(5) == FeatureWindow(durationMillis: 5 * Time.minute, resolutionMillis: 20_000))
        #expect(FeatureWindow.minutes(7).resolutionMillis == 28_000)          // 15
        #expect(FeatureWindow.minutes(30).resolutionMillis == 2 * Time.minute) // 15
        #expect(FeatureWindow.days(28).resolutionMillis == 161_280_000)      // 15 of 44.8 h
        #expect(FeatureWindow.hours(4).resolutionMillis == 16 * Time.minute)  // 15
        #expect(FeatureWindow.days(730).buckets == 15)                       // one tumbling bucket before
        #expect(FeatureWindow.hours(37).resolutionMillis == 148 * Time.minute) // 15
        #expect(FeatureWindow.defaultResolutionMillis(forDurationMillis: 45_000) == 3_000)  // 15
        // Else the fewest buckets above 15 (17 s: 17 of a second), or none (a prime number of seconds above 512).
        #expect(FeatureWindow.defaultResolutionMillis(forDurationMillis: 17_000) == 1_000)
        #expect(FeatureWindow.defaultResolutionMillis(forDurationMillis: 521_000) == nil)
        #expect(FeatureWindow.days(7, resolutionMillis: Time.day).buckets == 7)
        #expect(FeatureWindow.days(90).description == "90d@6d")
        #expect(FeatureWindow.days(7).description == "7d@12h")
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
        #expect(FeatureSet.standard.bytesPerCustomer == 248)
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
        // Names are identifiers an expression can use, and no training dataset's own column.
        ([definition("orders 90d")], .badName("orders 90d", problem: "may hold only letters, digits and '_' (expressions refer to features by name)")),
        ([definition("orders-90d")], .badName("orders-90d", problem: "may hold only letters, digits and '_' (expressions refer to features by name)")),
        ([definition("käufe")], .badName("käufe", problem: "may hold only letters, digits and '_' (expressions refer to features by name)")),
        ([definition("90d_orders")], .badName("90d_orders", problem: "must start with a letter or '_'")),
        ([definition("churn")], .badName("churn", problem: "is a column of the training datasets")),
        ([definition("accepted")], .badName("accepted", problem: "is a column of the training datasets")),
        ([definition(String(repeating: "n", count: 65))],
         .badName(String(repeating: "n", count: 65), problem: "is longer than 64 bytes")),
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
        ([definition("where", filter: EventFilter(kinds: [.orderCompleted], conditions: [.number(.amount, .greater, .nan)]))],
         .nonFiniteValue(feature: "where", field: "where")),
        ([definition("none", filter: EventFilter(kinds: [.page], conditions: [.textIn(.category, [])]))],
         .emptyCondition(feature: "none", condition: "category in []")),
        ([FeatureDefinition(name: "ratio", filter: .kinds(.page), aggregation: .derived(.feature("f")), window: .days(7)),
          definition("f")],
         .derivedTakesNoWindow(feature: "ratio")),
        ([definition("f"), FeatureDefinition(name: "ratio", expression: .binary(.divide, .feature("f"), .feature("g")))],
         .unknownReference(feature: "ratio", reference: "g")),
        // A derived feature may use derived features above it, not below (no cycles).
        ([FeatureDefinition(name: "a", expression: .feature("b")), FeatureDefinition(name: "b", expression: .constant(1))],
         .unknownReference(feature: "a", reference: "b")),
        ([FeatureDefinition(name: "self", expression: .feature("self"))], .unknownReference(feature: "self", reference: "self")),
    ]

    @Test("invalid definitions are refused with an error naming the feature", arguments: invalid.indices)
    func validationErrors(case index: Int) {
        let (definitions, expected) = Self.invalid[index]
        #expect(throws: expected) { try FeatureSet(definitions) }
        let name: String
        switch expected {
        case .emptyName: name = "#1"
        case .duplicateName(let feature), .unknownReference(let feature, _): name = "'\(feature)'"
        case .badName(let feature, _) where !feature.allSatisfy(\.isASCII): name = "'k\\u{00E4}ufe'"  // see anInvisibleCharacter…
        default: name = "'\(definitions[0].name)'"
        }
        #expect(expected.description.contains(name))
    }

    /// A model records each feature's signature and is refused when the served one differs: two equal
    /// definitions must share it however they are written, and any change to what is computed must show.
    @Test func aSignatureIsWhatTheFeatureComputes() throws {
        let filter = #"{"format": "nudge-features/1", "features": [{"name": "a", "events": ["Order Completed", "Product Viewed"], "channels": ["web", "store"], "where": {"category": ["x", "y"], "amount": {">": 5}}, "#
        func signature(_ rest: String) throws -> String? { try FeatureSet.parse(filter + rest + "}]}").signatures.first }
        let base = try signature(#""aggregation": "sum", "of": "amount", "window": "7d""#)
        #expect(base == #"sum(amount) of [Order Completed, Product Viewed] on [store, web] where amount > 5.0 and category in ["x", "y"] over 7d@12h, missing 0.0"#)
        // Listed otherwise, described, named otherwise, the window in other units: the same.
        let reordered = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "b", "description": "the same", "events": ["Product Viewed", "Order Completed"], "channels": ["store", "web"], "where": {"amount": {">": 5}, "category": ["y", "x"]}, "aggregation": "sum", "window": "1w"}]}"#)
        #expect(reordered.signatures.first == base)
        // Anything computed otherwise: another.
        for changed in [#""aggregation": "sum", "of": "amount", "window": "30d""#, #""aggregation": "avg", "of": "amount", "window": "7d""#,
                        #""aggregation": "sum", "of": "score", "window": "7d""#, #""aggregation": "sum", "window": "7d", "resolution": "1d""#,
                        #""aggregation": "sum", "window": "7d", "missing": -1"#, #""aggregation": "sum", "window": "7d", "cap": 100"#] {
            #expect(try signature(changed) != base, "\(changed)")
        }
        // A value holding a comma is one value, not two.
        let comma = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "g", "events": ["Product Viewed"], "where": {"category": "Home, Garden"}, "aggregation": "count"}]}"#)
        let two = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "g", "events": ["Product Viewed"], "where": {"category": ["Home", "Garden"]}, "aggregation": "count"}]}"#)
        #expect(comma.signatures != two.signatures)
        #expect(comma.signatures.first?.contains(#"category in ["Home, Garden"]"#) == true)
        // A derived feature carries what it reads: redefining an input changes it too, however deep.
        func derived(window: String) throws -> [String] {
            try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "n", "events": ["Order Completed"], "aggregation": "count", "window": "\#(window)"}, "#
                                 + #"{"name": "r", "expression": "n / max(n, 1)"}, {"name": "s", "expression": "r * 2"}]}"#).signatures
        }
        let week = try derived(window: "7d")
        #expect(week[1] == "derived (n / max(n, 1.0)), missing 0.0 {n: count of [Order Completed] over 7d@12h, missing 0.0}")
        #expect(week[2] == "derived (r * 2.0), missing 0.0 {n: count of [Order Completed] over 7d@12h, missing 0.0; r: derived (n / max(n, 1.0)), missing 0.0}")
        let month = try derived(window: "30d")
        #expect(month[1] != week[1] && month[2] != week[2])
        // Each input once, however the derived features chain: the text grows with the inputs, not the depth
        // (pasting each input's braces in whole grew like Fibonacci: 30 such features, tens of megabytes).
        var chain = [#"{"name": "f0", "events": ["Order Completed"], "aggregation": "count"}"#,
                     #"{"name": "f1", "events": ["Product Viewed"], "aggregation": "count"}"#]
        for k in 2..<30 { chain.append(#"{"name": "f\#(k)", "expression": "f\#(k - 1) + f\#(k - 2)"}"#) }
        let longest = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": ["# + chain.joined(separator: ", ") + "]}").signatures.map(\.count).max() ?? 0
        #expect(longest < 5_000, "\(longest) characters")
        // A property key holding a space is quoted: `properties.a not in` is not `properties."a not" in`.
        let spaced = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "s", "events": ["Product Viewed"], "where": {"properties.a not": "b"}, "aggregation": "count"}]}"#)
        let plain = try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "s", "events": ["Product Viewed"], "where": {"properties.a": {"not_in": "b"}}, "aggregation": "count"}]}"#)
        #expect(spaced.signatures != plain.signatures)
    }

    @Test func anInvisibleCharacterInANameIsShownByItsCodePoint() {
        let error = FeatureSetError.badName("views_1h\u{200B}", problem: "may hold only letters, digits and '_'")
        #expect(error.description == "feature name 'views_1h\\u{200B}' may hold only letters, digits and '_': rename it")
    }

    @Test("names an expression can use are accepted", arguments: ["_x", "a", "orders_90d", "Views24H", String(repeating: "n", count: 64)])
    func validNames(name: String) throws {
        #expect(try FeatureSet([Self.definition(name)]).names == [name])
    }

    @Test func emptySetIsValid() throws {
        let empty = try FeatureSet([])
        #expect(empty.count == 0)
        #expect(empty.bytesPerCustomer == 24) // the 21-byte header, rounded to 8
    }

    /// The issue's memory goal: at most 256 bytes of hot state per customer for the standard set.
    @Test func standardSetFitsInTwoHundredFiftySixBytes() {
        #expect(FeatureSet.standard.bytesPerCustomer <= 256)
        let table = CustomerTable(features: .standard, expectedCustomers: 100_000)
        // A 64-byte entry, 24 bytes of ids and an 8-byte index entry at load ≤ 3/4 (262,144 entries) per
        // customer; full records take memory only once customers have a second event.
        let expected = 100_000 * (64 + 24) + 262_144 * 8
        #expect(table.bytesUsed >= expected)
        #expect(table.bytesUsed < expected + 64 * 1024)
    }

    /// Rings are shared: more windows on one filter and resolution cost no more ring bytes.
    @Test func featuresShareRings() throws {
        let orders90 = FeatureDefinition(name: "orders_90d", filter: .kinds(.orderCompleted), aggregation: .count, window: .days(90))
        let alone = try FeatureSet([orders90])
        let shared = try FeatureSet([
            orders90,
            FeatureDefinition(name: "orders_30d_6d", filter: .kinds(.orderCompleted), aggregation: .count,
                              window: .days(30, resolutionMillis: 6 * Time.day)),
            FeatureDefinition(name: "orders_ever", filter: .kinds(.orderCompleted), aggregation: .count),
            FeatureDefinition(name: "ratio", expression: .binary(.divide, .feature("orders_30d_6d"), .feature("orders_90d"))),
        ])
        // 15 one-byte buckets and a seen byte after the header; the lifetime count adds 4 bytes.
        #expect(alone.bytesPerCustomer == 40)   // 21 + 15 + 1 = 37 → 40
        #expect(shared.bytesPerCustomer == 48)  // + 4 (UInt32, aligned) = 44 → 48
    }
}
