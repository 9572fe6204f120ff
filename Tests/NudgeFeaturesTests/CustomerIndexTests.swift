import NudgeEvents
import NudgeFeatures
import Testing

/// The identity index: many customers, shared prefixes, growth and round trips.
@Suite struct CustomerIndexTests {
    static let oneFeature: FeatureSet = {
        do {
            return try FeatureSet([FeatureDefinition(name: "adds_24h", filter: .kinds(.productAdded), aggregation: .count,
                                                     window: .hours(24))])
        } catch {
            Issue.record("invalid test feature set: \(error)")
            return .standard
        }
    }()

    /// Ids sharing a long prefix, plus ids that are prefixes of one another.
    static func id(_ number: Int) -> String {
        number.isMultiple(of: 2) ? "customer-0000000000000000000000000000000000000000-\(number)" : "c\(number)"
    }

    @Test func twoHundredThousandCustomersThroughGrowth() throws {
        let total = 200_000
        let shop = TestShop(Self.oneFeature, expectedCustomers: 16) // forces every buffer to grow many times
        for number in 0..<total {
            let slot = shop.table.slot(for: shop.pool.text(Self.id(number)))
            #expect(slot.index == Int32(number), "slots are dense, in order of first sight")
            if number.isMultiple(of: 997) {
                // Feature state written before later growths must survive them.
                for offset in 0...(number % 5) {
                    shop.send(.productAdded, at: Time.t0 + Int64(offset), for: Self.id(number))
                }
            }
        }
        #expect(shop.table.count == total)
        #expect(shop.table.bytesUsed >= total * Self.oneFeature.bytesPerCustomer)

        var mismatches = 0
        for number in 0..<total {
            let text = shop.pool.text(Self.id(number))
            let existing = shop.table.existingSlot(for: text)
            if existing?.index != Int32(number) { mismatches += 1; continue }
            if shop.table.slot(for: text).index != Int32(number) { mismatches += 1 }
            if let existing, shop.table.customerId(of: existing) != Self.id(number) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(shop.table.count == total, "finding existing customers creates none")

        for number in stride(from: 0, to: total, by: 997) {
            #expect(shop.value("adds_24h", Self.id(number), at: Time.t0 + 10) == Double(number % 5 + 1))
        }
        #expect(shop.table.existingSlot(for: shop.pool.text("c\(total)")) == nil)
        #expect(shop.table.existingSlot(for: shop.pool.text("customer-0000000000000000000000000000000000000000-1")) == nil)
    }

    @Test func prefixesAndTheEmptyIdAreDistinctCustomers() {
        let shop = TestShop(Self.oneFeature)
        let ids = ["c", "c1", "c10", "c100", "", "C1", "c1 ", "ü", "u\u{308}"]
        let slots = ids.map { shop.table.slot(for: shop.pool.text($0)) }
        #expect(Set(slots).count == ids.count)
        #expect(slots.map { shop.table.customerId(of: $0) } == ids)
        #expect(ids.map { shop.table.existingSlot(for: shop.pool.text($0)) } == slots)
        #expect(shop.table.existingSlot(for: shop.pool.text("c1000")) == nil)
    }

    @Test func newCustomerStartsEmpty() {
        let shop = TestShop()
        let slot = shop.table.slot(for: shop.pool.text("fresh"))
        #expect(shop.table.lastChannel(of: slot) == nil)
        #expect(shop.table.newestEventMillis(of: slot) == .min)
        #expect(shop.values("fresh", at: Time.t0) == FeatureSet.standard.definitions.map(\.missingValue))
    }

    @Test func bytesUsedCountsEntriesPoolArenaAndIndex() {
        let table = CustomerTable(features: .standard, expectedCustomers: 1_000)
        // 1000 entries of 64 bytes, 24 bytes of ids each, 2048 index entries of 8 bytes, then the compiled
        // plan and scratch; no full record yet.
        let expected = 1_000 * 64 + 1_000 * 24 + 2_048 * 8
        #expect(table.bytesUsed >= expected)
        #expect(table.bytesUsed < expected + 16_384)
        #expect(table.hotFootprint.entries == 1_000 * 64)
        #expect(table.hotFootprint.records == 0)
    }
}
