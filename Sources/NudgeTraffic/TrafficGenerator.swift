import NudgeEvents

/// One generated Kafka message. `key` and `value` point into the generator's reusable buffers:
/// they are valid until the next call to ``TrafficGenerator/next()`` (copy them to keep them).
public struct GeneratedMessage {
    /// The contract topic the message belongs on.
    public var topic: TrafficTopic
    /// The event it carries, as the NudgeEvents decoder names it (`"page"`, `"Product Added"`, ...);
    /// nil for a malformed message.
    public var kind: EventKind?
    /// The Kafka key: the userId, else the anonymousId (empty for a malformed message without ids).
    public var key: UnsafeRawBufferPointer
    /// The Kafka value: one Segment event as JSON (or broken bytes when `isMalformed`).
    public var value: UnsafeRawBufferPointer
    /// The event time written in `timestamp`, Unix milliseconds (for a malformed message: when it was produced).
    public var eventTimeMillis: Int64
    /// The message is deliberately broken and must go to the dead-letter topic.
    public var isMalformed: Bool
    /// The message repeats an earlier one byte for byte (same messageId).
    public var isDuplicate: Bool
    /// The timestamp was shifted behind an earlier emitted timestamp: a late event.
    public var isOutOfOrder: Bool
}

/// A seeded, deterministic, infinite stream of omnichannel retail traffic in the Segment spec.
///
/// The same ``TrafficConfig`` always yields a byte-identical stream; take as many messages as
/// needed. Not thread-safe: use one generator per thread (each is cheap to create).
public final class TrafficGenerator {
    private var engine: TrafficEngine

    /// Creates the population and the journey schedule from `config` (values clamped to sane ranges).
    public init(_ config: TrafficConfig) {
        engine = TrafficEngine(config)
    }

    deinit {
        engine.release()
    }

    /// The next message. Allocation-free in steady state; invalidates the previous message's bytes.
    public func next() -> GeneratedMessage {
        engine.next()
    }

    /// The configuration in use, after clamping.
    public var config: TrafficConfig { engine.config }

    /// Event time of the latest simulated event (the largest timestamp emitted so far, ignoring late shifts).
    public var simulatedNowMillis: Int64 { engine.now }

    /// Messages returned so far, including duplicates and malformed ones.
    public var generated: Int { engine.generated }

    /// Counts of what has been generated so far.
    public var summary: TrafficSummary { engine.summary }

    /// The hidden type of customer `c-<customerNumber>` (ground truth for evaluation); nil when out of range.
    public func latentType(customerNumber: Int) -> CustomerType? {
        guard customerNumber >= 1, customerNumber <= engine.customers.count else { return nil }
        return engine.customers[customerNumber - 1].type
    }
}
