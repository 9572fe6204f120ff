import CPrefetch
import CRdKafka
import Foundation
import Logging

/// A topic and partition.
public struct TopicPartition: Sendable, Hashable, CustomStringConvertible {
    /// Topic name.
    public let topic: String
    /// Partition number.
    public let partition: Int32
    /// Creates a topic-partition.
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public var description: String { "\(topic)[\(partition)]" }
}

/// One consumed message, borrowed from librdkafka: its bytes stay valid until `release()`.
/// It is a small handle (no payload copy), so it can move through lock-free queues to a shard thread;
/// whoever holds it last must release it exactly once.
///
/// The value and offset are read once, on the polling thread, where librdkafka's structure is in the
/// cache: a shard reads them from its queue entry instead of waiting for a line the poller's core holds
/// (perf, end to end: those waits were 4–5 % of the shards' samples).
public struct KafkaMessage: @unchecked Sendable, BitwiseCopyable {
    // Sendable: a consumed message is immutable and may be read and destroyed on any thread.
    let pointer: UnsafeMutablePointer<rd_kafka_message_t>
    /// The message value (empty for a null value).
    public let value: UnsafeRawBufferPointer
    /// Offset of the message in its partition.
    public let offset: Int64
    /// librdkafka's operation that carries the message (`_private`, documented as the consumer's private
    /// pointer): `rd_kafka_message_destroy` reads its header first.
    private let operation: UnsafeRawPointer?

    init(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        self.pointer = pointer
        let payload = pointer.pointee.payload
        value = UnsafeRawBufferPointer(start: payload, count: payload == nil ? 0 : pointer.pointee.len)
        offset = pointer.pointee.offset
        operation = UnsafeRawPointer(pointer.pointee._private)
    }

    /// The message key (empty for a null key).
    public var key: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer.pointee.key, count: pointer.pointee.key == nil ? 0 : pointer.pointee.key_len)
    }
    /// Partition the message came from.
    public var partition: Int32 { pointer.pointee.partition }
    /// The topic's name, as librdkafka's NUL-terminated string (no allocation).
    public var topicName: UnsafePointer<CChar> { rd_kafka_topic_name(pointer.pointee.rkt) }
    /// The topic's name as a Swift string (allocates: cold paths).
    public var topic: String { String(cString: topicName) }
    /// An identity for the topic valid while the consumer lives, for cheap comparisons.
    public var topicIdentity: OpaquePointer? { pointer.pointee.rkt }
    /// Non-nil when this is an error or end-of-partition notice rather than a message.
    public var error: KafkaError? {
        pointer.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(pointer.pointee.err, while: "consume")
    }
    /// The message's headers (allocates: cold paths such as tests and tools).
    public var headers: KafkaHeaders {
        var out = KafkaHeaders()
        var list: OpaquePointer?
        guard rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return out }
        var i = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            out.entries.append((name.map { String(cString: $0) } ?? "", bytes))
            i += 1
        }
        return out
    }

    /// Hands the message back to librdkafka. Call exactly once.
    public func release() { rd_kafka_message_destroy(pointer) }

    /// Asks the CPU for the memory ``release()`` touches (the operation that carries the message, from its
    /// header to the message's own fields), on a thread that will release the message a few messages from
    /// now. Without it, a shard waited there for lines the poller's and fetcher's cores last wrote (perf,
    /// end to end: librdkafka's samples on the shards 681–685 → 426–439). Never faults.
    @inline(__always)
    public func prefetchRelease() {
        // The operation embeds the message: its header, the fields between, and the message's own lines.
        guard let operation else { return }
        let end = UnsafeRawPointer(pointer) + 128
        var line = operation
        var lines = 0
        while line < end && lines < 8 {
            nudge_prefetch_write(line)
            line += 64
            lines += 1
        }
    }
}

/// What a consumer's owner is told about partition assignment. Both calls run on the consumer's
/// polling thread, inside `poll`; `revoked` returns only when the owner has finished (drained,
/// committed) with those partitions, which is what makes at-least-once hold across rebalances.
public protocol RebalanceListener: AnyObject, Sendable {
    /// The consumer now owns these partitions.
    func assigned(_ partitions: [TopicPartition])
    /// The consumer is about to lose these partitions.
    func revoked(_ partitions: [TopicPartition])
}

/// A Kafka consumer in a consumer group, with manual offset commits. Poll it from one thread
/// only (its owner's dedicated consumer thread); commits and lag queries are thread-safe.
public final class KafkaConsumer: @unchecked Sendable {
    // Sendable: librdkafka's consumer handle is thread-safe for commit/position/watermark calls;
    // polling is confined to one thread by contract.
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let context: ClientContext
    private weak var listener: (any RebalanceListener)?
    private var closed = false
    /// The queue of a close that ``close(waitingUpTo:)`` stopped waiting for: `deinit` lets it finish.
    private var closing: OpaquePointer?

    /// Creates a consumer. `config` must name `bootstrap.servers` and `group.id`. Auto-commit and
    /// automatic offset storing are off: the owner commits what it has finished.
    public init(config: KafkaConfig, logger: Logger) throws(KafkaError) {
        var config = config
        config.set("enable.auto.commit", "false")
        config.set("enable.auto.offset.store", "false")
        config.setDefault("auto.offset.reset", "earliest")
        config.setDefault("enable.partition.eof", "false")
        guard config["group.id"] != nil else { throw KafkaError("consumer config lacks group.id") }
        let conf = try config.makeNative()
        let context = ClientContext(logger: logger)
        context.install(on: conf)
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, _ in
            guard let rk, let ctx = ClientContext.from(rk) else { return }
            ctx.onRebalance?(rk, err, partitions)
        }
        handle = try makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        self.context = context
        rd_kafka_poll_set_consumer(handle)
        queue = rd_kafka_queue_get_consumer(handle)
        context.onRebalance = { [weak self] rk, err, list in self?.rebalance(rk: rk, err: err, list: list) }
    }

    deinit {
        close()
        rd_kafka_queue_destroy(queue)
        guard let closing else {
            rd_kafka_destroy(handle)
            return
        }
        // A close that gave up is still running in librdkafka, and destroying the handle now would join a main
        // thread that spins until it ends (librdkafka 2.0.2). So the close finishes on a thread of its own, when
        // the coordinator answers or librdkafka gives up on it (44 s into one outage of the whole cluster in the
        // tests, not within 65 s in another), then destroys the handle; a process that exits does not wait.
        let unfinished = UnfinishedClose(handle: handle, events: closing, context: context)
        _ = BlockingThread(name: "rdk-close") { unfinished.finish() }
    }

    /// Sets who hears about assignments (held weakly).
    public func setRebalanceListener(_ listener: any RebalanceListener) { self.listener = listener }

    /// Joins the group for these topics.
    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = makeList(topics.map { TopicPartition($0, -1) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_subscribe(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "subscribe \(topics)") }
    }

    /// Takes partitions directly, without group membership (tests and tools); the listener is told.
    public func assign(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        listener?.assigned(partitions)
        let err = rd_kafka_assign(handle, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "assign \(partitions)") }
    }

    /// Blocks up to `timeout` for messages and fills `buffer` with up to its capacity; returns the
    /// count. Also serves rebalances. Error notices are logged and released, never returned.
    public func poll(into buffer: UnsafeMutableBufferPointer<KafkaMessage>, timeout: Duration) -> Int {
        let ms = timeout.librdkafkaMillis
        return withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<rd_kafka_message_t>?.self, capacity: buffer.count) { raw in
            let got = rd_kafka_consume_batch_queue(queue, ms, raw.baseAddress, buffer.count)
            guard got > 0 else { return 0 }
            var n = 0
            for i in 0..<got {
                guard let m = raw[i] else { continue }
                if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    if m.pointee.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        context.logger.warning("consume: \(KafkaError(m.pointee.err, while: "fetch").message)")
                    }
                    rd_kafka_message_destroy(m)
                    continue
                }
                buffer[n] = KafkaMessage(m)
                n += 1
            }
            return n
        }
    }

    /// Stops fetching these partitions: a poll returns none of their messages, not even those already fetched,
    /// until they are resumed. librdkafka keeps the pause through a revocation and a later assignment.
    /// Partitions unknown to the client are logged. Consumer thread.
    public func pause(_ partitions: [TopicPartition]) {
        changeFetching(partitions, pause: true)
    }

    /// Fetches these partitions again, from the message after the last one a poll returned. Consumer thread.
    public func resume(_ partitions: [TopicPartition]) {
        changeFetching(partitions, pause: false)
    }

    private func changeFetching(_ partitions: [TopicPartition], pause: Bool) {
        guard !partitions.isEmpty else { return }
        let list = makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = pause ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
        let verb = pause ? "pause" : "resume"
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { context.logger.warning("\(KafkaError(err, while: "\(verb) \(partitions)").message)") }
        // librdkafka answers per partition.
        for i in 0..<Int(list.pointee.cnt) where list.pointee.elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let e = list.pointee.elems[i]
            context.logger.warning("\(KafkaError(e.err, while: "\(verb) \(String(cString: e.topic))[\(e.partition)]").message)")
        }
    }

    /// Commits next-offsets-to-read for partitions. Synchronous commits wait for the broker.
    public func commit(_ offsets: [(TopicPartition, Int64)], synchronous: Bool) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = makeList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(handle, list, synchronous ? 0 : 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError(err, while: "commit")
        }
    }

    /// Commits and waits up to `timeout` for the group coordinator's answer: the bound a synchronous
    /// ``commit(_:synchronous:)`` lacks (with the coordinator down it waits out librdkafka's own timeouts,
    /// about 45 s). Throws when the answer is an error or does not come in time (the commit may still land).
    public func commit(_ offsets: [(TopicPartition, Int64)], waitingUpTo timeout: Duration) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = makeList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard let answers = rd_kafka_queue_new(handle) else { throw KafkaError("commit: librdkafka could not make a queue") }
        defer { rd_kafka_queue_destroy(answers) }
        let err = rd_kafka_commit_queue(handle, list, answers, nil, nil)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET { throw KafkaError(err, while: "commit") }
        let ms = timeout.librdkafkaMillis
        guard let answer = rd_kafka_queue_poll(answers, max(ms, 0)) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, "commit: no answer from the group coordinator within \(timeout)")
        }
        defer { rd_kafka_event_destroy(answer) }
        let result = rd_kafka_event_error(answer)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR && result != RD_KAFKA_RESP_ERR__NO_OFFSET { throw KafkaError(result, while: "commit") }
    }

    /// The group's committed next-offsets for these partitions (-1001 when none), asking the broker.
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(handle, list, timeout.librdkafkaMillis)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "committed") }
        return readList(list)
    }

    /// Low and high watermarks as last seen by the fetcher (no broker round trip).
    public func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, tp.topic, tp.partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? (low, high) : nil
    }

    /// Low and high watermarks, asking the broker.
    public func queryWatermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, timeout.librdkafkaMillis)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, while: "watermarks \(tp)") }
        return (low, high)
    }

    /// The partitions of a topic, asking the broker for metadata.
    public func partitions(of topic: String, timeout: Duration = .seconds(10)) throws(KafkaError) -> [Int32] {
        let rkt = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, rkt, &metadata, timeout.librdkafkaMillis)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, while: "metadata for \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0 else { throw KafkaError("topic \(topic) not found") }
        let t = metadata.pointee.topics[0]
        if t.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(t.err, while: "topic \(topic)") }
        return (0..<Int(t.partition_cnt)).map { t.partitions[$0].id }.sorted()
    }

    /// Next offsets the consumer will fetch, per partition (-1001 when not yet known).
    public func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let list = makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_position(handle, list)
        return readList(list)
    }

    /// Leaves the group (revoking partitions through the listener) and stops fetching. Idempotent.
    /// librdkafka's own close waits up to about `session.timeout.ms` (45 s) for the coordinator.
    public func close() {
        guard !closed else { return }
        closed = true
        let err = rd_kafka_consumer_close(handle)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            context.logger.warning("consumer close: \(String(cString: rd_kafka_err2str(err)))")
        }
    }

    /// Leaves the group like ``close()``, serving the revocation on this thread, but waits at most `timeout`
    /// for the coordinator: with the cluster down, librdkafka's close waits about 40 s for commits in flight,
    /// which a stop inside a pod's grace period cannot afford. Returns whether the group was left in time;
    /// if not, librdkafka's close goes on, and releasing the consumer hands it to a thread of its own (the
    /// broker expires the member after `session.timeout.ms`; what was not committed is read again). Idempotent.
    @discardableResult
    public func close(waitingUpTo timeout: Duration) -> Bool {
        guard !closed else { return closing == nil }
        guard let events = rd_kafka_queue_new(handle) else { close(); return true }
        if let error = rd_kafka_consumer_close_queue(handle, events) {
            // Not expected: librdkafka's own close, unbounded, is the way left to leave the group.
            context.logger.warning("consumer close: \(String(cString: rd_kafka_error_string(error))); closing without a bound")
            rd_kafka_error_destroy(error)
            rd_kafka_queue_destroy(events)
            close()
            return true
        }
        closed = true
        let deadline = ContinuousClock.now + timeout
        // The revocation comes as an event on this queue (the event API does not call the rebalance callback):
        // it is served here, on this thread, as `poll(into:timeout:)` serves one.
        while rd_kafka_consumer_closed(handle) == 0 {
            let left = deadline - .now
            guard left > .zero else {
                context.logger.warning("consumer close: the group coordinator did not answer within \(timeout); leaving without it")
                closing = events
                return false
            }
            if let event = rd_kafka_queue_poll(events, min(left, .milliseconds(100)).librdkafkaMillis) {
                switch rd_kafka_event_type(event) {
                case RD_KAFKA_EVENT_REBALANCE:
                    rebalance(rk: handle, err: rd_kafka_event_error(event), list: rd_kafka_event_topic_partition_list(event))
                case RD_KAFKA_EVENT_ERROR:
                    context.logError("consumer close: \(String(cString: rd_kafka_event_error_string(event)))",
                                     fatal: rd_kafka_event_error_is_fatal(event) != 0)
                default:
                    break
                }
                rd_kafka_event_destroy(event)
            }
        }
        rd_kafka_queue_destroy(events)
        return true
    }

    private func rebalance(rk: OpaquePointer, err: rd_kafka_resp_err_t, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let partitions = list.map { Array(readList($0).keys).sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) } } ?? []
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            context.logger.info("assigned \(partitions.count) partition(s): \(partitions.map(\.description).joined(separator: ", "))")
            listener?.assigned(partitions)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            context.logger.info("revoking \(partitions.count) partition(s)")
            listener?.revoked(partitions)
        default:
            context.logger.error("rebalance failed: \(String(cString: rd_kafka_err2str(err)))")
            listener?.revoked(partitions)
        }
        if let error = Self.acknowledge(rk, err: err, list: list) { context.logger.error("\(error.message)") }
    }

    /// librdkafka's side of a rebalance: take what it assigns, give up what it revokes (on an error, all of
    /// it), incrementally under the cooperative protocol. The protocol is asked each time: before the group
    /// is joined librdkafka answers "NONE".
    fileprivate static func acknowledge(_ rk: OpaquePointer, err: rd_kafka_resp_err_t,
                                        list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> KafkaError? {
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) == "COOPERATIVE" } ?? false
        let assigning = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
        if cooperative {
            let error = assigning ? rd_kafka_incremental_assign(rk, list) : rd_kafka_incremental_unassign(rk, list)
            return error.map { KafkaError(consuming: $0, while: assigning ? "assign" : "unassign") }
        }
        let err = rd_kafka_assign(rk, assigning ? list : nil)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(err, while: assigning ? "assign" : "unassign")
    }

    private func makeList(_ partitions: [TopicPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        // librdkafka aborts on allocation failure rather than returning NULL.
        let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t> = rd_kafka_topic_partition_list_new(Int32(max(1, partitions.count)))
        for tp in partitions { _ = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
        return list
    }

    /// A list of partitions with the offsets to commit for them.
    private func makeList(_ offsets: [(TopicPartition, Int64)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = makeList(offsets.map(\.0))
        for i in 0..<offsets.count { list.pointee.elems[i].offset = offsets[i].1 }
        return list
    }

    private func readList(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let e = list.pointee.elems[i]
            out[TopicPartition(String(cString: e.topic), e.partition)] = e.offset
        }
        return out
    }
}

/// A consumer's close that outlived its deadline, finished on a thread of its own: serve its queue until
/// librdkafka says the consumer is closed, then destroy the handle.
private struct UnfinishedClose: @unchecked Sendable {
    // Sendable: once its consumer is gone, the handle and queue are used by this value's thread alone.
    let handle: OpaquePointer
    let events: OpaquePointer
    /// Kept alive for the callbacks librdkafka makes until the handle is destroyed.
    let context: ClientContext

    func finish() {
        while rd_kafka_consumer_closed(handle) == 0 {
            guard let event = rd_kafka_queue_poll(events, 100) else { continue }
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE {
                // Nobody is left to tell: librdkafka's side only.
                _ = KafkaConsumer.acknowledge(handle, err: rd_kafka_event_error(event), list: rd_kafka_event_topic_partition_list(event))
            }
            rd_kafka_event_destroy(event)
        }
        rd_kafka_queue_destroy(events)
        rd_kafka_destroy(handle)
        withExtendedLifetime(context) {}
    }
}
