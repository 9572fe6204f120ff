import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing
@testable import NudgeTraining

@Suite("Point-in-time dataset")
struct DatasetTests {
    /// First cutoff: t0 + 30 days (the first event is on t0's day, warm-up 30 days).
    static let t1 = Time.t0 + 30 * Time.day
    static let t2 = t1 + 7 * Time.day

    static func feature(_ row: ChurnRow?, _ name: String) -> Double? {
        guard let row, let index = FeatureSet.standard.index(of: name) else { return nil }
        return row.features[index]
    }

    /// a: orders before and after T1; b: only after T1; c: seen once on day 0; an anonymous visitor; a late
    /// view of a's arriving after the T1 snapshot; z ends the history at T1 + 40 days.
    static func history() -> History {
        var h = History()
        h.track("Product Viewed", "a", at: Time.t0 + Time.hour)
        h.track("Product Viewed", "c", at: Time.t0 + 2 * Time.hour)
        h.order("a", at: t1 - 2 * Time.day, revenue: 80)
        h.track("Product Viewed", "b", at: t1 - Time.day)
        h.anonymousPage("anon-1", at: t1 - Time.day)
        h.order("b", at: t1 + 5 * Time.day, revenue: 30)  // passes T1: the T1 snapshot happens before it applies
        h.track("Product Viewed", "a", at: t1 - Time.hour)  // late: arrives after the T1 snapshot
        h.order("a", at: t1 + 3 * Time.day, revenue: 20)
        h.track("Product Viewed", "z", at: t1 + 40 * Time.day)
        return h
    }

    @Test func identifyFoldsTheVisitorIntoTheCustomerAndKeepsRowsAndLabels() throws {
        var h = History()
        h.anonymousPage("anon-1", at: Self.t1 - 2 * Time.day)
        h.track("Product Viewed", "x", at: Self.t1 - Time.day)
        h.order("x", at: Self.t1 + Time.day)                         // x's label at T1: ordered
        // An identify naming the customer as its own visitor is no link (it must not fold x into x).
        h.identify("x", anonymousId: "x", at: Self.t1 + 2 * Time.day)
        h.identify("w", anonymousId: "anon-1", at: Self.t1 + 3 * Time.day)
        // A known id later used as an anonymous id: x folds into w, and x's row at T1 keeps x's id and label.
        h.identify("w", anonymousId: "x", at: Self.t1 + 4 * Time.day)
        h.track("Product Viewed", "v", at: Self.t1 + 5 * Time.day)   // takes x's freed slot
        h.track("Product Viewed", "z", at: Self.t1 + 40 * Time.day)
        var config = DatasetConfig()
        config.firstCutoffMillis = Self.t1
        let dataset = replay(h.lines, config: config)
        let x1 = try #require(dataset.churnRows.first { $0.customerId == "x" && $0.cutoffMillis == Self.t1 })
        #expect(x1.churned == false)
        #expect(!dataset.churnRows.contains { $0.customerId == "v" && $0.cutoffMillis == Self.t1 })
        // w holds both visitors' history at the next cutoff: anon-1's page, x's view and order.
        let w2 = try #require(dataset.churnRows.first { $0.customerId == "w" && $0.cutoffMillis == Self.t1 + 7 * Time.day })
        #expect(Self.feature(w2, "orders_30d") == 1)
        #expect(Self.feature(w2, "sessions_7d") == 0)  // both visits were more than 7 days before
    }

    @Test func featuresAreAsOfTheCutoffAndLabelsFromAfterIt() throws {
        let dataset = replay(Self.history().lines, config: DatasetConfig())
        let rows = dataset.churnRows
        func row(_ customer: String, _ cutoff: Int64) -> ChurnRow? {
            rows.first { $0.customerId == customer && $0.cutoffMillis == cutoff }
        }
        // b's only order is after T1: at T1 b has no orders, and the label comes from after T1.
        let b1 = try #require(row("b", Self.t1))
        #expect(Self.feature(b1, "orders_30d") == 0)
        #expect(Self.feature(b1, "orders_90d") == 0)
        #expect(Self.feature(b1, "revenue_90d") == 0)
        #expect(Self.feature(b1, "days_since_last_order") == 365)
        #expect(Self.feature(b1, "days_since_last_seen") == 1)
        #expect(b1.churned == false)  // ordered at T1 + 5d, within 30 days
        // a at T1: the order 2 days before, not the one 3 days after; the late view is missing, as live.
        let a1 = try #require(row("a", Self.t1))
        #expect(Self.feature(a1, "orders_30d") == 1)
        #expect(Self.feature(a1, "revenue_90d") == 80)
        #expect(Self.feature(a1, "days_since_last_order") == 2)
        #expect(Self.feature(a1, "days_since_last_seen") == 2)
        #expect(Self.feature(a1, "views_24h") == 0)
        #expect(a1.churned == false)
        // At T2 the orders after T1 are in the features; nobody orders after T2: churned.
        let a2 = try #require(row("a", Self.t2))
        #expect(Self.feature(a2, "orders_30d") == 2)
        #expect(Self.feature(a2, "days_since_last_order") == 4)
        #expect(a2.churned)
        let b2 = try #require(row("b", Self.t2))
        #expect(Self.feature(b2, "days_since_last_order") == 2)
        #expect(b2.churned)
        // c is active at T1 (seen 30 days minus 2 hours before) and never orders; inactive at T2.
        #expect(try #require(row("c", Self.t1)).churned)
        #expect(row("c", Self.t2) == nil)
        // Anonymous visitors and customers first seen after the cutoff get no rows.
        #expect(!rows.contains { $0.customerId == "anon-1" || $0.customerId == "z" })
        #expect(rows.count == 5)
        #expect(Set(rows.map(\.cutoffMillis)) == [Self.t1, Self.t2])

        let s = dataset.statistics
        #expect(s.firstCutoffMillis == Self.t1)
        #expect(s.cutoffs == 6)  // T1 … T1 + 35d, all passed by z's event at T1 + 40d
        #expect(s.censoredCutoffs == 4)  // T1 + 14d on: horizon past T1 + 40d
        #expect(s.missedBySnapshot == 1)
        #expect(s.outOfOrder == 2)  // the late view and a's order at T1 + 3d, both behind b's order at T1 + 5d
        #expect(s.knownCustomers == 4)
        #expect(s.keys == 5)
    }

    @Test func malformedAndDuplicateMessagesAreSkippedAndCounted() {
        var h = History()
        h.track("Product Viewed", "a", at: Time.t0 + Time.hour, messageId: "dup")
        h.track("Order Completed", "a", at: Time.t0 + 2 * Time.hour, messageId: "dup")  // same id: dropped
        h.raw("{not json")
        h.raw(#"{"type":"track","event":"Order Completed","messageId":"x","timestamp":"2026-01-01T00:00:00Z"}"#)  // no ids
        h.track("Product Viewed", "a", at: Self.t1 + 31 * Time.day)
        let dataset = replay(h.lines, config: DatasetConfig())
        #expect(dataset.statistics.messages == 5)
        #expect(dataset.statistics.malformed == 2)
        #expect(dataset.statistics.duplicates == 1)
        #expect(dataset.statistics.applied == 2)
        let row = dataset.churnRows.first { $0.cutoffMillis == Self.t1 }
        #expect(Self.feature(row, "orders_90d") == 0)  // the duplicate order never counted
        #expect(row?.churned == true)
    }

    @Test func offersGetFeaturesAtDeliveryAndAcceptanceWithinTheWindow() throws {
        var h = History()
        let d1 = Self.t1 + Time.day
        h.track("Product Viewed", "o", at: Time.t0)
        h.outcome("Offer Delivered", "o", at: Time.t0 + Time.day, recommendation: "r-0")  // warm-up: no row
        h.track("Product Added", "o", at: d1 - Time.hour, properties: #"{"price":10}"#)
        h.outcome("Offer Delivered", "o", at: d1, recommendation: "r-1")
        h.outcome("Offer Viewed", "o", at: d1 + 10 * Time.minute, recommendation: "r-1")
        h.outcome("Offer Accepted", "o", at: d1 + 30 * Time.minute, recommendation: "r-1")
        h.outcome("Offer Delivered", "o", at: d1 + Time.day, recommendation: "r-2", action: "promo_discount", channel: "email")
        h.outcome("Offer Dismissed", "o", at: d1 + Time.day + Time.minute, recommendation: "r-2", action: "promo_discount")
        h.outcome("Offer Delivered", "o", at: d1 + 2 * Time.day, recommendation: "r-3")
        h.outcome("Offer Accepted", "o", at: d1 + 10 * Time.day, recommendation: "r-3")  // 8 days later: too late
        h.outcome("Offer Accepted", "o", at: d1 + 3 * Time.day + Time.hour, recommendation: "r-4")  // arrives first
        h.outcome("Offer Delivered", "o", at: d1 + 3 * Time.day, recommendation: "r-4")
        h.outcome("Offer Delivered", "o", at: d1 + 15 * Time.day, recommendation: "r-5")  // window past the end
        h.track("Product Viewed", "o", at: d1 + 20 * Time.day)
        let dataset = replay(h.lines, config: DatasetConfig())
        let offers = dataset.offerRows
        #expect(offers.map(\.recommendationId) == ["r-1", "r-2", "r-3", "r-4"])
        #expect(offers.map(\.accepted) == [true, false, false, true])
        #expect(offers.map(\.dismissed) == [false, true, false, false])
        #expect(offers.map(\.viewed) == [true, false, false, false])
        #expect(offers.map(\.action) == ["cart_reminder", "promo_discount", "cart_reminder", "cart_reminder"])
        #expect(offers.map(\.channel) == ["push", "email", "push", "push"])
        let first = offers[0]
        #expect(first.deliveredMillis == d1)
        let names = dataset.featureNames
        func value(_ name: String) -> Double? { names.firstIndex(of: name).map { first.features[$0] } }
        #expect(value("cart_items") == 1)
        #expect(value("adds_24h") == 1)
        // The delivery itself is not applied yet: last seen is the add, one hour before.
        #expect(value("days_since_last_seen") == 1.0 / 24)
        #expect(dataset.statistics.offersDelivered == 6)
        #expect(dataset.statistics.offersSkipped == 1)
        #expect(dataset.statistics.censoredOffers == 1)
    }

    /// Replays generated traffic (late events and duplicates included) and checks every row against a
    /// CustomerTable fed the same messages directly, up to the first event past each cutoff, and every
    /// label against the orders in the stream.
    @Test func rowsEqualADirectlyFedCustomerTable() throws {
        var traffic = TrafficConfig()
        traffic.seed = 7
        traffic.customers = 150
        traffic.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: 150)
        traffic.duplicateRate = 0.01
        traffic.malformedRate = 0.002
        let generator = TrafficGenerator(traffic)
        var messages: [[UInt8]] = []
        for _ in 0..<25_000 { messages.append(Array(generator.next().value)) }

        // Identity links never expire here, so that the reference below can stitch with a plain dictionary.
        var config = DatasetConfig()
        config.identityLinkTTLMillis = Int64.max / 4
        let builder = PointInTimeDatasetBuilder(config: config)
        for message in messages { message.withUnsafeBytes { builder.consume($0) } }
        let dataset = builder.finish()
        let cutoffs = Set(dataset.churnRows.map(\.cutoffMillis)).sorted()
        #expect(cutoffs.count >= 4)
        #expect(dataset.statistics.outOfOrder > 0)
        #expect(dataset.statistics.duplicates > 0)

        // Identity, the plain way: an anonymous id seen with a userId is that customer from then on, and its
        // history is the customer's.
        var linkedTo: [String: String] = [:]
        func customer(of event: SegmentEvent) -> String {
            event.userId.isEmpty ? linkedTo[event.anonymousId.string] ?? event.anonymousId.string : event.userId.string
        }
        var links: [(messageIndex: Int, anonymous: String, user: String)] = []
        // Orders (deduplicated) by customer, for the labels.
        var orders: [String: [Int64]] = [:]
        do {
            let decoder = SegmentDecoder()
            var recent = RecentMessageIDs(horizon: 1 << 20)
            for (index, message) in messages.enumerated() {
                message.withUnsafeBytes { bytes in
                    guard let event = try? decoder.decode(bytes), recent.insert(event.messageId) else { return }
                    let id = customer(of: event)
                    if event.kind == .orderCompleted { orders[id, default: []].append(event.timestampMillis) }
                    let (anonymous, user) = (event.anonymousId.string, event.userId.string)
                    if !user.isEmpty, !anonymous.isEmpty, linkedTo[anonymous] != user {
                        linkedTo[anonymous] = user
                        links.append((index, anonymous, user))
                        orders[user, default: []] += orders.removeValue(forKey: anonymous) ?? []
                    }
                }
            }
        }
        #expect(!links.isEmpty, "the stream should link anonymous visitors to customers")

        let width = FeatureSet.standard.count
        var output = [Double](repeating: 0, count: width)
        for cutoff in cutoffs {
            let decoder = SegmentDecoder()
            var recent = RecentMessageIDs(horizon: 1 << 20)
            let table = CustomerTable(features: .standard, expectedCustomers: 1024)
            var newest: [String: Int64] = [:]
            var known: Set<String> = []
            linkedTo = [:]
            for message in messages {
                let passed: Bool = message.withUnsafeBytes { bytes in
                    guard let event = try? decoder.decode(bytes), recent.insert(event.messageId) else { return false }
                    if event.timestampMillis > cutoff { return true }
                    let id = customer(of: event)
                    newest[id] = max(newest[id] ?? .min, event.timestampMillis)
                    if !event.userId.isEmpty { known.insert(id) }
                    var idBytes = Array(id.utf8)
                    idBytes.withUnsafeMutableBytes { table.apply(event, to: table.slot(for: RawText(UnsafeRawBufferPointer($0)))) }
                    let (anonymous, user) = (event.anonymousId.string, event.userId.string)
                    if !user.isEmpty, !anonymous.isEmpty, linkedTo[anonymous] != user {
                        linkedTo[anonymous] = user
                        if let (detached, _) = table.detach(event.anonymousId) {
                            table.merge(detached, into: table.slot(for: event.userId))
                        }
                        if let anonymousNewest = newest.removeValue(forKey: anonymous) { newest[user] = max(newest[user] ?? .min, anonymousNewest) }
                    }
                    return false
                }
                if passed { break }
            }
            let expected = known.filter { (newest[$0] ?? .min) > cutoff - 30 * Time.day }
            let rows = dataset.churnRows.filter { $0.cutoffMillis == cutoff }
            #expect(Set(rows.map(\.customerId)) == expected)
            for row in rows {
                var bytes = Array(row.customerId.utf8)
                let slot = try #require(bytes.withUnsafeMutableBytes { table.existingSlot(for: RawText(UnsafeRawBufferPointer($0))) })
                output.withUnsafeMutableBufferPointer { table.evaluate(slot, atMillis: cutoff, into: $0) }
                #expect(row.features == output, "\(row.customerId) at \(ISO8601Time.format(millis: cutoff))")
                let ordered = (orders[row.customerId] ?? []).contains { $0 > cutoff && $0 <= cutoff + 30 * Time.day }
                #expect(row.churned == !ordered)
            }
        }
    }

    @Test func csvRoundTripsExactly() throws {
        let names = ["views_1h", "revenue_90d"]
        let rows = [
            ChurnRow(customerId: "c-1", cutoffMillis: Self.t1, features: [3, 72.66999816894531], churned: true),
            ChurnRow(customerId: "c,\"2\"", cutoffMillis: Self.t2, features: [0.1, 1e-7], churned: false),
        ]
        let text = DatasetCSV.churnCSV(rows, featureNames: names)
        #expect(text.hasPrefix("customer_id,cutoff,views_1h,revenue_90d,churn\nc-1,2026-01-31T00:00:00.000Z,3,72.66999816894531,1\n"))
        let table = try LabeledTable.parse(text, path: "dataset.csv", kind: .churn)
        #expect(table.featureNames == names)
        #expect(table.values == [3, 72.66999816894531, 0.1, 1e-7])
        #expect(table.labels == [1, 0])
        #expect(table.times == [Self.t1, Self.t2])
        #expect(table.ids == ["c-1", "c,\"2\""])
    }

    @Test func csvRecordsHandleQuotesEmptyFieldsAndLineEnds() throws {
        let text = "a,b,c\r\n\"x,\"\"y\"\"\",,\"multi\nline\"\r\n1,2,\n"
        #expect(try DatasetCSV.records(text, path: "t.csv") == [["a", "b", "c"], ["x,\"y\"", "", "multi\nline"], ["1", "2", ""]])
        #expect(try DatasetCSV.records("", path: "t.csv").isEmpty)
        #expect(throws: TrainingError.csv(path: "t.csv", line: 2, column: "", problem: "a quoted field is not closed; check the file is complete")) {
            try DatasetCSV.records("a\n\"open", path: "t.csv")
        }
    }

    @Test func csvErrorsNameLineAndColumn() {
        let text = "customer_id,cutoff,views_1h,churn\nc-1,2026-01-31T00:00:00.000Z,x,1\n"
        #expect(throws: TrainingError.csv(path: "d.csv", line: 2, column: "views_1h", problem: "'x' is not a number")) {
            try LabeledTable.parse(text, path: "d.csv", kind: .churn)
        }
        #expect(throws: TrainingError.csv(path: "d.csv", line: 1, column: "accepted",
                                          problem: "is missing from the header; is this an offers dataset (nudge dataset --offers-out)?")) {
            try LabeledTable.parse(text, path: "d.csv", kind: .offers)
        }
        // A feature asked for by name that the file lacks: the option is named, with the file's features.
        #expect(throws: TrainingError.option(name: "features", value: "views_14d", expected: "a feature column of d.csv: views_1h")) {
            try LabeledTable.parse(text, path: "d.csv", kind: .churn, features: ["views_1h", "views_14d"])
        }
    }

    @Test func jsonLinesSkipsBlankLinesAndStripsCarriageReturns() {
        let text = "a\r\n\n  \nbb\nc"
        var lines: [String] = []
        let blank = Array(text.utf8).withUnsafeBytes { bytes in
            JSONLines.forEachLine(in: bytes) { lines.append(String(decoding: $0, as: UTF8.self)) }
        }
        #expect(lines == ["a", "bb", "c"])
        #expect(blank == 2)
    }

    @Test func durationsAndInstantsParse() {
        #expect(DurationText.parseMillis("7d") == 7 * Time.day)
        #expect(DurationText.parseMillis("12h") == 12 * Time.hour)
        #expect(DurationText.parseMillis("90m") == 90 * Time.minute)
        #expect(DurationText.parseMillis("250ms") == 250)
        #expect(DurationText.parseMillis("2w") == 14 * Time.day)
        #expect(DurationText.parseMillis("7") == nil)
        #expect(DurationText.parseMillis("-1d") == nil)
        #expect(DurationText.parseMillis("0d") == nil)
        #expect(DurationText.parseInstant("2026-01-01") == Time.t0)
        #expect(DurationText.parseInstant("2026-01-01T01:00:00+01:00") == Time.t0)
        #expect(DurationText.parseInstant("yesterday") == nil)
        #expect(DurationText.describe(millis: 30 * Time.day) == "30d")
    }
}
