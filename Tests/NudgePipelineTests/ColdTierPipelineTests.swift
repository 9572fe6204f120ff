import Foundation
import NudgeEvents
import NudgeFeatures
import Testing
@testable import NudgePipeline

/// The shard moves customers idle past the TTL to the cold tier between events, and they come back with
/// their history on their next event.
@Suite("Cold tier in the shard")
struct ColdTierPipelineTests {
    private static let day: Int64 = 86_400_000
    private static let t0: Int64 = 1_790_000_000_000

    private func send(_ processor: EventProcessor, _ event: String, _ customer: String, at: Int64, id: String,
                      properties: String = "{}") {
        let bytes = track(event, user: customer, id: id, at: ISO8601Time.format(millis: at), properties: properties)
        _ = bytes.withUnsafeBytes { processor.process($0, route: .forwarded) }
    }

    /// One shard's processor, without cart timers, and without silences unless `silences`.
    private func shard(_ config: PipelineConfig, silences: Bool = false) throws -> EventProcessor {
        var config = config
        config.eventTime.cartAbandonedAfter = nil
        if !silences { config.eventTime.customerSilentAfter = nil }
        return EventProcessor(shardIndex: 0, shardCount: 1, config: config,
                              models: ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures)),
                              features: repoFeatures,
                              counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)))
    }

    @Test func idleCustomersGoColdAndComeBackWithTheirHistory() throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        config.idleCustomerTTL = .seconds(2 * 86_400)
        let processor = try shard(config)
        // c-quiet orders twice, then goes silent; c-busy keeps the shard's event time moving.
        send(processor, "Order Completed", "c-quiet", at: Self.t0, id: "o-1", properties: #"{"revenue":40.0}"#)
        send(processor, "Order Completed", "c-quiet", at: Self.t0 + 1_000, id: "o-2", properties: #"{"revenue":60.0}"#)
        let before = try #require(processor.snapshot(of: Array("c-quiet".utf8), atMillis: Self.t0 + 10 * Self.day))
        for d in 1...10 {
            send(processor, "Product Viewed", "c-busy", at: Self.t0 + Int64(d) * Self.day, id: "v-\(d)")
            _ = processor.advance(wallMillis: 1_800_000_000_000) { _ in }
            processor.sweepIdle(limit: 1_024)
        }
        #expect(processor.table.coldCount == 1, "c-quiet, idle 10 days with a 2-day TTL, is in the cold tier")
        #expect(processor.table.count == 1)
        #expect(processor.table.evictions == 1)

        // Back: the next event restores the whole history before it is applied.
        send(processor, "Order Completed", "c-quiet", at: Self.t0 + 10 * Self.day, id: "o-3", properties: #"{"revenue":10.0}"#)
        #expect(processor.table.restores == 1)
        #expect(processor.table.coldCount == 0)
        let after = try #require(processor.snapshot(of: Array("c-quiet".utf8), atMillis: Self.t0 + 10 * Self.day))
        #expect(before[feature: "orders_lifetime"] == 2)
        #expect(after[feature: "orders_lifetime"] == 3)
        #expect(after[feature: "revenue_lifetime"] == 110)
        #expect(after[feature: "orders_30d"] == 3)
    }

    /// A flood of new customer ids (a broken upstream, an attack) within the TTL, with silence timers on:
    /// the shard's hot tier stays at its cap (capped after every batch, as the shard does), those idle longest
    /// move out early and are counted, the silence queues keep no more than about two entries per customer
    /// held (hot or cold), and a regular customer comes back whole.
    @Test func aFloodOfNewIdsKeepsTheHotTierAtItsCap() throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        config.maxHotCustomersPerShard = 2_048
        let processor = try shard(config, silences: true)
        send(processor, "Order Completed", "c-regular", at: Self.t0, id: "o-1", properties: #"{"revenue":40.0}"#)
        var largest = 0
        var queueOverBound = 0
        for i in 0..<60_000 {
            send(processor, "Product Viewed", "flood-\(i)", at: Self.t0 + 60_000 + Int64(i), id: "f-\(i)")
            if i % ShardWorker.batchSize == ShardWorker.batchSize - 1 { processor.capHotTier() }
            if i % 4_096 == 0 {
                _ = processor.advance(wallMillis: 1_800_000_000_000) { _ in }
                processor.sweepIdle()
            }
            largest = max(largest, processor.table.count)
            // Hot: about two entries per hot customer, plus the 4,096 stale ones compaction waits for. Cold: one
            // per cold customer, and as many stale, plus 4,096.
            let bound = 2 * (2_048 + ShardWorker.batchSize) + 4_096 + 2 * processor.table.coldCount + 4_097
            if processor.timersScheduled > bound { queueOverBound += 1 }
        }
        #expect(largest <= 2_048 + ShardWorker.batchSize, "hot tier reached \(largest) customers")
        #expect(processor.table.forcedEvictions >= 60_001 - 2_048 - ShardWorker.batchSize)
        #expect(queueOverBound == 0, "the silence queues passed their bound after \(queueOverBound) events")
        send(processor, "Order Completed", "c-regular", at: Self.t0 + 120_000, id: "o-2", properties: #"{"revenue":10.0}"#)
        #expect(processor.table.restores == 1, "c-regular, idle longest, was still hot")
        let regular = try #require(processor.snapshot(of: Array("c-regular".utf8), atMillis: Self.t0 + 120_000))
        #expect(regular[feature: "orders_lifetime"] == 2)
        #expect(regular[feature: "revenue_lifetime"] == 50)
    }

    /// 8,000 known customers whose silences come due as a flood arrives, fired a turn's worth at a time (as a
    /// shard does): the cap holds (those moved out take their silence along, and a turn brings back at most
    /// its timers' worth), and every silence fires exactly once, from either tier.
    @Test func dueSilencesDoNotHoldTheCapBack() throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        config.maxHotCustomersPerShard = 8_192
        let processor = try shard(config, silences: true)
        for i in 0..<8_000 { send(processor, "Page Viewed", "old-\(i)", at: Self.t0 + Int64(i), id: "o-\(i)") }
        var largest = 0
        var silent: [String: Int] = [:]
        func fire(at wall: Int64, limit: Int) {
            _ = processor.advance(wallMillis: wall, limit: limit) { silent[String(decoding: $0.customer, as: UTF8.self), default: 0] += 1 }
        }
        for i in 0..<20_000 {
            let at = Self.t0 + 15 * Self.day + Int64(i)
            send(processor, "Page Viewed", "new-\(i)", at: at, id: "n-\(i)")
            if i % ShardWorker.batchSize == ShardWorker.batchSize - 1 {
                fire(at: at, limit: ShardWorker.timersPerTurn)
                processor.capHotTier()
            }
            largest = max(largest, processor.table.count)
        }
        #expect(largest <= 8_192 + 2 * ShardWorker.batchSize, "hot tier reached \(largest) customers")
        fire(at: .max, limit: .max)
        #expect(processor.table.forcedEvictions > 0)
        #expect(silent.count == 8_000 && silent.keys.allSatisfy { $0.hasPrefix("old-") } && silent.values.allSatisfy { $0 == 1 },
                "\(silent.count) silent customers, \(silent.values.filter { $0 != 1 }.count) not once")
    }

    /// Known customers cycling between the tiers (a cap well below them, each back again and again): every
    /// return leaves a stale cold silence entry, and compaction keeps the queues within about two entries per
    /// customer held. (Without compaction the cold queue grows by one entry per return.)
    @Test func silenceQueuesStayBoundedAsCustomersCycleThroughTheTiers() throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        config.maxHotCustomersPerShard = 2_048
        let processor = try shard(config, silences: true)
        var overBound = 0
        var largest = 0
        for round in 0..<4 {
            for i in 0..<7_000 {
                let n = round * 7_000 + i
                send(processor, "Page Viewed", "c-\(i)", at: Self.t0 + Int64(n) * 1_000, id: "p-\(n)")
                if n % ShardWorker.batchSize == ShardWorker.batchSize - 1 { processor.capHotTier() }
                let bound = 2 * (2_048 + ShardWorker.batchSize) + 4_096 + 2 * processor.table.coldCount + 4_097
                if processor.timersScheduled > bound { overBound += 1 }
                largest = max(largest, processor.timersScheduled)
            }
        }
        #expect(processor.table.restores > 15_000, "customers came back \(processor.table.restores) times")
        #expect(overBound == 0, "the silence queues passed their bound after \(overBound) events (largest \(largest))")
        // Compaction kept every live silence: each customer falls silent once, from whichever tier. (A compaction
        // run while a customer was leaving, before the cold tier held them, dropped their silence.)
        send(processor, "Page Viewed", "c-end", at: Self.t0 + 60 * 86_400_000, id: "p-end")
        var fired: [String: Int] = [:]
        for step in 1...200 {
            var any = false
            processor.advance(wallMillis: Int64(step) * 1_000) { decision in
                fired[String(decoding: decision.customer, as: UTF8.self), default: 0] += 1
                any = true
            }
            if !any { break }
        }
        let wrong = (0..<7_000).map { "c-\($0)" }.filter { fired[$0] != 1 }
        #expect(wrong.isEmpty, "\(wrong.count) customers fell silent other than once, e.g. \(wrong.prefix(5).map { "\($0): \(fired[$0] ?? 0)" })")
    }

    /// The recommendation `event` leads to, as JSON, or nil when it asks for no decision.
    private func decision(_ processor: EventProcessor, _ event: String, _ customer: String?, anonymous: String? = nil,
                          at: Int64, id: String) throws -> [String: Any]? {
        let bytes = track(event, user: customer, anonymous: anonymous, id: id, at: ISO8601Time.format(millis: at),
                          properties: #"{"revenue":80.0}"#)
        let json: Data? = bytes.withUnsafeBytes {
            guard case .decided(let json, _, _, _) = processor.process($0, route: .forwarded) else { return nil }
            return Data(json)
        }
        return try json.map { try #require(JSONSerialization.jsonObject(with: $0) as? [String: Any]) }
    }

    /// A customer recommended something just before a flood pushes them out of the hot tier early keeps that
    /// contact: back in the hot tier, the policy's cooldown and channel cap still see it, and it is in their
    /// snapshot. An anonymous visitor's contact, moved out the same way, goes to the customer it is stitched
    /// to. (Before the contacts went through the cold tier, such a customer was only spared for one walk of
    /// the table, then lost them: the next trigger was answered as if they had never been contacted.)
    @Test func aContactedCustomerMovedOutEarlyKeepsTheirContacts() throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        config.maxHotCustomersPerShard = 2_048
        let processor = try shard(config)
        let first = try #require(try decision(processor, "Order Completed", "c-contacted", at: Self.t0, id: "o-1"))
        let action = try #require(first["action"] as? String)
        try #require(action != "none", "the test needs a first recommendation to remember")
        let contacted = try #require(processor.snapshot(of: Array("c-contacted".utf8), atMillis: nil)).contacts
        #expect(contacted.count == 1)
        let visitor = try #require(try decision(processor, "Order Completed", nil, anonymous: "anon-1", at: Self.t0 + 1, id: "o-a"))
        try #require(visitor["action"] as? String != "none")
        let visitorContacts = try #require(processor.snapshot(of: Array("anon-1".utf8), atMillis: nil)).contacts
        #expect(visitorContacts.count == 1)

        for i in 0..<6_000 {
            send(processor, "Product Viewed", "flood-\(i)", at: Self.t0 + 60_000 + Int64(i), id: "f-\(i)")
            if i % ShardWorker.batchSize == ShardWorker.batchSize - 1 { processor.capHotTier() }
        }
        #expect(processor.table.count <= 2_048 + ShardWorker.batchSize)
        #expect(processor.table.restores == 0)

        // Ten minutes later, inside the 30-minute cooldown: silence, because the contact came back.
        let second = try #require(try decision(processor, "Order Completed", "c-contacted", at: Self.t0 + 600_000, id: "o-2"))
        #expect(processor.table.restores == 1, "c-contacted, idle longest, had moved to the cold tier")
        #expect(second["action"] as? String == "none", "\(second)")
        let back = try #require(processor.snapshot(of: Array("c-contacted".utf8), atMillis: nil)).contacts
        #expect(back == contacted)

        // The visitor signs in as a customer Nudge has not seen: the cold visitor's contact is theirs now.
        var id: [UInt8] = []
        #expect(Array("anon-1".utf8).withUnsafeBytes { processor.table.coldCustomer(hash: nudgeHash64($0), id: &id) } != nil,
                "the visitor is in the cold tier")
        let identified = track("Product Viewed", user: "c-stitched", anonymous: "anon-1", id: "v-s",
                               at: ISO8601Time.format(millis: Self.t0 + 600_001))
        _ = identified.withUnsafeBytes { processor.process($0, route: .forwarded) }
        #expect(processor.table.restores == 1, "the visitor's record was detached from the cold tier, not restored")
        let stitched = try #require(processor.snapshot(of: Array("c-stitched".utf8), atMillis: nil)).contacts
        #expect(stitched == visitorContacts)
    }
}
