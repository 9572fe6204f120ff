import Foundation
import NudgeKafka
import NudgePipeline
import Testing

/// An input bigger than Nudge's own producer may send: its dead letter must still go out, or its
/// partition's commit (and, once the window fills, the consumer) would wait for it for good.
@Suite("Oversized input through the mock cluster", .serialized)
struct OversizedInputTests {
    @Test func anInputTooBigToDeadLetterWholeIsCutAndNothingStalls() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 1, outputPartitions: 1)
        // Upstream sends what the broker accepts (1,048,588 B by default); librdkafka's producer default is 1,000,000.
        let upstream = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers, "message.max.bytes": "2000000"]),
                                         logger: testLogger) { _ in }
        let clickstream = upstream.topic(topics.clickstream)
        try upstream.send(to: clickstream, key: Array("c-1".utf8), value: Array(repeating: 0x78, count: 1_000_100), token: 0)
        for i in 0..<20 {
            try upstream.send(to: clickstream, key: Array("c-1".utf8),
                              value: track("Product Viewed", user: "c-1", id: "m-\(i)", at: "2026-11-20T10:00:\(10 + i).000Z"), token: 0)
        }
        #expect(upstream.flush(timeout: .seconds(20)) == 0)
        upstream.close()

        var config = PipelineConfig.syntheticTime
        config.shards = 1
        config.groupId = "oversized"
        config.offsetWindow = 4  // a stalled offset fills it within the test's 21 messages
        config.drainTimeout = .seconds(2)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers)
        try pipeline.start()
        #expect(await waitUntilHandled(pipeline, 21), "handled \(pipeline.eventsHandled) of 21")
        let deadLetters = try readAll(bootstrap: cluster.bootstrapServers, topics: [topics.deadLetter]) { $0.count >= 1 }
        #expect(deadLetters.count == 1)
        #expect(deadLetters.first?.headers["x-error"] == "too_large")
        #expect(deadLetters.first?.headers["x-truncated"] == "the value had 1000100 bytes; these are the first 899997")
        #expect(deadLetters.first?.value.count == 899_997)
        #expect(timedStop(pipeline, within: .seconds(30)) != nil, "stop() hangs")
    }
}
