import CRdKafka
import Logging

/// An in-process Kafka-protocol broker cluster (librdkafka's mock cluster): real TCP, real
/// protocol, fault injection. Used by `nudge demo`, `nudge broker` and the integration tests.
/// Limits worth knowing (see KAFKA-NOTES): retention is capped at 5 MiB per partition, and admin
/// topic creation is not supported, hence `createTopic`.
public final class KafkaMockCluster: @unchecked Sendable {
    // Sendable: the mock cluster runs on its own thread and its API is thread-safe.
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    private let context: ClientContext
    /// `host:port,...` for clients' `bootstrap.servers`.
    public let bootstrapServers: String
    /// Number of brokers in the cluster (ids 1...brokers).
    public let brokers: Int

    /// Starts a cluster of `brokers` brokers listening on loopback.
    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        let context = ClientContext(logger: logger)
        var config = KafkaConfig()
        config.set("log.connection.close", "false")
        let conf = try config.makeNative()
        context.install(on: conf)
        // The cluster needs a client handle to live in; a producer that never sends is cheapest.
        owner = try makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        guard let cluster = rd_kafka_mock_cluster_new(owner, Int32(brokers)) else {
            rd_kafka_destroy(owner)
            throw KafkaError("cannot start the mock Kafka cluster (is a loopback port free?)")
        }
        self.cluster = cluster
        self.context = context
        self.brokers = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }

    /// Creates a topic (the mock does not implement CreateTopics).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "create topic \(name)") }
    }

    /// Makes the next `errors.count` requests of a Kafka API (by ApiKey, e.g. 0 = Produce,
    /// 1 = Fetch, 8 = OffsetCommit) fail with these librdkafka error codes, in order.
    public func failNextRequests(apiKey: Int16, with errors: [Int32]) {
        var codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, codes.count, &codes)
    }

    /// Takes a broker down (connections closed, new ones refused) or brings it back.
    public func setBroker(_ id: Int32, up: Bool) throws(KafkaError) {
        let err = up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "broker \(id) \(up ? "up" : "down")") }
    }

    /// Makes broker `id` the leader of one partition (the mock spreads leaders over its brokers otherwise).
    public func setLeader(topic: String, partition: Int32, broker id: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, partition, id)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "leader of \(topic)[\(partition)]") }
    }

    /// Makes broker `id` the coordinator of consumer group `group`.
    public func setGroupCoordinator(_ group: String, broker id: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_coordinator_set(cluster, "group", group, id)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "coordinator of group \(group)") }
    }

    /// Adds a round-trip delay to a broker's responses.
    public func setRoundTrip(broker id: Int32, milliseconds: Int) throws(KafkaError) {
        let err = rd_kafka_mock_broker_set_rtt(cluster, id, Int32(milliseconds))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "broker \(id) rtt") }
    }
}

/// librdkafka's version, for logs and metrics.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }
