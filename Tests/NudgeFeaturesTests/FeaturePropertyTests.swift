import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing

/// Random seeded streams checked feature by feature against ReferenceFeatures.
@Suite struct FeaturePropertyTests {
    /// The standard set plus one definition per remaining shape: channel filters, lifetime count and sum,
    /// windowed last and timeSinceLast, channel-filtered gauges, a 5m window, a one-bucket tumbling window,
    /// a 120-bucket window, caps and unusual missing values, and properties read by name (text and numeric).
    static let extended: FeatureSet = {
        let extras = [
            FeatureDefinition(name: "web_app_orders_7d", filter: EventFilter(kinds: [.orderCompleted], channels: [.web, .app]),
                              aggregation: .count, window: .days(7)),
            FeatureDefinition(name: "spend_lifetime", filter: .kinds(.orderCompleted, .orderRefunded), aggregation: .sum(.amount)),
            FeatureDefinition(name: "views_lifetime", filter: .kinds(.productViewed), aggregation: .count, missingValue: -5),
            FeatureDefinition(name: "nps_90d", filter: .kinds(.surveyAnswered), aggregation: .last(.score),
                              window: .days(90, resolutionMillis: Time.day), missingValue: -1, cap: 9),
            FeatureDefinition(name: "last_order_value_30d", filter: .kinds(.orderCompleted, .orderRefunded), aggregation: .last(.amount),
                              window: .days(30), missingValue: -4),
            FeatureDefinition(name: "days_since_complaint_30d", filter: .kinds(.complaintFiled), aggregation: .timeSinceLast,
                              window: .days(30), missingValue: 99),
            FeatureDefinition(name: "store_tickets", filter: EventFilter(kinds: [.ticketOpened], channels: [.store, .callCenter]),
                              aggregation: .openCount(closes: [.ticketClosed]), missingValue: -2),
            FeatureDefinition(name: "wishlist_net", filter: .kinds(.productAddedToWishlist),
                              aggregation: .netCount(removes: [.productRemoved], resets: [.orderCompleted, .orderCancelled]),
                              missingValue: -3, cap: 4),
            FeatureDefinition(name: "adds_5m", filter: .kinds(.productAdded), aggregation: .count, window: .minutes(5), cap: 3),
            FeatureDefinition(name: "revenue_week_tumbling", filter: .kinds(.orderCompleted), aggregation: .sum(.amount),
                              window: .days(7, resolutionMillis: 7 * Time.day)),
            FeatureDefinition(name: "search_amount_2h", filter: .kinds(.productsSearched, .couponApplied), aggregation: .sum(.amount),
                              window: .hours(2, resolutionMillis: Time.minute), missingValue: 7),
            // Shares orders_90d's 6d ring with a shorter window.
            FeatureDefinition(name: "orders_30d_coarse", filter: .kinds(.orderCompleted), aggregation: .count,
                              window: .days(30, resolutionMillis: 6 * Time.day)),
            // 16-bit buckets (browsing kind, 1d resolution).
            FeatureDefinition(name: "views_7d_daily", filter: .kinds(.productViewed), aggregation: .count,
                              window: .days(7, resolutionMillis: Time.day)),
            FeatureDefinition(name: "outdoor_views_7d", filter: EventFilter(kinds: [.productViewed], conditions: [.textIn(.category, ["outdoor"])]),
                              aggregation: .count, window: .days(7), missingValue: -1),
            FeatureDefinition(name: "other_adds_24h",
                              filter: EventFilter(kinds: [.productAdded], conditions: [.textNotIn(.category, ["outdoor", "toys"])]),
                              aggregation: .count, window: .hours(24)),
            FeatureDefinition(name: "big_orders_30d",
                              filter: EventFilter(kinds: [.orderCompleted], channels: [.store, .web],
                                                  conditions: [.number(.amount, .greaterOrEqual, 100)]),
                              aggregation: .count, window: .days(30)),
            FeatureDefinition(name: "detractor_surveys_90d",
                              filter: EventFilter(kinds: [.surveyAnswered], conditions: [.number(.score, .lessOrEqual, 6)]),
                              aggregation: .count, window: .days(90)),
            FeatureDefinition(name: "max_order_90d", filter: .kinds(.orderCompleted), aggregation: .maximum(.amount),
                              window: .days(90), missingValue: -1),
            FeatureDefinition(name: "min_order_lifetime", filter: .kinds(.orderCompleted), aggregation: .minimum(.amount),
                              missingValue: -1),
            FeatureDefinition(name: "max_score_lifetime", filter: .kinds(.surveyAnswered, .offerViewed), aggregation: .maximum(.score)),
            FeatureDefinition(name: "min_nps_30d", filter: .kinds(.surveyAnswered), aggregation: .minimum(.score),
                              window: .days(30), missingValue: 11),
            FeatureDefinition(name: "avg_order_90d", filter: .kinds(.orderCompleted), aggregation: .average(.amount),
                              window: .days(90)),
            FeatureDefinition(name: "avg_order_30d_app", filter: EventFilter(kinds: [.orderCompleted], channels: [.app, .web, .store]),
                              aggregation: .average(.amount), window: .days(30)),
            FeatureDefinition(name: "nps_average", filter: .kinds(.surveyAnswered), aggregation: .average(.score), missingValue: -1),
            FeatureDefinition(name: "distinct_categories_30d", filter: .kinds(.productViewed, .productAdded, .orderCompleted),
                              aggregation: .distinctCount(.category), window: .days(30), missingValue: -1),
            FeatureDefinition(name: "distinct_products", filter: .kinds(.productViewed), aggregation: .distinctCount(.productId)),
            FeatureDefinition(name: "add_to_cart_rate", expression: .binary(.divide, .feature("adds_24h"),
                                                                            .call(.max, [.feature("views_24h"), .constant(1)]))),
            FeatureDefinition(name: "rate_percent", expression: .binary(.multiply, .feature("add_to_cart_rate"), .constant(100)),
                              cap: 50),
            FeatureDefinition(name: "odd_mix", expression: .binary(.subtract, .call(.log1p, [.call(.abs, [.feature("spend_lifetime")])]),
                                                                   .binary(.divide, .binary(.multiply, .call(.sqrt, [.call(.abs, [.feature("nps_last")])]), .constant(2)),
                                                                           .binary(.subtract, .feature("orders_90d"), .constant(1)))),
                              missingValue: -42),
            FeatureDefinition(name: "negative_root", expression: .call(.sqrt, [.negate(.feature("cart_items"))]), missingValue: 3),
            // Properties read by name: a text one and a numeric one, the numeric one also read as text.
            FeatureDefinition(name: "gift_card_orders_30d",
                              filter: EventFilter(kinds: [.orderCompleted], conditions: [.textIn(.property("payment_method"), ["gift_card"])]),
                              aggregation: .count, window: .days(30)),
            FeatureDefinition(name: "not_cash_lifetime",
                              filter: EventFilter(kinds: [.orderCompleted, .productAdded], conditions: [.textNotIn(.property("payment_method"), ["cash"])]),
                              aggregation: .count),
            FeatureDefinition(name: "items_7d", filter: .kinds(.productAdded, .orderCompleted), aggregation: .sum(.property("items")),
                              window: .days(7)),
            FeatureDefinition(name: "items_lifetime", filter: .kinds(.orderCompleted), aggregation: .sum(.property("items"))),
            FeatureDefinition(name: "max_items_90d", filter: .kinds(.orderCompleted), aggregation: .maximum(.property("items")),
                              window: .days(90), missingValue: -1),
            FeatureDefinition(name: "avg_items", filter: .kinds(.orderCompleted, .productAdded), aggregation: .average(.property("items")),
                              missingValue: -1),
            FeatureDefinition(name: "last_items_30d", filter: .kinds(.productAdded), aggregation: .last(.property("items")),
                              window: .days(30), missingValue: -1),
            FeatureDefinition(name: "payment_kinds_90d", filter: .kinds(.orderCompleted), aggregation: .distinctCount(.property("payment_method")),
                              window: .days(90)),
            FeatureDefinition(name: "item_counts_seen", filter: .kinds(.productAdded), aggregation: .distinctCount(.property("items"))),
            FeatureDefinition(name: "big_baskets_30d",
                              filter: EventFilter(kinds: [.orderCompleted], conditions: [.number(.property("items"), .greaterOrEqual, 3)]),
                              aggregation: .count, window: .days(30)),
        ]
        do {
            return try FeatureSet(FeatureSet.standard.definitions + extras)
        } catch {
            Issue.record("extended feature set invalid: \(error)")
            return .standard
        }
    }()

    /// A stream generator: a drifting clock with small steps, some hours and days, rare 20-200 day silences;
    /// event times jittered back (out of order) by up to 30 minutes or 10 days; some times snapped onto
    /// bucket edges; twins of the previous event at the same millisecond; NaN, zero and negative amounts; NaN and fractional scores.
    struct Stream {
        var random: SplitMix64
        var clock = Time.t0
        var previous: TestEvent?
        let customers: [String]

        init(seed: UInt64) {
            random = SplitMix64(seed: seed)
            let count = Int.random(in: 1...25, using: &random)
            customers = (0..<count).map { "cust-\(seed)-\($0)" }
        }

        static let edges: [Int64] = [Time.minute, 5 * Time.minute, Time.hour, 2 * Time.hour, 6 * Time.hour, 12 * Time.hour,
                                     Time.day, 3 * Time.day, 6 * Time.day, 7 * Time.day]
        /// Categories, the empty one (absent) included.
        static let categories = ["outdoor", "kitchen", "toys", "garden", "", "fashion"]
        /// `properties.payment_method`, mostly absent: most events carry none, so most first events stay in the entry.
        static let payments = ["", "", "", "", "gift_card", "card", "cash"]

        mutating func millis(upTo limit: Int64) -> Int64 { Int64.random(in: 0...limit, using: &random) }

        /// The next event, for a customer of `customers` drawn by `picker`: half the time one of the first
        /// `busy`, else any, so a few are busy and the rest form a long tail.
        mutating func next(skewedOver customers: [String], busy: Int, using picker: inout SplitMix64) -> TestEvent {
            var event = next()
            let pick = Int.random(in: 0..<customers.count, using: &picker)
            event.customer = Bool.random(using: &picker) ? customers[pick % busy] : customers[pick]
            return event
        }

        mutating func next() -> TestEvent {
            let step = Double.random(in: 0..<1, using: &random)
            clock += step < 0.7 ? millis(upTo: 2 * Time.minute)
                : step < 0.9 ? millis(upTo: 3 * Time.hour)
                : step < 0.98 ? millis(upTo: 3 * Time.day)
                : 20 * Time.day + millis(upTo: 180 * Time.day)
            var time = clock
            let jitter = Double.random(in: 0..<1, using: &random)
            if jitter >= 0.8 { time -= jitter < 0.95 ? millis(upTo: 30 * Time.minute) : millis(upTo: 10 * Time.day) }
            if Double.random(in: 0..<1, using: &random) < 0.1, let edge = Self.edges.randomElement(using: &random) {
                time = time - time % edge - (Bool.random(using: &random) ? 1 : 0)
            }
            let amountDraw = Double.random(in: 0..<1, using: &random)
            let amount = amountDraw < 0.2 ? 0
                : amountDraw < 0.25 ? .nan
                : amountDraw < 0.3 ? -Double(Int.random(in: 1...20_000, using: &random)) / 100
                : Double(Int.random(in: 1...50_000, using: &random)) / 100
            let scoreDraw = Double.random(in: 0..<1, using: &random)
            let score = scoreDraw < 0.7 ? Double(Int.random(in: 0...10, using: &random))
                : scoreDraw < 0.8 ? .nan
                : Double.random(in: 0...10, using: &random)
            let channel = Channel.allCases.randomElement(using: &random) ?? .web
            let category = Self.categories.randomElement(using: &random) ?? ""
            let productId = Double.random(in: 0..<1, using: &random) < 0.1 ? "" : "p-\(Int.random(in: 1...60, using: &random))"
            let payment = Self.payments.randomElement(using: &random) ?? ""
            let itemsDraw = Double.random(in: 0..<1, using: &random)
            let items = itemsDraw < 0.4 ? Double.nan : itemsDraw < 0.45 ? 0 : itemsDraw < 0.5 ? 1.5 : Double(Int.random(in: 1...6, using: &random))
            if let previous, Double.random(in: 0..<1, using: &random) < 0.05 {
                // A twin: same customer, kind and millisecond, other values; the later arrival must win.
                self.previous = TestEvent(customer: previous.customer, kind: previous.kind, channel: channel,
                                          time: previous.time, amount: amount, score: score, category: category,
                                          productId: productId, payment: payment, items: items)
            } else {
                self.previous = TestEvent(customer: customers.randomElement(using: &random) ?? "none",
                                          kind: EventKind.allCases.randomElement(using: &random) ?? .page,
                                          channel: channel, time: time, amount: amount, score: score, category: category,
                                          productId: productId, payment: payment, items: items)
            }
            return self.previous ?? TestEvent(customer: "none", kind: .page, time: time)
        }

        /// An evaluation time at or after `newest`: the newest itself, a little later, a bucket edge, days
        /// or a year later.
        mutating func evaluationTime(after newest: Int64) -> Int64 {
            let draw = Double.random(in: 0..<1, using: &random)
            if draw < 0.3 { return newest }
            if draw < 0.5 { return newest + millis(upTo: Time.hour) }
            if draw < 0.7, let edge = Self.edges.randomElement(using: &random) {
                let next = newest - newest % edge + edge * Int64.random(in: 1...40, using: &random)
                return max(newest, next - (Bool.random(using: &random) ? 1 : 0))
            }
            if draw < 0.9 { return newest + millis(upTo: 10 * Time.day) }
            return newest + millis(upTo: 400 * Time.day)
        }
    }

    /// Compares every feature of `customer` at `time`; returns false on the first mismatch (recorded).
    static func check(_ shop: TestShop, _ customer: String, events: [TestEvent], at time: Int64, seed: UInt64) -> Bool {
        check(shop, customer, history: History(events: events), at: time, seed: seed)
    }

    /// Compares every feature of `customer` at `time` with the reference over `history`.
    static func check(_ shop: TestShop, _ customer: String, history: History, at time: Int64, seed: UInt64) -> Bool {
        let actual = shop.values(customer, at: time)
        let events = history.all
        for (position, definition) in shop.table.features.definitions.enumerated() {
            let expected = ReferenceFeatures.value(position, of: shop.table.features, history: history, at: time)
            var tolerance = ReferenceFeatures.tolerance(definition, events: events, at: time, merged: history.isMerged)
            // Derived features carry the rounding of what they read along: a merged lifetime sum's, and the
            // 32-bit floats of windowed sums (a relative 1e-5, as the sums' own tolerance).
            if case .derived = definition.aggregation {
                tolerance = (ReferenceFeatures.readsWindowedSum(definition, of: shop.table.features) ? 1e-5 : history.isMerged ? 1e-12 : 0) * abs(expected)
            }
            guard abs(actual[position] - expected) <= tolerance else {
                Issue.record("seed \(seed), \(customer), \(definition.name) at \(time): got \(actual[position]), expected \(expected) (\(events.count) events)")
                return false
            }
        }
        guard let slot = shop.slot(customer) else { return false }
        let channel = shop.table.lastChannel(of: slot)
        let newest = shop.table.newestEventMillis(of: slot)
        guard channel == ReferenceFeatures.lastChannel(events), newest == events.map(\.time).max() else {
            Issue.record("seed \(seed), \(customer): last channel \(String(describing: channel)), newest \(newest)")
            return false
        }
        return true
    }

    @Test("CustomerTable equals the reference on random streams", arguments: 1...60)
    func matchesReference(seed: Int) {
        Self.matchReference(Self.extended, seed: UInt64(seed))
    }

    /// The repository's `models/features.json`, read through the file parser as the service reads it.
    @Test("The default feature file equals the reference on random streams", arguments: 1...20)
    func defaultFileMatchesReference(seed: Int) throws {
        Self.matchReference(try FeatureSet.load(file: FeatureFileTests.defaultFile), seed: UInt64(seed) + 20_000)
    }

    static func matchReference(_ features: FeatureSet, seed: UInt64) {
        var stream = Stream(seed: seed)
        let shop = TestShop(features)
        var history: [String: [TestEvent]] = [:]
        let eventCount = Int.random(in: 50...1_500, using: &stream.random)
        for _ in 0..<eventCount {
            let event = stream.next()
            shop.send(event)
            history[event.customer, default: []].append(event)
            guard Double.random(in: 0..<1, using: &stream.random) < 0.1,
                  let customer = history.keys.sorted().randomElement(using: &stream.random),
                  let events = history[customer], let newest = events.map(\.time).max() else { continue }
            let time = stream.evaluationTime(after: newest)
            guard Self.check(shop, customer, events: events, at: time, seed: seed) else { return }
        }
        for (customer, events) in history.sorted(by: { $0.key < $1.key }) {
            guard let newest = events.map(\.time).max() else { continue }
            let time = stream.evaluationTime(after: newest)
            guard Self.check(shop, customer, events: events, at: time, seed: seed) else { return }
        }
        #expect(shop.table.count == history.count)
    }

    /// Identity links at the table: an anonymous visitor's history detached and merged into a customer, later
    /// events of the visitor applied to the customer; relinking an id moves only its later events.
    @Test("Merged customers equal the reference over every linked history", arguments: 1...40)
    func identityLinksMatchReference(seed: Int) {
        let seed = UInt64(seed) + 10_000
        var stream = Stream(seed: seed)
        let shop = TestShop(Self.extended)
        let visitors = (0..<Int.random(in: 1...12, using: &stream.random)).map { "anon-\(seed)-\($0)" }
        var linkedTo: [String: String] = [:]
        var histories: [String: History] = [:]
        var previous: TestEvent?
        for _ in 0..<Int.random(in: 100...1_500, using: &stream.random) {
            if Double.random(in: 0..<1, using: &stream.random) < 0.03,
               let visitor = visitors.randomElement(using: &stream.random),
               let customer = stream.customers.randomElement(using: &stream.random) {
                if let (detached, _) = shop.table.detach(shop.pool.text(visitor)) {
                    shop.table.merge(detached, into: shop.table.slot(for: shop.pool.text(customer)))
                }
                if let absorbed = histories.removeValue(forKey: visitor) {
                    histories[customer] = History(merging: absorbed, into: histories[customer] ?? History())
                }
                linkedTo[visitor] = customer
                continue
            }
            var event = stream.next()
            if Bool.random(using: &stream.random), let visitor = visitors.randomElement(using: &stream.random) {
                event.customer = visitor
            }
            if let previous, Double.random(in: 0..<1, using: &stream.random) < 0.1 {
                // A twin under another identity: equal times across a later merge (ties go to the target).
                (event.kind, event.time) = (previous.kind, previous.time)
            }
            previous = event
            event.customer = linkedTo[event.customer] ?? event.customer
            shop.send(event)
            histories[event.customer, default: History()].events.append(event)
            guard Double.random(in: 0..<1, using: &stream.random) < 0.1,
                  let customer = histories.keys.sorted().randomElement(using: &stream.random),
                  let history = histories[customer], let newest = history.all.map(\.time).max() else { continue }
            guard Self.check(shop, customer, history: history, at: stream.evaluationTime(after: newest), seed: seed) else { return }
        }
        for (customer, history) in histories.sorted(by: { $0.key < $1.key }) {
            guard let newest = history.all.map(\.time).max() else { continue }
            guard Self.check(shop, customer, history: history, at: stream.evaluationTime(after: newest), seed: seed) else { return }
        }
        #expect(shop.table.count == histories.count)
        for visitor in linkedTo.keys { #expect(shop.slot(visitor) == nil, "seed \(seed): \(visitor) still has a record after its link") }
    }
}
