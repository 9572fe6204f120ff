import Atomics
import CRdKafka
import Foundation
import Logging

/// The broker's verdict on one produced message, handed to the delivery handler on the
/// producer's delivery thread.
public struct DeliveryReport: Sendable {
    /// The token given to `send`, identifying the message to its sender.
    public let token: UInt64
    /// `nil` when the broker acknowledged the message.
    public let error: KafkaError?
    /// Partition the message was written to (-1 if unknown).
    public let partition: Int32
    /// Offset the message was written at (-1 if failed).
    public let offset: Int64
}

/// Headers of one outgoing message. Built per message on cold paths (dead letters), so a plain
/// list is fine; it is converted to librdkafka's header list only when sent.
public struct KafkaHeaders: Sendable, Equatable {
    /// Header names and values, in order.
    public var entries: [(name: String, value: [UInt8])] = []

    /// An empty header list.
    public init() {}

    /// Appends a text header.
    public mutating func add(_ name: String, _ value: String) { entries.append((name, Array(value.utf8))) }

    /// Appends a header of raw bytes (a message key, say, which need not be text).
    public mutating func add(_ name: String, bytes: [UInt8]) { entries.append((name, bytes)) }

    /// The first value of a header, as bytes.
    public func bytes(_ name: String) -> [UInt8]? { entries.first { $0.name == name }?.value }

    /// The first value of a header, decoded as UTF-8.
    public subscript(name: String) -> String? {
        entries.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    func makeNative() -> OpaquePointer? {
        guard let list = rd_kafka_headers_new(entries.count) else { return nil }
        for entry in entries {
            _ = entry.value.withUnsafeBytes { rd_kafka_header_add(list, entry.name, -1, $0.baseAddress, $0.count) }
        }
        return list
    }

    public static func == (a: KafkaHeaders, b: KafkaHeaders) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// A topic handle owned by a producer, resolved once so that sends do not look the name up.
public struct ProducerTopic: @unchecked Sendable {
    // Sendable: librdkafka topic handles are thread-safe and live as long as their producer.
    let handle: OpaquePointer
    /// The topic's name.
    public let name: String
}

/// An idempotent Kafka producer. Delivery reports arrive on a dedicated thread that blocks in
/// librdkafka's queue poll; `send` blocks (back-pressure) while librdkafka's queue is full rather
/// than failing or dropping. Thread-safe: shard threads send concurrently.
public final class KafkaProducer: @unchecked Sendable {
    // Sendable: librdkafka's producer handle is thread-safe; the topic cache is behind a lock and
    // everything else is immutable or atomic.
    private let handle: OpaquePointer
    private let context: ClientContext
    private let mainQueue: OpaquePointer
    /// Set by ``stopWaiting()`` (and close): a send then gives up on a full queue instead of waiting.
    private let stopping = ManagedAtomic<Bool>(false)
    private let closed = ManagedAtomic<Bool>(false)
    /// Set after close's last flush: the delivery thread then returns (it serves reports until then).
    private let deliveryDone = ManagedAtomic<Bool>(false)
    private let roomFreed = NSCondition()
    private var deliveryThread: BlockingThread?
    private let topicsLock = NSLock()
    private var topics: [String: ProducerTopic] = [:]
    private let onDelivery: @Sendable (UnsafeBufferPointer<DeliveryReport>) -> Void
    /// Messages sent and not yet reported: what a flush waits for.
    public var inFlight: Int { Int(rd_kafka_outq_len(handle)) }
    /// How many times a send waited for room in librdkafka's queue.
    public let backPressureWaits = ManagedAtomic<Int>(0)
    /// Sends given up on a full queue after ``stopWaiting()``.
    public let abandonedSends = ManagedAtomic<Int>(0)

    /// The error librdkafka raised as fatal, if it did: the producer then sends nothing more (an idempotent
    /// producer that lost its sequence, for instance), and only a new one can.
    public var fatalFailure: KafkaError? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { text -> KafkaError? in
            let err = rd_kafka_fatal_error(handle, text.baseAddress, text.count)
            guard err != RD_KAFKA_RESP_ERR_NO_ERROR, let base = text.baseAddress else { return nil }
            return KafkaError(code: err.rawValue, "producer fatal error \(String(cString: rd_kafka_err2name(err))): \(String(cString: base))")
        }
    }

    /// Creates a producer. `config` must name `bootstrap.servers`; idempotence is on unless the
    /// config says otherwise. `onDelivery` is called on the delivery thread with batches of reports.
    public init(config: KafkaConfig, logger: Logger,
                onDelivery: @escaping @Sendable (UnsafeBufferPointer<DeliveryReport>) -> Void) throws(KafkaError) {
        var config = config
        config.setDefault("enable.idempotence", "true")
        config.setDefault("linger.ms", "5")
        config.setDefault("batch.num.messages", "10000")
        config.setDefault("queue.buffering.max.messages", "500000")
        let conf = try config.makeNative()
        let context = ClientContext(logger: logger)
        context.install(on: conf)
        rd_kafka_conf_set_events(conf, Int32(RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR))
        handle = try makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        self.context = context
        mainQueue = rd_kafka_queue_get_main(handle)
        self.onDelivery = onDelivery
        deliveryThread = BlockingThread(name: "kafka-delivery") { [self] in deliveryLoop() }
    }

    deinit {
        close()
        rd_kafka_queue_destroy(mainQueue)
        rd_kafka_destroy(handle)
    }

    /// Resolves a topic name to a handle (cached).
    public func topic(_ name: String) -> ProducerTopic {
        topicsLock.lock()
        defer { topicsLock.unlock() }
        if let t = topics[name] { return t }
        let t = ProducerTopic(handle: rd_kafka_topic_new(handle, name, nil), name: name)
        topics[name] = t
        return t
    }

    /// Sends one message (key and value are copied). Blocks while librdkafka's queue is full.
    /// The token comes back in the message's delivery report.
    public func send(to topic: ProducerTopic, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                     headers: KafkaHeaders? = nil, partition: Int32 = -1, token: UInt64) throws(KafkaError) {
        while true {
            let native = headers?.makeNative()
            let err = withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7) { vus -> OpaquePointer? in
                var n = 0
                func put(_ t: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                    var vu = rd_kafka_vu_t()
                    vu.vtype = t
                    fill(&vu)
                    vus[n] = vu
                    n += 1
                }
                put(RD_KAFKA_VTYPE_RKT) { $0.u.rkt = topic.handle }
                put(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition }
                put(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                put(RD_KAFKA_VTYPE_KEY) { $0.u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key.baseAddress), size: key.count) }
                put(RD_KAFKA_VTYPE_VALUE) { $0.u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: value.baseAddress), size: value.count) }
                // The token travels as the message opaque; +1 keeps token 0 distinct from "no opaque".
                put(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token &+ 1)) }
                if let native { put(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = native } }
                return rd_kafka_produceva(handle, vus.baseAddress, n)
            }
            guard let err else { return }  // headers now belong to librdkafka
            if let native { rd_kafka_headers_destroy(native) }
            let code = rd_kafka_error_code(err)
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL && stopping.load(ordering: .relaxed) {
                rd_kafka_error_destroy(err)
                abandonedSends.wrappingIncrement(ordering: .relaxed)
                throw KafkaError(code: RD_KAFKA_RESP_ERR__PURGE_QUEUE.rawValue,
                                 "send to \(topic.name) abandoned: the producer is stopping and its queue is full")
            }
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_error_destroy(err)
                backPressureWaits.wrappingIncrement(ordering: .relaxed)
                // Wait for the delivery thread to report progress (it signals after every batch).
                roomFreed.lock()
                _ = roomFreed.wait(until: Date(timeIntervalSinceNow: 0.05))
                roomFreed.unlock()
                continue
            }
            throw KafkaError(consuming: err, while: "send to \(topic.name)")
        }
    }

    /// Convenience for cold paths: sends byte arrays.
    public func send(to topic: ProducerTopic, key: [UInt8], value: [UInt8], headers: KafkaHeaders? = nil,
                     partition: Int32 = -1, token: UInt64) throws(KafkaError) {
        let result: Result<Void, KafkaError> = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                do throws(KafkaError) {
                    try send(to: topic, key: k, value: v, headers: headers, partition: partition, token: token)
                } catch {
                    return .failure(error)
                }
                return .success(())
            }
        }
        try result.get()
    }

    /// Waits until every sent message is reported, or the timeout passes; returns what is still in flight.
    @discardableResult
    public func flush(timeout: Duration) -> Int {
        let ms = timeout.librdkafkaMillis
        _ = rd_kafka_flush(handle, ms)
        return inFlight
    }

    /// From now on a send that finds librdkafka's queue full fails at once, with an error that
    /// ``KafkaError/isAbandonedAtClose``, instead of waiting for room: for a shutdown that must not wait on
    /// a broker that is down (with no delivery deadline, the queue would never drain). Sends that find room
    /// still go.
    public func stopWaiting() {
        stopping.store(true, ordering: .releasing)
        roomFreed.lock()
        roomFreed.broadcast()
        roomFreed.unlock()
    }

    /// Waits up to `timeout` for in-flight messages, then gives up on the rest (they are reported
    /// as failed, so their senders know) and stops the delivery thread. Do not send after close: its topic
    /// handles are destroyed.
    public func close(timeout: Duration = .seconds(10)) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        stopWaiting()
        let abandoned = abandonedSends.load(ordering: .relaxed)
        if abandoned > 0 { context.logger.warning("\(abandoned) message(s) never queued while stopping: the queue was full") }
        if flush(timeout: timeout) > 0 {
            context.logger.warning("\(inFlight) message(s) undelivered after \(timeout); abandoning them")
            _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            flush(timeout: .seconds(2))
        }
        deliveryDone.store(true, ordering: .releasing)
        rd_kafka_queue_yield(mainQueue)
        deliveryThread?.join()
        deliveryThread = nil
        topicsLock.lock()
        for t in topics.values { rd_kafka_topic_destroy(t.handle) }
        topics.removeAll()
        topicsLock.unlock()
    }

    private func deliveryLoop() {
        let capacity = 1024
        let messages = UnsafeMutablePointer<UnsafePointer<rd_kafka_message_t>?>.allocate(capacity: capacity)
        let reports = UnsafeMutablePointer<DeliveryReport>.allocate(capacity: capacity)
        defer { messages.deallocate(); reports.deallocate() }
        while true {
            guard let event = rd_kafka_queue_poll(mainQueue, 1000) else {
                // Not `stopping`: close's flushes wait for reports this thread serves (a quiet second during a
                // broker outage used to end it, and with it every report after, purged messages' included).
                if deliveryDone.load(ordering: .acquiring) { return }
                continue
            }
            defer { rd_kafka_event_destroy(event) }
            switch rd_kafka_event_type(event) {
            case RD_KAFKA_EVENT_DR:
                while true {
                    let n = rd_kafka_event_message_array(event, messages, capacity)
                    if n == 0 { break }
                    for i in 0..<n {
                        guard let m = messages[i]?.pointee else { continue }
                        let token = UInt64(UInt(bitPattern: m._private)) &- 1
                        let error = m.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(m.err, while: "delivery")
                        (reports + i).initialize(to: DeliveryReport(token: token, error: error, partition: m.partition, offset: m.offset))
                    }
                    onDelivery(UnsafeBufferPointer(start: reports, count: n))
                    reports.deinitialize(count: n)
                    if n < capacity { break }
                }
                roomFreed.lock()
                roomFreed.broadcast()
                roomFreed.unlock()
            case RD_KAFKA_EVENT_ERROR:
                let err = rd_kafka_event_error(event)
                let text = String(cString: rd_kafka_event_error_string(event))
                let fatal = rd_kafka_event_error_is_fatal(event) != 0
                context.logger.log(level: fatal ? .critical : .warning,
                                   "kafka producer \(String(cString: rd_kafka_err2name(err))): \(text)")
            default:
                break
            }
        }
    }
}
