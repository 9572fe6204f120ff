import Foundation
import NudgeEvents
import NudgeFeatures
import Testing

/// The declarative feature file: the shipped default, and every way a file is refused, with its line.
@Suite struct FeatureFileTests {
    /// `models/features.json` of the repository this test file sits in.
    static let defaultFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/features.json").path

    @Test func defaultFileStartsWithTheStandardSet() throws {
        let loaded = try FeatureSet.load(file: Self.defaultFile)
        #expect(Array(loaded.definitions.prefix(14)) == FeatureSet.standard.definitions)
        #expect(Array(loaded.names.prefix(14)) == FeatureSet.standard.names)
        #expect(loaded.count > 14)
        // The omnichannel extras cost memory; keep the whole default file within a known bound.
        #expect(loaded.bytesPerCustomer <= 560)
        #expect(try FeatureSet.load(file: Self.defaultFile) == loaded)
    }

    @Test func defaultFileComputesItsOmnichannelFeatures() throws {
        let shop = TestShop(try FeatureSet.load(file: Self.defaultFile))
        shop.send(.orderCompleted, at: Time.t0, channel: .store, amount: 80)
        shop.send(.orderCompleted, at: Time.t0 + 1, channel: .web, amount: 20)
        shop.send(.orderCompleted, at: Time.t0 + 2, channel: .store, amount: 50)
        shop.send(.productViewed, at: Time.t0 + 3, channel: .app, category: "outdoor")
        shop.send(.productViewed, at: Time.t0 + 4, channel: .app, category: "outdoor")
        shop.send(.productAdded, at: Time.t0 + 5, channel: .app, category: "kitchen")
        shop.send(.surveyAnswered, at: Time.t0 + 6, channel: .email, score: 4)
        shop.send(.surveyAnswered, at: Time.t0 + 7, channel: .email, score: 9)
        shop.send(.ticketOpened, at: Time.t0 + 8, channel: .callCenter)
        let at = Time.t0 + 8
        #expect(shop.value("orders_lifetime", at: at) == 3)
        #expect(shop.value("revenue_lifetime", at: at) == 150)
        #expect(shop.value("avg_order_value_90d", at: at) == 50)
        #expect(shop.value("largest_order", at: at) == 80)
        #expect(shop.value("store_orders_90d", at: at) == 2)
        #expect(shop.value("online_orders_90d", at: at) == 1)
        #expect(shop.value("store_order_share_90d", at: at) == 2.0 / 3)
        #expect(shop.value("app_sessions_7d", at: at) == 2)
        #expect(shop.value("outdoor_views_30d", at: at) == 2)
        #expect(shop.value("add_to_cart_rate_24h", at: at) == 0.5)
        #expect(shop.value("tickets_90d", at: at) == 1)
        #expect(shop.value("call_center_contacts_30d", at: at) == 1)
        #expect(shop.value("nps_average", at: at) == 6.5)
        #expect(shop.value("detractor_answers_90d", at: at) == 1)
        #expect(shop.value("offer_acceptance_rate_90d", at: at) == 0)
        let distinct = shop.value("distinct_categories_30d", at: at)
        #expect(distinct >= 1 && distinct < 2.1) // two categories, or one if their bits collide
    }

    // MARK: Refusals

    /// A file whose feature `i` is alone on line 4 + i.
    static func file(_ features: [String]) -> String {
        "{\n  \"format\": \"nudge-features/1\",\n  \"features\": [\n" + features.map { "    " + $0 }.joined(separator: ",\n")
            + "\n  ]\n}\n"
    }

    static let ok = #"{"name": "ok", "events": ["page"], "aggregation": "count", "window": "24h"}"#
    static let ok2 = #"{"name": "ok2", "events": ["page"], "aggregation": "count"}"#

    static func refused(_ text: String) -> FeatureFileError? {
        do {
            _ = try FeatureSet.parse(text, file: "f.json")
            return nil
        } catch {
            return error
        }
    }

    static let cases: [(text: String, line: Int, problem: FeatureFileError.Problem)] = [
        ("{\n  \"format\": \"nudge-features/1\",\n  \"features\": [\n    {\"name\": \"a\",}\n  ]\n}", 4,
         .notJSON(reason: "expected a quoted key")),
        ("{\n  \"format\": \"nudge-features/2\",\n  \"features\": []\n}", 2, .wrongFormat(found: "nudge-features/2")),
        ("{\n  \"features\": []\n}", 1, .wrongFormat(found: nil)),
        ("{\"format\": \"nudge-features/1\"}", 1, .missingField(feature: nil, field: "features")),
        ("{\"format\": \"nudge-features/1\",\n \"features\": [], \"extra\": 1}", 2,
         .unknownField(feature: nil, field: "extra", allowed: ["format", "description", "features"])),
        (file([ok, #"{"name": "a", "events": ["page"], "window": "1h"}"#]), 5, .missingField(feature: "a", field: "aggregation")),
        (file([ok, #"{"events": ["page"], "aggregation": "count"}"#]), 5, .missingField(feature: nil, field: "name")),
        (file([ok, #"{"name": "b", "events": ["page"], "aggregation": "sum"}"#,
               #"{"name": "a", "events": ["page"], "aggregation": "count", "window": 24}"#]), 6,
         .wrongType(feature: "a", field: "window", expected: "a string", found: "a number")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "count", "windw": "24h"}"#]), 4,
         .unknownField(feature: "a", field: "windw", allowed: ["name", "description", "events", "channels", "where", "aggregation", "of",
                                                               "closes", "removes", "resets", "window", "resolution", "missing", "cap"])),
        (file([ok, #"{"name": "a", "events": ["page"], "aggregation": "count", "closes": ["Ticket Closed"]}"#]), 5,
         .notApplicable(feature: "a", field: "closes", aggregation: "count")),
        (file([ok, #"{"name": "a", "expression": "ok * 2", "window": "1h"}"#]), 5,
         .notApplicable(feature: "a", field: "window", aggregation: "a derived feature (expression)")),
        (file([ok, #"{"name": "a", "events": ["page", "Prodcut Viewed"], "aggregation": "count"}"#]), 5,
         .unknownEvent(feature: "a", name: "Prodcut Viewed")),
        (file([#"{"name": "a", "events": ["page"], "channels": ["web", "kiosk"], "aggregation": "count"}"#]), 4,
         .unknownChannel(feature: "a", name: "kiosk")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "median"}"#]), 4, .unknownAggregation(feature: "a", name: "median")),
        (file([#"{"name": "a", "events": ["page"], "where": {"colour": "red"}, "aggregation": "count"}"#]), 4,
         .unknownProperty(feature: "a", name: "colour", allowed: ["category", "product_id", "amount", "score", "properties.<key>"])),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "distinct_count", "of": "amount"}"#]), 4,
         .unknownProperty(feature: "a", name: "amount", allowed: ["category", "product_id", "properties.<key>"])),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "sum", "of": "quantity"}"#]), 4,
         .unknownProperty(feature: "a", name: "quantity", allowed: ["amount", "score", "properties.<key>"])),
        // Properties read by name: one top-level key, not empty, not too long.
        (file([#"{"name": "a", "events": ["page"], "where": {"properties.": "x"}, "aggregation": "count"}"#]), 4,
         .badProperty(feature: "a", name: "properties.", problem: "names no key: write properties.<key>, e.g. properties.payment_method")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "max", "of": "properties.shipping.cost"}"#]), 4,
         .badProperty(feature: "a", name: "properties.shipping.cost", problem: "is nested: only top-level keys of properties are read")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "distinct_count", "of": "properties.\#(String(repeating: "k", count: 65))"}"#]), 4,
         .badProperty(feature: "a", name: "properties.\(String(repeating: "k", count: 65))", problem: "is longer than 64 bytes")),
        (file([#"{"name": "a", "events": ["page"], "where": {"properties.tier": {"==": "gold", ">": 2}}, "aggregation": "count"}"#]), 4,
         .badCondition(feature: "a", reason: "properties.tier takes one operator of ==, !=, in, not_in")),
        (file([#"{"name": "a", "events": ["page"], "where": {"properties.tier": {"in": ["gold", 3]}}, "aggregation": "count"}"#]), 4,
         .wrongType(feature: "a", field: "properties.tier", expected: "a string", found: "a number")),
        (file((1...9).map { #"{"name": "p\#($0)", "events": ["page"], "aggregation": "sum", "of": "properties.k\#($0)"}"# }), 12,
         .invalid(.tooManyProperties(feature: "p9", field: "of", property: "k9", limit: 8))),
        // At the field that reads the ninth key, on its own line.
        (file((1...8).map { #"{"name": "p\#($0)", "events": ["page"], "aggregation": "sum", "of": "properties.k\#($0)"}"# }
              + ["{\"name\": \"w\", \"events\": [\"page\"], \"aggregation\": \"sum\", \"of\": \"properties.k1\",\n     \"where\": {\"properties.k9\": 1}}"]), 13,
         .invalid(.tooManyProperties(feature: "w", field: "where", property: "k9", limit: 8))),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "count", "window": "24 hours"}"#]), 4,
         .badDuration(feature: "a", field: "window", text: "24 hours")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "count", "window": "521s"}"#]), 4,
         .noDefaultResolution(feature: "a", window: "521s")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "count", "window": "1d", "resolution": "0h"}"#]), 4,
         .badDuration(feature: "a", field: "resolution", text: "0h")),
        (file([#"{"name": "a", "events": ["page"], "where": {"amount": {"~": 3}}, "aggregation": "count"}"#]), 4,
         .badCondition(feature: "a", reason: "unknown operator \"~\" for amount: use ==, !=, <, <=, >, >=")),
        (file([ok, #"{"name": "a", "expression": "ok / (ok"}"#]), 5,
         .badExpression(feature: "a", error: ExpressionError(position: 8, reason: "expected ')' but found 'end of text'"))),
        // A flat expression's tree is as deep as it is long: its operands are bounded.
        (file([ok, #"{"name": "a", "expression": ""# + Array(repeating: "ok", count: 257).joined(separator: "+") + #""}"#]), 5,
         .badExpression(feature: "a", error: ExpressionError(position: 768, reason:
            "more than 256 numbers, names and parentheses in one expression: split it into features"))),
        (file([ok, #"{"name": "ok", "events": ["page"], "aggregation": "count"}"#]), 5, .invalid(.duplicateName("ok"))),
        (file([ok, ok2, "{\"events\": [\"page\"],\n     \"name\": \"channel\", \"aggregation\": \"count\"}"]), 7,
         .invalid(.badName("channel", problem: "is a column of the training datasets"))),
        (file([#"{"name": "", "events": ["page"], "aggregation": "count"}"#]), 4, .invalid(.emptyName(position: 0))),
        (file([ok, ok2, #"{"name": "", "events": ["page"], "aggregation": "count"}"#]), 6, .invalid(.emptyName(position: 2))),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "time_since_last"}"#]), 4, .missingField(feature: "a", field: "missing")),
        (file([#"{"name": "a", "events": ["page"], "aggregation": "count", "window": "+5m"}"#]), 4,
         .badDuration(feature: "a", field: "window", text: "+5m")),
        (file([ok, #"{"name": "a", "events": [], "aggregation": "count"}"#]), 5, .invalid(.noKinds(feature: "a"))),
        (file([ok, #"{"name": "a", "events": ["page"], "aggregation": "count", "window": "90d", "resolution": "1h"}"#]), 5,
         .invalid(.tooManyBuckets(feature: "a", window: .days(90, resolutionMillis: Time.hour), buckets: 2160, limit: 512))),
        (file([ok, #"{"name": "a", "events": ["page"], "aggregation": "count", "window": "24h", "resolution": "7h"}"#]), 5,
         .invalid(.resolutionDoesNotDivide(feature: "a", window: .hours(24, resolutionMillis: 7 * Time.hour)))),
        (file([ok, #"{"name": "a", "expression": "ok / b"}"#]), 5, .invalid(.unknownReference(feature: "a", reference: "b"))),
        (file([#"{"name": "a", "events": ["Ticket Opened"], "aggregation": "open_count", "closes": ["Ticket Closed"], "window": "7d"}"#]), 4,
         .invalid(.gaugeNeedsLifetimeWindow(feature: "a", aggregation: "openCount"))),
        (file([#"{"name": "a", "events": ["Ticket Opened"], "aggregation": "open_count", "closes": ["Ticket Opened"]}"#]), 4,
         .invalid(.conflictingKinds(feature: "a", kinds: ["Ticket Opened"]))),
        (file([#"{"name": "a", "events": ["page"], "where": {"category": []}, "aggregation": "count"}"#]), 4,
         .invalid(.emptyCondition(feature: "a", condition: "category in []"))),
        // Too many buckets: at the resolution when the file gives one, else at the window.
        (file([ok, "{\"name\": \"a\", \"events\": [\"page\"], \"aggregation\": \"count\",\n     \"window\": \"90d\",\n     \"resolution\": \"1h\"}"]), 7,
         .invalid(.tooManyBuckets(feature: "a", window: .days(90, resolutionMillis: Time.hour), buckets: 2160, limit: 512))),
        // An object over several lines is reported at its first line; a field at its own line.
        (file([ok, "{\"name\": \"a\",\n     \"events\": [\"page\"]}"]), 5, .missingField(feature: "a", field: "aggregation")),
        (file([ok, "{\"name\": \"a\",\n     \"events\": [\"page\"],\n     \"aggregation\": \"count\",\n     \"window\": \"soon\"}"]), 8,
         .badDuration(feature: "a", field: "window", text: "soon")),
    ]

    @Test("invalid files are refused with the line and the reason", arguments: cases.indices)
    func refusals(case index: Int) {
        let (text, line, problem) = Self.cases[index]
        let error = Self.refused(text)
        #expect(error == FeatureFileError(file: "f.json", line: line, problem: problem), "\(error.map(\.description) ?? "accepted")")
        if let error {
            #expect(error.description.hasPrefix("f.json:\(line): "))
        }
    }

    @Test func minAndMaxOfAMissingValueAreMissingWhicheverArgumentItIs() throws {
        let set = try FeatureSet.parse(Self.file([
            #"{"name": "taken", "events": ["Offer Accepted"], "aggregation": "count", "window": "90d"}"#,
            #"{"name": "delivered", "events": ["Offer Delivered"], "aggregation": "count", "window": "90d"}"#,
            #"{"name": "rate_a", "expression": "min(taken / delivered, 1)", "missing": -1}"#,
            #"{"name": "rate_b", "expression": "min(1, taken / delivered)", "missing": -1}"#,
            #"{"name": "rate_c", "expression": "max(0, taken / delivered)", "missing": -1}"#,
            #"{"name": "rate_d", "expression": "max(taken, 2)", "missing": -1}"#,
        ]), file: "f.json")
        let shop = TestShop(set)
        shop.send(.page, at: Time.t0)  // never offered anything: 0 / 0
        #expect(shop.values(at: Time.t0) == [0, 0, -1, -1, -1, 2])
    }

    @Test func anAbsentAmountIsNoValue() throws {
        let set = try FeatureSet.parse(Self.file([
            #"{"name": "cheap_views", "events": ["Product Viewed"], "where": {"amount": {"<": 20}}, "aggregation": "count"}"#,
            #"{"name": "lowest_price", "events": ["Product Viewed"], "aggregation": "min", "of": "amount", "missing": -1}"#,
            #"{"name": "average_price", "events": ["Product Viewed"], "aggregation": "avg", "of": "amount", "missing": -1}"#,
        ]), file: "f.json")
        let shop = TestShop(set)
        let decoder = SegmentDecoder()
        for properties in [#"{"price":50}"#, #"{"product_id":"p-1"}"#] {
            let json = #"{"type":"track","event":"Product Viewed","userId":"c-1","messageId":"m-\#(properties.count)","#
                + #""timestamp":"2026-01-01T00:00:00Z","properties":\#(properties)}"#
            let event = try Array(json.utf8).withUnsafeBytes { try decoder.decode($0) }
            shop.table.apply(event, to: shop.table.slot(for: event.customerId))
        }
        // The view without a price is neither cheap nor a price of 0.
        #expect(shop.values(at: Time.t0) == [0, 50, 50])
    }

    @Test func unreadableFileIsRefusedWithoutALine() {
        #expect(throws: FeatureFileError.self) { try FeatureSet.load(file: "/nonexistent/features.json") }
        do {
            _ = try FeatureSet.load(file: "/nonexistent/features.json")
        } catch {
            #expect(error.line == 0)
            #expect(error.description.contains("cannot read the file"))
        }
    }

    @Test func everyFieldIsUnderstood() throws {
        let set = try FeatureSet.parse(Self.file([
            #"{"name": "a", "description": "x", "events": ["Order Completed"], "channels": ["store", "call_center"], "#
                + #""where": {"category": ["outdoor", "garden"], "product_id": {"not_in": "p-1"}, "amount": {">": 10, "<=": 500}}, "#
                + #""aggregation": "avg", "of": "amount", "window": "2w", "resolution": "1d", "missing": -1, "cap": 1e4}"#,
            #"{"name": "b", "events": ["Product Added", "Product Added to Wishlist"], "aggregation": "net_count", "removes": ["Product Removed"], "resets": ["Order Completed"]}"#,
            #"{"name": "c", "events": ["Survey Answered"], "where": {"score": 10}, "aggregation": "min", "of": "score", "window": "lifetime"}"#,
            #"{"name": "d", "expression": "log1p(a) - sqrt(abs(c))", "missing": 0, "cap": 3}"#,
            #"{"name": "e", "events": ["Product Viewed"], "aggregation": "distinct_count", "of": "product_id", "window": "5m"}"#,
            #"{"name": "f\u005f9", "events": ["identify", "other"], "aggregation": "time_since_last", "window": "90s", "resolution": "30s", "missing": 9}"#,
            #"{"name": "g", "events": "*", "aggregation": "count", "window": "5m"}"#,
            #"{"name": "h", "events": ["Order Completed"], "aggregation": "last", "of": "amount", "window": "30d"}"#,
            #"{"name": "i", "events": ["Survey Answered"], "aggregation": "last"}"#,
        ]))
        let a = set.definitions[0]
        #expect(a.filter.kinds == [.orderCompleted])
        #expect(a.filter.channels == [.store, .callCenter])
        // Conditions in their canonical order (by text), whatever order the file wrote them in.
        #expect(a.filter.conditions == [.number(.amount, .lessOrEqual, 500), .number(.amount, .greater, 10),
                                        .textIn(.category, ["outdoor", "garden"]), .textNotIn(.productId, ["p-1"])])
        #expect(a.aggregation == .average(.amount))
        #expect(a.window == .days(14, resolutionMillis: Time.day))
        #expect(a.missingValue == -1 && a.cap == 10_000)
        #expect(set.definitions[1].filter.kinds == [.productAdded, .productAddedToWishlist])
        #expect(set.definitions[6].filter.kinds == Set(EventKind.allCases))
        #expect(set.definitions[1].aggregation == .netCount(removes: [.productRemoved], resets: [.orderCompleted]))
        #expect(set.definitions[2].filter.conditions == [.number(.score, .equal, 10)])
        #expect(set.definitions[3].aggregation == .derived(try FeatureExpression.parse("log1p(a) - sqrt(abs(c))")))
        #expect(set.definitions[4].aggregation == .distinctCount(.productId))
        #expect(set.definitions[7].aggregation == .last(.amount) && set.definitions[8].aggregation == .last(.score))
        #expect(set.definitions[4].window == .minutes(5))
        #expect(set.names[5] == "f_9")
        #expect(set.definitions[5].window == FeatureWindow(durationMillis: 90_000, resolutionMillis: 30_000))
        #expect(set.readProperties.isEmpty)
    }

    @Test func propertiesAreReadByNameAsTheConditionIsWritten() throws {
        let set = try FeatureSet.parse(Self.file([
            #"{"name": "gift_orders", "events": ["Order Completed"], "#
                + #""where": {"properties.payment_method": "gift_card", "properties.items": {">=": 2, "<": 10}, "properties.tier": {"not_in": ["1", "2"]}}, "#
                + #""aggregation": "sum", "of": "properties.items", "window": "30d"}"#,
            #"{"name": "orders_value", "events": ["Order Completed"], "aggregation": "sum", "window": "30d"}"#,
            #"{"name": "brands", "events": ["Product Viewed"], "aggregation": "distinct_count", "of": "properties.brand", "window": "7d"}"#,
            #"{"name": "top_discount", "events": ["Order Completed"], "aggregation": "max", "of": "properties.discount", "missing": -1}"#,
            #"{"name": "gifts", "events": ["Order Completed"], "where": {"properties.is_gift": "true"}, "aggregation": "count"}"#,
        ]))
        #expect(set.definitions[0].filter.conditions == [
            .number(.property("items"), .less, 10), .number(.property("items"), .greaterOrEqual, 2),
            .textIn(.property("payment_method"), ["gift_card"]), .textNotIn(.property("tier"), ["1", "2"]),
        ])
        #expect(set.definitions[0].aggregation == .sum(.property("items")))
        #expect(set.definitions[1].aggregation == .sum(.amount))
        #expect(set.definitions[2].aggregation == .distinctCount(.property("brand")))
        #expect(set.definitions[3].aggregation == .maximum(.property("discount")))
        // In order of first use (a filter's conditions in their canonical order), each once: the order decoders
        // are built with.
        #expect(set.readProperties == ["items", "payment_method", "tier", "brand", "discount", "is_gift"])
    }
}
