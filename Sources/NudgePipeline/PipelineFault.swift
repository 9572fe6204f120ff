import Foundation
import Logging

/// Why the pipeline can commit no further on a partition until a restart: an output (recommendation,
/// dead letter, or identity message for another instance) that was refused for good, by `send` or by the
/// broker once librdkafka's retries ran out, or a producer error librdkafka calls fatal. Also a partition
/// given up with such an output and assigned back to this instance (see ``TrackerTable/returned(_:)``).
///
/// The offset that caused the output never finishes, so it is never committed (at-least-once holds), but
/// its partition commits nothing after it, and once the partition's window is full the consumer waits for
/// it for good. Retrying cannot help (librdkafka has retried), so `/health` answers 503 with the fault:
/// an orchestrator then restarts the instance, which reads the partition again from its last commit.
public struct PipelineFault: Sendable, Equatable, CustomStringConvertible {
    /// What failed: the output, the input partition and offset it holds back, and the error.
    public let reason: String
    /// When it was recorded (wall clock).
    public let at: Date

    /// The reason, the time, and what to do.
    public var description: String {
        "\(reason) (at \(at.formatted(.iso8601))). Restart the instance: it reads the partition again from its last commit"
    }
}

/// The first ``PipelineFault``, kept for `/health` and logged once; later ones are counted only
/// (`delivery_failures`, send failures), since one is enough to need a restart. Thread-safe: shards and the
/// delivery thread record, the HTTP server reads.
final class FaultRecorder: Sendable {
    private let first = Locked<PipelineFault?>(nil)
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The first fault recorded, if any.
    var current: PipelineFault? { first.withLock { $0 } }

    /// Records a fault unless one is recorded already; `reason` is built only then.
    func record(_ reason: @autoclosure () -> String) {
        let fault: PipelineFault? = first.withLock { held in
            guard held == nil else { return nil }
            held = PipelineFault(reason: reason(), at: Date())
            return held
        }
        if let fault { logger.critical("\(fault); /health now answers 503") }
    }
}
