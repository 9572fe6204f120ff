import Foundation
import NudgeEvents
import NudgeKafka
import NudgePipeline
import Testing

@Suite("Live readers through the mock cluster", .serialized)
struct LiveReadersTests {
    /// The readers outside the shards against a running pipeline on the mock cluster: inspections (answered
    /// by the owning shard between events), metrics snapshots and Prometheus text, while the consumer,
    /// two shards, the delivery thread and the metrics thread work through the input. Not part of the
    /// Thread Sanitizer run: librdkafka starts its threads with C11 `thrd_create`, which TSan does not
    /// intercept, so its runtime crashes in the first allocation on one of them.
    @Test func liveReadersBesideARunningPipeline() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 4, outputPartitions: 2)
        let customers = 200, perCustomer = 15
        var input: [(topic: String, key: String, value: [UInt8])] = []
        for round in 0..<perCustomer {
            for c in 0..<customers {
                let at = ISO8601Time.format(millis: t0 + Int64(round * customers + c) * 1_000)
                input.append((topics.clickstream, "c-\(c)", track(round % 5 == 4 ? "Product Added" : "Product Viewed", user: "c-\(c)",
                                                               id: "m-\(round)-\(c)", at: at)))
            }
        }
        try produceAll(bootstrap: cluster.bootstrapServers, input)
        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = "live-readers"
        config.metricsInterval = .milliseconds(50)
        config.commitInterval = .milliseconds(50)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers)
        try pipeline.start()
        let total = input.count
        let answered = await withTaskGroup(of: Int.self) { group in
            for reader in 0..<4 {
                group.addTask {
                    var answers = 0
                    var i = reader
                    let deadline = ContinuousClock.now + .seconds(60)
                    while (pipeline.eventsHandled < total || answers < 20) && ContinuousClock.now < deadline {
                        i += 7
                        if (try? await pipeline.inspect(customer: "c-\(i % customers)", timeout: .seconds(5))) != nil { answers += 1 }
                        _ = pipeline.snapshot()
                        if i % 3 == 0 { _ = pipeline.prometheusText() }
                    }
                    return answers
                }
            }
            return await group.reduce(0, +)
        }
        #expect(answered >= 80)
        #expect(await waitUntilHandled(pipeline, total))
        // The answers are the shards' state, read consistently: every view and add of c-7 is there.
        let c7 = try #require(try await pipeline.inspect(customer: "c-7"))
        #expect(c7[feature: "views_24h"] == Double(perCustomer / 5 * 4))
        #expect(c7[feature: "adds_24h"] == Double(perCustomer / 5))
        pipeline.stop()
    }
}
