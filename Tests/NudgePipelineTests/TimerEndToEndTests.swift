import Foundation
import NudgeDecisions
import NudgeEvents
import NudgeKafka
@testable import NudgePipeline
import Testing

@Suite("Event-time timers end to end through the mock cluster", .serialized)
struct TimerEndToEndTests {
    /// One partition per input topic: clickstream carries a cart and a clock that keeps moving; transactions
    /// carries one old event and then falls silent. The cart's timer can fire only once the silent partition
    /// stops holding the watermark back, i.e. after the idle timeout, while the clock is still flowing.
    @Test func cartAbandonedFiresThroughAnIdlePartitionAndNotAfterACheckout() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 1, outputPartitions: 1)
        let bootstrap = cluster.bootstrapServers

        let t0: Int64 = 1_795_168_800_000  // 2026-11-20T10:00:00Z
        func at(_ minutes: Int64) -> String { ISO8601Time.format(millis: t0 + minutes * 60_000) }
        try produceAll(bootstrap: bootstrap, [
            (topics.transactions, "c-5", track("Product Viewed", user: "c-5", id: "old-1", at: at(0))),
            (topics.clickstream, "c-1", track("Product Added", user: "c-1", id: "add-1", at: at(0),
                                              properties: #"{"product_id":"p-1","price":20.0}"#)),
            (topics.clickstream, "c-2", track("Product Added", user: "c-2", id: "add-2", at: at(0),
                                              properties: #"{"product_id":"p-2","price":20.0}"#)),
            (topics.clickstream, "c-2", track("Checkout Started", user: "c-2", id: "checkout-2", at: at(5))),
        ])

        var config = PipelineConfig.syntheticTime
        // One shard: a shard's time moves with the events of its own customers, and the clock is one customer.
        config.shards = 1
        config.groupId = "timers-e2e"
        config.commitInterval = .milliseconds(200)
        config.metricsInterval = .milliseconds(300)
        config.eventTime.allowedLateness = .seconds(60)
        config.eventTime.idlePartitionTimeout = .seconds(1)
        let pipeline = try makePipeline(config, bootstrap: bootstrap)
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 4))

        // The clock: an anonymous visitor on clickstream, three simulated minutes every 50 ms, for about 2.5 s,
        // well past the idle timeout of the transactions partition.
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": bootstrap, "linger.ms": "1"]), logger: testLogger) { _ in }
        let clickstream = producer.topic(topics.clickstream)
        for minute in stride(from: Int64(3), through: 150, by: 3) {
            try producer.send(to: clickstream, key: Array("clock".utf8),
                              value: track("Product Viewed", user: nil, anonymous: "clock", id: "clock-\(minute)", at: at(minute)), token: 0)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(producer.flush(timeout: .seconds(10)) == 0)
        producer.close()

        let isTimer: (ReadMessage) -> Bool = { (($0.json?["trigger"] as? [String: Any])?["kind"] as? String) == "timer" }
        let seen = try readAll(bootstrap: bootstrap, topics: [topics.recommendations]) { $0.contains(where: isTimer) }
        #expect(seen.contains(where: isTimer), "no timer fired")
        try await Task.sleep(for: .seconds(1))  // room for a wrong second firing
        let snapshot = pipeline.snapshot()
        pipeline.stop()

        // Four are expected; a fifth would be a wrong firing.
        let all = try readAll(bootstrap: bootstrap, topics: [topics.recommendations], timeout: .milliseconds(1_500)) { $0.count >= 5 }
        let timers = all.filter(isTimer)
        #expect(timers.count == 1, "\(timers.map(\.text))")
        let r = try #require(timers.first?.json)
        #expect(timers.first?.key == "c-1")
        #expect(r["customer_id"] as? String == "c-1")
        #expect((r["trigger"] as? [String: Any])?["event"] as? String == "Cart Abandoned")
        #expect(r["event_time"] as? String == at(30))
        #expect(r["recommendation_id"] as? String
                == RecommendationID.string(customerId: "c-1", timer: "Cart Abandoned", deadlineMillis: t0 + 30 * 60_000))
        // The three decision events each got theirs as before; the clock asked for none.
        let events = all.filter { !isTimer($0) }.compactMap { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String }
        #expect(events.sorted() == ["add-1", "add-2", "checkout-2"])

        // Metrics: the firing, the shards' watermarks, no late events.
        #expect(snapshot.timersFired["Cart Abandoned"] == 1)
        #expect(snapshot.lateEvents == 0)
        #expect(snapshot.eventTime.count == 1)
        #expect(snapshot.eventTime.contains { ($0.watermarkMillis ?? .min) >= t0 + 30 * 60_000 })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(snapshot.json())) as? [String: Any])
        #expect((json["timers"] as? [String: Any])?["fired"] as? [String: Int] == ["Cart Abandoned": 1, "Customer Silent": 0])
        #expect(json["late_events"] as? Int == 0)
        #expect((json["watermark"] as? [String: Any])?["lag_ms"] is Int)
        let prometheus = snapshot.prometheusText()
        #expect(prometheus.contains("nudge_timers_fired_total{instance=\"\(config.instanceId)\",timer=\"Cart Abandoned\"} 1"))
        #expect(prometheus.contains("nudge_watermark_ms{"))
    }

    /// Under the dead-letter policy a late event goes to `nba.deadletter` with `x-error: late`, and its offset
    /// is still committed.
    /// A cluster and a pipeline under the dead-letter policy whose watermark stands at 09:00 (one event at
    /// 10:00, the other partitions idled out): an event at 07:00 is late.
    private func latePipeline(group: String) async throws -> (cluster: KafkaMockCluster, topics: TopicNames, pipeline: Pipeline) {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 1, outputPartitions: 1)
        try produceAll(bootstrap: cluster.bootstrapServers, [
            (topics.clickstream, "c-1", track("Product Viewed", user: "c-1", id: "now-1", at: "2026-11-20T10:00:00.000Z")),
        ])
        var config = PipelineConfig.syntheticTime
        config.shards = 1
        config.groupId = group
        config.commitInterval = .milliseconds(200)
        config.eventTime.latePolicy = .deadLetter
        config.eventTime.idlePartitionTimeout = .milliseconds(300)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers)
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 1))
        let deadline = ContinuousClock.now + .seconds(10)
        while pipeline.snapshot().eventTime.first?.watermarkMillis == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        return (cluster, topics, pipeline)
    }

    @Test func lateEventsAreDeadLetteredWithTheirCode() async throws {
        let (cluster, topics, pipeline) = try await latePipeline(group: "late-e2e")
        let bootstrap = cluster.bootstrapServers
        let late = track("Product Viewed", user: "c-1", id: "late-1", at: "2026-11-20T07:00:00.000Z")
        try produceAll(bootstrap: bootstrap, [(topics.clickstream, "c-1", late)])
        let letters = try readAll(bootstrap: bootstrap, topics: [topics.deadLetter]) { !$0.isEmpty }
        #expect(await waitUntilHandled(pipeline, 2))
        let snapshot = pipeline.snapshot()
        pipeline.stop()
        #expect(letters.count == 1)
        #expect(letters.first?.value == late)
        #expect(letters.first?.headers["x-error"] == "late")
        #expect(letters.first?.headers["x-error-detail"]?.contains("watermark") == true)
        #expect(snapshot.lateEvents == 1)
        #expect(snapshot.deadLetter == 1)
    }

    /// A late event that another instance relayed here (an anonymous visitor's, for the customer of this
    /// instance it is linked to) without judging its time (an older version) is dead-lettered as the original
    /// event, naming where it was read: the relaying instance's source topic, partition, offset and key, which
    /// the identity message carries as headers. One the sender judged on time is applied.
    @Test func aRelayedLateEventIsDeadLetteredUnderItsOwnCoordinates() async throws {
        let (cluster, topics, pipeline) = try await latePipeline(group: "relayed-late-e2e")
        defer { pipeline.stop() }
        let bootstrap = cluster.bootstrapServers
        // As the other instance sends it: the event, the customer it is for, and where it read the event.
        let late = track("Product Viewed", user: nil, anonymous: "a-9", id: "late-9", at: "2026-11-20T07:00:00.000Z")
        let change = IdentityChange(.event(late, time: nil), anonymous: Array("a-9".utf8), user: Array("c-1".utf8), atMillis: 0, generation: 1)
        var headers = KafkaHeaders()
        headers.add("x-source-topic", topics.clickstream)
        headers.add("x-source-partition", "5")
        headers.add("x-source-offset", "1234")
        headers.add("x-source-key", bytes: Array("a-9".utf8))
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": bootstrap]), logger: testLogger) { _ in }
        // First the same event as a sender that judged it on time by its partition's clock: applied, not late.
        let judged = track("Product Viewed", user: nil, anonymous: "a-9", id: "late-8", at: "2026-11-20T07:00:00.000Z")
        var onTime = headers
        onTime.add(RelayedEventTime.header, RelayedEventTime.onTime.headerValue)
        try producer.send(to: producer.topic(topics.identity), key: Array("c-1".utf8),
                          value: IdentityWire.encode(IdentityChange(.event(judged, time: nil), anonymous: Array("a-9".utf8), user: Array("c-1".utf8),
                                                                    atMillis: 0, generation: 1),
                                                     fingerprint: IdentityWire.fingerprint(of: repoFeatures)),
                          headers: onTime, token: 0)
        try producer.send(to: producer.topic(topics.identity), key: Array("c-1".utf8),
                          value: IdentityWire.encode(change, fingerprint: IdentityWire.fingerprint(of: repoFeatures)),
                          headers: headers, token: 0)
        #expect(producer.flush(timeout: .seconds(20)) == 0)
        producer.close()
        let letters = try readAll(bootstrap: bootstrap, topics: [topics.deadLetter]) { !$0.isEmpty }
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter.value == late)
        #expect(letter.key == "a-9")
        #expect(letter.headers["x-error"] == "late")
        #expect(letter.headers["x-source-topic"] == topics.clickstream)
        #expect(letter.headers["x-source-partition"] == "5" && letter.headers["x-source-offset"] == "1234")
        #expect(letter.headers["x-relayed-via"]?.hasPrefix(topics.identity + "/0@") == true)
        #expect(await waitUntilHandled(pipeline, 3))
        #expect(pipeline.snapshot().lateEvents == 1, "the event judged on time where it was read was judged again here")
    }
}
