import Foundation
import Logging
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import NudgeTraffic

/// One timed read of every message: how long until the first message arrived, then how fast the middle
/// 80 % came.
struct TimedRead {
    /// From the start (assignment done) to the first message.
    var startup: Duration
    /// Messages counted in the steady-state rate (those between the 10 % and 90 % marks).
    var messages: Int
    /// From the 10 % mark to the 90 % mark.
    var steady: Duration

    var perSecond: Double { steady.seconds > 0 ? Double(messages) / steady.seconds : 0 }
}

/// CPU seconds one end-to-end round cost each process.
struct RoundCPU {
    var baselineProcess = 0.0
    var baselineBroker = 0.0
    var pipelineProcess = 0.0
    var pipelineBroker = 0.0
    /// Nudge's round by thread role, from the store's warm-up to the last metrics interval (before the stop).
    var pipelineByRole: [ThreadRole: Double] = [:]
}

/// Results of the end-to-end run.
struct EndToEndResult {
    var messages: Int
    var partitions: Int
    var shards: Int
    /// Alternating rounds: plain consumer, then Nudge, over the same messages.
    var baseline: [TimedRead]
    var pipeline: [TimedRead]
    /// CPU seconds (user + system) per round: the benchmark process (all its threads) and the broker process,
    /// while the plain consumer read and while Nudge ran.
    var cpu: [RoundCPU]
    var recommendations: Int
    var latencyMs: [String: Double]

    var ratios: [Double] { zip(baseline, pipeline).map { $0.perSecond > 0 ? $1.perSecond / $0.perSecond : 0 } }
    /// The median round's ratio: one slow round of either side (the mock shares two cores with everything)
    /// does not decide the figure.
    var ratio: Double { median(ratios) }
    var baselinePerSecond: Double { median(baseline.map(\.perSecond)) }
    var pipelinePerSecond: Double { median(pipeline.map(\.perSecond)) }

    var dictionary: [String: Any] {
        ["messages": messages, "partitions_per_input_topic": partitions, "shards": shards,
         "baseline_consumer_per_s": baseline.map { $0.perSecond.rounded() },
         "baseline_startup_s": baseline.map { $0.startup.seconds },
         "nudge_per_s": pipeline.map { $0.perSecond.rounded() },
         "nudge_startup_s": pipeline.map { $0.startup.seconds },
         "ratios": ratios.map { ($0 * 1000).rounded() / 1000 }, "ratio_median": (ratio * 1000).rounded() / 1000,
         "cpu_s_per_round": cpu.map { ["baseline_process": $0.baselineProcess, "baseline_broker": $0.baselineBroker,
                                       "nudge_process": $0.pipelineProcess, "nudge_broker": $0.pipelineBroker,
                                       "nudge_by_thread": Dictionary(uniqueKeysWithValues: $0.pipelineByRole.map { ($0.key.rawValue, $0.value) })] },
         "recommendations_per_round": recommendations, "latency_ms_last_interval": latencyMs]
    }

    var markdown: String {
        func rates(_ reads: [TimedRead]) -> String { reads.map { String(Int($0.perSecond)) }.joined(separator: ", ") }
        func startups(_ reads: [TimedRead]) -> String { reads.map { String(format: "%.2f", $0.startup.seconds) }.joined(separator: ", ") }
        func cpuList(_ part: KeyPath<RoundCPU, Double>) -> String { cpu.map { String(format: "%.1f", $0[keyPath: part]) }.joined(separator: ", ") }
        return """

        ## End to end through a Kafka-protocol broker (mock cluster in its own process)

        \(baseline.count) alternating rounds over the same \(messages) messages, pre-loaded over \(partitions) partitions
        per input topic. Each Nudge round starts with the simulated customers already in its store, as in-process.
        The baseline is a plain librdkafka consumer that only reads them; Nudge (\(shards) shards)
        reads, decides and publishes recommendations, which the same broker also has to take. Rates are each
        side's steady state, from the moment it has handled 10 % of the messages to 90 %; the time to the
        first message (assignment, offset lookup, first fetch) is reported apart: a fixed cost, not throughput.

        | measure | value |
        |---|---|
        | plain librdkafka consumer, messages/s per round | \(rates(baseline)) |
        | nudge end to end, messages/s per round | \(rates(pipeline)) |
        | ratio per round | \(ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ")) |
        | **ratio (median round)** | **\(String(format: "%.3f", ratio))** |
        | time to first message, baseline / nudge (s) | \(startups(baseline)) / \(startups(pipeline)) |
        | CPU per round, plain consumer: its process / the broker (s) | \(cpuList(\.baselineProcess)) / \(cpuList(\.baselineBroker)) |
        | CPU per round, nudge: its process, all threads / the broker (s) | \(cpuList(\.pipelineProcess)) / \(cpuList(\.pipelineBroker)) |
        | recommendations published per round | \(recommendations) |
        | latency, arrival → delivered (the last round's last \(EndToEndBenchmark.metricsInterval) metrics interval with deliveries that closed before 90 % of the messages) | p50 \(latencyMs["p50"] ?? 0) ms, p99 \(latencyMs["p99"] ?? 0) ms, max \(latencyMs["max"] ?? 0) ms |

        The broker is one thread serving both sides on the same two cores, so its CPU is part of each side's cost.
        The mock broker does not set TCP_NODELAY, so latency shows ~40 ms delayed-ACK steps real Kafka does not have.

        Where Nudge's CPU goes end to end: seconds per round by thread, from the start of the pipeline to its last
        metrics interval (the stop's drain and commit left out). With \(messages) messages a round, 1 s is 1 µs a message.

        | thread | CPU per round (s) |
        |---|---|
        \(ThreadRole.allCases.map { role in "| \(role.rawValue) | \(cpu.map { String(format: "%.2f", $0.pipelineByRole[role] ?? 0) }.joined(separator: ", ")) |" }.joined(separator: "\n"))

        """
    }
}

/// Where a read crossed 10 % and 90 % of its messages. The rate between the two marks leaves out the
/// first fetch (librdkafka may hand over a pre-fetched backlog in one burst, which flatters a bare reader)
/// and the tail (the last partitions to drain), so both sides are compared in their steady state.
struct SteadyWindow {
    let total: Int
    private(set) var low: (at: ContinuousClock.Instant, count: Int)?
    private(set) var high: (at: ContinuousClock.Instant, count: Int)?

    init(total: Int) { self.total = total }

    mutating func observe(_ count: Int, at now: ContinuousClock.Instant = .now) {
        if low == nil && count * 10 >= total { low = (now, count) }
        if high == nil && count * 10 >= total * 9 { high = (now, count) }
    }

    /// Messages and time between the marks (zero when a mark was never reached).
    var measured: (messages: Int, time: Duration) {
        guard let low, let high, high.count > low.count else { return (0, .zero) }
        return (high.count - low.count, high.at - low.at)
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Pre-loads a broker (a `nudge broker` child process, so that its work is not Nudge's), then times a
/// plain consumer and the pipeline over the same messages, in alternating rounds.
struct EndToEndBenchmark {
    let arena: MessageArena
    let partitions: Int
    let shards: Int
    let rounds: Int
    /// Customers in the store before each Nudge round (`c-1` … `c-N`, one page view each, untimed).
    let warmCustomers: Int
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

        var baseline: [TimedRead] = []
        var pipelineReads: [TimedRead] = []
        var cpu: [RoundCPU] = []
        var recommendations = 0
        var latency: [String: Double] = [:]
        for round in 1...max(1, rounds) {
            var spent = RoundCPU()
            var own = processCPUSeconds()
            var brokers = broker.cpuSeconds()
            baseline.append(try readAll(kafka: kafka, topics: names, round: round))
            spent.baselineProcess = processCPUSeconds() - own
            spent.baselineBroker = broker.cpuSeconds() - brokers
            var threadsAtStart = ThreadCPUSample()
            let (read, snapshot, threadsAtEnd) = try runPipeline(kafka: kafka, round: round) {
                // From the end of the untimed store warm-up to the end of the round.
                own = processCPUSeconds()
                brokers = broker.cpuSeconds()
                threadsAtStart = ThreadCPUSample.now()
            }
            spent.pipelineByRole = threadsAtEnd.spent(since: threadsAtStart)
            spent.pipelineProcess = processCPUSeconds() - own
            spent.pipelineBroker = broker.cpuSeconds() - brokers
            cpu.append(spent)
            pipelineReads.append(read)
            recommendations = snapshot.recommendations
            latency = snapshot.latencyMs
            print(String(format: "end to end, round %d: plain consumer %.0f msg/s, nudge %.0f msg/s, ratio %.3f",
                         round, baseline[round - 1].perSecond, read.perSecond,
                         baseline[round - 1].perSecond > 0 ? read.perSecond / baseline[round - 1].perSecond : 0))
        }
        let result = EndToEndResult(messages: arena.count, partitions: partitions, shards: shards, baseline: baseline,
                                    pipeline: pipelineReads, cpu: cpu, recommendations: recommendations,
                                    latencyMs: latency)
        print(String(format: "end to end: plain consumer %.0f msg/s, nudge %.0f msg/s, ratio %.3f (median of %d rounds)",
                     result.baselinePerSecond, result.pipelinePerSecond, result.ratio, baseline.count))
        return result
    }

    /// One pipeline run from scratch (new group, a store holding only the warm-up customers) until it has
    /// handled every message; `warmedUp` is called once the store is warm, before the pipeline starts. Returns
    /// the threads' CPU figures as they were before the pipeline stopped (its threads end with it).
    private func runPipeline(kafka: KafkaConfig, round: Int, warmedUp: () -> Void) throws -> (TimedRead, MetricsSnapshot, ThreadCPUSample) {
        var config = PipelineConfig()
        config.shards = shards
        config.groupId = "bench-\(round)-\(UUID().uuidString.prefix(8))"
        config.expectedCustomersPerShard = max(1 << 16, (warmCustomers + warmCustomers / 8) / shards, arena.count / shards)
        config.eventTime.maxClockSkew = nil  // simulated event time, not the wall clock's
        // Latency is reported per metrics interval: short ones, so that one closes over the round's end (with
        // the default 5 s, a round of a second or two could end before any interval holding a delivery closed).
        config.metricsInterval = Self.metricsInterval
        let pipeline = try Pipeline(config: config, kafka: kafka, models: models, features: features, logger: logger)
        // As in-process: the store already holds the simulated customers, so the round times steady state
        // rather than a million first sightings.
        WarmUpTraffic.forEachMessage(customers: warmCustomers) { key, value in pipeline.preload(key: key, value: value) }
        warmedUp()
        try pipeline.start()
        defer { pipeline.stop() }
        while !pipeline.isReady { Thread.sleep(forTimeInterval: 0.01) }
        let ready = ContinuousClock.now
        var bar = ProgressBar(total: arena.count, label: "nudge end to end, round \(round)")
        while pipeline.eventsHandled == 0 && ContinuousClock.now - ready < .seconds(120) { Thread.sleep(forTimeInterval: 0.0005) }
        let first = ContinuousClock.now
        var window = SteadyWindow(total: arena.count)
        // The latency of the last interval with deliveries that closed in the steady window (before 90 % of the
        // messages): at a million messages a second a round lasts about a second, and the interval that closes
        // after it may hold none (it read 0 ms) or only the last few deliveries (it read 6 ms against 26).
        var latency: [String: Double] = [:]
        func keepLatency() {
            let snapshot = pipeline.snapshot()
            if (snapshot.latencyMs["max"] ?? 0) > 0 { latency = snapshot.latencyMs }
        }
        var polls = 0
        while pipeline.eventsHandled < arena.count && ContinuousClock.now - first < .seconds(600) {
            // Every 5 ms, not 1: these wake-ups take CPU from a machine the pipeline saturates (the rest of
            // the process, mostly this thread, went from 0.07-0.09 to 0.05-0.06 s a round), while the plain
            // consumer counts inline. 5 ms is under 1 % of the steady window.
            Thread.sleep(forTimeInterval: 0.005)
            let handled = pipeline.eventsHandled
            window.observe(handled)
            bar.update(handled)
            // Every 100 ms: a snapshot sums the shards' counters under the metrics lock.
            polls += 1
            if polls % 20 == 0 && (handled <= arena.count / 10 * 9 || latency.isEmpty) { keepLatency() }
        }
        bar.finish(pipeline.eventsHandled)
        let steady = window.measured
        let read = TimedRead(startup: first - ready, messages: steady.messages, steady: steady.time)
        // The last recommendations' deliveries land in the interval after the last message: let it close.
        Thread.sleep(forTimeInterval: Double(Self.metricsInterval / .milliseconds(1)) / 1000 + 0.1)
        if latency.isEmpty { keepLatency() }
        var snapshot = pipeline.snapshot()
        snapshot.latencyMs = latency
        return (read, snapshot, ThreadCPUSample.now())
    }

    /// The pipeline's metrics interval in the benchmark (see ``runPipeline(kafka:round:warmedUp:)``).
    static let metricsInterval: Duration = .milliseconds(500)

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

    private func readAll(kafka: KafkaConfig, topics: [String], round: Int) throws -> TimedRead {
        let consumer = try KafkaConsumer(config: kafka.merging(["group.id": "bench-baseline-\(round)", "fetch.wait.max.ms": "10",
                                                                "queued.max.messages.kbytes": "65536"]), logger: logger)
        var parts: [TopicPartition] = []
        for t in topics { parts += try consumer.partitions(of: t).map { TopicPartition(t, $0) } }
        try consumer.assign(parts)
        let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 1024)
        defer { buffer.deallocate() }
        var read = 0
        var bytes = 0
        let start = ContinuousClock.now
        var first: ContinuousClock.Instant?
        var window = SteadyWindow(total: arena.count)
        var bar = ProgressBar(total: arena.count, label: "plain consumer, round \(round)")
        while read < arena.count && ContinuousClock.now - start < .seconds(600) {
            let n = consumer.poll(into: buffer, timeout: .milliseconds(100))
            if first == nil && n > 0 { first = ContinuousClock.now }
            for m in buffer.prefix(n) { bytes &+= m.value.count; m.release() }
            read += n
            window.observe(read)
            bar.update(read)
        }
        let end = ContinuousClock.now
        bar.finish(read)
        consumer.close()
        withExtendedLifetime(bytes) {}
        let steady = window.measured
        return TimedRead(startup: (first ?? end) - start, messages: steady.messages, steady: steady.time)
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
func cpuSecondsOf(pid: Int32) -> Double { ProcStat(path: "/proc/\(pid)/stat")?.cpuSeconds ?? 0 }

/// CPU seconds this process has used.
func processCPUSeconds() -> Double { cpuSecondsOf(pid: getpid()) }
