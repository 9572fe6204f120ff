import ArgumentParser
import Foundation
import Logging
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import NudgeTraffic
import ServiceLifecycle

extension Nudge {
    /// `nudge demo`: everything in one process, no Kafka needed.
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run Nudge on an embedded Kafka-protocol broker fed by a traffic generator, with a live summary.")

        @Option(help: "Generated messages per second.") var rate = 5_000.0
        @Option(help: "Simulated customers.") var customers = 20_000
        @Option(help: "Partitions per input topic.") var partitions = 6
        @Option(help: "Stop after this many seconds (0 = until Ctrl-C).") var duration = 0.0
        @Option(help: "Random seed of the traffic.") var seed: UInt64 = 42
        @Option(help: "Share of malformed messages (they go to the dead-letter topic).") var malformedRate = 0.002
        @Option(help: "Share of duplicated messages (they are dropped).") var duplicateRate = 0.002
        @OptionGroup var engine: EngineOptions
        @OptionGroup var featureFile: FeatureFileOption
        @OptionGroup var log: LogOptions

        func run() async throws {
            var logger = log.makeLogger()
            if log.logLevel == .info { logger.logLevel = .notice }  // keep the live summary readable
            let features = try featureFile.load(modelsDirectory: engine.models)
            let models = try loadModels(engine.models, features: features, challengerShare: engine.challengerShare)
            let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
            let topics = TopicNames()
            try cluster.createTopics(topics, partitions: partitions, outputPartitions: 3)
            // The clients (pipeline, traffic, tail) live in their own scope and are gone before the broker is:
            // destroyed after it, each logged its lost connection on the way out.
            let final = try await run(on: cluster, topics: topics, features: features, models: models, logger: logger)
            print("\nstopped: \(final.eventsIn) events in, \(final.recommendations) decisions published, \(final.deadLetter) dead letters, \(final.duplicatesDropped) duplicates dropped, \(final.identity.merges) anonymous visitors merged into customers.")
        }

        /// Runs the pipeline, the traffic and the dashboard on `cluster` until a signal or the duration; the
        /// pipeline's last figures.
        private func run(on cluster: KafkaMockCluster, topics: TopicNames, features: FeatureSet, models: ModelSet,
                         logger: Logger) async throws -> MetricsSnapshot {
            let kafka = KafkaConfig(["bootstrap.servers": cluster.bootstrapServers])
            var config = engine.pipelineConfig(topics: topics, group: "nudge-demo")
            config.metricsInterval = .seconds(2)
            // The generator's event time starts in 2026 and runs thousands of times faster than the wall clock.
            config.eventTime.maxClockSkew = nil
            let pipeline = try Pipeline(config: config, kafka: kafka, models: models, features: features, logger: logger)

            var traffic = TrafficConfig()
            traffic.seed = seed
            traffic.customers = customers
            traffic.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: customers)
            traffic.malformedRate = malformedRate
            traffic.duplicateRate = duplicateRate
            let names: [TrafficTopic: String] = [.clickstream: topics.clickstream, .transactions: topics.transactions, .outcomes: topics.outcomes]
            let pump = try TrafficPump(kafka: kafka, traffic: traffic, topicNames: names, rate: rate, logger: logger)
            let tail = try RecommendationTail(kafka: kafka, topic: topics.recommendations, logger: logger)

            print("nudge demo: embedded broker at \(cluster.bootstrapServers), \(Int(rate)) msg/s from \(customers) simulated customers. Ctrl-C to stop.")
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: PipelineService(pipeline: pipeline)),
                .init(service: DemoDashboard(pipeline: pipeline, pump: pump, tail: tail, duration: duration),
                      successTerminationBehavior: .gracefullyShutdownGroup),
            ]
            if engine.httpPort > 0 {
                services.append(.init(service: OpsHTTPService(port: UInt16(engine.httpPort), pipeline: pipeline, logger: logger)))
            }
            var groupConfig = ServiceGroupConfiguration(services: services, logger: logger)
            groupConfig.gracefulShutdownSignals = [.sigterm, .sigint]
            try await ServiceGroup(configuration: groupConfig).run()
            return pipeline.snapshot()
        }
    }
}

/// Starts the traffic and prints a live summary every two seconds until shutdown or the duration.
struct DemoDashboard: Service {
    let pipeline: Pipeline
    let pump: TrafficPump
    let tail: RecommendationTail
    let duration: Double

    func run() async throws {
        pump.start()
        tail.start()
        let started = ContinuousClock.now
        while !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(2))
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            print(render(pipeline.snapshot(), tail.sample(), sent: pump.sent.load(ordering: .relaxed)))
            if duration > 0 && ContinuousClock.now - started >= .milliseconds(Int(duration * 1000)) { break }
        }
        await runBlocking { [pump, tail] in
            pump.stop()
            tail.stop()
        }
    }

    private func render(_ s: MetricsSnapshot, _ sample: (count: Int, latest: [String]), sent: Int) -> String {
        var lines: [String] = []
        let actions = s.recommendationsByAction.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append(String(format: "── %.0fs │ sent %d │ in %d (%.0f/s) │ decisions %d │ dead letters %d │ duplicates %d │ customers %d │ lag %d │ latency p50 %.1f ms p99 %.1f ms",
                            s.uptimeSeconds, sent, s.eventsIn, s.eventsPerSecond, s.recommendations, s.deadLetter,
                            s.duplicatesDropped, s.customers, s.totalLag, s.latencyMs["p50"] ?? 0, s.latencyMs["p99"] ?? 0))
        lines.append("   by action: \(actions)")
        lines.append("   read back from nba.recommendations: \(sample.count)")
        for r in sample.latest.suffix(2) { lines.append("   ▸ \(r.prefix(400))") }
        return lines.joined(separator: "\n")
    }
}
