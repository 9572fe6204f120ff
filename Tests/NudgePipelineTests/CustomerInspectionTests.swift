import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
@testable import NudgePipeline
import Testing

/// Unix milliseconds of an ISO-8601 time written in a test.
private func millis(_ text: String) throws -> Int64 {
    try #require(Array(text.utf8).withUnsafeBytes { ISO8601Time.parseMillis($0) })
}

@Suite("Customer inspection through the owning shard", .serialized)
struct CustomerInspectionTests {
    @Test func inspectsKnownCustomersAndNotUnknownOnes() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 3, outputPartitions: 1)
        let bootstrap = cluster.bootstrapServers

        // c-1's events all go on one topic (one partition for the key), so they arrive in this order: the
        // order resets the cart before the add, as written.
        let input: [(topic: String, key: String, value: [UInt8])] = [
            (topics.clickstream, "c-1", track("Order Completed", user: "c-1", id: "m-1", at: "2026-11-19T09:00:00.000Z",
                                              properties: #"{"revenue":120.0}"#)),
            (topics.clickstream, "c-1", track("Product Viewed", user: "c-1", id: "m-2", at: "2026-11-20T10:00:00.000Z",
                                              properties: #"{"product_id":"p-1","price":20.0}"#)),
            (topics.clickstream, "c-1", track("Product Viewed", user: "c-1", id: "m-3", at: "2026-11-20T10:30:00.000Z",
                                              properties: #"{"product_id":"p-2","price":30.0}"#)),
            (topics.clickstream, "c-1", track("Product Added", user: "c-1", id: "m-4", at: "2026-11-20T10:40:00.000Z",
                                              properties: #"{"product_id":"p-2","price":30.0,"quantity":1}"#)),
            (topics.transactions, "c-2", track("Survey Answered", user: "c-2", id: "m-5", at: "2026-11-18T12:00:00.000Z",
                                               channel: "call_center", properties: #"{"score":3}"#)),
            (topics.transactions, "c-2", track("Ticket Opened", user: "c-2", id: "m-6", at: "2026-11-18T12:05:00.000Z",
                                               channel: "call_center")),
            // Keyed with the wrong customer: forwarded to c-3's shard, and inspection finds it there.
            (topics.clickstream, "someone-else", track("Product Viewed", user: "c-3", id: "m-7", at: "2026-11-20T08:00:00.000Z")),
        ]
        try produceAll(bootstrap: bootstrap, input)

        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = "inspect"
        config.commitInterval = .milliseconds(200)
        let pipeline = try makePipeline(config, bootstrap: bootstrap)
        await #expect(throws: InspectionError.notRunning) { try await pipeline.inspect(customer: "c-1") }
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, input.count), "handled \(pipeline.eventsHandled) of \(input.count)")

        // c-1 at a chosen event time: every standard feature as the definitions say.
        let at = try millis("2026-11-20T10:45:00.000Z")
        let c1 = try #require(try await pipeline.inspect(customer: "c-1", atMillis: at))
        #expect(c1.customerId == "c-1")
        #expect(c1.evaluatedAtMillis == at)
        #expect(c1.lastEventMillis == (try millis("2026-11-20T10:40:00.000Z")))
        #expect(c1.lastChannel == "web")
        #expect(c1.features.map(\.name) == repoFeatures.names)
        let day = 86_400_000.0
        let expected: [String: Double] = [
            "views_1h": 2, "views_24h": 2, "adds_24h": 1, "orders_30d": 1, "orders_90d": 1, "revenue_90d": 120,
            "days_since_last_order": Double(at - (try millis("2026-11-19T09:00:00.000Z"))) / day,
            "tickets_open": 0, "complaints_30d": 0, "refunds_90d": 0, "nps_last": -1, "cart_items": 1, "sessions_7d": 2,
            "days_since_last_seen": Double(5 * 60_000) / day,
        ]
        for (name, value) in expected { #expect(c1[feature: name] == value, "\(name)") }

        // A week later the 24-hour and 1-hour windows have emptied; the order is still in 30 days.
        let weekLater = at + 7 * 86_400_000
        let later = try #require(try await pipeline.inspect(customer: "c-1", atMillis: weekLater))
        #expect(later.evaluatedAtMillis == weekLater)
        #expect(later[feature: "views_24h"] == 0)
        #expect(later[feature: "views_1h"] == 0)
        #expect(later[feature: "orders_30d"] == 1)

        // Without a time: the shard's newest event time. Before the newest event: clamped to it, never inexact.
        // The watermark trails it by at least the allowed lateness.
        let now = try #require(try await pipeline.inspect(customer: "c-1"))
        #expect(now.evaluatedAtMillis == now.shardEventTimeMillis)
        #expect(now.shardEventTimeMillis >= c1.lastEventMillis)
        #expect(now.shardWatermarkMillis.map { $0 <= now.shardEventTimeMillis - 3_600_000 } ?? true)
        let early = try #require(try await pipeline.inspect(customer: "c-1", atMillis: at - 86_400_000))
        #expect(early.evaluatedAtMillis == c1.lastEventMillis)

        // c-2 lives wherever its hash says; the survey score and the open ticket are there.
        let c2 = try #require(try await pipeline.inspect(customer: "c-2", atMillis: at))
        #expect(c2[feature: "nps_last"] == 3)
        #expect(c2[feature: "tickets_open"] == 1)
        #expect(c2.lastChannel == "call_center")
        #expect(c2.contacts.count <= 6)
        let c3 = try #require(try await pipeline.inspect(customer: "c-3", atMillis: at))
        #expect(c3[feature: "views_24h"] == 1)

        // Unknown customers: nil, and asking does not create them.
        #expect(try await pipeline.inspect(customer: "c-404") == nil)
        #expect(try await pipeline.inspect(customer: "") == nil)
        #expect(try await pipeline.inspect(customer: "c-404") == nil)
        #expect(try await pipeline.inspect(customer: "someone-else") == nil)

        // The contact history matches what was published: c-1's two decisions (on the order and on the
        // Product Added) are contacts unless they were "none".
        let recommendations = try readAll(bootstrap: bootstrap, topics: [topics.recommendations]) { got in
            got.count { $0.key == "c-1" } >= 2
        }
        let c1Actions = recommendations.filter { $0.key == "c-1" }.compactMap { $0.json?["action"] as? String }
        #expect(c1Actions.count == 2)
        let withContacts = try #require(try await pipeline.inspect(customer: "c-1", atMillis: at))
        #expect(withContacts.contacts.compactMap(\.action) == c1Actions.filter { $0 != "none" })

        // Many readers at once, while the shards are idle: every one answered (none lost to a missed wake-up).
        let answers = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<400 {
                group.addTask { try await pipeline.inspect(customer: n % 2 == 0 ? "c-1" : "c-404", atMillis: at) != nil }
            }
            return try await group.reduce(into: [0, 0]) { counts, found in counts[found ? 0 : 1] += 1 }
        }
        #expect(answers == [200, 200])

        pipeline.stop()
        await #expect(throws: InspectionError.notRunning) { try await pipeline.inspect(customer: "c-1") }
    }

    /// An anonymous id linked to a customer answers with that customer (their history folded together),
    /// whether the customer's shard is the id's own or the other one; an id never linked answers as itself.
    @Test func anAnonymousIdAnswersWithTheCustomerItIsLinkedTo() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 2, outputPartitions: 1)
        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = "inspect-linked"
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers)
        func shard(_ id: String) -> Int { pipeline.shardOwning(customer: Array(id.utf8)).inspections.shard }
        let candidates = (0..<100).map { "a-\($0)" }
        // Linked across the two shards (the answer takes two hops), and within one.
        let across = try #require(candidates.first { shard($0) != shard("c-1") })
        let beside = try #require(candidates.first { $0 != across && shard($0) == shard("c-2") })
        func view(_ visitor: String, _ n: Int) -> (topic: String, key: String, value: [UInt8]) {
            (topics.clickstream, visitor, track("Product Viewed", user: nil, anonymous: visitor, id: "v-\(visitor)-\(n)",
                                                at: "2026-11-20T10:00:0\(n).000Z", properties: #"{"product_id":"p-1","price":20.0}"#))
        }
        let views = [view(across, 1), view(across, 2), view(beside, 1), view("a-alone", 1)]
        // The sign-ins once the views are handled: read first, a view would be routed to the customer with
        // nothing to merge (also linked, but not the case asked about).
        try pipeline.start()
        defer { pipeline.stop() }
        try produceAll(bootstrap: cluster.bootstrapServers, views)
        #expect(await waitUntilHandled(pipeline, views.count))
        let signIns: [(topic: String, key: String, value: [UInt8])] = [
            (topics.clickstream, "c-1", track("Signed In", user: "c-1", anonymous: across, id: "s-1", at: "2026-11-20T10:00:05.000Z")),
            (topics.clickstream, "c-2", track("Signed In", user: "c-2", anonymous: beside, id: "s-2", at: "2026-11-20T10:00:05.000Z")),
        ]
        try produceAll(bootstrap: cluster.bootstrapServers, signIns)
        #expect(await waitUntilHandled(pipeline, views.count + signIns.count))

        let at = try millis("2026-11-20T10:01:00.000Z")
        // The link and the visitor's history reach their shards after the sign-in is handled: ask until they have.
        func linked(_ visitor: String, views: Double) async throws -> CustomerSnapshot? {
            let until = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < until {
                // A shard slow to answer on a loaded machine is asked again, as a person would.
                let answer: CustomerSnapshot?
                do throws(InspectionError) { answer = try await pipeline.inspect(customer: visitor, atMillis: at) } catch .timedOut {
                    continue
                }
                if let snapshot = answer, snapshot.linkedFrom != nil, snapshot[feature: "views_24h"] == views { return snapshot }
                try await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }
        let c1 = try #require(try await linked(across, views: 2), "\(across) should answer with c-1, the visitor's two views theirs")
        #expect(c1.customerId == "c-1")
        #expect(c1.linkedFrom == across)
        #expect(c1.shard == shard("c-1"))
        let c2 = try #require(try await linked(beside, views: 1), "\(beside) should answer with c-2")
        #expect(c2.customerId == "c-2")
        #expect(c2.linkedFrom == beside)
        // Asked by their own ids, customers answer as themselves; an anonymous id never linked, as itself.
        #expect(try await pipeline.inspect(customer: "c-1", atMillis: at)?.linkedFrom == nil)
        let alone = try #require(try await pipeline.inspect(customer: "a-alone", atMillis: at))
        #expect(alone.customerId == "a-alone")
        #expect(alone.linkedFrom == nil)
        // The wire form carries the id asked for.
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(c1)) as? [String: Any])
        #expect(object["linked_from"] as? String == across)
        #expect(try JSONDecoder().decode(CustomerSnapshot.self, from: JSONEncoder().encode(c1)) == c1)
    }

    /// Events preloaded before start land in their customer's shard (found by inspection once running,
    /// whichever of the two shards owns them); once started, preloading is refused.
    @Test func preloadedEventsAreInTheStoreAndPreloadStopsAtStart() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopics(TopicNames(), partitions: 2, outputPartitions: 1)
        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = "preload"
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers)
        var preloaded = 0
        WarmUpTraffic.forEachMessage(customers: 40) { key, value in
            if pipeline.preload(key: key, value: value) { preloaded += 1 }
        }
        #expect(preloaded == 40)
        try pipeline.start()
        defer { pipeline.stop() }
        for n in [1, 2, 17, 40] {
            let snapshot = try #require(try await pipeline.inspect(customer: "c-\(n)"), "c-\(n)")
            #expect(snapshot.lastEventMillis == (try millis("2026-09-20T00:00:00.000Z")))
            #expect(snapshot.features.first { $0.name == "sessions_7d" }?.value == 1)
        }
        #expect(try await pipeline.inspect(customer: "c-41") == nil)
        let refused = Array("c-1".utf8).withUnsafeBytes { key in
            Array(#"{"type":"page","messageId":"late","userId":"c-1","timestamp":"2026-09-21T00:00:00.000Z"}"#.utf8)
                .withUnsafeBytes { pipeline.preload(key: key, value: $0) }
        }
        #expect(!refused)
    }

    @Test func snapshotJSONRoundTrips() throws {
        let snapshot = CustomerSnapshot(customerId: "c-1", shard: 1, evaluatedAtMillis: 1_790_000_000_000,
                                        lastEventMillis: 1_789_999_000_000, lastChannel: "web",
                                        shardEventTimeMillis: 1_790_000_000_000, shardWatermarkMillis: 1_789_996_400_000,
                                        features: [FeatureValue(name: "views_1h", value: 2), FeatureValue(name: "avg", value: 0.1)],
                                        contacts: [ContactRecord(atMillis: 1_789_000_000_000, channel: "email", action: "retention_offer")])
        let data = try JSONEncoder().encode(snapshot)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["customer_id"] as? String == "c-1")
        #expect(object["evaluated_at"] as? String == ISO8601Time.format(millis: 1_790_000_000_000))
        #expect(try JSONDecoder().decode(CustomerSnapshot.self, from: data) == snapshot)
        // Before a shard has a watermark it is null, and still round-trips.
        var early = snapshot
        early.shardWatermarkMillis = nil
        let earlyData = try JSONEncoder().encode(early)
        let earlyObject = try #require(try JSONSerialization.jsonObject(with: earlyData) as? [String: Any])
        #expect(earlyObject["shard_watermark"] is NSNull)
        #expect(try JSONDecoder().decode(CustomerSnapshot.self, from: earlyData) == early)
    }
}
