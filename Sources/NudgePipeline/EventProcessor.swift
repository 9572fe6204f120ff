import CPrefetch
import NudgeDecisions
import NudgeEvents
import NudgeFeatures
import NudgeModels

/// How a message reached a shard.
enum EventRoute: UInt8 {
    /// From the consumer, by the Kafka key: its customer may live on another shard.
    case consumed
    /// From another shard that found its customer is this one's: never routed again.
    case forwarded
    /// From the shard of its anonymous id, which links the id to a customer of this shard: already checked for
    /// duplicates there; the link resolves it here.
    case aliased
    /// From the identity topic: another instance's identity change, or an event it relayed (see
    /// ``IdentityWire``).
    case relayed
}

/// What handling one message came to.
enum EventOutcome {
    /// Not a valid event: dead-letter it with this error.
    case invalid(DecodeError)
    /// Its customer lives on another shard: route the message there (``EventRoute/forwarded``).
    case misrouted(owner: Int)
    /// Its anonymous id is linked to a customer of another shard: route it there (``EventRoute/aliased``).
    case aliased(owner: Int)
    /// Its anonymous id is linked to a customer of another instance: it is in ``EventProcessor/outbox``, bound
    /// for the identity topic, and its offset is done when that message is delivered.
    case relayed
    /// Its message id was seen recently: dropped.
    case duplicate
    /// Features updated; the event asks for no decision.
    case updated
    /// Features updated, and the event is an offer outcome (`Offer Delivered/Viewed/Accepted/Dismissed`)
    /// for a customer whose decisions come from the model version in counter slot `modelSlot`.
    case outcome(OfferOutcome, modelSlot: Int)
    /// A decision was made: publish `json` keyed by `customer` (both valid until the processor's next
    /// `process` or `stage` call: `customer` may point into the decoder a later stage reuses).
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
/// watermark passes them (``CartTimers``, ``SilenceTimers``). Kafka-free, so the benchmarks and tests run exactly the code
/// the service runs. Single-threaded: each shard thread owns one; nothing here allocates per event once
/// warm (new customers aside).
///
/// Time moves in two ways: ``process(_:route:partition:relayedUser:)`` folds each event's time into its partition's
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
///
/// **Identity.** An event with both ids (an `identify`, or any event of a logged-in visitor) links its
/// `anonymousId` to its `userId`. The customer's shard keeps the link and, unless it also owns the anonymous
/// id, sends ``IdentityChange/Kind/link`` to the shard that does. That shard routes the id's later events to
/// the customer from then on (``EventOutcome/aliased(owner:)``) and hands over everything it holds under the
/// anonymous id (features, cart timer, contacts) in one ``IdentityChange/Kind/merge``, which the customer's
/// shard folds in (``CustomerTable/merge(_:into:)``). Both messages travel behind the events their sender
/// forwarded before, so no event is counted twice or lost; events of either id still in flight when the link
/// is made land in the customer either way, since merging is order-free (gauges aside: they add). Linking an
/// anonymous id again to another customer re-routes it from then on (its history stays with the first); the
/// routing shard drops links unused for the idle-customer TTL or beyond its capacity, and tells the
/// customer's shard (``IdentityChange/Kind/unlink``). Messages leave through ``outbox``, which the owner
/// drains after each call, so the processor stays single-threaded and testable without threads.
final class EventProcessor {
    let shardIndex: Int
    let shardCount: Int
    private let decoder: SegmentDecoder
    /// Messages decoded ahead of their turn, their memory on its way into the cache (see ``stage(_:)``).
    @exclusivity(unchecked) private var lookahead: EventLookahead
    let table: CustomerTable
    @exclusivity(unchecked) private var recent: RecentMessageIDs
    @exclusivity(unchecked) private var contacts: ContactBook
    private let featureValues: UnsafeMutableBufferPointer<Double>
    private let featureNames: [String]
    // Per event: unchecked exclusivity keeps runtime access tracking off the hot path (one thread owns this).
    @exclusivity(unchecked) private var clock: ShardWatermark
    private let idleTTLMillis: Int64
    /// Hot customers at most (``PipelineConfig/maxHotCustomersPerShard``).
    private let maxHotCustomers: Int
    private let carts: CartTimers
    @exclusivity(unchecked) private var silences: SilenceTimers
    private let latePolicy: LateEventPolicy
    private let latenessMillis: Int64
    private let maxSkewMillis: Int64?
    /// Newest event time accepted as is: the wall clock at the last ``advance(wallMillis:limit:publish:)``
    /// plus the allowed skew (no limit before the first).
    @exclusivity(unchecked) private var futureLimitMillis = Int64.max
    /// The id of the customer whose timer is firing (reused buffer).
    private var timerCustomer: [UInt8] = []
    /// Events older than the watermark so far (applied or dead-lettered, per the policy).
    private(set) var lateEvents = 0
    /// Events stamped beyond the allowed clock skew so far (applied at the shard's newest event time, or
    /// dead-lettered, per the policy).
    private(set) var futureEvents = 0
    /// Timers that came due for a customer this shard no longer serves: carts of customers the cold tier
    /// dropped, and timers of customers whose input partition moved to another instance. Not fired. (A
    /// silence carried by a customer the cold tier drops goes with them, counted in its `dropped`.)
    private(set) var timersWithoutCustomer = 0
    /// Timers fired (decisions made), by kind: cart and silence.
    private var timersFired = (carts: 0, silences: 0)
    private let store: ModelStore
    private let counterNames: (actions: CounterNames, models: CounterNames)
    private var generation = -1
    private var models: ModelSet
    private var champion: Decider
    private var challenger: Decider?
    private var championSlots: (actions: [Int], model: Int) = ([], 0)
    private var challengerSlots: (actions: [Int], model: Int) = ([], 0)
    @exclusivity(unchecked) private var writer = RecommendationWriter()
    private let wallClock: () -> Int64
    private let links: IdentityLinks
    /// Identity messages for other shards, oldest first: deliver each to `shard`'s forwards queue (behind
    /// anything this shard forwarded there before), or to the identity topic when `shard` is
    /// ``otherInstance``, and empty the list.
    var outbox: [(shard: Int, change: IdentityChange)] = []
    /// The outbox's destination for a change whose id lives on another instance.
    static let otherInstance = -1
    /// How often (event time) a link another instance routes is said again while its customer is active.
    static let relinkEveryMillis: Int64 = 3_600_000
    /// Which customers this instance owns; nil when it owns them all (one instance, tests, benchmarks).
    private let ownership: InstanceOwnership?
    /// The customer id a link resolved an anonymous event to (reused buffer).
    private var resolvedId: UnsafeMutableRawBufferPointer
    /// The number of the last link this shard made for one of its customers.
    private var linkGeneration: UInt64 = 0
    /// The cutoff of the last expiry pass over the links.
    private var linkSweepCutoff = Int64.min
    /// Identity merges folded into this shard's customers.
    private(set) var identityMerges = 0
    /// Events that came here as aliased but found no link (not expected: counted, applied to the anonymous id).
    private(set) var identityMisses = 0

    init(shardIndex: Int, shardCount: Int, config: PipelineConfig, models store: ModelStore, features: FeatureSet,
         counterNames: (actions: CounterNames, models: CounterNames), ownership: InstanceOwnership? = nil,
         wallClock: @escaping () -> Int64 = wallClockMillis) {
        self.ownership = ownership
        self.shardIndex = shardIndex
        self.shardCount = shardCount
        decoder = SegmentDecoder(maxMessageBytes: config.maxMessageBytes, properties: features.readProperties)
        lookahead = EventLookahead(maxMessageBytes: config.maxMessageBytes, properties: features.readProperties)
        table = CustomerTable(features: features, expectedCustomers: config.expectedCustomersPerShard,
                              coldBudgetBytes: config.coldBytesPerShard)
        idleTTLMillis = max(1, config.idleCustomerTTL.wholeMilliseconds)
        maxHotCustomers = max(16, config.maxHotCustomersPerShard)
        recent = RecentMessageIDs(horizon: config.duplicateHorizon)
        contacts = ContactBook()
        featureValues = .allocate(capacity: max(1, features.definitions.count))
        featureValues.initialize(repeating: 0)
        featureNames = features.names
        let eventTime = config.eventTime
        latenessMillis = eventTime.allowedLateness.wholeMilliseconds
        clock = ShardWatermark(allowedLatenessMillis: latenessMillis, idleTimeoutMillis: eventTime.idlePartitionTimeout.wholeMilliseconds)
        // Carts are for the few customers shopping now; silences for every known customer in the hot tier.
        carts = CartTimers(cartAbandonedAfterMillis: eventTime.cartAbandonedAfter?.wholeMilliseconds,
                           capacity: eventTime.maxTimerCustomersPerShard, expectedCarts: config.expectedCustomersPerShard / 16)
        silences = SilenceTimers(delayMillis: eventTime.customerSilentAfter?.wholeMilliseconds)
        latePolicy = eventTime.latePolicy
        maxSkewMillis = eventTime.maxClockSkew?.wholeMilliseconds
        timerCustomer.reserveCapacity(256)
        self.store = store
        self.counterNames = counterNames
        models = store.models
        (champion, challenger) = models.makeDeciders()
        self.wallClock = wallClock
        links = IdentityLinks(capacity: config.identityLinksPerShard)
        resolvedId = .allocate(byteCount: 256, alignment: 8)
        refreshModels()
        // Contacts follow a customer through the cold tier (see `leave`); a silence carried there is fired
        // from the cold queue, or is stale once the customer is back.
        table.onRestore = { [weak self] slot, attachment in
            let carried = ColdSlotState(attachment)
            self?.contacts.absorb(carried.contacts, into: Int(slot.index))
            if let deadline = carried.silenceDeadline { self?.silences.restore(slot: Int(slot.index), deadline: deadline) }
        }
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

    deinit {
        featureValues.deallocate()
        resolvedId.deallocate()
    }

    /// Bytes of state this processor holds for its customers.
    var stateBytes: Int { stateFootprint.reduce(0) { $0 + $1.bytes } }

    /// ``stateBytes`` by part, as allocated, for reports of where the memory goes.
    var stateFootprint: [(part: String, bytes: Int)] {
        let hot = table.hotFootprint
        return [("customer entries", hot.entries), ("feature records", hot.records), ("customer ids", hot.ids),
                ("customer index", hot.index),
                ("contact histories", contacts.bytesUsed),
                ("timers", carts.bytesUsed + silences.bytesUsed), ("identity links", links.bytesUsed), ("cold tier", table.coldBytes),
                ("other", hot.other)]
    }

    /// Identity links this shard holds (routing or resolving).
    var identityLinks: Int { links.count }
    /// Identity links dropped at the capacity or expired.
    var identityLinksForgotten: Int { links.dropped + links.expired }

    /// The shard's event-time watermark (Unix ms; `Int64.min` until there is one).
    var watermarkMillis: Int64 { clock.millis }
    /// The newest event time the shard has seen: its event-time "now".
    var newestEventMillis: Int64 { clock.newestEventMillis }
    /// Timers queued (armed, or holding a settled cart until the watermark passes it).
    var timersScheduled: Int { carts.scheduled + silences.scheduled }
    /// Cart timers refused at the capacity, silences whose customer was detached (identity stitching) before
    /// they came due, and timers due for a customer this shard no longer serves.
    var timersDropped: Int { carts.dropped + silences.forgotten + timersWithoutCustomer }
    /// Timers fired, by kind.
    func timersFired(_ kind: TimerKind) -> Int {
        switch kind {
        case .cartAbandoned: timersFired.carts
        case .customerSilent: timersFired.silences
        }
    }

    /// Handles one message value from source partition slot `partition` (the pipeline's offset-tracker
    /// index; any small number for callers without Kafka), which reached the shard by `route`. An event
    /// another instance relayed (``EventRoute/relayed``) comes with `relayedUser`, the customer its link
    /// named there: it is applied to them whether or not this shard still holds the link (it may have
    /// expired or been lost in a restart here), and checked for duplicates here (a relaying instance that
    /// crashed re-reads and relays it again).
    ///
    /// `relayedTime` is how the relaying instance judged the event's time (``RelayedEventTime``), which is
    /// followed rather than judged again here; nil, this shard judges it by its own clock.
    ///
    /// A message passed to ``stage(_:)`` first is not decoded again.
    func process(_ bytes: UnsafeRawBufferPointer, route: EventRoute, partition: Int = 0,
                 relayedUser: UnsafeRawBufferPointer? = nil, relayedTime: RelayedEventTime? = nil) -> EventOutcome {
        var event: SegmentEvent
        let messageHash: UInt64
        var customerHash: UInt64
        if let staged = lookahead.take(bytes) {
            advanceLookahead()
            do { event = try lookahead.event(at: staged) } catch { return .invalid(error) }
            messageHash = lookahead.messageHashes[staged]
            customerHash = lookahead.customerHashes[staged]
        } else {
            do { event = try decoder.decode(bytes) } catch { return .invalid(error) }
            messageHash = event.messageId.hash64
            customerHash = event.customerId.hash64
        }
        var customer = event.customerId
        var known = !event.userId.isEmpty
        let relayed = relayedUser.flatMap { $0.isEmpty ? nil : (user: $0, hash: nudgeHash64($0)) }
        // A future event to dead-letter goes before its id is recorded: its sender may correct and resend it.
        // A relayed event's time was judged (and counted) where it was read.
        let future = relayedTime == nil && event.timestampMillis > futureLimitMillis
        if future && latePolicy == .deadLetter {
            futureEvents += 1
            return .invalid(futureError(event.timestampMillis))
        }
        if let relayed {
            if shardCount > 1 {
                let owner = owner(of: relayed.hash)
                if owner != shardIndex { return .aliased(owner: owner) }
            }
            guard recent.insert(hash: messageHash) else { return .duplicate }
        } else {
            if shardCount > 1 && route == .consumed {
                let owner = owner(of: customerHash)
                if owner != shardIndex { return .misrouted(owner: owner) }
            }
            if route != .aliased {
                guard recent.insert(hash: messageHash) else { return .duplicate }
            }
        }
        // `event_time` stays the event's own, even when a late or future event is applied at another time.
        let stampedMillis = event.timestampMillis
        // Before anything reads the event's time (link expiry included): a future event applies at the shard's
        // event-time "now", which it leaves where it is (the wall clock could be far ahead of input being
        // caught up on).
        if future {
            futureEvents += 1
            event.timestampMillis = clock.newestEventMillis != .min ? clock.newestEventMillis : clock.wallMillis
        } else if case .future(let millis)? = relayedTime {
            event.timestampMillis = millis
        }
        if let relayed {
            if let link = links.link(of: customer.bytes, hash: customerHash) { links.touch(link, atMillis: event.timestampMillis) }
            customerHash = relayed.hash
            customer = keep(relayed.user)
            known = true
        }
        if !known && (route == .aliased || !links.isEmpty) {
            if let link = links.link(of: customer.bytes, hash: customerHash),
               route == .aliased || !expire(link, atMillis: event.timestampMillis) {
                // The routing shard judged expiry by this event's own time already: an aliased event is resolved.
                links.touch(link, atMillis: event.timestampMillis)
                let owner = links.withIds(at: link) { _, user in destination(of: user, hash: links.userHash(at: link)) }
                if owner == Self.otherInstance {
                    // Judged here, against the watermark its partition holds back: the customer's instance has none of it.
                    guard let time = relayedEventTime(&event, partition: partition, future: future) else {
                        if route != .aliased { recent.remove(hash: messageHash) }
                        return .invalid(lateError(event.timestampMillis))
                    }
                    let change = links.withIds(at: link) { anonymous, user in
                        IdentityChange(.event(Array(bytes), time: time), anonymous: Array(anonymous), user: Array(user),
                                       atMillis: event.timestampMillis, generation: links.generation(at: link))
                    }
                    outbox.append((Self.otherInstance, change))
                    return .relayed
                }
                if owner != shardIndex { return .aliased(owner: owner) }
                customer = resolve(link)
                customerHash = links.userHash(at: link)
                known = true
            } else if route == .aliased {
                identityMisses += 1
            }
        }
        var late = false
        if let relayedTime {
            if case .late(let millis) = relayedTime {
                late = true
                event.timestampMillis = millis
            }
        } else if !future {
            switch observeAndJudge(&event, partition: partition) {
            case .refused:
                // Its id is forgotten where it was recorded here, so a corrected resend is not a duplicate. An
                // event aliased from another shard was recorded there, which keeps it.
                if relayed != nil || route != .aliased { recent.remove(hash: messageHash) }
                return .invalid(lateError(event.timestampMillis))
            case .late: late = true
            case .onTime: break
            }
        }
        let slot = table.slot(for: customer, hash: customerHash)
        let newestBefore = table.newestEventMillis(of: slot)
        table.apply(event, to: slot)
        // The store's newest time after the event: the larger of the two (its ±2^53 ms clamp lies beyond any
        // four-digit ISO-8601 year).
        // A late event at its own time: the carts ignore late adds and removes, and a late checkout or order
        // settles as of when it happened (at the watermark it would close a cart holding a newer add). So too a
        // relayed event behind this shard's watermark, though on time where it was read: this clock, which its
        // partition does not hold back, would fire its cart before the checkout from that partition arrives.
        let behind = late || (relayedTime != nil && event.timestampMillis < clock.millis)
        carts.observe(customer: customer.bytes, hash: customerHash, kind: event.kind, at: late ? stampedMillis : event.timestampMillis,
                      late: behind, watermark: clock.millis)
        silences.observe(slot: Int(slot.index), known: known, newest: max(newestBefore, event.timestampMillis), watermark: clock.millis)
        if !event.userId.isEmpty && !event.anonymousId.isEmpty && !event.anonymousId.bytes.elementsEqual(event.userId.bytes) {
            link(anonymous: event.anonymousId, to: event.userId, atMillis: event.timestampMillis)
        }
        if let outcome = OfferOutcome(event.kind) {
            // Champion and challenger split customers by a stable hash, so the customer's group says which
            // model's offers this outcome answers (the version now loaded in that group: an outcome that
            // straddles a model swap counts toward the new version).
            return .outcome(outcome, modelSlot: usesChallenger(customerHash) ? challengerSlots.model : championSlots.model)
        }
        guard DecisionTriggers.asksForDecision(event.kind) else { return .updated }
        let decided = decide(slot, customer: customer.bytes, customerHash: customerHash, at: event.timestampMillis,
                             stampedAt: stampedMillis, trigger: .event(event.kind, messageId: event.messageId.bytes))
        return .decided(json: decided.json, customer: customer.bytes, actionSlot: decided.actionSlot, modelSlot: decided.modelSlot)
    }

    // MARK: Lookahead

    /// Decodes `bytes`, which this shard will process after the messages staged before it, and starts
    /// loading the memory processing it will touch (see ``EventLookahead``): stage each message about
    /// ``EventLookahead/depth`` messages before its turn, in processing order, and process it with
    /// ``process(_:route:partition:relayedUser:)`` as usual. A no-op when that many are staged already. The bytes must
    /// stay alive and unmoved until processed or ``clearLookahead()``; staging reuses the decoder of the
    /// message processed before, so use that message's outcome before staging the next.
    func stage(_ bytes: UnsafeRawBufferPointer) {
        guard let staged = lookahead.stage(bytes) else { return }
        recent.prefetch(hash: lookahead.messageHashes[staged])
        table.prefetchIndex(hash: lookahead.customerHashes[staged])
        carts.prefetchIndex(hash: lookahead.customerHashes[staged])
    }

    /// Forgets the staged messages (they are decoded again if processed): before their bytes are released.
    func clearLookahead() { lookahead.clear() }

    /// One step on for the staged messages, as one is taken: the next one's id bytes, and the record and
    /// contact history of the one after (their index entry requested an event ago).
    @inline(__always)
    private func advanceLookahead() {
        // An entry is at each distance once (the distances shrink by one per message taken); one staged
        // fewer than two ahead never had its record requested, and its hint of -1 asks for nothing.
        if let next = lookahead.entry(atDistance: 1) { table.prefetchId(slot: lookahead.slotHints[next]) }
        guard let later = lookahead.entry(atDistance: 2), lookahead.decoded(later) else { return }
        carts.prefetchRecord(hash: lookahead.customerHashes[later])
        guard let slot = table.prefetchRecord(hash: lookahead.customerHashes[later]) else { return }
        lookahead.slotHints[later] = slot
        contacts.prefetch(slot: slot)
        silences.prefetch(slot: slot)
    }

    // MARK: Identity

    /// The shard that owns the customer whose id hashes to `hash` (the consumer's routing).
    @inline(__always)
    private func owner(of hash: UInt64) -> Int { shardCount > 1 ? Int(hash % UInt64(shardCount)) : 0 }

    /// Whether the customer with this id lives on this instance.
    @inline(__always)
    private func owns(_ id: UnsafeRawBufferPointer) -> Bool { ownership?.owns(id) ?? true }

    /// Where an identity change for the customer `id` (hash `hash`) goes: their shard, or ``otherInstance``.
    private func destination(of id: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        owns(id) ? owner(of: hash) : Self.otherInstance
    }

    /// The customer id of the link at `link`, copied into `resolvedId` (valid until the next call).
    private func resolve(_ link: IdentityLinks.Index) -> RawText {
        links.withIds(at: link) { _, user in keep(user) }
    }

    /// `id` copied into `resolvedId`: valid until the next call, as the outcome's customer must be, whatever
    /// `id` pointed into.
    private func keep(_ id: UnsafeRawBufferPointer) -> RawText {
        if id.count > resolvedId.count {
            resolvedId.deallocate()
            resolvedId = .allocate(byteCount: id.count, alignment: 8)
        }
        resolvedId.copyMemory(from: id)
        return RawText(UnsafeRawBufferPointer(rebasing: resolvedId[..<id.count]))
    }

    /// An event of customer `user` (this shard's) carried anonymous id `anonymous`: link them, unless they
    /// already are (the usual case: a logged-in visitor sends both ids on every event).
    private func link(anonymous: RawText, to user: RawText, atMillis: Int64) {
        let hash = anonymous.hash64
        // Only anonymous events keep a link alive (the anonymous id's shard sees those, not these).
        if let known = links.link(of: anonymous.bytes, hash: hash), links.isUser(at: known, user.bytes),
           !expire(known, atMillis: atMillis) {
            // Another instance holds the id: it may have restarted without the link since (state is in memory),
            // or a rebalance may have moved the id's partition there since the link was made here as a routing
            // link. Say it again now and then (the same link again is no change there).
            if !owns(anonymous.bytes) && atMillis > links.lastUsedMillis(at: known) &+ Self.relinkEveryMillis {
                links.touch(known, atMillis: atMillis)
                outbox.append((Self.otherInstance, IdentityChange(.link, anonymous: Array(anonymous.bytes), user: Array(user.bytes),
                                                                  atMillis: atMillis, generation: links.generation(at: known))))
            }
            return
        }
        linkGeneration += 1
        let anonymousOwner = destination(of: anonymous.bytes, hash: hash)
        if anonymousOwner == shardIndex {
            adopt(anonymous: anonymous.bytes, user: user.bytes, atMillis: atMillis, generation: linkGeneration)
        } else {
            // Resolve the id here at once: the routing shard forwards its events only after it has the link.
            links.set(anonymous: anonymous.bytes, hash: hash, user: user.bytes, routes: false, atMillis: atMillis,
                      generation: linkGeneration, forget: forget)
            outbox.append((anonymousOwner, IdentityChange(.link, anonymous: Array(anonymous.bytes), user: Array(user.bytes),
                                                          atMillis: atMillis, generation: linkGeneration)))
        }
    }

    /// On the anonymous id's shard: route the id to `user` from now on, and hand its history over.
    private func adopt(anonymous: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, atMillis: Int64, generation: UInt64) {
        let hash = nudgeHash64(anonymous)
        if let known = links.link(of: anonymous, hash: hash), links.routes(at: known), links.isUser(at: known, user),
           links.generation(at: known) == generation {
            return
        }
        let replaced = links.set(anonymous: anonymous, hash: hash, user: user, routes: true, atMillis: atMillis, generation: generation,
                                 forget: forget)
        if let replaced, replaced.routes { forget(replaced) }
        let detached = table.detach(RawText(anonymous))
        let handedContacts: ContactHistory
        switch detached?.from {
        case .hot(let freed):
            handedContacts = contacts.take(Int(freed.index))
            silences.forget(slot: Int(freed.index))
        case .cold(let attachment): handedContacts = ColdSlotState(attachment).contacts
        case nil: handedContacts = ContactHistory()
        }
        let cart = carts.detachCart(customer: anonymous)
        guard detached != nil || cart != nil || handedContacts.count > 0 else { return }
        let userOwner = destination(of: user, hash: nudgeHash64(user))
        if userOwner == shardIndex {
            absorb(features: detached?.customer, cart: cart, contacts: handedContacts, into: user)
        } else {
            outbox.append((userOwner, IdentityChange(.merge(features: detached?.customer, cart: cart, contacts: handedContacts),
                                                     anonymous: Array(anonymous), user: Array(user), atMillis: atMillis,
                                                     generation: generation)))
        }
    }

    /// On the customer's shard: fold an anonymous id's history into `user`.
    private func absorb(features: DetachedCustomer?, cart: CartState?, contacts handed: ContactHistory, into user: UnsafeRawBufferPointer) {
        let slot = table.slot(for: RawText(user))
        if let features { table.merge(features, into: slot) }
        contacts.absorb(handed, into: Int(slot.index))
        if let cart { carts.adoptCart(cart, customer: user, watermark: clock.millis) }
        identityMerges += 1
    }

    /// Whether the link at `index` has gone unused longer than the idle TTL before `atMillis` (see
    /// ``IdentityLink/isExpired(atMillis:ttlMillis:)``); if so it is removed, and forgotten by the customer's
    /// shard. The anonymous id is a new visitor from then on, as `nudge dataset` replays it.
    private func expire(_ index: IdentityLinks.Index, atMillis: Int64) -> Bool {
        guard links.isExpired(at: index, atMillis: atMillis, ttlMillis: idleTTLMillis) else { return false }
        let link = links.remove(at: index)
        if link.routes { forget(link) }
        return true
    }

    /// A routing link is gone here: the customer's shard, if another, forgets it too.
    private func forget(_ link: IdentityLink) {
        let userOwner = link.withIds { _, user in destination(of: user, hash: link.userHash) }
        guard userOwner != shardIndex else { return }
        outbox.append((userOwner, IdentityChange(.unlink, anonymous: link.anonymous, user: link.user, atMillis: link.lastUsedMillis,
                                                 generation: link.generation)))
    }

    /// Handles a message another shard sent (see ``outbox``).
    func handle(_ change: IdentityChange) {
        change.anonymous.withUnsafeBytes { anonymous in
            change.user.withUnsafeBytes { user in
                switch change.kind {
                case .link: adopt(anonymous: anonymous, user: user, atMillis: change.atMillis, generation: change.generation)
                case .merge(let features, let cart, let handed): absorb(features: features, cart: cart, contacts: handed, into: user)
                case .unlink: links.removeResolving(anonymous: anonymous, user: user, generation: change.generation)
                case .event: break  // events come through process(_:route:partition:relayedUser:)
                }
            }
        }
    }

    /// Moves the shard's clocks to wall time `wallMillis`: recomputes the watermark (idle partitions drop
    /// out) and fires up to `limit` timers it has passed, each through the same decider and contact policy
    /// as events, handing each decision to `publish`. Returns how many fired; `limit` of them means more
    /// may be due. Call between batches.
    @discardableResult
    func advance(wallMillis: Int64, limit: Int = .max, publish: (TimerDecision) -> Void) -> Int {
        clock.advance(wallMillis: wallMillis)
        if let maxSkewMillis { futureLimitMillis = wallMillis.addingSaturating(maxSkewMillis) }
        let watermark = clock.millis
        let table = self.table
        var fired = 0
        // Mid-rebalance nobody is known to be ours: timers wait for the assignment rather than being dropped.
        if ownership?.isBetweenAssignments == true { return 0 }
        // The two kinds in deadline order (a cart first on a tie): each queue runs up to the other's head.
        while fired < limit {
            let cartHead = carts.earliestDeadline
            let silenceHead = silences.earliestDeadline
            // (An empty queue's head reads Int64.max, which a watermark of Int64.max would otherwise pass.)
            guard carts.scheduled + silences.scheduled > 0, min(cartHead, silenceHead) <= watermark else { break }
            if carts.scheduled > 0 && cartHead <= silenceHead {
                guard let deadline = carts.nextDue(watermark: watermark, through: silenceHead, customerId: &timerCustomer) else { continue }
                // Restores the customer from the cold tier when they are there: a cart outlives eviction.
                guard servesTimerCustomer() else { continue }
                guard let slot = timerCustomer.withUnsafeBytes({ table.existingSlot(for: RawText($0)) }) else {
                    timersWithoutCustomer += 1
                    continue
                }
                fire(.cartAbandoned, slot: slot, deadline: deadline, publish: publish)
            } else {
                // Strictly before the cart's head: a silence due at the same time goes after the cart.
                let due = silences.nextDue(watermark: watermark, through: cartHead &- 1,
                                           newestEventMillis: { table.newestEventMillis(of: CustomerSlot(index: Int32($0))) })
                switch due {
                case .hot(let slot, let deadline):
                    let slot = CustomerSlot(index: Int32(slot))
                    timerCustomer.removeAll(keepingCapacity: true)
                    timerCustomer.append(contentsOf: table.customerIdBytes(of: slot))
                    guard servesTimerCustomer() else { continue }
                    fire(.customerSilent, slot: slot, deadline: deadline, publish: publish)
                case .cold(let hash, let deadline):
                    // Still cold and silent since: back to the hot tier, with their features, where the restore
                    // queues the silence again; it fires on a later pass of this loop. Else stale: came back, or
                    // dropped by the cold tier.
                    guard isColdSilence(hash: hash, deadline: deadline, id: &timerCustomer), servesTimerCustomer() else { continue }
                    _ = timerCustomer.withUnsafeBytes { table.existingSlot(for: RawText($0)) }
                    continue
                case nil: continue
                }
            }
            fired += 1
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
    /// contact already made after `at` must count. `event_time` is `stampedAt`: the triggering event's own
    /// timestamp (a late or future one is applied at another `at`), or the timer's deadline.
    private func decide(_ slot: CustomerSlot, customer: UnsafeRawBufferPointer, customerHash: UInt64, at: Int64, stampedAt: Int64,
                        trigger: Trigger) -> (json: UnsafeRawBufferPointer, actionSlot: Int, modelSlot: Int) {
        let slotIndex = Int(slot.index)
        let decideAt = max(at, table.newestEventMillis(of: slot))
        table.evaluate(slot, atMillis: decideAt, into: featureValues)
        let useChallenger = usesChallenger(customerHash)
        let decider = useChallenger ? (challenger ?? champion) : champion
        let slots = useChallenger ? challengerSlots : championSlots
        let decision = decider.decide(features: UnsafeBufferPointer(featureValues), lastChannel: table.lastChannel(of: slot),
                                      history: contacts[slotIndex], atMillis: decideAt)
        if let action = decision.actionIndex, let channel = decision.channel {
            contacts.record(slot: slotIndex, atMillis: decideAt, channel: channel, action: UInt8(truncatingIfNeeded: action))
        }
        let json = writer.write(decision: decision, customerId: customer, decider: decider,
                                trigger: trigger, eventTimeMillis: stampedAt, decidedAtMillis: wallClock())
        let actionSlot = decision.actionIndex.map { $0 < slots.actions.count ? slots.actions[$0] : 0 } ?? 0
        return (json, actionSlot, slots.model)
    }

    /// Moves up to `limit` slots' worth of customers idle past the TTL (against the watermark) to the cold
    /// tier, forgets identity links unused as long, and keeps the hot tier within its cap (see
    /// ``capHotTier()``). Between events only: a slot is valid until the next sweep. What the shard keeps
    /// by slot leaves with the customer (see `leave`).
    ///
    /// Waits while silences are due and not yet fired (``advance(wallMillis:limit:publish:)`` fires a
    /// bounded number per turn): evicting such a customer would drop their silence, which is kept by slot.
    @discardableResult
    func sweepIdle(limit: Int = 64) -> Int {
        var idle = 0
        if clock.millis != .min && silences.earliestDeadline > clock.millis {
            let cutoff = clock.millis &- idleTTLMillis
            // Links: a pass per minute of event time, each a 1,440th of the line, so a link goes within a day of
            // its TTL. A further allowed lateness of margin, so that no event in lateness could still have found
            // the link alive.
            let linkCutoff = cutoff &- latenessMillis
            if !links.isEmpty && linkCutoff >= linkSweepCutoff &+ 60_000 {
                linkSweepCutoff = linkCutoff
                links.sweep(before: linkCutoff, forget: forget)
            }
            idle = table.evictIdle(olderThanMillis: cutoff, limit: limit, onEvict: leave)
        }
        return idle + capHotTier()
    }

    /// Keeps the hot tier within ``PipelineConfig/maxHotCustomersPerShard`` customers, whatever the input
    /// (a flood of new ids cannot grow it without bound): past it, those idle longest move to the cold tier
    /// early (``CustomerTable/evictOverCapacity(_:limit:atMost:onEvict:)``), up to 1,024 a call, with what
    /// the shard keeps for them (see `leave`). Call it between batches of events (up to
    /// ``ShardWorker/batchSize``): under the cap it costs a comparison. The tier exceeds the cap by at most a
    /// batch. A cap sized for the customers really active within the look-back is only reached by a flood.
    @discardableResult
    func capHotTier() -> Int {
        table.evictOverCapacity(maxHotCustomers, limit: 32 * 1_024, atMost: 1_024, onEvict: leave)
    }

    /// What the shard keeps by slot, as a customer leaves it for the cold tier, goes with them in
    /// `attachment` (a ``ColdSlotState``): the contacts the policy can still count, so that no cap or
    /// cooldown is broken by an early eviction (``CustomerTable/onRestore`` brings them back, and identity
    /// stitching hands them on), and a queued silence, which moves to the cold queue.
    ///
    /// Contacts are kept from the look-back before the customer's newest event or the watermark, whichever
    /// is earlier: every later decision for them is at their newest event or after (a timer due earlier
    /// decides at that newest time).
    private func leave(_ slot: CustomerSlot, attachment: inout ColdAttachment) {
        let index = Int(slot.index)
        let newest = table.newestEventMillis(of: slot)
        let since = min(clock.millis, newest)
        let cutoff = since == .min ? Int64.min : since &- models.policy.lookBackMillis
        // The cold queue holds at most one live entry per cold customer: past twice that, drop the stale. Before
        // this customer's entry goes in: the cold tier takes them only once this returns, so the test would
        // find theirs stale.
        if silences.coldScheduled > 2 * table.coldCount + 4_096 {
            var id: [UInt8] = []
            silences.compactCold { hash, deadline in isColdSilence(hash: hash, deadline: deadline, id: &id) }
        }
        let silence = silences.leave(slot: index, hash: nudgeHash64(table.customerIdBytes(of: slot)), newest: newest)
        attachment = ColdSlotState(contacts: contacts.take(index).kept(after: cutoff), silenceDeadline: silence).attachment
    }

    /// Whether the cold customer whose id hashes to `hash` still carries a silence due at `deadline` (their
    /// id is then in `id`).
    private func isColdSilence(hash: UInt64, deadline: Int64, id: inout [UInt8]) -> Bool {
        table.coldCustomer(hash: hash, id: &id).map { ColdSlotState($0).silenceDeadline == deadline } ?? false
    }

    /// Whether the challenger models decide for the customer with this id hash (a stable split).
    private func usesChallenger(_ customerHash: UInt64) -> Bool {
        challenger != nil && models.usesChallenger(customerHash: customerHash)
    }

    /// Whether the customer whose timer is due (their id in `timerCustomer`) is still this instance's; if
    /// not, the timer is counted as dropped. After a rebalance moved their input partition away, the new
    /// owner decides for them (from the events it reads), and this instance must not fire their carts and
    /// silences on stale state.
    private func servesTimerCustomer() -> Bool {
        guard timerCustomer.withUnsafeBytes({ owns($0) }) else {
            timersWithoutCustomer += 1
            return false
        }
        return true
    }

    /// Decides for a due timer of the customer in `slot` (whose id is in `timerCustomer`) at its deadline.
    private func fire(_ kind: TimerKind, slot: CustomerSlot, deadline: Int64, publish: (TimerDecision) -> Void) {
        switch kind {
        case .cartAbandoned: timersFired.carts += 1
        case .customerSilent: timersFired.silences += 1
        }
        timerCustomer.withUnsafeBytes { id in
            let decided = decide(slot, customer: id, customerHash: nudgeHash64(id), at: deadline, stampedAt: deadline,
                                 trigger: .timer(kind.wireName, customerId: id, deadlineMillis: deadline))
            publish(TimerDecision(json: decided.json, customer: id, actionSlot: decided.actionSlot, modelSlot: decided.modelSlot,
                                  kind: kind))
        }
    }

    /// The dead-letter reason of an event stamped beyond the allowed clock skew (cold path, as for late ones).
    private func futureError(_ eventMillis: Int64) -> DecodeError {
        DecodeError(.future, "timestamp \(ISO8601Time.format(millis: eventMillis)) is ahead of this instance's clock "
                        + "\(ISO8601Time.format(millis: clock.wallMillis)) by more than the allowed skew (\((maxSkewMillis ?? 0) / 1000) s)")
    }

    /// How ``observeAndJudge(_:partition:)`` found an event's time (no payload: a trivial value on the hot path).
    private enum Lateness { case onTime, late, refused }

    /// Advances `partition`'s clock by the event, then judges it against the watermark: on time; late and
    /// moved to the watermark (`--late-events apply`); or late and to be dead-lettered (``lateError(_:)``).
    @inline(__always)
    private func observeAndJudge(_ event: inout SegmentEvent, partition: Int) -> Lateness {
        clock.observe(partition: partition, eventMillis: event.timestampMillis)
        guard clock.isLate(event.timestampMillis) else { return .onTime }
        lateEvents += 1
        switch latePolicy {
        case .deadLetter: return .refused
        case .applyToCurrent:
            event.timestampMillis = clock.millis
            return .late
        }
    }

    /// How an event about to be relayed to another instance is judged here (see ``RelayedEventTime``); nil
    /// when it is late and to be dead-lettered. Not inlined: relaying is rare, and the common path keeps the
    /// one inlined copy of ``observeAndJudge(_:partition:)``.
    @inline(never)
    private func relayedEventTime(_ event: inout SegmentEvent, partition: Int, future: Bool) -> RelayedEventTime? {
        if future { return .future(atMillis: event.timestampMillis) }
        switch observeAndJudge(&event, partition: partition) {
        case .refused: return nil
        case .late: return .late(atMillis: event.timestampMillis)
        case .onTime: return .onTime
        }
    }

    /// The dead-letter reason of a late event (cold path: late events are rare, and this one is dropped).
    private func lateError(_ eventMillis: Int64) -> DecodeError {
        DecodeError(.late, "timestamp \(ISO8601Time.format(millis: eventMillis)) is older than the shard's watermark "
                        + "\(ISO8601Time.format(millis: clock.millis)) (allowed lateness \(latenessMillis / 1000) s)")
    }

    /// What this shard knows of the id: the customer's snapshot (``snapshot(of:atMillis:)``), else the
    /// customer an identity link this shard routes the id to names, while the link is in force (by the
    /// shard's newest event time, as the id's next event would be judged; a shard that has handled no event
    /// yet keeps every link). Reads only.
    func inspection(of id: [UInt8], atMillis requested: Int64?) -> InspectionAnswer {
        if let snapshot = snapshot(of: id, atMillis: requested) { return .customer(snapshot) }
        let now = clock.newestEventMillis
        return id.withUnsafeBytes { (id) -> InspectionAnswer in
            guard let link = links.link(of: id, hash: nudgeHash64(id)), links.routes(at: link),
                  now == .min || !links.isExpired(at: link, atMillis: now, ttlMillis: idleTTLMillis) else { return .unknown }
            return links.withIds(at: link) { (_, user) -> InspectionAnswer in
                .linked(user: Array(user), elsewhere: destination(of: user, hash: links.userHash(at: link)) == Self.otherInstance)
            }
        }
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
        let history = contacts[slotIndex]
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
