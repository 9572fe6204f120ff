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
    /// Features updated, and the event is an offer outcome (`Offer Delivered/Viewed/Accepted/Dismissed`)
    /// for a customer whose decisions come from the model version in counter slot `modelSlot`.
    case outcome(OfferOutcome, modelSlot: Int)
    /// A decision was made: publish `json` keyed by `customer` (both valid until the next call).
    /// `actionSlot` and `modelSlot` name the counters it counts toward.
    case decided(json: UnsafeRawBufferPointer, customer: UnsafeRawBufferPointer, actionSlot: Int, modelSlot: Int)
}

/// A decision an event-time timer made: publish `json` keyed by `customer` (both valid only during the
/// `publish` call that hands it over). `actionSlot` and `modelSlot` name the counters it counts toward.
struct TimerDecision {
    /// The recommendation, `trigger.kind` `timer`.
    var json: UnsafeRawBufferPointer
    /// The customer id bytes (the message key).
    var customer: UnsafeRawBufferPointer
    /// The action's decision counter.
    var actionSlot: Int
    /// The deciding model version's counter.
    var modelSlot: Int
    /// Which timer fired.
    var kind: TimerKind
}

/// Decode → dedupe → update features → score → decide → encode, for one shard's customers, plus the
/// shard's event time: its watermark (``ShardWatermark``), late events, and the timers that fire when the
/// watermark passes them (``CustomerTimers``). Kafka-free, so the benchmarks and tests run exactly the code
/// the service runs. Single-threaded: each shard thread owns one; nothing here allocates per event once
/// warm (new customers aside).
///
/// Time moves in two ways: ``process(_:forwarded:partition:)`` folds each event's time into its partition's
/// clock (O(1)), and ``advance(wallMillis:limit:publish:)``, called between batches, recomputes the watermark
/// and fires what it passed. An event older than the watermark is late: counted, then handled by the
/// configured ``LateEventPolicy``.
///
/// **Timers and at-least-once.** A timer decision is caused by no single message, so no offset waits for
/// its delivery (it is sent with ``DeliveryToken/none``). Timers are derived from the events, like the
/// features: a restart rebuilds those armed by events it re-reads (the uncommitted ones), and a firing
/// repeated by a replay carries the same `recommendation_id` (customer, timer, deadline), so channels can
/// drop it. Timers armed by events committed before a crash are lost with the rest of the in-memory state
/// until state snapshots (roadmap item 6) persist them.
final class EventProcessor {
    let shardIndex: Int
    let shardCount: Int
    private let decoder: SegmentDecoder
    let table: CustomerTable
    private var recent: RecentMessageIDs
    private var contacts: [ContactHistory] = []
    private let featureValues: UnsafeMutableBufferPointer<Double>
    private let featureNames: [String]
    // Per event: unchecked exclusivity keeps runtime access tracking off the hot path (one thread owns this).
    @exclusivity(unchecked) private var clock: ShardWatermark
    private let idleTTLMillis: Int64
    private let timers: CustomerTimers
    private let latePolicy: LateEventPolicy
    private let latenessMillis: Int64
    /// The id of the customer whose timer is firing (reused buffer).
    private var timerCustomer: [UInt8] = []
    /// Events older than the watermark so far (applied or dead-lettered, per the policy).
    private(set) var lateEvents = 0
    /// Timers that came due for a customer the store no longer holds (dropped by the cold tier): not fired.
    private(set) var timersWithoutCustomer = 0
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
        table = CustomerTable(features: features, expectedCustomers: config.expectedCustomersPerShard,
                              coldBudgetBytes: config.coldBytesPerShard)
        idleTTLMillis = max(1, config.idleCustomerTTL.wholeMilliseconds)
        recent = RecentMessageIDs(horizon: config.duplicateHorizon)
        contacts.reserveCapacity(config.expectedCustomersPerShard)
        featureValues = .allocate(capacity: max(1, features.definitions.count))
        featureValues.initialize(repeating: 0)
        featureNames = features.names
        let eventTime = config.eventTime
        latenessMillis = eventTime.allowedLateness.wholeMilliseconds
        clock = ShardWatermark(allowedLatenessMillis: latenessMillis, idleTimeoutMillis: eventTime.idlePartitionTimeout.wholeMilliseconds)
        timers = CustomerTimers(cartAbandonedAfterMillis: eventTime.cartAbandonedAfter?.wholeMilliseconds,
                                customerSilentAfterMillis: eventTime.customerSilentAfter?.wholeMilliseconds,
                                capacity: eventTime.maxTimerCustomersPerShard, expectedCustomers: config.expectedCustomersPerShard)
        latePolicy = eventTime.latePolicy
        timerCustomer.reserveCapacity(256)
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
    var stateBytes: Int {
        table.bytesUsed + table.coldBytes + contacts.capacity * MemoryLayout<ContactHistory>.stride + timers.bytesUsed
    }

    /// The shard's event-time watermark (Unix ms; `Int64.min` until there is one).
    var watermarkMillis: Int64 { clock.millis }
    /// The newest event time the shard has seen: its event-time "now".
    var newestEventMillis: Int64 { clock.newestEventMillis }
    /// Timers queued (armed, or holding a settled cart until the watermark passes it).
    var timersScheduled: Int { timers.scheduled }
    /// Timers refused at the capacity, or due for a customer the store no longer holds.
    var timersDropped: Int { timers.dropped + timers.forgotten + timersWithoutCustomer }
    /// Timers fired, by kind.
    func timersFired(_ kind: TimerKind) -> Int {
        switch kind {
        case .cartAbandoned: timers.firedCartAbandoned
        case .customerSilent: timers.firedCustomerSilent
        }
    }

    /// Handles one message value from source partition slot `partition` (the pipeline's offset-tracker
    /// index; any small number for callers without Kafka). `forwarded` messages were already routed and
    /// are never re-routed.
    func process(_ bytes: UnsafeRawBufferPointer, forwarded: Bool, partition: Int = 0) -> EventOutcome {
        var event: SegmentEvent
        do { event = try decoder.decode(bytes) } catch { return .invalid(error) }
        let customer = event.customerId
        if shardCount > 1 && !forwarded {
            let owner = Int(customer.hash64 % UInt64(shardCount))
            if owner != shardIndex { return .misrouted(owner: owner) }
        }
        guard recent.insert(event.messageId) else { return .duplicate }
        clock.observe(partition: partition, eventMillis: event.timestampMillis)
        if clock.isLate(event.timestampMillis) {
            lateEvents += 1
            switch latePolicy {
            case .deadLetter: return .invalid(lateError(event.timestampMillis))
            case .applyToCurrent: event.timestampMillis = clock.millis
            }
        }
        let slot = table.slot(for: customer)
        growContacts(to: slot)
        let newestBefore = table.newestEventMillis(of: slot)
        table.apply(event, to: slot)
        // The store's newest time after the event: the larger of the two (its ±2^53 ms clamp lies beyond any
        // four-digit ISO-8601 year).
        timers.observe(customer: customer.bytes, kind: event.kind, at: event.timestampMillis, known: !event.userId.isEmpty,
                       newestBefore: newestBefore, newestAfter: max(newestBefore, event.timestampMillis), watermark: clock.millis)
        if let outcome = OfferOutcome(event.kind) {
            // Champion and challenger split customers by a stable hash, so the customer's group says which
            // model's offers this outcome answers (the version now loaded in that group: an outcome that
            // straddles a model swap counts toward the new version).
            return .outcome(outcome, modelSlot: usesChallenger(customer.hash64) ? challengerSlots.model : championSlots.model)
        }
        guard DecisionTriggers.asksForDecision(event.kind) else { return .updated }
        let decided = decide(slot, customer: customer.bytes, customerHash: customer.hash64, at: event.timestampMillis,
                             trigger: .event(event.kind, messageId: event.messageId.bytes))
        return .decided(json: decided.json, customer: customer.bytes, actionSlot: decided.actionSlot, modelSlot: decided.modelSlot)
    }

    /// Moves the shard's clocks to wall time `wallMillis`: recomputes the watermark (idle partitions drop
    /// out) and fires up to `limit` timers it has passed, each through the same decider and contact policy
    /// as events, handing each decision to `publish`. Returns how many fired; `limit` of them means more
    /// may be due. Call between batches.
    @discardableResult
    func advance(wallMillis: Int64, limit: Int = .max, publish: (TimerDecision) -> Void) -> Int {
        clock.advance(wallMillis: wallMillis)
        var fired = 0
        let table = self.table
        while fired < limit, let due = timers.nextDue(watermark: clock.millis, customerId: &timerCustomer,
                                                      newestEventMillis: { id in
                                                          table.existingSlot(for: RawText(id)).map { table.newestEventMillis(of: $0) }
                                                      }) {
            if fire(due, publish: publish) { fired += 1 }
        }
        return fired
    }

    /// Source partition slot `partition` is assigned to this instance under assignment number `epoch`
    /// (see ``ShardWatermark/assign(partition:epoch:)``).
    func assignPartition(_ partition: Int, epoch: UInt64) { clock.assign(partition: partition, epoch: epoch) }

    /// Source partition slot `partition` is no longer assigned.
    func revokePartition(_ partition: Int) { clock.revoke(partition: partition) }

    /// The assignment epoch the shard tracks `partition` under; nil when it does not track it.
    func trackedEpoch(of partition: Int) -> UInt64? { clock.epoch(of: partition) }

    /// Evaluates, decides and encodes for a customer at trigger time `at`. Windows and the contact policy
    /// run at max(`at`, the customer's newest event): earlier, the rings have dropped buckets, and a
    /// contact already made after `at` must count. `event_time` is `at`.
    private func decide(_ slot: CustomerSlot, customer: UnsafeRawBufferPointer, customerHash: UInt64, at: Int64,
                        trigger: Trigger) -> (json: UnsafeRawBufferPointer, actionSlot: Int, modelSlot: Int) {
        let slotIndex = Int(slot.index)
        growContacts(to: slot)  // a timer's customer may just have been restored to a new slot
        let decideAt = max(at, table.newestEventMillis(of: slot))
        table.evaluate(slot, atMillis: decideAt, into: featureValues)
        let useChallenger = usesChallenger(customerHash)
        let decider = useChallenger ? (challenger ?? champion) : champion
        let slots = useChallenger ? challengerSlots : championSlots
        let decision = decider.decide(features: UnsafeBufferPointer(featureValues), lastChannel: table.lastChannel(of: slot),
                                      history: contacts[slotIndex], atMillis: decideAt)
        if let action = decision.actionIndex, let channel = decision.channel {
            contacts[slotIndex].record(atMillis: decideAt, channel: channel, action: UInt8(truncatingIfNeeded: action))
        }
        let json = writer.write(decision: decision, customerId: customer, churn: decider.churn, nba: decider.nba,
                                trigger: trigger, eventTimeMillis: at, decidedAtMillis: wallClock())
        let actionSlot = decision.actionIndex.map { $0 < slots.actions.count ? slots.actions[$0] : 0 } ?? 0
        return (json, actionSlot, slots.model)
    }

    /// Makes room for `slot`'s contact history, as the customer takes it (so the growth is paid there, once).
    @inline(__always)
    /// Moves up to `limit` slots' worth of customers idle past the TTL (against the watermark) to the cold
    /// tier. Between events only: a slot is valid until the next sweep. A freed slot's contact history is
    /// cleared so that whoever reuses it starts clean (a returning customer's contacts are older than the
    /// policy's look-back, which the TTL exceeds).
    @discardableResult
    func sweepIdle(limit: Int = 64) -> Int {
        guard clock.millis != .min else { return 0 }
        let cutoff = clock.millis &- idleTTLMillis
        return table.evictIdle(olderThanMillis: cutoff, limit: limit) { slot in
            let i = Int(slot.index)
            if i < contacts.count { contacts[i] = ContactHistory() }
        }
    }

    /// Whether the challenger models decide for the customer with this id hash (a stable split).
    private func usesChallenger(_ customerHash: UInt64) -> Bool {
        challenger != nil && models.usesChallenger(customerHash: customerHash)
    }

    private func growContacts(to slot: CustomerSlot) {
        let slotIndex = Int(slot.index)
        if slotIndex >= contacts.count {
            contacts.append(contentsOf: repeatElement(ContactHistory(), count: slotIndex + 1 - contacts.count))
        }
    }

    /// Decides for a due timer (its customer's id is in `timerCustomer`) at its deadline. False when the
    /// store no longer holds the customer (the cold tier dropped them): nothing to decide on.
    private func fire(_ due: DueTimer, publish: (TimerDecision) -> Void) -> Bool {
        timerCustomer.withUnsafeBytes { id in
            // Restores the customer from the cold tier when they are there: silence is when they would be.
            guard let slot = table.existingSlot(for: RawText(id)) else {
                timersWithoutCustomer += 1
                return false
            }
            let decided = decide(slot, customer: id, customerHash: nudgeHash64(id), at: due.deadline,
                                 trigger: .timer(due.kind.wireName, customerId: id, deadlineMillis: due.deadline))
            publish(TimerDecision(json: decided.json, customer: id, actionSlot: decided.actionSlot, modelSlot: decided.modelSlot,
                                  kind: due.kind))
            return true
        }
    }

    /// The dead-letter reason of a late event (cold path: late events are rare, and this one is dropped).
    private func lateError(_ eventMillis: Int64) -> DecodeError {
        DecodeError(.late, "timestamp \(ISO8601Time.format(millis: eventMillis)) is older than the shard's watermark "
                        + "\(ISO8601Time.format(millis: clock.millis)) (allowed lateness \(latenessMillis / 1000) s)")
    }

    /// The customer's features and state as values, or nil when this shard has not seen them. Reads only:
    /// never creates a customer. Evaluated at `requested` (else the shard's newest event time), but not
    /// before the customer's newest event, where the windows would be missing buckets.
    func snapshot(of customerId: [UInt8], atMillis requested: Int64?) -> CustomerSnapshot? {
        let found = customerId.withUnsafeBytes { table.existingSlot(for: RawText($0)) }
        guard let slot = found else { return nil }
        let newest = table.newestEventMillis(of: slot)
        let at = max(requested ?? clock.newestEventMillis, newest)
        table.evaluate(slot, atMillis: at, into: featureValues)
        let features = featureNames.indices.map { FeatureValue(name: featureNames[$0], value: featureValues[$0]) }
        let slotIndex = Int(slot.index)
        let history = slotIndex < contacts.count ? contacts[slotIndex] : ContactHistory()
        // Action indexes are the model's that decided: the challenger's for the customers it scores.
        let useChallenger = usesChallenger(customerId.withUnsafeBytes { nudgeHash64($0) })
        let actions = (useChallenger ? (challenger ?? champion) : champion).nba.actions
        let kept = (0..<history.count).compactMap { history.contact(at: $0) }.sorted { $0.atMillis < $1.atMillis }
        let contactRecords = kept.map { contact in
            ContactRecord(atMillis: contact.atMillis, channel: contact.channel.wireName,
                          action: Int(contact.action) < actions.count ? actions[Int(contact.action)].id : nil)
        }
        return CustomerSnapshot(customerId: table.customerId(of: slot), shard: shardIndex, evaluatedAtMillis: at,
                                lastEventMillis: newest, lastChannel: table.lastChannel(of: slot)?.wireName,
                                shardEventTimeMillis: clock.newestEventMillis,
                                shardWatermarkMillis: clock.millis == .min ? nil : clock.millis,
                                features: features, contacts: contactRecords)
    }
}

/// What a customer did with an offer, from the contract's outcome events.
enum OfferOutcome: Int, CaseIterable {
    case delivered, viewed, accepted, dismissed

    /// The outcome an event reports, or nil for any other event.
    init?(_ kind: EventKind) {
        switch kind {
        case .offerDelivered: self = .delivered
        case .offerViewed: self = .viewed
        case .offerAccepted: self = .accepted
        case .offerDismissed: self = .dismissed
        default: return nil
        }
    }

    /// The name in metrics.
    var name: String {
        switch self {
        case .delivered: "delivered"
        case .viewed: "viewed"
        case .accepted: "accepted"
        case .dismissed: "dismissed"
        }
    }
}
