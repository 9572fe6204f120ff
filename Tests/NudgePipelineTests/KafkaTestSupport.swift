import Foundation
import NudgeFeatures
import Logging
import NudgeKafka
import NudgePipeline

extension PipelineConfig {
    /// The service's defaults without the clock-skew limit: the tests' event time is synthetic, not the wall
    /// clock's.
    static var syntheticTime: PipelineConfig {
        var config = PipelineConfig()
        config.eventTime.maxClockSkew = nil
        return config
    }
}

let testLogger: Logger = {
    var l = Logger(label: "nudge-test")
    l.logLevel = .warning
    return l
}()

/// A message read back from a topic, owned (copied) so tests can keep it.
struct ReadMessage {
    var topic: String
    var partition: Int32
    var offset: Int64
    var key: String
    var value: [UInt8]
    var headers: KafkaHeaders
    var text: String { String(decoding: value, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any] }
}

/// Reads every message of the given topics from the beginning until `until` holds or the timeout.
func readAll(bootstrap: String, topics: [String], timeout: Duration = .seconds(20),
             until: ([ReadMessage]) -> Bool) throws -> [ReadMessage] {
    let consumer = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": bootstrap, "group.id": "reader-\(UUID())",
                                                          "fetch.wait.max.ms": "10"]), logger: testLogger)
    var partitions: [TopicPartition] = []
    for t in topics { partitions += try consumer.partitions(of: t).map { TopicPartition(t, $0) } }
    try consumer.assign(partitions)
    let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 512)
    defer { buffer.deallocate() }
    var out: [ReadMessage] = []
    let deadline = ContinuousClock.now + timeout
    while !until(out) && ContinuousClock.now < deadline {
        let n = consumer.poll(into: buffer, timeout: .milliseconds(100))
        for m in buffer.prefix(n) {
            out.append(ReadMessage(topic: m.topic, partition: m.partition, offset: m.offset,
                                   key: String(decoding: m.key, as: UTF8.self), value: Array(m.value), headers: m.headers))
            m.release()
        }
    }
    consumer.close()
    return out
}

/// A pipeline (not started) on the cluster at `bootstrap`, with the models in `models` read for `features`
/// (the repository's by default); `kafka` adds client properties.
func makePipeline(_ config: PipelineConfig, bootstrap: String, kafka: [String: String] = [:],
                  features: FeatureSet = repoFeatures, models: String = repoModels) throws -> Pipeline {
    try Pipeline(config: config, kafka: KafkaConfig(kafka.merging(["bootstrap.servers": bootstrap]) { own, _ in own }),
                 models: try ModelSet.load(directory: models, features: features), features: features, logger: testLogger)
}

/// Stops `pipeline` on a thread of its own and waits up to `limit` for it: how long the stop took, or nil
/// if it had not returned by then (it is left running).
func timedStop(_ pipeline: Pipeline, within limit: Duration) -> Duration? {
    let stopped = DispatchSemaphore(value: 0)
    let began = ContinuousClock.now
    Thread { pipeline.stop(); stopped.signal() }.start()
    let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
    guard stopped.wait(timeout: .now() + seconds) == .success else { return nil }
    return ContinuousClock.now - began
}

/// What consumer group `group` has committed on `topic`, and the end of the topic's log, each summed over its
/// partitions (a partition with no commit counts 0).
func committedTotal(bootstrap: String, group: String, topic: String) throws -> (committed: Int64, end: Int64) {
    let probe = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": bootstrap, "group.id": group]), logger: testLogger)
    defer { probe.close() }
    let parts = try probe.partitions(of: topic).map { TopicPartition(topic, $0) }
    let committed = try probe.committed(parts)
    var c: Int64 = 0, e: Int64 = 0
    for tp in parts {
        c += max(0, committed[tp] ?? 0)
        e += try probe.queryWatermarks(tp).high
    }
    return (c, e)
}

/// Sends messages and waits for all to be acknowledged.
func produceAll(bootstrap: String, _ messages: [(topic: String, key: String, value: [UInt8])]) throws {
    let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": bootstrap]), logger: testLogger) { _ in }
    for m in messages {
        try producer.send(to: producer.topic(m.topic), key: Array(m.key.utf8), value: m.value, token: 0)
    }
    precondition(producer.flush(timeout: .seconds(20)) == 0, "test messages not delivered")
    producer.close()
}

/// A Segment track event as the contract shows it.
func track(_ event: String, user: String?, anonymous: String? = nil, id: String, at timestamp: String,
           channel: String = "web", properties: String = "{}") -> [UInt8] {
    var fields = ["\"type\":\"track\"", "\"event\":\"\(event)\"", "\"messageId\":\"\(id)\"", "\"timestamp\":\"\(timestamp)\"",
                  "\"channel\":\"\(channel)\"", "\"properties\":\(properties)"]
    if let user { fields.append("\"userId\":\"\(user)\"") }
    if let anonymous { fields.append("\"anonymousId\":\"\(anonymous)\"") }
    return Array("{\(fields.joined(separator: ","))}".utf8)
}

/// The repository's models/ directory.
let repoModels: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("models").path
}()

/// Waits until the pipeline has handled `count` messages in all (dead letters and dropped duplicates
/// included); false after the timeout. A shard counts a message after applying it, so once this returns
/// true every one of them is in the store.
func waitUntilHandled(_ pipeline: Pipeline, _ count: Int, timeout: Duration = .seconds(30)) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while pipeline.eventsHandled < count {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return pipeline.eventsHandled == count
}
