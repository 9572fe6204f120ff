import ArgumentParser
import Foundation
import NudgeKafka
import NudgePipeline

extension Nudge {
    /// `nudge broker`: a standalone Kafka-protocol broker for local development.
    struct Broker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a local Kafka-protocol broker (librdkafka's mock cluster) with the contract's topics.",
            discussion: "Prints the bootstrap address; point `nudge run --brokers` and `nudge generate --brokers` at it. Retention is capped at 5 MiB per partition: keep consumers running.")

        @Option(help: "Brokers in the cluster.") var brokers = 1
        @Option(help: "Partitions per input topic.") var partitions = 6
        @Option(help: "Partitions per output topic.") var outputPartitions = 3
        @OptionGroup var log: LogOptions

        func run() async throws {
            let cluster = try KafkaMockCluster(brokers: brokers, logger: log.makeLogger())
            let topics = TopicNames()
            try cluster.createTopics(topics, partitions: partitions, outputPartitions: outputPartitions)
            // Written straight to the descriptor: a parent reading the address through a pipe must
            // get it now, not when a block buffer fills.
            FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
            FileHandle.standardError.write(Data("broker up: topics \((topics.inputs + topics.outputs).joined(separator: ", ")). Ctrl-C to stop.\n".utf8))
            await waitForSignal([SIGINT, SIGTERM])
            withExtendedLifetime(cluster) {}
        }
    }
}

/// Suspends until one of the signals arrives.
func waitForSignal(_ signals: [Int32]) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        for s in signals {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { if once.claim() { done.resume() } }
            source.resume()
            SignalSources.keep(source)
        }
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()
    static func keep(_ s: any DispatchSourceSignal) { lock.lock(); sources.append(s); lock.unlock() }
}

/// True the first time only.
final class OnceFlag: @unchecked Sendable {
    // Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool { lock.lock(); defer { lock.unlock() }; if claimed { return false }; claimed = true; return true }
}
