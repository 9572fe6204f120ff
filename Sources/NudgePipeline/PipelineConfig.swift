import Foundation
import NudgeKafka

/// Topic names; every one is configurable (contract defaults).
public struct TopicNames: Sendable, Equatable, Codable {
    /// Clickstream events in.
    public var clickstream = "events.clickstream"
    /// Transaction events in.
    public var transactions = "events.transactions"
    /// Offer outcome events in (the feedback loop).
    public var outcomes = "nba.outcomes"
    /// Recommendations out.
    public var recommendations = "nba.recommendations"
    /// Metrics snapshots out.
    public var metrics = "nba.metrics"
    /// Dead letters out.
    public var deadLetter = "nba.deadletter"
    /// Identity changes between instances (internal): as many partitions as the input topics.
    public var identity = "nudge.identity"

    /// The contract's default names.
    public init() {}

    /// Topics the pipeline consumes.
    public var inputs: [String] { [clickstream, transactions, outcomes] }
    /// What an instance subscribes to: the inputs and the identity topic (same partition counts, see
    /// ``identity``).
    public var subscribed: [String] { inputs + [identity] }
    /// Topics the pipeline produces.
    public var outputs: [String] { [recommendations, metrics, deadLetter] }
}

/// How the pipeline runs: topics, parallelism, limits and intervals.
public struct PipelineConfig: Sendable {
    /// Topic names.
    public var topics = TopicNames()
    /// Consumer group id: instances with the same id share the input partitions.
    public var groupId = "nudge"
    /// This instance's id, the key of its metrics snapshots.
    public var instanceId = PipelineConfig.defaultInstanceId()
    /// Store shards, each owned by one thread. Default: one per core.
    public var shards = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Capacity of each shard's queue (messages); a full queue makes the consumer wait.
    public var shardQueueCapacity = 16_384
    /// How far processing may run ahead of the committed offset, per partition.
    public var offsetWindow = 65_536
    /// Largest accepted message value; larger ones are dead-lettered as `too_large`.
    public var maxMessageBytes = 64 * 1024
    /// Message ids remembered per shard for dropping duplicates (at least this many, at most twice).
    public var duplicateHorizon = 1 << 20
    /// Commit cadence.
    public var commitInterval: Duration = .seconds(1)
    /// Metrics snapshot cadence.
    public var metricsInterval: Duration = .seconds(5)
    /// How long a revoke or shutdown waits for in-flight work before committing what is done.
    public var drainTimeout: Duration = .seconds(30)
    /// Directory to watch for new model files (nil: models never change while running).
    public var modelDirectory: String?
    /// How often the model directory is checked.
    public var modelCheckInterval: Duration = .seconds(2)
    /// Expected customers per shard (pre-sizing the store; it grows past this).
    public var expectedCustomersPerShard = 1 << 16
    /// A customer with no event for this long (event time, measured against the shard's watermark) moves
    /// from the hot tier to the LZ4 cold tier and comes back, history intact, on their next event; the
    /// contacts the policy can still count and a pending silence go with them. Default 30 days.
    public var idleCustomerTTL: Duration = .seconds(30 * 86_400)
    /// Customers each shard keeps in its hot tier at most, whatever the input: past it those idle longest move
    /// to the cold tier before their TTL (counted in `cold.forced`), until 15/16 of it remain. With the default
    /// feature file a hot customer takes 64 to about 650 bytes (one event, or a full record), plus its id.
    /// (4,000,000: with the entries' buffer doubling from 65,536, the cap plus a batch stays within 2^22.)
    public var maxHotCustomersPerShard = 4_000_000
    /// Memory for each shard's cold tier; beyond it the customers idle longest are dropped (counted).
    public var coldBytesPerShard = 256 << 20
    /// Identity links (anonymousId → userId) each shard routes at most; past it the oldest in line is
    /// forgotten (counted) and that anonymous id's later events start a new visitor. Links also expire with
    /// ``idleCustomerTTL``.
    public var identityLinksPerShard = 1 << 18
    /// The partitioner the upstream producers key the input topics with: which instance owns a customer
    /// depends on it (librdkafka's default; `.murmur2` for Java producers).
    public var keyPartitioner = KeyPartitioner.consistent
    /// Watermarks, allowed lateness and event-time timers.
    public var eventTime = EventTimeConfig()

    /// Defaults.
    public init() {}

    /// host name and process id: unique per running instance, stable for its life.
    public static func defaultInstanceId() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}

extension KafkaMockCluster {
    /// Creates the topics a pipeline uses: what it subscribes to with `partitions` each (the identity topic
    /// must match the inputs), its outputs with `outputPartitions`.
    public func createTopics(_ topics: TopicNames, partitions: Int, outputPartitions: Int) throws(KafkaError) {
        for topic in topics.subscribed { try createTopic(topic, partitions: partitions) }
        for topic in topics.outputs { try createTopic(topic, partitions: outputPartitions) }
    }
}
