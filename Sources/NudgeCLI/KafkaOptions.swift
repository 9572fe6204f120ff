import ArgumentParser
import NudgeKafka
import NudgePipeline

/// Where Kafka is and how to talk to it; any librdkafka property passes through (`-X`), as kcat.
struct KafkaOptions: ParsableArguments {
    @Option(name: .long, help: "Bootstrap servers, host:port[,host:port...].")
    var brokers: String?

    @Option(name: .customShort("X"), help: ArgumentHelp("librdkafka property key=value (repeatable), e.g. -X security.protocol=SASL_SSL.", valueName: "key=value"))
    var properties: [String] = []

    @Option(name: .long, help: "librdkafka properties file (key=value lines), applied before -X.")
    var kafkaConfig: String?

    @Option(help: "Consumer group id: instances with the same id share the input partitions.")
    var group = "nudge"

    /// The client configuration: file, then `-X`, then `--brokers`.
    func config() throws -> KafkaConfig {
        var config = KafkaConfig()
        if let file = kafkaConfig { config.merge(try KafkaConfig.load(file: file)) }
        for p in properties {
            let (k, v) = try KafkaConfig.parseAssignment(p)
            config.set(k, v)
        }
        if let brokers { config.set("bootstrap.servers", brokers) }
        guard config["bootstrap.servers"] != nil else {
            throw ValidationError("no brokers: pass --brokers host:port (or bootstrap.servers in --kafka-config); `nudge demo` runs without Kafka")
        }
        return config
    }
}

/// Topic names (contract defaults).
struct TopicOptions: ParsableArguments {
    @Option(help: "Clickstream input topic.") var clickstreamTopic = "events.clickstream"
    @Option(help: "Transactions input topic.") var transactionsTopic = "events.transactions"
    @Option(help: "Outcomes input topic.") var outcomesTopic = "nba.outcomes"
    @Option(help: "Recommendations output topic.") var recommendationsTopic = "nba.recommendations"
    @Option(help: "Metrics output topic.") var metricsTopic = "nba.metrics"
    @Option(help: "Dead-letter output topic.") var deadletterTopic = "nba.deadletter"
    @Option(help: "Identity topic between instances (internal; as many partitions as the input topics).")
    var identityTopic = "nudge.identity"

    var names: TopicNames {
        var t = TopicNames()
        t.clickstream = clickstreamTopic
        t.transactions = transactionsTopic
        t.outcomes = outcomesTopic
        t.recommendations = recommendationsTopic
        t.metrics = metricsTopic
        t.deadLetter = deadletterTopic
        t.identity = identityTopic
        return t
    }
}

/// How the engine runs.
struct EngineOptions: ParsableArguments {
    @Option(help: "Directory holding churn.json and nba.json (and optionally churn/nba.challenger.json); watched for new files.")
    var models = "models"
    @Option(help: "Share of customers (stable by id hash) scored by the challenger models, if present.")
    var challengerShare = 0.1
    @Option(help: "Store shards (threads). Default: one per core.") var shards: Int?
    @Option(help: "Seconds between metrics snapshots.") var metricsInterval = 5.0
    @Option(help: "Port for /metrics, /health and /ready (0 = off).") var httpPort = 9464
    @Option(help: "Instance id (metrics key). Default: host-pid.") var instance: String?
    @Option(help: "Allowed lateness, seconds: how far behind its partition's newest event an event is still applied at its own time.")
    var allowedLateness = 3_600.0
    @Option(help: ArgumentHelp("What happens to events later than that: apply (at the watermark) or dead-letter (x-error late).",
                               valueName: "apply|dead-letter"))
    var lateEvents = LateEventPolicy.applyToCurrent.rawValue
    @Option(help: "Seconds without a message after which a partition stops holding the event-time watermark back.")
    var idlePartitionTimeout = 10.0
    @Option(help: "Seconds an event may be stamped ahead of this instance's clock; later ones are handled like late events: applied at the current time, or dead-lettered (x-error future). 0 = no limit. nudge demo runs without it (its simulated event time outruns the clock).")
    var maxClockSkew = 300.0
    @Option(help: "Minutes after the latest Product Added without checkout or order that Cart Abandoned fires (0 = never).")
    var cartAbandonedAfter = 30.0
    @Option(help: "Days without any event after which Customer Silent fires for a known customer (0 = never).")
    var customerSilentAfter = 14.0
    @Option(help: "Days without an event (event time) after which a customer moves to the compressed cold tier (their history, recent contacts and pending silence go with them).")
    var idleCustomerTtl = 30.0
    @Option(help: "MiB of cold tier per shard; beyond it the customers idle longest are dropped (counted in metrics).")
    var coldMemoryMb = 256
    @Option(help: "Customers each shard keeps in the hot tier at most, whatever the input; past it those idle longest move to the cold tier early (counted in metrics). About 64 to 650 bytes each with the default features, plus the id.")
    var maxHotCustomers = 4_000_000
    @Option(help: ArgumentHelp("The partitioner upstream producers key the input topics with: consistent (librdkafka's default) or murmur2 (Java's). Instances use it to find which of them owns a customer.",
                               valueName: "consistent|murmur2"))
    var keyPartitioner = KeyPartitioner.consistent.rawValue

    func validate() throws {
        guard LateEventPolicy(rawValue: lateEvents) != nil else {
            throw ValidationError("--late-events \(lateEvents): use apply or dead-letter")
        }
        // Ten years in each option's unit: beyond that the milliseconds would only be a typo.
        let limits = [("--allowed-lateness", allowedLateness, 3_650.0 * 86_400), ("--idle-partition-timeout", idlePartitionTimeout, 3_650.0 * 86_400),
                      ("--max-clock-skew", maxClockSkew, 3_650.0 * 86_400),
                      ("--cart-abandoned-after", cartAbandonedAfter, 3_650.0 * 1_440), ("--customer-silent-after", customerSilentAfter, 3_650.0)]
        guard idleCustomerTtl.isFinite && idleCustomerTtl > 0 && idleCustomerTtl <= 3_650 else {
            throw ValidationError("--idle-customer-ttl \(idleCustomerTtl): use a number of days above 0, up to ten years")
        }
        guard KeyPartitioner(rawValue: keyPartitioner) != nil else {
            throw ValidationError("--key-partitioner \(keyPartitioner): use consistent or murmur2")
        }
        guard coldMemoryMb >= 1 && coldMemoryMb <= 1 << 20 else {
            throw ValidationError("--cold-memory-mb \(coldMemoryMb): use 1 to 1048576")
        }
        guard maxHotCustomers >= 1_024 && maxHotCustomers <= 1 << 30 else {
            throw ValidationError("--max-hot-customers \(maxHotCustomers): use 1024 to 1073741824 (per shard)")
        }
        for (name, value, limit) in limits where !(value.isFinite && value >= 0 && value <= limit) {
            throw ValidationError("\(name) \(value): use a number from 0 up to ten years")
        }
    }

    /// Refuses a clock skew at or above the allowed lateness: a stamp within the skew moves the watermark up
    /// to (skew − lateness) past the wall clock, making on-time events late. Only for `nudge run`: the demo's
    /// simulated traffic runs without the limit.
    func validateClockSkew() throws {
        if maxClockSkew > 0 && maxClockSkew >= allowedLateness {
            throw ValidationError("--max-clock-skew \(maxClockSkew) s must be below --allowed-lateness \(allowedLateness) s "
                                  + "(events stamped within the skew would push the watermark past the clock, making on-time events late): "
                                  + "lower the skew, or pass --max-clock-skew 0 for no limit")
        }
    }

    func pipelineConfig(topics: TopicNames, group: String) -> PipelineConfig {
        var c = PipelineConfig()
        c.topics = topics
        c.groupId = group
        if let shards { c.shards = max(1, shards) }
        c.metricsInterval = .milliseconds(Int(max(0.2, metricsInterval) * 1000))
        if let instance { c.instanceId = instance }
        c.modelDirectory = models
        c.eventTime.allowedLateness = .milliseconds(Int64(allowedLateness * 1000))
        c.eventTime.latePolicy = LateEventPolicy(rawValue: lateEvents) ?? .applyToCurrent
        c.eventTime.idlePartitionTimeout = .milliseconds(Int64(idlePartitionTimeout * 1000))
        c.eventTime.maxClockSkew = maxClockSkew > 0 ? .milliseconds(Int64(maxClockSkew * 1000)) : nil
        c.eventTime.cartAbandonedAfter = cartAbandonedAfter > 0 ? .milliseconds(Int64(cartAbandonedAfter * 60_000)) : nil
        c.idleCustomerTTL = .milliseconds(Int64(idleCustomerTtl * 86_400_000))
        c.coldBytesPerShard = coldMemoryMb << 20
        c.maxHotCustomersPerShard = maxHotCustomers
        c.keyPartitioner = KeyPartitioner(rawValue: keyPartitioner) ?? .consistent
        c.eventTime.customerSilentAfter = customerSilentAfter > 0 ? .milliseconds(Int64(customerSilentAfter * 86_400_000)) : nil
        return c
    }
}
