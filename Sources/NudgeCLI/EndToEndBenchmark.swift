import Foundation
import Logging
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import NudgeTraffic

/// Results of the end-to-end run.
struct EndToEndResult {
    var messages: Int
    var partitions: Int
    var baselinePerSecond: Double
    var baselineBrokerCPU: Double
    var pipelinePerSecond: Double
    var pipelineBrokerCPU: Double
    var pipelineProcessCPU: Double
    var recommendations: Int
    var latencyMs: [String: Double]

    var ratio: Double { baselinePerSecond > 0 ? pipelinePerSecond / baselinePerSecond : 0 }

    var dictionary: [String: Any] {
        ["messages": messages, "partitions_per_input_topic": partitions,
         "baseline_consumer_per_s": baselinePerSecond.rounded(), "baseline_broker_cpu_s": baselineBrokerCPU,
         "nudge_per_s": pipelinePerSecond.rounded(), "nudge_broker_cpu_s": pipelineBrokerCPU,
         "nudge_process_cpu_s": pipelineProcessCPU, "ratio": (ratio * 1000).rounded() / 1000,
         "recommendations": recommendations, "latency_ms_last_interval": latencyMs]
    }

    var markdown: String {
        """

        ## End to end through a Kafka-protocol broker (mock cluster in its own process)

        Both runs read the same \(messages) messages, pre-loaded over \(partitions) partitions per input topic.
        The baseline is a plain librdkafka consumer that only reads them; Nudge reads, decides and
        publishes recommendations (which the same broker also has to take).

        | measure | value |
        |---|---|
        | plain librdkafka consumer | \(Int(baselinePerSecond)) messages/s (broker CPU \(String(format: "%.1f", baselineBrokerCPU)) s) |
        | nudge end to end | \(Int(pipelinePerSecond)) messages/s (broker CPU \(String(format: "%.1f", pipelineBrokerCPU)) s, nudge CPU \(String(format: "%.1f", pipelineProcessCPU)) s) |
        | ratio | \(String(format: "%.3f", ratio)) |
        | recommendations published | \(recommendations) |
        | latency, arrival → delivered (last interval) | p50 \(latencyMs["p50"] ?? 0) ms, p99 \(latencyMs["p99"] ?? 0) ms, max \(latencyMs["max"] ?? 0) ms |

        The mock broker does not set TCP_NODELAY, so latency shows ~40 ms delayed-ACK steps real Kafka does not have.

        """
    }
}

/// Pre-loads a broker (a `nudge broker` child process, so its CPU is measured apart), then times a
/// plain consumer and the pipeline over the same messages.
struct EndToEndBenchmark {
    let arena: MessageArena
    let partitions: Int
    let shards: Int
    let models: ModelSet
    let features: FeatureSet
    let logger: Logger

    func run() throws -> EndToEndResult {
        let broker = try BrokerProcess(partitions: partitions)
        defer { broker.terminate() }
        let kafka = KafkaConfig(["bootstrap.servers": broker.bootstrap])
        let topics = TopicNames()
        let names = [topics.clickstream, topics.transactions, topics.outcomes]
        try preload(kafka: kafka, topicNames: names)

        // Baseline: a plain consumer that reads everything and does nothing else.
        let cpu0 = broker.cpuSeconds()
        let baselineTime = try readAll(kafka: kafka, topics: names)
        let cpu1 = broker.cpuSeconds()

        // Nudge.
        var config = PipelineConfig()
        config.shards = shards
        config.groupId = "bench-\(UUID().uuidString.prefix(8))"
        config.expectedCustomersPerShard = max(1 << 16, arena.count / shards)
        let pipeline = try Pipeline(config: config, kafka: kafka, models: models, features: features, logger: logger)
        try pipeline.start()
        while !pipeline.isReady { Thread.sleep(forTimeInterval: 0.01) }
        let cpu2 = broker.cpuSeconds()
        let own0 = processCPUSeconds()
        let start = ContinuousClock.now
        var bar = ProgressBar(total: arena.count, label: "nudge end to end")
        while pipeline.eventsHandled < arena.count {
            Thread.sleep(forTimeInterval: 0.005)
            bar.update(pipeline.eventsHandled)
            if ContinuousClock.now - start > .seconds(600) { break }
        }
        let pipelineTime = ContinuousClock.now - start
        bar.finish(pipeline.eventsHandled)
        let cpu3 = broker.cpuSeconds()
        let own1 = processCPUSeconds()
        pipeline.stop()
        let final = pipeline.snapshot()
        let result = EndToEndResult(
            messages: arena.count, partitions: partitions,
            baselinePerSecond: Double(arena.count) / baselineTime.seconds, baselineBrokerCPU: cpu1 - cpu0,
            pipelinePerSecond: Double(pipeline.eventsHandled) / pipelineTime.seconds, pipelineBrokerCPU: cpu3 - cpu2,
            pipelineProcessCPU: own1 - own0, recommendations: final.recommendations, latencyMs: final.latencyMs)
        print(String(format: "end to end: plain consumer %.0f msg/s, nudge %.0f msg/s, ratio %.3f", result.baselinePerSecond, result.pipelinePerSecond, result.ratio))
        return result
    }

    private func preload(kafka: KafkaConfig, topicNames: [String]) throws {
        var config = kafka
        config.set("linger.ms", "50")
        config.set("batch.size", "1000000")
        config.set("compression.codec", "none")
        let producer = try KafkaProducer(config: config, logger: logger) { _ in }
        let topics = topicNames.map { producer.topic($0) }
        var bar = ProgressBar(total: arena.count, label: "pre-load broker")
        arena.bytes.withUnsafeBytes { all in
            for i in 0..<arena.count {
                let value = UnsafeRawBufferPointer(rebasing: all[arena.starts[i]..<arena.starts[i + 1]])
                var key = arena.keys[i]
                key.withUTF8 { k in
                    try? producer.send(to: topics[Int(arena.topics[i]) % topics.count], key: UnsafeRawBufferPointer(k), value: value, token: 0)
                }
                if i & 8191 == 0 { bar.update(i) }
            }
        }
        producer.flush(timeout: .seconds(120))
        bar.finish(arena.count)
        producer.close()
        // The mock silently drops a backlog over 5 MiB per partition (KAFKA-NOTES): refuse to
        // measure if it did.
        let probe = try KafkaConsumer(config: kafka.merging(["group.id": "bench-probe"]), logger: logger)
        var total: Int64 = 0
        for t in topicNames {
            for p in try probe.partitions(of: t) {
                let marks = try probe.queryWatermarks(TopicPartition(t, p))
                if marks.low != 0 {
                    throw KafkaError("\(t)[\(p)] lost messages to the mock's 5 MiB retention (low watermark \(marks.low)): use more --partitions")
                }
                total += marks.high
            }
        }
        probe.close()
        guard total == Int64(arena.count) else { throw KafkaError("broker holds \(total) messages, expected \(arena.count)") }
    }

    private func readAll(kafka: KafkaConfig, topics: [String]) throws -> Duration {
        let consumer = try KafkaConsumer(config: kafka.merging(["group.id": "bench-baseline", "fetch.wait.max.ms": "10",
                                                                "queued.max.messages.kbytes": "65536"]), logger: logger)
        var parts: [TopicPartition] = []
        for t in topics { parts += try consumer.partitions(of: t).map { TopicPartition(t, $0) } }
        try consumer.assign(parts)
        let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 1024)
        defer { buffer.deallocate() }
        var read = 0
        var bytes = 0
        let start = ContinuousClock.now
        var bar = ProgressBar(total: arena.count, label: "plain consumer")
        while read < arena.count && ContinuousClock.now - start < .seconds(600) {
            let n = consumer.poll(into: buffer, timeout: .milliseconds(100))
            for m in buffer.prefix(n) { bytes &+= m.value.count; m.release() }
            read += n
            bar.update(read)
        }
        let time = ContinuousClock.now - start
        bar.finish(read)
        consumer.close()
        return time
    }
}

extension KafkaConfig {
    func merging(_ pairs: [String: String]) -> KafkaConfig {
        var c = self
        c.merge(KafkaConfig(pairs))
        return c
    }
}

/// A `nudge broker` child process.
final class BrokerProcess {
    let process = Process()
    let bootstrap: String

    init(partitions: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["broker", "--partitions", String(partitions), "--log-level", "error"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        bootstrap = String(decoding: line, as: UTF8.self)
        guard !bootstrap.isEmpty else { throw KafkaError("the broker process did not print its address") }
    }

    /// User + system CPU seconds the broker has used.
    func cpuSeconds() -> Double { cpuSecondsOf(pid: process.processIdentifier) }

    func terminate() {
        process.interrupt()
        process.waitUntilExit()
    }
}

/// CPU seconds (user + system) of a process, from /proc.
func cpuSecondsOf(pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return 0 }
    return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds this process has used.
func processCPUSeconds() -> Double { cpuSecondsOf(pid: getpid()) }
