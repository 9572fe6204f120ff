import CRdKafka
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What a client handle's C callbacks reach through librdkafka's single opaque pointer.
/// It is retained for as long as the handle lives (released after `rd_kafka_destroy`).
final class ClientContext: @unchecked Sendable {
    // Sendable by construction: `logger` is immutable; `onRebalance` is set once before the
    // handle exists and only read from the consumer's polling thread.
    let logger: Logger
    var onRebalance: ((OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) -> Void)?

    init(logger: Logger) { self.logger = logger }

    /// Wires the log and error callbacks and the opaque into a native configuration.
    func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let ctx = ClientContext.from(rk) else { return }
            let text = "\(facility.map { String(cString: $0) } ?? "rdkafka"): \(message.map { String(cString: $0) } ?? "")"
            // syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug.
            switch level {
            case ...3: ctx.logger.error("\(text)")
            case 4: ctx.logger.warning("\(text)")
            case 5...6: ctx.logger.info("\(text)")
            default: ctx.logger.debug("\(text)")
            }
        }
        rd_kafka_conf_set_error_cb(conf) { rk, code, reason, _ in
            guard let rk, let ctx = ClientContext.from(rk) else { return }
            let err = rd_kafka_resp_err_t(rawValue: code)
            let why = reason.map { String(cString: $0) } ?? ""
            ctx.logError("kafka \(String(cString: rd_kafka_err2name(err))): \(why)", fatal: err == RD_KAFKA_RESP_ERR__FATAL)
        }
    }

    /// Logs a client error: critical when librdkafka calls it fatal (the client is no use any more).
    func logError(_ text: String, fatal: Bool) {
        logger.log(level: fatal ? .critical : .warning, "\(text)")
    }

    static func from(_ rk: OpaquePointer) -> ClientContext? {
        guard let raw = rd_kafka_opaque(rk) else { return nil }
        return Unmanaged<ClientContext>.fromOpaque(raw).takeUnretainedValue()
    }
}

/// Creates a client handle, translating librdkafka's error string.
func makeHandle(type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        // On failure the configuration is still ours to free.
        rd_kafka_conf_destroy(conf)
        let why = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw KafkaError("cannot create Kafka client: \(why)")
    }
    return rk
}

/// A dedicated OS thread for a blocking loop (librdkafka's polls block; they must not run on the
/// Swift concurrency pool, whose threads are few and must never block).
public final class BlockingThread: @unchecked Sendable {
    // Sendable: the done flag is guarded by `condition`.
    private let condition = NSCondition()
    private var done = false

    /// Starts `body` on a new named thread.
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [condition] in
            Self.nameThisThread(name)
            body()
            condition.lock()
            self.done = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Gives the calling thread its OS name, which `top -H`, perf and debuggers show (Foundation's
    /// `Thread.name` stays inside Foundation on Linux). Linux keeps 15 bytes; pthread_setname_np is not
    /// visible to Swift, so this writes the same file it does.
    private static func nameThisThread(_ name: String) {
        #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #endif
    }

    /// Blocks until the thread's body has returned.
    public func join() {
        condition.lock()
        while !done { condition.wait() }
        condition.unlock()
    }
}
