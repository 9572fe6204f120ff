import CRdKafka

/// How a producer spreads keyed messages over a topic's partitions: the partition a key lands on. Nudge
/// needs it to know which instance owns a customer (the one assigned that key's input partition), so it
/// must be the partitioner the upstream producers use.
public enum KeyPartitioner: String, Sendable, CaseIterable {
    /// librdkafka's default (`consistent_random`): CRC-32 of the key modulo the partition count.
    case consistent
    /// The Java client's default (`murmur2_random`): murmur2 of the key, positive, modulo the count.
    case murmur2

    /// The partition of `key` in a topic of `count` partitions (0 when `count` < 1). Calls librdkafka's own
    /// partitioner functions, so it agrees with them byte for byte.
    public func partition(of key: UnsafeRawBufferPointer, count: Int32) -> Int32 {
        guard count > 0 else { return 0 }
        switch self {
        case .consistent: return rd_kafka_msg_partitioner_consistent(nil, key.baseAddress, key.count, count, nil, nil)
        case .murmur2: return rd_kafka_msg_partitioner_murmur2(nil, key.baseAddress, key.count, count, nil, nil)
        }
    }
}
