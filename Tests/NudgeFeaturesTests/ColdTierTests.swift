import NudgeEvents
import NudgeFeatures
import NudgeTraffic
import Testing

/// The hot and cold tiers of CustomerTable: eviction, restore, slot reuse, the index under churn, the budget.
@Suite(.timeLimit(.minutes(2))) struct ColdTierTests {
    /// Lifetime state only, so a customer's expected values are plain counts and sums of what was sent.
    static let lifetime: FeatureSet = {
        do {
            return try FeatureSet([
                FeatureDefinition(name: "adds", filter: .kinds(.productAdded), aggregation: .count),
                FeatureDefinition(name: "spend", filter: .kinds(.productAdded), aggregation: .sum(.amount)),
            ])
        } catch {
            Issue.record("invalid test feature set: \(error)")
            return .standard
        }
    }()

    /// Every value of `customer` at `time` as bits (NaN-safe, and -0 is not 0), then channel and newest time.
    static func state(_ shop: TestShop, _ customer: String, at time: Int64) -> [UInt64] {
        guard let slot = shop.slot(customer) else { return [] }
        let values = shop.values(customer, at: time).map(\.bitPattern)
        let channel = UInt64(shop.table.lastChannel(of: slot)?.rawValue ?? 0xFF)
        return values + [channel, UInt64(bitPattern: shop.table.newestEventMillis(of: slot))]
    }

    /// Random streams (out of order, twins, NaNs, long silences) over 300 customers, a few of them busy,
    /// fed to a table that never evicts and to one swept at random points with random TTLs and step sizes:
    /// every feature of every customer is bitwise equal, whether they were restored by an event or by a lookup.
    @Test("evicted customers come back bit-identical", arguments: 1...8)
    func roundTripIsExact(seed: Int) {
        var stream = FeaturePropertyTests.Stream(seed: UInt64(seed))
        var random = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9)
        let features = FeaturePropertyTests.extended
        let reference = TestShop(features)
        let tiered = TestShop(features)
        let customers = (0..<300).map { "cold-\(seed)-\($0)" }
        var newest: [String: Int64] = [:]
        let ttls: [Int64] = [0, Time.minute, Time.hour, Time.day, 7 * Time.day, 60 * Time.day]
        var mismatches = 0
        for _ in 0..<5_000 {
            let event = stream.next(skewedOver: customers, busy: 12, using: &random)
            reference.send(event)
            tiered.send(event)
            newest[event.customer] = max(newest[event.customer] ?? .min, event.time)
            if Double.random(in: 0..<1, using: &random) < 0.08 {
                let ttl = ttls.randomElement(using: &random) ?? 0
                tiered.table.evictIdle(olderThanMillis: stream.clock - ttl, limit: Int.random(in: 1...200, using: &random))
            }
            if Double.random(in: 0..<1, using: &random) < 0.02,
               let customer = newest.keys.sorted().randomElement(using: &random), let last = newest[customer] {
                let time = stream.evaluationTime(after: last)
                if Self.state(reference, customer, at: time) != Self.state(tiered, customer, at: time) { mismatches += 1 }
            }
        }
        #expect(tiered.table.evictions > 0)
        #expect(tiered.table.restores > 0)
        // Everything idle goes cold, then every customer is compared (restored by the lookup).
        while tiered.table.evictIdle(olderThanMillis: .max, limit: 64) > 0 {}
        #expect(tiered.table.count == 0)
        #expect(tiered.table.coldCount == newest.count)
        for (customer, last) in newest.sorted(by: { $0.key < $1.key }) {
            let time = stream.evaluationTime(after: last)
            let expected = Self.state(reference, customer, at: time)
            if expected.isEmpty || expected != Self.state(tiered, customer, at: time) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(tiered.table.count == newest.count)
        #expect(tiered.table.coldCount == 0)
        #expect(tiered.table.coldDropped == 0)
        #expect(tiered.table.restoreFailures == 0)
    }

    /// 2,000 ids of 0 to 60 bytes in a table that starts at 16 customers; 150 rounds each touch a random
    /// fifth and evict whoever sat out two rounds, with random step sizes; every tenth round every id is
    /// looked up (restoring it). Each id keeps its own history and name, hot slots stay distinct, nothing
    /// is lost, and memory stays that of a table holding everyone once.
    @Test func churnKeepsEveryIdOnItsOwnHistory() {
        var random = SplitMix64(seed: 2_026)
        let ids = (0..<2_000).map { $0 == 0 ? "" : "id-\($0)-" + String(repeating: "x", count: $0 % 53) }
        let shop = TestShop(Self.lifetime, expectedCustomers: 16)
        var adds = [Int](repeating: 0, count: ids.count)
        var freed: [Int32] = []
        var clock = Time.t0
        var mismatches = 0
        for round in 1...150 {
            clock += Time.hour
            for _ in 0..<400 {
                let number = Int.random(in: 0..<ids.count, using: &random)
                shop.send(.productAdded, at: clock, for: ids[number], amount: Double(number))
                adds[number] += 1
            }
            let limit = Int.random(in: 1...3_000, using: &random)
            let evicted = shop.table.evictIdle(olderThanMillis: clock - 2 * Time.hour, limit: limit) { slot, _ in freed.append(slot.index) }
            #expect(evicted <= limit)
            guard round.isMultiple(of: 10) else { continue }
            var slots = Set<Int32>()
            for (number, id) in ids.enumerated() {
                guard adds[number] > 0 else {
                    if shop.slot(id) != nil { mismatches += 1 }
                    continue
                }
                guard let slot = shop.slot(id), shop.table.customerId(of: slot) == id,
                      shop.value("adds", id, at: clock) == Double(adds[number]),
                      shop.value("spend", id, at: clock) == Double(adds[number] * number) else {
                    mismatches += 1
                    continue
                }
                slots.insert(slot.index)
            }
            let seen = adds.filter { $0 > 0 }.count
            #expect(slots.count == seen, "every hot customer has a slot of its own")
            #expect(shop.table.count == seen && shop.table.coldCount == 0)
        }
        #expect(mismatches == 0)
        #expect(freed.count == shop.table.evictions)
        #expect(shop.table.evictions > 10_000 && shop.table.restores > 10_000)
        #expect(shop.table.coldDropped == 0)

        let everyoneOnce = TestShop(Self.lifetime, expectedCustomers: 16)
        for id in ids { everyoneOnce.send(.productAdded, at: clock, for: id) }
        // Without reuse, ~60,000 restores would have appended ~2 MB of ids; the bound allows the free slot
        // list and an arena up to twice as large.
        #expect(shop.table.bytesUsed <= 2 * everyoneOnce.table.bytesUsed, "churn leaves no growth beyond the peak")
    }

    /// A cold tier of 16 KiB: cold bytes never pass the budget, the customers evicted first are the ones
    /// dropped and counted, the rest come back exactly, and a dropped customer starts afresh.
    @Test func coldTierStaysWithinItsBudget() {
        let budget = 16_384
        let reference = TestShop(.standard)
        let tiered = TestShop(.standard, coldBudgetBytes: budget)
        let ids = (0..<1_000).map { "budget-\($0)" }
        for (number, id) in ids.enumerated() {
            for step in 0..<(1 + number % 4) {
                let time = Time.t0 + Int64(number) * Time.minute + Int64(step)
                let kind: EventKind = step == 0 ? .orderCompleted : .productViewed
                reference.send(kind, at: time, for: id, channel: .app, amount: Double(number))
                tiered.send(kind, at: time, for: id, channel: .app, amount: Double(number))
            }
        }
        var within = true
        while tiered.table.evictIdle(olderThanMillis: .max, limit: 50) > 0 {
            within = within && tiered.table.coldBytes <= budget
        }
        #expect(within)
        #expect(tiered.table.coldBudgetBytes == budget)
        #expect(tiered.table.evictions == ids.count)
        let dropped = tiered.table.coldDropped
        #expect(dropped > 0)
        #expect(tiered.table.coldCount + dropped == ids.count)

        // Eviction went in slot order, so the first `dropped` customers are the ones gone.
        let at = Time.t0 + Int64(ids.count) * Time.minute
        var mismatches = 0
        for (number, id) in ids.enumerated() {
            if number < dropped {
                if tiered.slot(id) != nil { mismatches += 1 }
            } else if Self.state(reference, id, at: at) != Self.state(tiered, id, at: at) {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
        tiered.send(.productViewed, at: at, for: ids[0])
        let ordersMissing = FeatureSet.standard.definitions.first { $0.name == "orders_90d" }?.missingValue
        #expect(tiered.value("orders_90d", ids[0], at: at) == ordersMissing, "a dropped customer's history is gone")
        #expect(tiered.value("views_24h", ids[0], at: at) == 1)
    }

    /// A customer whose id alone needs more than half the budget is dropped at eviction, and counted.
    @Test func aCustomerTooBigForTheBudgetIsDropped() {
        let shop = TestShop(.standard, coldBudgetBytes: 4_096)
        let huge = String(repeating: "h", count: 3_000)
        shop.send(.page, at: Time.t0, for: huge)
        shop.send(.page, at: Time.t0, for: "small")
        #expect(shop.table.evictIdle(olderThanMillis: .max, limit: 10) == 2)
        #expect(shop.table.coldDropped == 1 && shop.table.coldCount == 1)
        #expect(shop.slot(huge) == nil)
        #expect(shop.slot("small") != nil)
        #expect(shop.table.coldBytes <= 4_096)
    }

    /// Two ids whose hashes share the upper 32 bits (the hot index's tag) stay two customers through
    /// eviction and restore in either order.
    @Test func idsSharingAnIndexTagAreNotConfused() throws {
        let (first, second) = try #require(Self.tagTwins())
        let shop = TestShop(Self.lifetime)
        shop.send(.productAdded, at: Time.t0, for: first, amount: 1)
        for _ in 0..<3 { shop.send(.productAdded, at: Time.t0 + Time.day, for: second, amount: 10) }

        #expect(shop.table.evictIdle(olderThanMillis: Time.t0 + 1, limit: 10) == 1)
        #expect(shop.value("adds", second, at: Time.t0 + Time.day) == 3)
        #expect(shop.value("spend", first, at: Time.t0 + Time.day) == 1)
        #expect(shop.table.evictIdle(olderThanMillis: .max, limit: 10) == 2)
        #expect(shop.value("spend", second, at: Time.t0 + Time.day) == 30)
        #expect(shop.value("adds", first, at: Time.t0 + Time.day) == 1)
        let slots = [first, second].compactMap { shop.slot($0) }
        #expect(slots.count == 2 && slots[0] != slots[1])
        #expect(slots.map { shop.table.customerId(of: $0) } == [first, second])
    }

    /// Two ids of the form `tag-N` whose nudgeHash64 agree in the upper 32 bits (a birthday search: about
    /// 80,000 hashes).
    static func tagTwins() -> (String, String)? {
        var seen: [UInt32: Int] = [:]
        for number in 0..<2_000_000 {
            let tag = UInt32(truncatingIfNeeded: Array("tag-\(number)".utf8).withUnsafeBytes { nudgeHash64($0) } >> 32)
            if let other = seen[tag] { return ("tag-\(other)", "tag-\(number)") }
            seen[tag] = number
        }
        return nil
    }

    /// A slot eviction freed reads as unknown and ignores events until a new customer takes it.
    @Test func aFreedSlotReadsAsUnknownUntilReused() throws {
        let shop = TestShop(.standard)
        shop.send(.orderCompleted, at: Time.t0, for: "gone", channel: .store, amount: 5)
        let old = try #require(shop.slot("gone"))
        var reported: [CustomerSlot] = []
        #expect(shop.table.evictIdle(olderThanMillis: Time.t0 + 1, limit: 8) { slot, _ in reported.append(slot) } == 1)
        #expect(reported == [old])
        #expect(shop.table.customerId(of: old).isEmpty)
        #expect(shop.table.lastChannel(of: old) == nil)
        #expect(shop.table.newestEventMillis(of: old) == .min)
        shop.table.apply(shop.segmentEvent(TestEvent(customer: "gone", kind: .orderCompleted, time: Time.t0 + 5)), to: old)
        var values = [Double](repeating: 0, count: FeatureSet.standard.count)
        values.withUnsafeMutableBufferPointer { shop.table.evaluate(old, atMillis: Time.t0, into: $0) }
        #expect(values == FeatureSet.standard.definitions.map(\.missingValue))

        let newcomer = shop.table.slot(for: shop.pool.text("newcomer"))
        #expect(newcomer == old, "the freed slot is reused")
        #expect(shop.values("newcomer", at: Time.t0) == FeatureSet.standard.definitions.map(\.missingValue))
        #expect(shop.value("orders_30d", "gone", at: Time.t0) == 1, "the event sent to the stale slot was ignored")
    }

    /// The sweep examines at most `limit` slots per call, resuming where it stopped.
    @Test func theSweepIsIncremental() {
        let shop = TestShop(Self.lifetime)
        for number in 0..<10 { shop.send(.productAdded, at: Time.t0 + Int64(number), for: "s\(number)") }
        #expect(shop.table.evictIdle(olderThanMillis: Time.t0 + 5, limit: 3) == 3)
        #expect(shop.table.evictIdle(olderThanMillis: Time.t0 + 5, limit: 3) == 2, "slots 3 and 4 of 3...5")
        #expect(shop.table.evictIdle(olderThanMillis: Time.t0 + 5, limit: 100) == 0, "one lap finds nobody else")
        #expect(shop.table.count == 5 && shop.table.coldCount == 5)
        #expect(shop.table.evictIdle(olderThanMillis: .max, limit: 0) == 0)
    }

    /// Idle standard-feature records compress: a cold customer costs far less than a hot record.
    @Test func coldCustomersAreCompact() {
        let shop = TestShop(.standard, expectedCustomers: 1_024)
        var stream = FeaturePropertyTests.Stream(seed: 77)
        for number in 0..<20_000 {
            var event = stream.next()
            event.customer = "compact-\(number % 1_000)"
            shop.send(event)
        }
        let before = shop.table.coldBytes
        while shop.table.evictIdle(olderThanMillis: .max, limit: 256) > 0 {}
        let perCustomer = (shop.table.coldBytes - before) / max(shop.table.coldCount, 1)
        #expect(shop.table.coldCount == 1_000)
        #expect(perCustomer < FeatureSet.standard.bytesPerCustomer / 2)
    }

    /// What the owner attaches on eviction comes back with the customer: through `onRestore` when they
    /// return (once, in the slot they get, and not for an empty attachment), and in `detach` from the cold
    /// tier. A hot detach says which slot it freed.
    @Test func anAttachmentComesBackWithItsCustomer() throws {
        let shop = TestShop(Self.lifetime)
        for (n, id) in ["kept", "plain", "stitched", "hot"].enumerated() {
            shop.send(.productAdded, at: Time.t0 + Int64(n), for: id, amount: 2)
        }
        func attachment(_ id: String) -> ColdAttachment {
            var attachment = ColdAttachment()
            attachment.append(UInt8(id.utf8.count))
            attachment.append(Int64(-7_000_000_000_000))
            attachment.append(UInt32(0xDEAD_BEEF))
            return attachment
        }
        var restored: [(CustomerSlot, ColdAttachment)] = []
        shop.table.onRestore = { restored.append(($0, $1)) }
        let evicted = shop.table.evictIdle(olderThanMillis: Time.t0 + 3, limit: 10) { slot, attached in
            let id = shop.table.customerId(of: slot)
            if id != "plain" { attached = attachment(id) }
        }
        #expect(evicted == 3 && shop.table.coldCount == 3)

        let kept = shop.table.slot(for: shop.pool.text("kept"))
        #expect(restored.count == 1)
        #expect(restored.first?.0 == kept)
        #expect(restored.first?.1 == attachment("kept"))
        #expect(shop.value("adds", "kept", at: Time.t0) == 1, "the record came back too")
        _ = shop.table.slot(for: shop.pool.text("plain"))
        #expect(restored.count == 1, "nothing to hand back for an empty attachment")

        let stitched = try #require(shop.table.detach(shop.pool.text("stitched")))
        #expect(stitched.from == .cold(attachment("stitched")))
        #expect(stitched.customer.newestEventMillis == Time.t0 + 2)
        let hot = try #require(shop.slot("hot"))
        #expect(try #require(shop.table.detach(shop.pool.text("hot"))).from == .hot(freedSlot: hot))
        #expect(restored.count == 1)
    }

    /// Integers read back as written, in order; past the end there is nothing, and past the capacity
    /// nothing is written.
    @Test func attachmentsReadBackWhatWasWritten() {
        var attachment = ColdAttachment()
        let appended = attachment.append(UInt8(200)) && attachment.append(Int64.min) && attachment.append(Int16(-2))
        #expect(appended)
        var offset = 0
        #expect(attachment.read(UInt8.self, at: &offset) == 200)
        #expect(attachment.read(Int64.self, at: &offset) == .min)
        #expect(attachment.read(Int16.self, at: &offset) == -2)
        #expect(attachment.read(UInt8.self, at: &offset) == nil)
        #expect(offset == 11)
        while attachment.append(UInt8(1)) {}
        #expect(attachment.count == ColdAttachment.capacity)
        let full = attachment
        let overflowed = attachment.append(UInt8(1))
        #expect(!overflowed)
        #expect(attachment == full)
        var end = ColdAttachment.capacity - 4
        #expect(attachment.read(UInt64.self, at: &end) == nil, "an integer that runs past the end is not read")
        #expect(end == ColdAttachment.capacity - 4)
    }
}
