import ArgumentParser
import Foundation
import NudgeKafka
import NudgeTraffic

extension Nudge {
    /// `nudge generate`: realistic Segment traffic to a JSONL file or to Kafka.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate realistic omnichannel Segment-spec traffic (seeded) to JSONL or Kafka.",
            discussion: "Examples:\n  nudge generate --events 1000000 --out history.jsonl\n  nudge generate --events 100000 --brokers localhost:9092")

        @Option(help: "Messages to generate.") var events = 100_000
        @Option(help: "Write JSON lines here (one event per line; '-' for stdout).") var out: String?
        @Option(help: "Simulated customers.") var customers = 10_000
        @Option(help: "Random seed: the same seed gives the same bytes.") var seed: UInt64 = 42
        @Option(help: "Share of events emitted late (out of order).") var outOfOrderRate = 0.03
        @Option(help: "Share of events duplicated (same messageId).") var duplicateRate = 0.0
        @Option(help: "Share of malformed messages.") var malformedRate = 0.0
        @Option(help: "Messages per second to Kafka (0 = as fast as possible).") var rate = 0.0
        @Option(name: .long, help: "Bootstrap servers: send to Kafka instead of a file.") var brokers: String?
        @Option(name: .customShort("X"), help: ArgumentHelp("librdkafka property key=value (repeatable).", valueName: "key=value"))
        var properties: [String] = []
        @OptionGroup var log: LogOptions

        func validate() throws {
            if out == nil && brokers == nil { throw ValidationError("say where to: --out FILE.jsonl or --brokers host:port") }
            if events <= 0 { throw ValidationError("--events must be positive") }
        }

        var trafficConfig: TrafficConfig {
            var t = TrafficConfig()
            t.seed = seed
            t.customers = customers
            t.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: customers)
            t.outOfOrderRate = outOfOrderRate
            t.duplicateRate = duplicateRate
            t.malformedRate = malformedRate
            return t
        }

        func run() async throws {
            if let brokers {
                var kafka = KafkaConfig()
                for p in properties { let (k, v) = try KafkaConfig.parseAssignment(p); kafka.set(k, v) }
                kafka.set("bootstrap.servers", brokers)
                let names = Dictionary(uniqueKeysWithValues: TrafficTopic.allCases.map { ($0, $0.rawValue) })
                let pump = try TrafficPump(kafka: kafka, traffic: trafficConfig, topicNames: names, rate: rate,
                                           limit: events, logger: log.makeLogger())
                pump.start()
                let events = self.events
                await runBlocking {
                    // The pump reports every 256 messages; poll it for the bar.
                    var bar = ProgressBar(total: events, label: "generate → kafka")
                    while pump.sent.load(ordering: .relaxed) < events {
                        bar.update(pump.sent.load(ordering: .relaxed))
                        Thread.sleep(forTimeInterval: 0.1)
                    }
                    pump.stop()
                    bar.finish(events)
                }
                return
            }
            try writeJSONL(to: out ?? "-")
        }

        private func writeJSONL(to path: String) throws {
            let handle: FileHandle
            if path == "-" {
                handle = .standardOutput
            } else {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw CommandFailure("cannot create \(path): check the directory exists and is writable")
                }
                guard let h = FileHandle(forWritingAtPath: path) else { throw CommandFailure("cannot open \(path) for writing") }
                handle = h
            }
            let generator = TrafficGenerator(trafficConfig)
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            var bar = ProgressBar(total: events, label: "generate")
            for i in 0..<events {
                let m = generator.next()
                buffer.append(contentsOf: m.value)
                buffer.append(0x0A)
                if buffer.count >= 1 << 20 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
                if i & 4095 == 0 { bar.update(i) }
            }
            try handle.write(contentsOf: buffer)
            bar.finish(events)
            if path != "-" { try handle.close() }
        }
    }
}
