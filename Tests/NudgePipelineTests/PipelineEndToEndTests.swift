import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import Testing

@Suite("Pipeline end to end through the mock cluster", .serialized)
struct PipelineEndToEndTests {
    @Test func knownStreamGivesExpectedOutputs() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 3, outputPartitions: 1)
        let bootstrap = cluster.bootstrapServers

        let day = "2026-11-2"
        var input: [(topic: String, key: String, value: [UInt8])] = []
        // c-1 browses and adds to cart: one decision, for the Product Added only.
        input.append((topics.clickstream, "c-1", track("Product Viewed", user: "c-1", id: "m-1", at: "\(day)0T10:00:00.000Z",
                                                      properties: #"{"product_id":"p-1","price":20.0}"#)))
        input.append((topics.clickstream, "c-1", track("Product Added", user: "c-1", id: "m-2", at: "\(day)0T10:01:00.000Z",
                                                      properties: #"{"product_id":"p-1","price":20.0,"quantity":2}"#)))
        // The same Product Added again (at-least-once upstream): dropped, no second decision.
        input.append((topics.clickstream, "c-1", track("Product Added", user: "c-1", id: "m-2", at: "\(day)0T10:01:00.000Z",
                                                      properties: #"{"product_id":"p-1","price":20.0,"quantity":2}"#)))
        // c-2: the brief's case: an order, then it arrives broken: complaint and an open ticket.
        input.append((topics.transactions, "c-2", track("Order Completed", user: "c-2", id: "m-3", at: "\(day)0T09:00:00.000Z",
                                                       channel: "web", properties: #"{"revenue":120.0}"#)))
        input.append((topics.transactions, "c-2", track("Complaint Filed", user: "c-2", id: "m-4", at: "\(day)2T09:00:00.000Z",
                                                       channel: "call_center")))
        input.append((topics.transactions, "c-2", track("Ticket Opened", user: "c-2", id: "m-5", at: "\(day)2T09:05:00.000Z",
                                                       channel: "call_center")))
        // A keyless message and one keyed with the wrong customer still reach their customer's shard.
        input.append((topics.clickstream, "", track("Checkout Started", user: "c-3", id: "m-6", at: "\(day)1T12:00:00.000Z")))
        input.append((topics.clickstream, "someone-else", track("Product Added", user: "c-4", id: "m-7", at: "\(day)1T12:00:00.000Z")))
        // Malformed: every kind lands in the dead-letter topic with its code.
        let malformed: [(String, [UInt8])] = [
            ("invalid_json", Array(#"{"type":"track","event":"#.utf8)),
            ("missing_id", track("Product Viewed", user: nil, id: "m-x1", at: "\(day)0T10:00:00Z")),
            ("bad_timestamp", track("Product Viewed", user: "c-9", id: "m-x2", at: "yesterday")),
            ("wrong_type", track("Product Viewed", user: "c-9", id: "m-x3", at: "\(day)0T10:00:00Z", properties: #"{"price":"abc"}"#)),
            ("unknown_type", Array(#"{"type":"alias","userId":"c-9","messageId":"m-x4","timestamp":"2026-11-20T10:00:00Z"}"#.utf8)),
            ("too_large", track("Product Viewed", user: "c-9", id: "m-x5", at: "\(day)0T10:00:00Z",
                                properties: "{\"blob\":\"\(String(repeating: "x", count: 70_000))\"}")),
        ]
        for (_, bytes) in malformed { input.append((topics.clickstream, "c-9", bytes)) }
        // A visitor signs in as a customer on the other shard: the link and the visitor's history travel between
        // the two shards, each holding the sign-in's offset until handled (the commits below reach the end).
        // The two are keyed apart, so may sit on different partitions: the sign-in is sent once the visitor's
        // page view is handled, or it could be read first and the page view routed to c-5 with nothing to merge.
        func shard(_ id: String) -> UInt64 { Array(id.utf8).withUnsafeBytes { nudgeHash64($0) } % 2 }
        let visitor = try #require((0..<100).map { "a-\($0)" }.first { shard($0) != shard("c-5") })
        input.append((topics.clickstream, visitor, track("Page Viewed", user: nil, anonymous: visitor, id: "m-8", at: "\(day)1T12:00:00.000Z")))
        try produceAll(bootstrap: bootstrap, input)
        let signIn = (topics.clickstream, "c-5", track("Signed In", user: "c-5", anonymous: visitor, id: "m-9", at: "\(day)1T12:01:00.000Z"))
        input.append(signIn)

        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = "e2e"
        config.metricsInterval = .milliseconds(500)
        config.commitInterval = .milliseconds(200)
        let pipeline = try makePipeline(config, bootstrap: bootstrap)
        try pipeline.start()
        let beforeSignIn = ContinuousClock.now + .seconds(20)
        while pipeline.eventsHandled < input.count - 1 && ContinuousClock.now < beforeSignIn { Thread.sleep(forTimeInterval: 0.01) }
        try #require(pipeline.eventsHandled == input.count - 1, "only \(pipeline.eventsHandled) of \(input.count - 1) handled")
        try produceAll(bootstrap: bootstrap, [signIn])
        let triggers = ["m-2", "m-3", "m-4", "m-5", "m-6", "m-7"]
        _ = try readAll(bootstrap: bootstrap, topics: [topics.recommendations]) { $0.count >= triggers.count }
        let deadLetters = try readAll(bootstrap: bootstrap, topics: [topics.deadLetter]) { $0.count >= malformed.count }
        // Give the pipeline a moment to (wrongly) emit more, then stop it: shutdown commits.
        Thread.sleep(forTimeInterval: 1.0)
        pipeline.stop()

        // Exactly one decision per distinct trigger event, keyed by its customer.
        let all = try readAll(bootstrap: bootstrap, topics: [topics.recommendations], timeout: .seconds(3)) { _ in false }
        #expect(all.count == triggers.count)
        let byTrigger = Dictionary(grouping: all.compactMap { $0.json }) { (($0["trigger"] as? [String: Any])?["message_id"] as? String) ?? "" }
        #expect(Set(byTrigger.keys) == Set(triggers))
        for r in all {
            let json = try #require(r.json)
            #expect(json["customer_id"] as? String == r.key)
            for field in ["recommendation_id", "action", "score", "propensity", "value", "churn_probability", "reasons",
                          "alternatives", "trigger", "models", "event_time", "decided_at"] {
                #expect(json[field] != nil, "recommendation lacks \(field): \(r.text)")
            }
        }
        #expect(byTrigger["m-6"]?.first?["customer_id"] as? String == "c-3")
        #expect(byTrigger["m-7"]?.first?["customer_id"] as? String == "c-4")
        // The broken order with an open ticket: never a promotion.
        let promotions: Set<String> = ["promo_discount", "cross_sell_accessory", "cart_reminder"]
        let c2Actions = all.compactMap { $0.json }.filter { $0["customer_id"] as? String == "c-2" }.compactMap { $0["action"] as? String }
        #expect(c2Actions.count == 3)
        #expect(c2Actions.suffix(1).allSatisfy { !promotions.contains($0) }, "c-2 got \(c2Actions)")
        // Deterministic ids: a replay of the same trigger gives the same id.
        let ids = all.compactMap { $0.json?["recommendation_id"] as? String }
        #expect(Set(ids).count == ids.count)

        // Dead letters: the original bytes, the code, and where they came from.
        #expect(deadLetters.count == malformed.count)
        for (code, bytes) in malformed {
            let match = deadLetters.first { $0.value == bytes }
            #expect(match != nil, "no dead letter for \(code)")
            #expect(match?.headers["x-error"] == code)
            #expect(match?.headers["x-source-topic"] == topics.clickstream)
            #expect(match?.headers["x-source-partition"] != nil)
            #expect(match?.headers["x-source-offset"] != nil)
            #expect(match?.headers["x-error-detail"]?.isEmpty == false)
        }

        // Metrics snapshots in the contract's shape.
        let metrics = try readAll(bootstrap: bootstrap, topics: [topics.metrics], timeout: .seconds(3)) { _ in false }
        #expect(!metrics.isEmpty)
        let last = try #require(metrics.last?.json)
        #expect(last["events_in"] as? Int == input.count)   // every message handled, the dropped duplicate included
        #expect(last["deadletter"] as? Int == malformed.count)
        #expect(last["duplicates_dropped"] as? Int == 1)
        for field in ["instance", "at", "uptime_s", "events_per_s", "recommendations", "customers", "store_bytes",
                      "consumer_lag", "latency_ms", "models"] {
            #expect(last[field] != nil, "metrics lack \(field)")
        }
        #expect(((last["recommendations"] as? [String: Any])?["total"] as? Int) == triggers.count)
        #expect(((last["identity"] as? [String: Any])?["merges"] as? Int) == 1, "the visitor's history was not merged")

        // Committed offsets reach the end of every input partition.
        let checker = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": bootstrap, "group.id": "e2e"]), logger: testLogger)
        for t in topics.inputs {
            for p in try checker.partitions(of: t) {
                let tp = TopicPartition(t, p)
                let high = try checker.queryWatermarks(tp).high
                let committed = try checker.committed([tp])[tp] ?? -1
                #expect(high == 0 || committed == high, "\(tp): committed \(committed), end \(high)")
            }
        }
        checker.close()
    }
}
