import Foundation
import NudgeEvents
import NudgeFeatures

/// Messages held in one contiguous arena, so a benchmark measures the engine, not the generator.
public struct MessageArena: Sendable {
    /// Concatenated message values.
    public private(set) var bytes: [UInt8] = []
    /// Start of each value in `bytes`, plus the end.
    public private(set) var starts: [Int] = [0]
    /// Keys (customer ids), one per message.
    public private(set) var keys: [String] = []
    /// Topic index per message (into the caller's topic list).
    public private(set) var topics: [UInt8] = []

    /// An empty arena.
    public init() {}

    /// Number of messages.
    public var count: Int { starts.count - 1 }

    /// Appends one message.
    public mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, topic: UInt8) {
        bytes.append(contentsOf: value)
        starts.append(bytes.count)
        keys.append(String(decoding: key, as: UTF8.self))
        topics.append(topic)
    }

    /// Calls `body` with each value in order.
    public func forEachValue(_ body: (Int, UnsafeRawBufferPointer) -> Void) {
        forEachValue(stagingAhead: 0, stage: { _ in }, body)
    }

    /// Calls `body` with each value in order, and `stage` with each value `distance` values before `body`
    /// gets it (as a shard stages messages for its lookahead).
    func forEachValue(stagingAhead distance: Int, stage: (UnsafeRawBufferPointer) -> Void,
                      _ body: (Int, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            func value(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: all[starts[i]..<starts[i + 1]]) }
            if distance > 0 {
                for i in 0..<min(distance, count) { stage(value(i)) }
            }
            for i in 0..<count {
                if distance > 0 && i + distance < count { stage(value(i + distance)) }
                body(i, value(i))
            }
        }
    }
}

/// Results of one in-process run.
public struct InProcessResult: Sendable, Codable {
    /// Messages processed.
    public var events: Int
    /// Decode only, single thread (events/s).
    public var decodePerSecond: Double
    /// Foundation's JSONSerialization parsing the same messages (events/s, first 100,000): the
    /// measurement that justifies the hand-written decoder.
    public var foundationParsePerSecond: Double
    /// Decode → dedupe → update → score → decide → encode, single thread (events/s).
    public var fullPerSecond: Double
    /// Decisions made (by events and by timers).
    public var decisions: Int
    /// Of those, decisions made by event-time timers (`Cart Abandoned`, `Customer Silent`).
    public var timerDecisions: Int = 0
    /// Customers in the store at the end.
    public var customers: Int
    /// Bytes of all of a shard's state per customer held, as allocated.
    public var bytesPerCustomer: Double
    /// ``bytesPerCustomer`` without the cold tier (whose structures are sized from its budget): the hot
    /// state the issue's memory goal is about.
    public var hotBytesPerCustomer: Double
    /// Customers holding a full feature record (the rest have at most one event, kept in their entry).
    public var fullRecordCustomers: Int
    /// Bytes of one customer's feature record alone (the feature file's layout).
    public var recordBytes: Int
    /// Where ``bytesPerCustomer`` goes: bytes per customer by part of the shard's state, largest first.
    public var bytesPerCustomerByPart: [StatePart]
}

/// Bytes per customer one part of a shard's state takes.
public struct StatePart: Codable, Sendable {
    /// What the part is, e.g. "feature records".
    public var part: String
    /// Its bytes divided by the customers held.
    public var bytes: Double
}

/// Runs the shard's per-event code over an arena on the calling thread: what one core sustains.
public enum InProcessBenchmark {
    /// Decode-only pass, then the full path over a store that already holds `warmCustomers` customers
    /// (`c-1` … `c-N`, the generator's ids, one page view each, untimed), so that lookups, cache misses and
    /// memory are those of a store of that size rather than of the customers one arena happens to touch.
    public static func run(_ arena: MessageArena, models: ModelSet, features: FeatureSet, config: PipelineConfig,
                           warmCustomers: Int = 0) -> InProcessResult {
        let decoder = SegmentDecoder(maxMessageBytes: config.maxMessageBytes, properties: features.readProperties)
        var sink = 0
        let decodeStart = ContinuousClock.now
        arena.forEachValue { _, value in
            if let e = try? decoder.decode(value) { sink &+= Int(e.timestampMillis & 1) }
        }
        let decodeTime = ContinuousClock.now - decodeStart

        let sample = min(arena.count, 100_000)
        let foundationStart = ContinuousClock.now
        arena.forEachValue { i, value in
            guard i < sample else { return }
            if let o = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any] { sink &+= o.count }
        }
        let foundationTime = ContinuousClock.now - foundationStart

        let processor = EventProcessor(shardIndex: 0, shardCount: 1, config: config, models: ModelStore(models), features: features,
                                       counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                                       wallClock: { 1_790_000_000_000 })
        warm(processor, customers: warmCustomers)
        var decisions = 0
        var timerDecisions = 0
        let start = ContinuousClock.now
        arena.forEachValue(stagingAhead: EventLookahead.depth, stage: processor.stage) { i, value in
            if case .decided(let json, _, _, _) = processor.process(value, route: .forwarded) {
                decisions += 1
                sink &+= json.count
            }
            // As a shard does between batches: move the watermark and fire what it passed.
            if i & 255 == 255 {
                timerDecisions += processor.advance(wallMillis: 1_790_000_000_000) { sink &+= $0.json.count }
            }
        }
        let fullTime = ContinuousClock.now - start
        withExtendedLifetime(sink) {}
        let customers = processor.table.count
        return InProcessResult(events: arena.count,
                               decodePerSecond: Double(arena.count) / decodeTime.seconds,
                               foundationParsePerSecond: Double(sample) / foundationTime.seconds,
                               fullPerSecond: Double(arena.count) / fullTime.seconds,
                               decisions: decisions + timerDecisions, timerDecisions: timerDecisions, customers: customers,
                               bytesPerCustomer: customers > 0 ? Double(processor.stateBytes) / Double(customers) : 0,
                               hotBytesPerCustomer: customers > 0 ? Double(processor.stateBytes - processor.table.coldBytes) / Double(customers) : 0,
                               fullRecordCustomers: processor.table.fullRecords,
                               recordBytes: features.bytesPerCustomer,
                               bytesPerCustomerByPart: processor.stateFootprint.filter { $0.bytes > 0 }.sorted { $0.bytes > $1.bytes }
                                   .map { StatePart(part: $0.part, bytes: customers > 0 ? Double($0.bytes) / Double(customers) : 0) })
    }

    /// One `page` event per customer, a day before the generator's first event.
    private static func warm(_ processor: EventProcessor, customers: Int) {
        WarmUpTraffic.forEachMessage(customers: customers) { _, message in _ = processor.process(message, route: .forwarded) }
    }
}

/// The benchmarks' warm-up: one `page` view for each of the generator's customers `c-1` … `c-N`, a day
/// before its first event, so that a timed pass runs against a store that already holds them.
public enum WarmUpTraffic {
    /// Calls `body` with each customer's id (the Kafka key) and message, in customer order.
    public static func forEachMessage(customers: Int, _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        guard customers > 0 else { return }
        var message = [UInt8]()
        message.reserveCapacity(160)
        var key = [UInt8]()
        for n in 1...customers {
            key.removeAll(keepingCapacity: true)
            key.append(contentsOf: "c-\(n)".utf8)
            message.removeAll(keepingCapacity: true)
            message.append(contentsOf: #"{"type":"page","messageId":"warm-\#(n)","userId":"c-\#(n)","#.utf8)
            message.append(contentsOf: #""timestamp":"2026-09-20T00:00:00.000Z","channel":"web","properties":{}}"#.utf8)
            key.withUnsafeBytes { k in message.withUnsafeBytes { v in body(k, v) } }
        }
    }
}

extension Duration {
    /// This duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
