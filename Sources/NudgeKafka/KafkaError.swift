import CRdKafka

/// A failure reported by librdkafka or by this binding, with librdkafka's error code where there is one.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` value (`RD_KAFKA_RESP_ERR_NO_ERROR` when the failure is the binding's own).
    public let code: Int32
    /// What went wrong and, where we know it, what to do.
    public let message: String

    /// Creates an error from a code and a message.
    public init(code: Int32 = 0, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Creates an error from a librdkafka response code, prefixed by what we were doing.
    public init(_ err: rd_kafka_resp_err_t, while context: String) {
        self.code = err.rawValue
        self.message = "\(context): \(String(cString: rd_kafka_err2str(err)))"
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, while context: String) {
        self.code = rd_kafka_error_code(error).rawValue
        self.message = "\(context): \(String(cString: rd_kafka_error_string(error)))"
        rd_kafka_error_destroy(error)
    }

    /// librdkafka's symbolic name for the code, e.g. `_QUEUE_FULL`.
    public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code))) }

    /// Whether the producer gave the message up itself as it closed (purged it, or refused it a place in a
    /// full queue after ``KafkaProducer/stopWaiting()``), rather than the broker or librdkafka's retries
    /// refusing it.
    public var isAbandonedAtClose: Bool {
        code == RD_KAFKA_RESP_ERR__PURGE_QUEUE.rawValue || code == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT.rawValue
    }

    public var description: String { message }
}
