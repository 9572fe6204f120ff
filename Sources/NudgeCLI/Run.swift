import ArgumentParser
import Logging
import NudgeFeatures
import NudgePipeline
import ServiceLifecycle

extension Nudge {
    /// `nudge run`: the service against real Kafka.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run Nudge against a Kafka cluster.",
            discussion: "Example: nudge run --brokers kafka-1:9092 -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN")

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var topics: TopicOptions
        @OptionGroup var engine: EngineOptions
        @OptionGroup var featureFile: FeatureFileOption
        @OptionGroup var log: LogOptions

        func run() async throws {
            try engine.validateClockSkew()
            let logger = log.makeLogger()
            let features = try featureFile.load(modelsDirectory: engine.models)
            let models = try loadModels(engine.models, features: features, challengerShare: engine.challengerShare)
            let pipeline = try Pipeline(config: engine.pipelineConfig(topics: topics.names, group: kafka.group),
                                        kafka: try kafka.config(), models: models, features: features, logger: logger)
            var services: [any Service] = [PipelineService(pipeline: pipeline)]
            if engine.httpPort > 0 { services.append(OpsHTTPService(port: UInt16(engine.httpPort), pipeline: pipeline, logger: logger)) }
            let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}

/// Loads the model directory, turning a bad file into a message that names the field.
func loadModels(_ directory: String, features: FeatureSet, challengerShare: Double = 0.1) throws -> ModelSet {
    do {
        return try ModelSet.load(directory: directory, features: features, challengerShare: challengerShare)
    } catch {
        throw CommandFailure("models refused: \(error)")
    }
}
