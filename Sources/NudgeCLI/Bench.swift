import ArgumentParser
import Foundation
import Logging
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import NudgeTraffic

extension Nudge {
    /// `nudge bench`: throughput of the in-process path and of the end-to-end path through a broker.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmark Nudge and write results (JSON, Markdown, SVG) to benchmarks/results/.",
            discussion: "Run it from a release build: benchmarks/run does. Figures depend on the machine; the run records it.")

        @Option(help: "Messages per run.") var events = 1_000_000
        @Option(help: "Simulated customers.") var customers = 1_000_000
        @Option(help: "Partitions per input topic for the end-to-end run (keeps each under the mock's 5 MiB retention).")
        var partitions = 128
        @Option(help: "Store shards for the end-to-end run.") var shards = 2
        @Option(help: "Alternating rounds (plain consumer, then Nudge) of the end-to-end run; the median counts.") var rounds = 3
        @Option(help: "Where results go.") var out = "benchmarks/results"
        @Option(help: "Models directory.") var models = "models"
        @Flag(help: "Skip the end-to-end run through the broker.") var inProcessOnly = false
        @OptionGroup var featureFile: FeatureFileOption
        @OptionGroup var log: LogOptions

        func run() async throws {
            var logger = log.makeLogger()
            if log.logLevel == .info { logger.logLevel = .warning }
            let features = try featureFile.load(modelsDirectory: models)
            let modelSet = try loadModels(models, features: features)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

            let arena = generateArena()
            var config = PipelineConfig()
            config.expectedCustomersPerShard = customers + customers / 8  // the generator's anonymous visitors too
            config.eventTime.maxClockSkew = nil  // simulated event time, not the wall clock's
            let inProcess = InProcessBenchmark.run(arena, models: modelSet, features: features, config: config, warmCustomers: customers)
            print(String(format: "in-process, 1 core: Foundation JSONSerialization %.0f events/s; decode %.0f events/s; decode→update→score→decide %.0f events/s; %d customers, %.0f B/customer, hot %.0f B (feature record %d B, %d features, held by %d customers)",
                         inProcess.foundationParsePerSecond, inProcess.decodePerSecond, inProcess.fullPerSecond, inProcess.customers,
                         inProcess.bytesPerCustomer, inProcess.hotBytesPerCustomer, inProcess.recordBytes, features.count,
                         inProcess.fullRecordCustomers))
            print("state per customer by part: " + inProcess.bytesPerCustomerByPart.map { "\($0.part) \(Int($0.bytes.rounded())) B" }.joined(separator: ", "))

            var endToEnd: EndToEndResult?
            if !inProcessOnly {
                endToEnd = try EndToEndBenchmark(arena: arena, partitions: partitions, shards: shards, rounds: rounds,
                                                 warmCustomers: customers, models: modelSet,
                                                 features: features, logger: logger).run()
            }
            try writeResults(inProcess: inProcess, endToEnd: endToEnd, features: features,
                             featureSource: featureFile.path(modelsDirectory: models) ?? "the built-in standard set")
        }

        private func generateArena() -> MessageArena {
            var traffic = TrafficConfig()
            traffic.customers = customers
            traffic.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: customers)
            traffic.duplicateRate = 0.001
            traffic.malformedRate = 0.001
            let generator = TrafficGenerator(traffic)
            var arena = MessageArena()
            var bar = ProgressBar(total: events, label: "generate")
            for i in 0..<events {
                let m = generator.next()
                arena.append(key: m.key, value: m.value, topic: UInt8(TrafficTopic.allCases.firstIndex(of: m.topic) ?? 0))
                if i & 8191 == 0 { bar.update(i) }
            }
            bar.finish(events)
            return arena
        }

        private func writeResults(inProcess: InProcessResult, endToEnd: EndToEndResult?, features: FeatureSet, featureSource: String) throws {
            let stamp = ISO8601DateFormatter().string(from: Date())
            let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB, librdkafka \(librdkafkaVersion)"
            var json: [String: Any] = [
                "at": stamp, "machine": machine, "events": events, "customers": customers,
                "in_process": ["foundation_parse_per_s": inProcess.foundationParsePerSecond.rounded(),
                               "decode_per_s": inProcess.decodePerSecond.rounded(), "full_per_s": inProcess.fullPerSecond.rounded(),
                               "decisions": inProcess.decisions, "timer_decisions": inProcess.timerDecisions, "customers": inProcess.customers,
                               "bytes_per_customer": inProcess.bytesPerCustomer.rounded(),
                               "hot_bytes_per_customer": inProcess.hotBytesPerCustomer.rounded(), "record_bytes": inProcess.recordBytes,
                               "full_record_customers": inProcess.fullRecordCustomers,
                               "bytes_per_customer_by_part": Dictionary(inProcess.bytesPerCustomerByPart.map { ($0.part, $0.bytes.rounded()) },
                                                                        uniquingKeysWith: +),
                               "features": features.count],
            ]
            var md = """
            # Nudge benchmark

            - run: \(stamp)
            - machine: \(machine)
            - messages: \(events), simulated customers: \(customers) (all in the store before the timed pass)
            - features: \(featureSource)

            ## In-process, one core (decode → dedupe → update → score → decide → encode)

            | measure | value |
            |---|---|
            | Foundation JSONSerialization parse (for comparison) | \(Int(inProcess.foundationParsePerSecond.rounded())) events/s |
            | decode only (NudgeEvents scanner) | \(Int(inProcess.decodePerSecond.rounded())) events/s |
            | full path | \(Int(inProcess.fullPerSecond.rounded())) events/s |
            | decisions made (of them by event-time timers) | \(inProcess.decisions) (\(inProcess.timerDecisions)) |
            | customers in store | \(inProcess.customers) |
            | state per customer (all of a shard's state, as allocated, over the customers it holds) | \(Int(inProcess.bytesPerCustomer.rounded())) B |
            | hot state per customer (the same without the cold tier) | \(Int(inProcess.hotBytesPerCustomer.rounded())) B |
            | full feature record (\(features.count) features), held by customers with two events or more | \(inProcess.recordBytes) B, \(inProcess.fullRecordCustomers) customers |

            State per customer by part (as allocated: capacities, not just what is filled):

            | part | bytes per customer |
            |---|---|

            """
            for share in inProcess.bytesPerCustomerByPart { md += "| \(share.part) | \(Int(share.bytes.rounded())) |\n" }
            md += "\n"
            var bars: [(String, Double)] = [("Foundation JSON parse, 1 core", inProcess.foundationParsePerSecond),
                                            ("decode only, 1 core", inProcess.decodePerSecond),
                                            ("full path, 1 core", inProcess.fullPerSecond)]
            if let e = endToEnd {
                json["end_to_end"] = e.dictionary
                md += e.markdown
                bars += [("plain librdkafka consumer", e.baselinePerSecond), ("nudge end to end", e.pipelinePerSecond)]
            }
            let svg = SVGChart.bars(title: "Nudge throughput (\(events) messages, \(machine))", unit: "events/s", bars.map { (label: $0.0, value: $0.1) })
            let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: "\(out)/latest.json"))
            try md.write(toFile: "\(out)/latest.md", atomically: true, encoding: .utf8)
            try svg.write(toFile: "\(out)/throughput.svg", atomically: true, encoding: .utf8)
            print("results: \(out)/latest.md, latest.json, throughput.svg")
        }
    }
}
