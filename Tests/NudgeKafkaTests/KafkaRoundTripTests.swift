import Foundation
import Logging
import NudgeKafka
import Synchronization
import Testing

/// Collects delivery reports from the producer's delivery thread.
final class DeliveryLog: Sendable {
    let reports = Mutex<[DeliveryReport]>([])
    func record(_ batch: UnsafeBufferPointer<DeliveryReport>) { reports.withLock { $0.append(contentsOf: batch) } }
    var count: Int { reports.withLock { $0.count } }
}

final class RecordingListener: RebalanceListener {
    let events = Mutex<[String]>([])
    func assigned(_ partitions: [TopicPartition]) { events.withLock { $0.append("+\(partitions.count)") } }
    func revoked(_ partitions: [TopicPartition]) { events.withLock { $0.append("-\(partitions.count)") } }
}

let quietLogger: Logger = {
    var l = Logger(label: "test")
    l.logLevel = .error
    return l
}()

@Suite("Kafka binding against the mock cluster", .serialized)
struct KafkaRoundTripTests {
    @Test func produceThenConsumeByAssignment() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        try cluster.createTopic("rt", partitions: 3)
        let log = DeliveryLog()
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers]),
                                         logger: quietLogger) { log.record($0) }
        let topic = producer.topic("rt")
        var headers = KafkaHeaders()
        headers.add("x-error", "invalid_json")
        for i in 0..<300 {
            try producer.send(to: topic, key: Array("k\(i % 7)".utf8), value: Array("v\(i)".utf8),
                              headers: i == 0 ? headers : nil, token: UInt64(i))
        }
        #expect(producer.flush(timeout: .seconds(10)) == 0)
        #expect(log.count == 300)
        let reports = log.reports.withLock { $0 }
        #expect(Set(reports.map(\.token)) == Set((0..<300).map(UInt64.init)))
        #expect(reports.allSatisfy { $0.error == nil && $0.offset >= 0 })
        producer.close()

        var config = KafkaConfig(["bootstrap.servers": cluster.bootstrapServers, "group.id": "rt-test"])
        config.set("fetch.wait.max.ms", "10")
        let consumer = try KafkaConsumer(config: config, logger: quietLogger)
        #expect(try consumer.partitions(of: "rt") == [0, 1, 2])
        try consumer.assign((0..<3).map { TopicPartition("rt", $0) })
        let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 64)
        defer { buffer.deallocate() }
        var values = Set<String>()
        var keysByPartition: [Int32: Set<String>] = [:]
        var offsetsByPartition: [Int32: [Int64]] = [:]
        let deadline = ContinuousClock.now + .seconds(15)
        while values.count < 300 && ContinuousClock.now < deadline {
            let n = consumer.poll(into: buffer, timeout: .milliseconds(200))
            // As a shard does: prefetch the release's memory (a hint: this only shows it is harmless on real
            // messages), then read the fields copied at poll time.
            for m in buffer.prefix(n) { m.prefetchRelease() }
            for m in buffer.prefix(n) {
                values.insert(String(decoding: m.value, as: UTF8.self))
                keysByPartition[m.partition, default: []].insert(String(decoding: m.key, as: UTF8.self))
                offsetsByPartition[m.partition, default: []].append(m.offset)
                #expect(m.topic == "rt")
                m.release()
            }
        }
        #expect(values.count == 300)
        // Each partition's offsets, as read at poll time, are its log from 0 in order.
        #expect(offsetsByPartition.values.allSatisfy { $0 == Array(0..<Int64($0.count)) })
        #expect(offsetsByPartition.values.map(\.count).reduce(0, +) == 300)
        // The same key always lands on the same partition.
        let all = keysByPartition.values.flatMap { $0 }
        #expect(all.count == Set(all).count)
        try consumer.commit([(TopicPartition("rt", 0), 5)], synchronous: true)
        #expect(try consumer.committed([TopicPartition("rt", 0)])[TopicPartition("rt", 0)] == 5)
        try consumer.commit([(TopicPartition("rt", 0), 7)], waitingUpTo: .seconds(10))
        #expect(try consumer.committed([TopicPartition("rt", 0)])[TopicPartition("rt", 0)] == 7)
        let marks = try consumer.queryWatermarks(TopicPartition("rt", 1))
        #expect(marks.low == 0)
        consumer.close()
    }

    /// A consumer subscribed to 4 partitions, once the group has assigned them.
    private func assignedConsumer(_ cluster: KafkaMockCluster, group: String, _ extra: [String: String] = [:]) throws -> (KafkaConsumer, RecordingListener) {
        try cluster.createTopic("grp", partitions: 4)
        let consumer = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers, "group.id": group]
                                                                .merging(extra) { $1 }), logger: quietLogger)
        let listener = RecordingListener()
        consumer.setRebalanceListener(listener)
        try consumer.subscribe(["grp"])
        let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 8)
        defer { buffer.deallocate() }
        let deadline = ContinuousClock.now + .seconds(20)
        while listener.events.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            for m in buffer.prefix(consumer.poll(into: buffer, timeout: .milliseconds(200))) { m.release() }
        }
        #expect(listener.events.withLock { $0 } == ["+4"])
        return (consumer, listener)
    }

    @Test func groupSubscriptionAssignsAndRevokes() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        let (consumer, listener) = try assignedConsumer(cluster, group: "g1")
        consumer.close()
        #expect(listener.events.withLock { $0 } == ["+4", "-4"])
    }

    /// The bounded close revokes through the listener, on the calling thread, as the unbounded one does, and
    /// with the coordinator up it does not need its bound.
    @Test func boundedCloseRevokesAndLeavesTheGroup() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        let (consumer, listener) = try assignedConsumer(cluster, group: "g2")
        let began = ContinuousClock.now
        #expect(consumer.close(waitingUpTo: .seconds(30)))
        #expect(ContinuousClock.now - began < .seconds(10))
        #expect(listener.events.withLock { $0 } == ["+4", "-4"])
    }

    /// Under the cooperative protocol a rebalance must be taken incrementally (librdkafka refuses a whole
    /// assignment); the protocol is known only once the group is joined. The consumer fetches, and closes.
    @Test func cooperativeAssignmentConsumesAndCloses() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        let (consumer, listener) = try assignedConsumer(cluster, group: "g5", ["partition.assignment.strategy": "cooperative-sticky"])
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers]), logger: quietLogger) { _ in }
        for i in 0..<20 { try producer.send(to: producer.topic("grp"), key: Array("k\(i)".utf8), value: Array("v\(i)".utf8), token: 0) }
        #expect(producer.flush(timeout: .seconds(10)) == 0)
        let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 32)
        defer { buffer.deallocate() }
        var read = 0
        let deadline = ContinuousClock.now + .seconds(20)
        while read < 20 && ContinuousClock.now < deadline {
            let n = consumer.poll(into: buffer, timeout: .milliseconds(200))
            for m in buffer.prefix(n) { m.release() }
            read += n
        }
        #expect(read == 20)
        #expect(consumer.close(waitingUpTo: .seconds(30)))
        #expect(listener.events.withLock { $0 } == ["+4", "-4"])
    }

    /// With the cluster down and a commit in flight, librdkafka's close waits about 40 s for it; the bounded
    /// close gives up at its bound, still revokes, and releasing the consumer does not wait for the rest
    /// (which finishes on a thread of its own).
    @Test func boundedCloseGivesUpWhenTheCoordinatorIsGone() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        var (consumer, listener): (KafkaConsumer?, RecordingListener) = try assignedConsumer(cluster, group: "g3")
        try cluster.setBroker(1, up: false)
        try consumer?.commit([(TopicPartition("grp", 0), 1)], synchronous: false)
        let began = ContinuousClock.now
        #expect(consumer?.close(waitingUpTo: .seconds(2)) == false)
        #expect(consumer?.close(waitingUpTo: .seconds(2)) == false, "a second call still says the group was not left")
        let closing = ContinuousClock.now - began
        #expect(closing >= .seconds(2) && closing < .seconds(5), "closing took \(closing)")
        #expect(listener.events.withLock { $0 } == ["+4", "-4"])
        let released = ContinuousClock.now
        consumer = nil
        #expect(ContinuousClock.now - released < .seconds(1))
    }

    /// With its broker down, a producer without a delivery deadline holds its messages; closing gives them
    /// up and still reports every one (its delivery thread serves reports until the last flush: it used to
    /// end on the first quiet second of the close, and the purged messages were never reported).
    @Test func closingDuringAnOutageReportsEveryMessageAsAbandoned() throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: quietLogger)
        try cluster.createTopic("outage", partitions: 1)
        let log = DeliveryLog()
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers, "message.timeout.ms": "0",
                                                              "queue.buffering.max.messages": "20",
                                                              // No reconnection errors for a while: the close is quiet.
                                                              "reconnect.backoff.ms": "5000", "reconnect.backoff.max.ms": "5000"]),
                                         logger: quietLogger) { log.record($0) }
        let topic = producer.topic("outage")
        try producer.send(to: topic, key: [], value: Array("before".utf8), token: 0)
        #expect(producer.flush(timeout: .seconds(10)) == 0)
        try cluster.setBroker(1, up: false)
        for i in 1...20 { try producer.send(to: topic, key: [], value: Array("v\(i)".utf8), token: UInt64(i)) }
        // The queue is full: a send would wait for room, unless the producer is told to stop waiting.
        producer.stopWaiting()
        #expect(throws: KafkaError.self) { try producer.send(to: topic, key: [], value: Array("v21".utf8), token: 21) }
        producer.close(timeout: .milliseconds(1_500))
        let reports = log.reports.withLock { $0 }
        #expect(reports.count == 21)
        let abandoned = reports.filter { $0.error?.isAbandonedAtClose == true }.map(\.token).sorted()
        #expect(abandoned == Array(1...20))
        #expect(producer.abandonedSends.load(ordering: .relaxed) == 1)
    }

    @Test func badPropertyIsRefusedByName() {
        #expect {
            _ = try KafkaProducer(config: KafkaConfig(["no.such.property": "1"]), logger: quietLogger) { _ in }
        } throws: { error in
            (error as? KafkaError)?.message.contains("no.such.property") == true
        }
    }

    @Test func propertiesFileParses() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-kafka-\(UUID()).properties").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# comment\nsecurity.protocol = SASL_SSL\nsasl.mechanism=PLAIN\n\n".write(toFile: path, atomically: true, encoding: .utf8)
        let config = try KafkaConfig.load(file: path)
        #expect(config["security.protocol"] == "SASL_SSL")
        #expect(config["sasl.mechanism"] == "PLAIN")
        try "oops\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: KafkaError.self) { try KafkaConfig.load(file: path) }
    }
}
