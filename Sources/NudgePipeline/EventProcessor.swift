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
    /// `actionSlot` and `modelSlot` name the counters it counts toward.
    case decided(json: UnsafeRawBufferPointer, customer: UnsafeRawBufferPointer, actionSlot: Int, modelSlot: Int)
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
    private let featureNames: [String]
    /// Newest event time this shard has applied (`Int64.min` before any): where inspections evaluate by default.
    private(set) var watermarkMillis: Int64 = .min
    private let store: ModelStore
    private let counterNames: (actions: CounterNames, models: CounterNames)
    private var generation = -1
    private var models: ModelSet
    private var champion: Decider
    private var challenger: Decider?
    private var championSlots: (actions: [Int], model: Int) = ([], 0)
    private var challengerSlots: (actions: [Int], model: Int) = ([], 0)
    private var writer = RecommendationWriter()
    private let wallClock: () -> Int64

    init(shardIndex: Int, shardCount: Int, config: PipelineConfig, models store: ModelStore, features: FeatureSet,
         counterNames: (actions: CounterNames, models: CounterNames), wallClock: @escaping () -> Int64 = wallClockMillis) {
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        decoder = SegmentDecoder(maxMessageBytes: config.maxMessageBytes)
        table = CustomerTable(features: features, expectedCustomers: config.expectedCustomersPerShard)
        recent = RecentMessageIDs(horizon: config.duplicateHorizon)
        contacts.reserveCapacity(config.expectedCustomersPerShard)
        featureValues = .allocate(capacity: max(1, features.definitions.count))
        featureValues.initialize(repeating: 0)
        featureNames = features.names
        self.store = store
        self.counterNames = counterNames
        models = store.models
        (champion, challenger) = models.makeDeciders()
        self.wallClock = wallClock
        refreshModels()
    }

    /// Swaps in the store's models if they changed. Called between batches, never mid-event.
    func refreshModels() {
        let now = store.generation.load(ordering: .acquiring)
        guard now != generation else { return }
        generation = now
        models = store.models
        (champion, challenger) = models.makeDeciders()
        func slots(_ nba: NBAModel) -> (actions: [Int], model: Int) {
            (nba.actions.map { counterNames.actions.slot(for: $0.id) }, counterNames.models.slot(for: nba.identity.description))
        }
        championSlots = slots(models.nba)
        if let c = models.challenger { challengerSlots = slots(c.nba) }
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
        watermarkMillis = max(watermarkMillis, event.timestampMillis)
        guard DecisionTriggers.asksForDecision(event.kind) else { return .updated }
        let at = max(event.timestampMillis, table.newestEventMillis(of: slot))
        table.evaluate(slot, atMillis: at, into: featureValues)
        let useChallenger = challenger != nil && models.usesChallenger(customerHash: customer.hash64)
        let decider = useChallenger ? (challenger ?? champion) : champion
        let slots = useChallenger ? challengerSlots : championSlots
        let decision = decider.decide(features: UnsafeBufferPointer(featureValues), lastChannel: table.lastChannel(of: slot),
                                      history: contacts[slotIndex], atMillis: at)
        if let action = decision.actionIndex, let channel = decision.channel {
            contacts[slotIndex].record(atMillis: at, channel: channel, action: UInt8(truncatingIfNeeded: action))
        }
        let json = writer.write(decision: decision, customerId: customer.bytes,
                                churn: decider.churn, nba: decider.nba,
                                trigger: .event(event.kind, messageId: event.messageId.bytes),
                                eventTimeMillis: event.timestampMillis, decidedAtMillis: wallClock())
        let actionSlot = decision.actionIndex.map { $0 < slots.actions.count ? slots.actions[$0] : 0 } ?? 0
        return .decided(json: json, customer: customer.bytes, actionSlot: actionSlot, modelSlot: slots.model)
    }

    /// The customer's features and state as values, or nil when this shard has not seen them. Reads only:
    /// never creates a customer. Evaluated at `requested` (else the watermark), but not before the
    /// customer's newest event, where the windows would be missing buckets.
    func snapshot(of customerId: [UInt8], atMillis requested: Int64?) -> CustomerSnapshot? {
        let found = customerId.withUnsafeBytes { table.existingSlot(for: RawText($0)) }
        guard let slot = found else { return nil }
        let newest = table.newestEventMillis(of: slot)
        let at = max(requested ?? watermarkMillis, newest)
        table.evaluate(slot, atMillis: at, into: featureValues)
        let features = featureNames.indices.map { FeatureValue(name: featureNames[$0], value: featureValues[$0]) }
        let slotIndex = Int(slot.index)
        let history = slotIndex < contacts.count ? contacts[slotIndex] : ContactHistory()
        // Action indexes are the model's that decided: the challenger's for the customers it scores.
        let useChallenger = challenger != nil && models.usesChallenger(customerHash: customerId.withUnsafeBytes { nudgeHash64($0) })
        let actions = (useChallenger ? (challenger ?? champion) : champion).nba.actions
        let kept = (0..<history.count).compactMap { history.contact(at: $0) }.sorted { $0.atMillis < $1.atMillis }
        let contactRecords = kept.map { contact in
            ContactRecord(atMillis: contact.atMillis, channel: contact.channel.wireName,
                          action: Int(contact.action) < actions.count ? actions[Int(contact.action)].id : nil)
        }
        return CustomerSnapshot(customerId: table.customerId(of: slot), shard: shardIndex, evaluatedAtMillis: at,
                                lastEventMillis: newest, lastChannel: table.lastChannel(of: slot)?.wireName,
                                shardWatermarkMillis: watermarkMillis, features: features, contacts: contactRecords)
    }
}
