extension Duration {
    /// Whole milliseconds (truncated), as librdkafka's timeouts take them, clamped to `Int32`.
    var librdkafkaMillis: Int32 {
        Int32(clamping: components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }
}
