import Atomics
import Foundation
import Logging
import NudgeKafka
import NudgeTraffic

/// Feeds generated traffic into Kafka at a steady rate on a thread of its own.
final class TrafficPump: @unchecked Sendable {
    // Sendable: the generator is confined to the pump's thread; the rest is atomic or immutable.
    private let producer: KafkaProducer
    private let generator: TrafficGenerator
    private let topics: [TrafficTopic: ProducerTopic]
    private let rate: Double
    private let limit: Int
    private let stopping = ManagedAtomic<Bool>(false)
    /// Messages sent so far.
    let sent = ManagedAtomic<Int>(0)
    private var thread: BlockingThread?

    /// `rate` messages per second (0 = as fast as the broker takes them); `limit` 0 = endless.
    init(kafka: KafkaConfig, traffic: TrafficConfig, topicNames: [TrafficTopic: String], rate: Double, limit: Int = 0, logger: Logger) throws {
        var config = kafka
        config.setDefault("linger.ms", "20")
        producer = try KafkaProducer(config: config, logger: logger) { _ in }
        generator = TrafficGenerator(traffic)
        var topics: [TrafficTopic: ProducerTopic] = [:]
        for t in TrafficTopic.allCases { topics[t] = producer.topic(topicNames[t] ?? t.rawValue) }
        self.topics = topics
        self.rate = rate
        self.limit = limit
    }

    func start() {
        thread = BlockingThread(name: "nudge-traffic") { [self] in pump() }
    }

    /// Stops sending and flushes what was sent.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        producer.close()
    }

    /// Waits until `limit` messages are sent (or stop is called).
    func waitUntilDone() { thread?.join() }

    private func pump() {
        let start = ContinuousClock.now
        var n = 0
        while !stopping.load(ordering: .relaxed) && (limit == 0 || n < limit) {
            if rate > 0 {
                // Pace against the wall clock: ahead of schedule, sleep a little.
                let due = start + .microseconds(Int64(Double(n) / rate * 1_000_000))
                let now = ContinuousClock.now
                if due > now { Thread.sleep(forTimeInterval: min(0.01, Double((due - now).components.attoseconds) / 1e18)) ; continue }
            }
            let m = generator.next()
            guard let topic = topics[m.topic] else { continue }
            do { try producer.send(to: topic, key: m.key, value: m.value, token: 0) } catch { break }
            n += 1
            if n & 255 == 0 { sent.store(n, ordering: .relaxed) }
        }
        sent.store(n, ordering: .relaxed)
        producer.flush(timeout: .seconds(30))
    }
}

/// Reads recommendations back from Kafka (what a channel would see) and keeps the latest few.
final class RecommendationTail: @unchecked Sendable {
    // Sendable: `latest` and `count` are behind `lock`.
    private let consumer: KafkaConsumer
    private let lock = NSLock()
    private var latest: [String] = []
    private var count = 0
    private let stopping = ManagedAtomic<Bool>(false)
    private var thread: BlockingThread?

    init(kafka: KafkaConfig, topic: String, logger: Logger) throws {
        var config = kafka
        config.set("group.id", "nudge-demo-tail")
        consumer = try KafkaConsumer(config: config, logger: logger)
        let parts = try consumer.partitions(of: topic)
        try consumer.assign(parts.map { TopicPartition(topic, $0) })
    }

    func start() {
        thread = BlockingThread(name: "nudge-tail") { [self] in
            let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 256)
            defer { buffer.deallocate() }
            while !stopping.load(ordering: .relaxed) {
                let n = consumer.poll(into: buffer, timeout: .milliseconds(200))
                guard n > 0 else { continue }
                var newest: [String] = []
                for m in buffer.prefix(n) {
                    newest.append(String(decoding: m.value, as: UTF8.self))
                    m.release()
                }
                lock.lock()
                count += n
                latest.append(contentsOf: newest.suffix(8))
                if latest.count > 8 { latest.removeFirst(latest.count - 8) }
                lock.unlock()
            }
            consumer.close()
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
    }

    /// Recommendations seen and the latest few.
    func sample() -> (count: Int, latest: [String]) {
        lock.lock()
        defer { lock.unlock() }
        return (count, latest)
    }
}
