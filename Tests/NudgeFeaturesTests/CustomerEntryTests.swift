@testable import NudgeFeatures
import NudgeEvents
import NudgeTraffic
import Testing

/// A customer's first event kept in their 64-byte entry (``CustomerEntry``) against a full record from the
/// first event: the same features, bit for bit, through evaluation, eviction, restore and identity merges.
@Suite(.timeLimit(.minutes(2))) struct CustomerEntryTests {
    /// Random streams over many customers, most of whom stay at one event, fed to a table that keeps first
    /// events in entries and to one that gives every customer a full record; both are swept and merged at
    /// the same random points. Every customer's values, channel and newest time agree bitwise.
    @Test("one-event entries equal full records", arguments: 1...6)
    func oneEventEntriesEqualFullRecords(seed: Int) {
        var stream = FeaturePropertyTests.Stream(seed: UInt64(seed))
        var random = SplitMix64(seed: UInt64(seed) &* 0xA24B_AED4)
        let features = seed.isMultiple(of: 2) ? FeaturePropertyTests.extended : .standard
        let entries = TestShop(features)
        let records = TestShop(table: CustomerTable(features: features, expectedCustomers: 16, keepsFirstEventInEntry: false))
        let customers = (0..<4_000).map { "entry-\(seed)-\($0)" }
        var newest: [String: Int64] = [:]
        var mismatches = 0
        func compare(_ customer: String, at time: Int64) {
            if ColdTierTests.state(entries, customer, at: time) != ColdTierTests.state(records, customer, at: time) {
                mismatches += 1
            }
        }
        for _ in 0..<6_000 {
            // A long tail seen once or twice.
            let event = stream.next(skewedOver: customers, busy: 10, using: &random)
            entries.send(event)
            records.send(event)
            newest[event.customer] = max(newest[event.customer] ?? .min, event.time)
            let draw = Double.random(in: 0..<1, using: &random)
            if draw < 0.03 {
                let cutoff = stream.clock - Int64.random(in: 0...(30 * Time.day), using: &random)
                let limit = Int.random(in: 1...100, using: &random)
                #expect(entries.table.evictIdle(olderThanMillis: cutoff, limit: limit)
                            == records.table.evictIdle(olderThanMillis: cutoff, limit: limit))
            } else if draw < 0.05 {
                let from = customers[Int.random(in: 0..<customers.count, using: &random)]
                let into = customers[Int.random(in: 0..<customers.count, using: &random)]
                guard from != into else { continue }
                #expect(IdentityMergeTests.link(entries, from, into: into) == IdentityMergeTests.link(records, from, into: into))
                if let moved = newest.removeValue(forKey: from) { newest[into] = max(newest[into] ?? .min, moved) }
            } else if draw < 0.15, let customer = newest.keys.randomElement(using: &random), let last = newest[customer] {
                compare(customer, at: stream.evaluationTime(after: last))
            }
        }
        for (customer, last) in newest.sorted(by: { $0.key < $1.key }) {
            compare(customer, at: stream.evaluationTime(after: last))
        }
        #expect(mismatches == 0)
        #expect(entries.table.count == records.table.count)
        #expect(entries.table.coldCount == records.table.coldCount)
        // The point of entries: most of the tail never takes a full record.
        #expect(entries.table.fullRecords < records.table.fullRecords)
        #expect(records.table.fullRecords == records.table.count)
    }

    @Test func theSecondEventTakesAFullRecord() {
        let shop = TestShop()
        shop.send(.orderCompleted, at: Time.t0, amount: 42, category: "toys", productId: "p-1")
        #expect(shop.table.fullRecords == 0)
        #expect(shop.table.hotFootprint.records == 0, "no record memory before a second event")
        #expect(shop.value("orders_30d", at: Time.t0) == 1)
        #expect(shop.slot("c-1").map { shop.table.newestEventMillis(of: $0) } == Time.t0)
        shop.send(.page, at: Time.t0 - Time.minute, channel: .app)
        #expect(shop.table.fullRecords == 1)
        #expect(shop.value("orders_30d", at: Time.t0) == 1)
        #expect(shop.slot("c-1").map { shop.table.newestEventMillis(of: $0) } == Time.t0, "a late event does not move the newest time")
        #expect(shop.slot("c-1").flatMap { shop.table.lastChannel(of: $0) } == .web)
        // A small table's pool chunk: 16 records of the standard set's 248 bytes.
        #expect(shop.table.hotFootprint.records == 16 * 248)
    }

    /// Evictions and detaches return full records to the pool, which later customers reuse: churn through
    /// 20,000 two-event customers never grows the pool past its first chunk of 16 records.
    @Test func freedRecordsAreReused() {
        let shop = TestShop(expectedCustomers: 16)
        for round in 0..<2_500 {
            for n in 0..<8 {
                let customer = "churn-\(round)-\(n)"
                shop.send(.productViewed, at: Time.t0 + Int64(round), for: customer)
                shop.send(.productAdded, at: Time.t0 + Int64(round), for: customer)
            }
            if round.isMultiple(of: 2) {
                shop.table.evictIdle(olderThanMillis: .max, limit: 64)
            } else {
                for n in 0..<8 { _ = shop.table.detach(shop.pool.text("churn-\(round)-\(n)")) }
            }
            #expect(shop.table.fullRecords == 0)
        }
        #expect(shop.table.hotFootprint.records == 16 * 248)
        #expect(shop.table.evictions == 10_000)
    }
}
