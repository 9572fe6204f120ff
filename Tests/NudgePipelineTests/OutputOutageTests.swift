import Foundation
import NudgeKafka
@testable import NudgePipeline
import Testing

/// The broker that leads Nudge's output topics goes down while the input keeps flowing from another.
/// Without a delivery deadline Nudge waits and resumes, losing nothing; with one (a config that sets
/// `message.timeout.ms`) the outputs fail for good, and `Pipeline.fault` (what `/health` answers) says so.
@Suite("Output broker outage through the mock cluster", .serialized)
struct OutputOutageTests {
    /// A 2-broker cluster whose input partitions and group coordinator are on broker 1 and outputs on broker 2.
    fileprivate struct Setup {
        let cluster: KafkaMockCluster
        let topics = TopicNames()
        let group: String
        /// Message ids of the events that each cause a recommendation.
        var triggers = Set<String>()

        init(group: String) throws {
            self.group = group
            cluster = try KafkaMockCluster(brokers: 2, logger: testLogger)
            try cluster.createTopics(topics, partitions: 2, outputPartitions: 2)
            for topic in topics.subscribed { for p in Int32(0)..<2 { try cluster.setLeader(topic: topic, partition: p, broker: 1) } }
            for topic in topics.outputs { for p in Int32(0)..<2 { try cluster.setLeader(topic: topic, partition: p, broker: 2) } }
            try cluster.setGroupCoordinator(group, broker: 1)
        }

        /// 100 events for 10 customers from `first` on; every 4th adds to a cart (a trigger).
        mutating func produceEvents(from first: Int) throws {
            var input: [(topic: String, key: String, value: [UInt8])] = []
            for i in first..<first + 100 {
                let customer = "c-\(i % 10)"
                let id = "outage-\(i)"
                let kind = i % 4 == 0 ? "Product Added" : "Product Viewed"
                if i % 4 == 0 { triggers.insert(id) }
                input.append((topics.clickstream, customer,
                              track(kind, user: customer, id: id, at: String(format: "2026-11-20T10:%02d:%02d.000Z", i / 60 % 60, i % 60),
                                    properties: #"{"product_id":"p-1","price":9.5}"#)))
            }
            try produceAll(bootstrap: cluster.bootstrapServers, input)
        }

        func pipeline(_ kafka: [String: String] = [:], configure: (inout PipelineConfig) -> Void = { _ in }) throws -> Pipeline {
            var config = PipelineConfig.syntheticTime
            config.shards = 2
            config.groupId = group
            config.commitInterval = .milliseconds(200)
            config.drainTimeout = .seconds(2)
            config.metricsInterval = .milliseconds(200)
            configure(&config)
            return try makePipeline(config, bootstrap: cluster.bootstrapServers, kafka: kafka)
        }

        func committed() throws -> (committed: Int64, end: Int64) {
            try committedTotal(bootstrap: cluster.bootstrapServers, group: group, topic: topics.clickstream)
        }

        /// Every trigger has its recommendation (waiting up to `timeout` for them), and the group commits all
        /// `events` (waiting up to 20 s more for it).
        func expectEveryTriggerRecommendedAndAllCommitted(_ events: Int64, timeout: Duration = .seconds(30)) async throws {
            let recommended = try recommendedTriggers(timeout: timeout)
            #expect(recommended == triggers, "\(triggers.subtracting(recommended).count) of \(triggers.count) triggers lost")
            let deadline = ContinuousClock.now + .seconds(20)
            var after = try committed()
            while after.committed < after.end && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                after = try committed()
            }
            #expect(after.committed == events && after.end == events, "committed \(after.committed) of \(after.end)")
        }

        /// Another member for 8 s: it reads what it is given and commits nothing. Its session and poll interval as
        /// short as the pipeline's: should its leave be lost in a rebalance, the coordinator expires it in seconds
        /// rather than 45 (CI once saw the group's next join wait about that long).
        func memberJoinsAndLeaves() throws {
            let member = try KafkaConsumer(config: KafkaConfig(OutputOutageTests.shortPollInterval.merging([
                                               "bootstrap.servers": cluster.bootstrapServers, "group.id": group,
                                               "partition.assignment.strategy": "range"]) { $1 }),
                                           logger: testLogger)
            try member.subscribe(topics.subscribed)
            let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 64)
            defer { buffer.deallocate() }
            let leaveAt = ContinuousClock.now + .seconds(8)
            while ContinuousClock.now < leaveAt {
                for m in buffer.prefix(member.poll(into: buffer, timeout: .milliseconds(100))) { m.release() }
            }
            member.close()
        }

        /// The trigger message ids of the recommendations on the topic, once all expected are there (or after the timeout).
        func recommendedTriggers(timeout: Duration = .seconds(30)) throws -> Set<String> {
            let read = try readAll(bootstrap: cluster.bootstrapServers, topics: [topics.recommendations], timeout: timeout) { got in
                Set(got.compactMap { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String }).count >= triggers.count
            }
            return Set(read.compactMap { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String })
        }
    }

    @Test func anOutageOfTheOutputBrokerHoldsThePipelineBackAndItResumesLosingNothing() async throws {
        var setup = try Setup(group: "outage-resume")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline()
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 100), "handled \(pipeline.eventsHandled) of 100")
        // Every event is in the store, but no recommendation can be delivered: nothing after the first trigger commits.
        try await Task.sleep(for: .seconds(3))
        let during = try setup.committed()
        #expect(during.committed <= 2, "committed \(during.committed) of \(during.end) with the output broker down")
        #expect(pipeline.fault == nil)

        try setup.cluster.setBroker(2, up: true)
        try setup.produceEvents(from: 100)
        #expect(await waitUntilHandled(pipeline, 200), "handled \(pipeline.eventsHandled) of 200")
        try await setup.expectEveryTriggerRecommendedAndAllCommitted(200)
        #expect(pipeline.fault == nil)
        #expect(pipeline.snapshot().deliveryFailures == 0)
        pipeline.stop()
    }

    /// A poll interval short enough for a test to outlast it, and the session it must not be below.
    static let shortPollInterval = ["max.poll.interval.ms": "7000", "session.timeout.ms": "6000"]

    /// An outage longer than `max.poll.interval.ms` (7 s here). The consumer waits for room in a full window;
    /// had it stopped polling, librdkafka would have left the group at 7 s and rejoined when the outage ended,
    /// revoking every partition. It pauses them and polls instead: nothing is revoked, and nothing is lost.
    @Test func anOutageLongerThanTheMaximumPollIntervalKeepsTheGroup() async throws {
        var setup = try Setup(group: "outage-long")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline(Self.shortPollInterval) { $0.offsetWindow = 16 }
        try pipeline.start()
        try await Task.sleep(for: .seconds(12))
        #expect(pipeline.eventsHandled < 100, "the window did not fill: \(pipeline.eventsHandled) handled")
        #expect(pipeline.snapshot().partitionsRevoked == 0)

        try setup.cluster.setBroker(2, up: true)
        #expect(await waitUntilHandled(pipeline, 100), "handled \(pipeline.eventsHandled) of 100")
        try await setup.expectEveryTriggerRecommendedAndAllCommitted(100)
        try await Task.sleep(for: .milliseconds(500))
        #expect(pipeline.snapshot().partitionsRevoked == 0)
        #expect(pipeline.snapshot().deliveryFailures == 0)
        pipeline.stop()
    }

    /// A rebalance during a long wait, with the consumer thread holding a registered message for a full inbox
    /// (a 5-message producer queue, 8-message inboxes): a second member joins the group and leaves again while
    /// the output broker is down. The revocation commits up to the held message, the pauses do not outlive the
    /// assignments, and once the broker is back every event is handled and committed. Before, the pipeline
    /// stayed paused for good after such a rebalance.
    @Test func aRebalanceDuringALongWaitLosesNothingAndResumes() async throws {
        var setup = try Setup(group: "outage-rebalance")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline(Self.shortPollInterval.merging(["queue.buffering.max.messages": "5"]) { $1 }) {
            $0.shardQueueCapacity = 8
        }
        try pipeline.start()
        try await Task.sleep(for: .seconds(4))
        #expect(pipeline.eventsHandled < 100, "the inboxes did not fill: \(pipeline.eventsHandled) handled")

        try setup.memberJoinsAndLeaves()
        #expect(pipeline.snapshot().partitionsRevoked > 0, "no rebalance reached the pipeline")

        try await Task.sleep(for: .seconds(2))
        try setup.cluster.setBroker(2, up: true)
        // The group may still be settling the member's leave: more time than the other tests need.
        try await setup.expectEveryTriggerRecommendedAndAllCommitted(100, timeout: .seconds(90))
        #expect(pipeline.fault == nil)
        pipeline.stop()
    }

    /// The gap a drain timeout leaves: every event handled, its outputs queued for a broker that is down, when a
    /// second member joins. The drain runs out (2 s), the partitions go with their outputs still queued, and when
    /// the member leaves they come back to this instance, which reads them again from their commits. What it
    /// handled before comes back as duplicates and finishes at once; the commit must still not pass the first
    /// copies, whose outputs a crash now would lose. Before, it committed every event.
    @Test func partitionsGivenBackWhileTheirOutputsWaitCommitNothingPastThem() async throws {
        var setup = try Setup(group: "outage-given-back")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline(Self.shortPollInterval)
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 100), "handled \(pipeline.eventsHandled) of 100")

        try setup.memberJoinsAndLeaves()
        #expect(pipeline.snapshot().partitionsRevoked > 0, "no rebalance reached the pipeline")
        // Back with this instance, which reads again what it gave up.
        let deadline = ContinuousClock.now + .seconds(60)
        while pipeline.snapshot().duplicatesDropped < 100 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(pipeline.snapshot().duplicatesDropped >= 100, "the partitions did not come back to the pipeline")
        try await Task.sleep(for: .seconds(1))  // five commit intervals
        let during = try setup.committed()
        #expect(during.committed <= 2, "committed \(during.committed) of \(during.end) with no output delivered")

        try setup.cluster.setBroker(2, up: true)
        try await setup.expectEveryTriggerRecommendedAndAllCommitted(100, timeout: .seconds(60))
        #expect(pipeline.fault == nil)
        pipeline.stop()
    }

    @Test func anOutputRefusedForGoodIsAFaultNamingItsPartitionAndOffset() async throws {
        var setup = try Setup(group: "outage-fault")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        // A deployment that asks librdkafka to give up after 1.5 s.
        let pipeline = try setup.pipeline(["message.timeout.ms": "1500"])
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 100), "handled \(pipeline.eventsHandled) of 100")
        let deadline = ContinuousClock.now + .seconds(20)
        while pipeline.fault == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let fault = try #require(pipeline.fault)
        #expect(fault.reason.hasPrefix("the recommendation caused by \(setup.topics.clickstream)["), "\(fault)")
        #expect(fault.reason.contains(" offset "), "\(fault)")
        #expect(fault.reason.contains("timed out"), "\(fault)")
        #expect(fault.description.contains("Restart the instance"))
        #expect(pipeline.prometheusText().contains("nudge_fault{instance=\"\(pipeline.config.instanceId)\"} 1"))

        // The broker's return does not bring those outputs back: their offsets stay uncommitted, the fault stays.
        try setup.cluster.setBroker(2, up: true)
        try setup.produceEvents(from: 100)
        #expect(await waitUntilHandled(pipeline, 200), "handled \(pipeline.eventsHandled) of 200")
        #expect(pipeline.fault == fault)
        #expect(pipeline.snapshot().deliveryFailures >= 1)
        try await Task.sleep(for: .seconds(1))
        let after = try setup.committed()
        #expect(after.committed < after.end, "committed \(after.committed) of \(after.end) past outputs that failed")
        #expect(timedStop(pipeline, within: .seconds(30)) != nil, "stop() hangs")
    }
}

extension OutputOutageTests {
    @Test func stoppingDuringAnOutageAbandonsOutputsWithoutAFault() async throws {
        var setup = try Setup(group: "outage-stop")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline()
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 100), "handled \(pipeline.eventsHandled) of 100")
        pipeline.stop()
        // The producer purged what it still held when it closed: reported, but neither refused nor a fault.
        #expect(pipeline.fault == nil, "\(String(describing: pipeline.fault))")
        #expect(pipeline.snapshot().deliveryFailures == 0)
        let after = try setup.committed()
        #expect(after.committed <= 2, "committed \(after.committed) of \(after.end) though no output was delivered")
    }

    /// A broker outage fills the producer's queue (here 5 messages): shards wait in their sends, their inboxes
    /// (here 8 messages) fill, and the consumer waits too. A stop must still end, about a drain timeout (2 s) later, instead of
    /// waiting for the broker.
    @Test func stopEndsDuringAnOutageThatFilledTheProducersQueue() async throws {
        var setup = try Setup(group: "outage-full")
        try setup.cluster.setBroker(2, up: false)
        try setup.produceEvents(from: 0)
        let pipeline = try setup.pipeline(["queue.buffering.max.messages": "5"]) { $0.shardQueueCapacity = 8 }
        try pipeline.start()
        // Until the shards are stuck: some events handled (after the group's first join), then none for a second.
        let deadline = ContinuousClock.now + .seconds(20)
        var handled = -1
        while (pipeline.eventsHandled == 0 || pipeline.eventsHandled != handled) && ContinuousClock.now < deadline {
            handled = pipeline.eventsHandled
            try await Task.sleep(for: .seconds(1))
        }
        #expect(handled > 0 && handled < 100, "handled \(handled) of 100: the shards never waited on the producer")
        let took = timedStop(pipeline, within: .seconds(20))
        #expect(took != nil, "stop() waits for the broker")
        #expect(took.map { $0 < .seconds(15) } ?? false)
        #expect(pipeline.fault == nil, "\(String(describing: pipeline.fault))")
        #expect(pipeline.snapshot().deliveryFailures == 0, "sends abandoned at the stop counted as refused")
    }

    /// No outage, but a consumer ahead of its shards (8-message inboxes, often full): a stop lets the shards
    /// finish what they hold and ends without waiting for its deadline (20 s here). It used to give up the
    /// message it was pushing at once, leaving an offset unfinished that the drain then waited on for good.
    @Test func aStopUnderLoadDoesNotWaitForItsDeadline() async throws {
        var setup = try Setup(group: "stop-under-load")
        for first in stride(from: 0, to: 3_000, by: 100) { try setup.produceEvents(from: first) }
        let pipeline = try setup.pipeline { config in
            config.shardQueueCapacity = 8
            config.drainTimeout = .seconds(20)
        }
        try pipeline.start()
        let deadline = ContinuousClock.now + .seconds(30)
        while pipeline.eventsHandled < 300 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let took = timedStop(pipeline, within: .seconds(40))
        #expect(took != nil)
        #expect(took.map { $0 < .seconds(10) } ?? false, "stop waited for its deadline: \(String(describing: took))")
        let after = try setup.committed()
        #expect(after.committed == Int64(pipeline.eventsHandled), "committed \(after.committed), handled \(pipeline.eventsHandled)")
    }

    /// The whole cluster down, the group's coordinator with it: the stop's two commits cannot be answered, and
    /// each waits for the rest of the stop's deadline (a second at least), not librdkafka's ~45 s; leaving the
    /// group waits `Pipeline.leaveGroupFloor` more, not librdkafka's close, which waits for the commits in
    /// flight. 9 s here (a 2 s drain timeout); 94 s with unbounded commits, 49 s with librdkafka's close.
    @Test func aStopWithTheWholeClusterDownEndsSoonAfterItsDeadline() async throws {
        var setup = try Setup(group: "cluster-down")
        try setup.produceEvents(from: 0)
        var pipeline: Pipeline? = try setup.pipeline()
        try pipeline?.start()
        #expect(await waitUntilHandled(try #require(pipeline), 100))
        try setup.cluster.setBroker(2, up: false)
        try setup.cluster.setBroker(1, up: false)
        try await Task.sleep(for: .seconds(1))
        let took = timedStop(try #require(pipeline), within: .seconds(120))
        #expect(took != nil)
        #expect(took.map { $0 < .seconds(15) } ?? false, "stop took \(String(describing: took))")
        // The consumer's unfinished close goes on without holding its owner's release up.
        let released = ContinuousClock.now
        pipeline = nil
        #expect(ContinuousClock.now - released < .seconds(1))
    }

    @Test func theProducerHasNoDeliveryDeadlineUnlessTheConfigSetsOne() {
        #expect(Pipeline.producerConfig(KafkaConfig(["bootstrap.servers": "b:9092"]))["message.timeout.ms"] == "0")
        #expect(Pipeline.producerConfig(KafkaConfig(["message.timeout.ms": "60000"]))["message.timeout.ms"] == "60000")
        // librdkafka's other name for it: a default appended after it would win.
        let aliased = Pipeline.producerConfig(KafkaConfig(["delivery.timeout.ms": "1500"]))
        #expect(aliased["message.timeout.ms"] == nil)
        #expect(aliased["delivery.timeout.ms"] == "1500")
    }
}
