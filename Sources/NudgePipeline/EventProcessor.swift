import NudgeDecisions
import NudgeEvents
import NudgeFeatures
import NudgeModels

/// What handling one message came to.
enum EventOutcome {
    /// Not a valid event: dead-letter it with this error.
    case invalid(DecodeError)
    /// Its customer lives on another shard: route the message there.
    case misrouted(owner: Int)
    /// Its message id was seen recently: dropped.
    case duplicate
    /// Features updated; the event asks for no decision.
    case updated
    /// A decision was made: publish `json` keyed by `customer` (both valid until the next call).
    case decided(json: UnsafeRawBufferPointer, customer: UnsafeRawBufferPointer, action: Int?)
}

/// Decode → dedupe → update features → score → decide → encode, for one shard's customers.
/// Kafka-free, so the benchmarks and tests run exactly the code the service runs. Single-threaded:
/// each shard thread owns one; nothing here allocates per event once warm (new customers aside).
final class EventProcessor {
    let shardIndex: Int
    let shardCount: Int
    private let decoder: SegmentDecoder
    let table: CustomerTable
    private var recent: RecentMessageIDs
    private var contacts: [ContactHistory] = []
    private let featureValues: UnsafeMutableBufferPointer<Double>
    private let decider: Decider
    private var writer = RecommendationWriter()
    private let wallClock: () -> Int64

    init(shardIndex: Int, shardCount: Int, config: PipelineConfig, models: ModelSet, features: FeatureSet,
         wallClock: @escaping () -> Int64 = wallClockMillis) {
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        decoder = SegmentDecoder(maxMessageBytes: config.maxMessageBytes)
        table = CustomerTable(features: features, expectedCustomers: config.expectedCustomersPerShard)
        recent = RecentMessageIDs(horizon: config.duplicateHorizon)
        contacts.reserveCapacity(config.expectedCustomersPerShard)
        featureValues = .allocate(capacity: max(1, features.definitions.count))
        featureValues.initialize(repeating: 0)
        decider = models.makeDecider()
        self.wallClock = wallClock
    }

    deinit { featureValues.deallocate() }

    /// Bytes of state this processor holds for its customers.
    var stateBytes: Int { table.bytesUsed + contacts.capacity * MemoryLayout<ContactHistory>.stride }

    /// Handles one message value. `forwarded` messages were already routed and are never re-routed.
    func process(_ bytes: UnsafeRawBufferPointer, forwarded: Bool) -> EventOutcome {
        let event: SegmentEvent
        do { event = try decoder.decode(bytes) } catch { return .invalid(error) }
        let customer = event.customerId
        if shardCount > 1 && !forwarded {
            let owner = Int(customer.hash64 % UInt64(shardCount))
            if owner != shardIndex { return .misrouted(owner: owner) }
        }
        guard recent.insert(event.messageId) else { return .duplicate }
        let slot = table.slot(for: customer)
        let slotIndex = Int(slot.index)
        if slotIndex >= contacts.count {
            contacts.append(contentsOf: repeatElement(ContactHistory(), count: slotIndex + 1 - contacts.count))
        }
        table.apply(event, to: slot)
        guard DecisionTriggers.asksForDecision(event.kind) else { return .updated }
        let at = max(event.timestampMillis, table.newestEventMillis(of: slot))
        table.evaluate(slot, atMillis: at, into: featureValues)
        let decision = decider.decide(features: UnsafeBufferPointer(featureValues), lastChannel: table.lastChannel(of: slot),
                                      history: contacts[slotIndex], atMillis: at)
        if let action = decision.actionIndex, let channel = decision.channel {
            contacts[slotIndex].record(atMillis: at, channel: channel, action: UInt8(truncatingIfNeeded: action))
        }
        let json = writer.write(decision: decision, customerId: customer.bytes,
                                churn: decider.churn, nba: decider.nba,
                                trigger: .event(event.kind, messageId: event.messageId.bytes),
                                eventTimeMillis: event.timestampMillis, decidedAtMillis: wallClock())
        return .decided(json: json, customer: customer.bytes, action: decision.actionIndex)
    }
}
