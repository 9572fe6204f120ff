import Atomics
import DequeModule
import Foundation
import Logging
import NudgeEvents
import NudgeFeatures
import NudgeKafka

/// What a shard's queues carry.
enum ShardWork: BitwiseCopyable {
    /// A consumed message (released by the shard that finishes with it), the index of its partition's offset
    /// tracker, and how it reached the shard.
    case event(KafkaMessage, tracker: Int32, route: EventRoute)
    /// An identity message from another shard (retained by the sender, released by the receiver).
    case identity(Unmanaged<IdentityChange>)

    /// Lets go of what it carries, unhandled (stopping): a message's offset stays uncommitted.
    func discard() {
        switch self {
        case .event(let message, _, _): message.release()
        case .identity(let change): change.release()
        }
    }
}

/// What every shard shares: read-only after start, or thread-safe.
final class ShardEnvironment: @unchecked Sendable {
    // Sendable: immutable references to thread-safe objects; `shards` is set once before any
    // shard thread starts.
    let config: PipelineConfig
    let producer: KafkaProducer
    let recommendations: ProducerTopic
    let deadLetters: ProducerTopic
    /// The identity topic, and which customers this instance owns (see ``InstanceOwnership``).
    let identity: ProducerTopic
    let ownership: InstanceOwnership
    let identityFingerprint: UInt64
    let trackers: TrackerTable
    let models: ModelStore
    let counterNames: (actions: CounterNames, models: CounterNames)
    let features: FeatureSet
    let logger: Logger
    /// Outputs refused for good, for `/health`.
    let faults: FaultRecorder
    /// Which partitions are assigned, for the watermarks.
    let assignments = PartitionAssignments()
    var shards: [ShardWorker] = []

    init(config: PipelineConfig, producer: KafkaProducer, trackers: TrackerTable, models: ModelStore,
         counterNames: (actions: CounterNames, models: CounterNames), features: FeatureSet, faults: FaultRecorder, logger: Logger) {
        self.counterNames = counterNames
        self.faults = faults
        self.config = config
        self.producer = producer
        recommendations = producer.topic(config.topics.recommendations)
        deadLetters = producer.topic(config.topics.deadLetter)
        identity = producer.topic(config.topics.identity)
        ownership = InstanceOwnership(partitioner: config.keyPartitioner)
        identityFingerprint = IdentityWire.fingerprint(of: features)
        self.trackers = trackers
        self.models = models
        self.features = features
        self.logger = logger
    }

    /// The shard that owns a customer: by the hash of its id, the same hash the consumer routes keys with.
    @inline(__always) func owner(ofHash hash: UInt64) -> Int { Int(hash % UInt64(shards.count)) }
}

/// One shard of the customer store and the thread that owns it. Everything about its customers
/// (features, contact history, duplicate filter) is touched by this thread alone, so the hot path
/// takes no lock; work arrives through lock-free queues, and so do readers' questions (inspections), which
/// the thread answers between events.
final class ShardWorker: @unchecked Sendable {
    // Sendable: the queues and counters are thread-safe; all other state is confined to the
    // shard's own thread (`run`).
    let index: Int
    /// Messages from the consumer thread.
    let inbox: BoundedQueue<ShardWork>
    /// Messages other shards routed here (their customer hashes to this shard).
    let forwards: BoundedQueue<ShardWork>
    /// Readers' inspections of this shard's customers.
    let inspections: InspectionMailbox
    let counters = ShardCounters()
    private let env: ShardEnvironment
    private let processor: EventProcessor
    private var thread: BlockingThread?
    private let stoppingFlag = Locked(false)
    /// ``PartitionAssignments/version`` last synced into the processor (shard thread only).
    private var assignmentsSeen: UInt64 = 0
    /// Work for other shards whose forwards queue was full, by shard (shard thread only).
    private var held: [Deque<ShardWork>] = []
    /// The works being handled (reused buffer; see ``handleBatch(from:)``).
    private var batch: [ShardWork] = []
    private var heldCount = 0

    init(index: Int, env: ShardEnvironment) {
        self.index = index
        self.env = env
        let inbox = BoundedQueue<ShardWork>(capacity: env.config.shardQueueCapacity)
        self.inbox = inbox
        forwards = BoundedQueue(capacity: env.config.shardQueueCapacity)
        // The thread sleeps on its inbox: a queued inspection wakes it there.
        inspections = InspectionMailbox(shard: index, capacity: Self.inspectionCapacity) { inbox.wakeConsumer() }
        processor = EventProcessor(shardIndex: index, shardCount: env.config.shards, config: env.config,
                                   models: env.models, features: env.features, counterNames: env.counterNames,
                                   ownership: env.ownership)
    }

    /// Starts the shard's thread.
    func start() {
        thread = BlockingThread(name: "nudge-shard-\(index)") { [self] in run() }
    }

    /// Inspections one shard holds queued at most; more are refused as busy rather than waited for.
    static let inspectionCapacity = 1024
    /// Inspections answered per turn of the loop, so that a burst of readers cannot starve the events.
    static let inspectionsPerTurn = 64
    /// Timers fired per turn of the loop: a watermark jump can make many due at once, and events must
    /// keep flowing meanwhile.
    static let timersPerTurn = 256
    /// Works taken from a queue at a time: the inbox's share of one turn of the loop.
    static let batchSize = 256
    /// Batches of forwarded work one turn takes before inspections, timers and sweeps get their turn again:
    /// forwards go first (they hold other shards' offsets back), but a shard that keeps forwarding must not
    /// keep this one's inspections waiting into their timeout.
    static let forwardBatchesPerTurn = 16

    /// Applies one message to this shard's store on the calling thread, before ``start()`` (see
    /// ``Pipeline/preload(key:value:)``).
    func preload(_ value: UnsafeRawBufferPointer) {
        // No partition: the message has no offset and must not hold a partition's watermark.
        _ = processor.process(value, route: .forwarded, partition: -1)
        processor.outbox.removeAll()
    }

    /// Asks the thread to finish once its queues are empty (and nothing it holds for another shard is left).
    /// Ask every shard before waiting for any: they forward work to one another.
    func requestStop() {
        stoppingFlag.withLock { $0 = true }
        inbox.wakeConsumer()
    }

    /// Waits for the thread to finish (after ``requestStop()``).
    func join() { thread?.join() }

    /// After every shard has joined: releases what others forwarded to this one after it finished (stopping
    /// past the drain timeout). Unreleased, a message would keep librdkafka's handle from being destroyed.
    /// Their offsets stay uncommitted: read again after a restart.
    func releaseLeftovers() {
        for queue in [forwards, inbox] {
            while let work = queue.pop() { work.discard() }
        }
    }

    /// True once the thread has finished: work forwarded to it then is never handled.
    private let finished = ManagedAtomic(false)

    private func run() {
        held = Array(repeating: [], count: env.shards.count)
        while true {
            // Between events: the one writer reads its own state, so the snapshot is consistent without a lock.
            inspections.answerPending(limit: Self.inspectionsPerTurn) { processor.inspection(of: $0, atMillis: $1) }
            processor.refreshModels()
            syncAssignments()
            // One clock read per turn: the watermark moves, idle partitions drop out, due timers fire.
            let fired = processor.advance(wallMillis: wallClockMillis(), limit: Self.timersPerTurn) { publish($0) }
            var worked = fired == Self.timersPerTurn
            processor.sweepIdle()
            sendIdentityChanges(source: nil)
            if sendHeld() { worked = true }
            // The hot tier's cap after every batch: a turn can take many batches of forwards.
            for _ in 0..<Self.forwardBatchesPerTurn {
                guard handleBatch(from: forwards) > 0 else { break }
                worked = true
                processor.capHotTier()
            }
            if handleBatch(from: inbox) > 0 {
                worked = true
                processor.capHotTier()
            }
            publishEventTime()
            if worked {
                counters.customers.set(processor.table.count)
                continue
            }
            counters.storeBytes.set(processor.stateBytes)
            counters.coldCustomers.set(processor.table.coldCount)
            counters.evictions.set(processor.table.evictions)
            counters.forcedEvictions.set(processor.table.forcedEvictions)
            counters.restores.set(processor.table.restores)
            counters.coldDropped.set(processor.table.coldDropped)
            if stoppingFlag.withLock({ $0 }) {
                dropHeldForFinishedShards()
                if heldCount == 0 && !inbox.hasValue && !forwards.hasValue && !inspections.hasPending {
                    finished.store(true, ordering: .releasing)
                    return
                }
            }
            // Work held for a full shard is retried soon, not after a full sleep.
            inbox.waitForValue(timeout: .milliseconds(heldCount > 0 ? 1 : 200)) { [forwards, inspections] in
                forwards.hasValue || inspections.hasPending
            }
        }
    }

    /// Takes up to ``batchSize`` works from `queue` and handles them in order, staging each event
    /// ``EventLookahead/depth`` works before its turn so its memory is in the cache when it comes (see
    /// ``EventProcessor/stage(_:)``); returns how many it handled. The batch's messages stay alive until
    /// handled, which staging needs.
    private func handleBatch(from queue: BoundedQueue<ShardWork>) -> Int {
        while batch.count < Self.batchSize, let w = queue.pop() { batch.append(w) }
        let count = batch.count
        guard count > 0 else { return 0 }
        // Room again: the consumer, if it waits on this queue, refills it while this batch is handled. Only
        // once half is free, so that it refills in long runs rather than a wake-up per batch.
        if queue.approximateCount <= queue.capacity / 2 { queue.wakeProducer() }
        let depth = EventLookahead.depth
        for i in 0..<min(depth, count) { stage(batch[i]) }
        for i in 0..<count {
            if i + depth < count { stage(batch[i + depth]) }
            handle(batch[i])
        }
        processor.clearLookahead()
        batch.removeAll(keepingCapacity: true)
        return count
    }

    /// Stages `work` for the processor's lookahead if it is an event the processor will decode as it is,
    /// and asks for the memory its release will read.
    @inline(__always)
    private func stage(_ work: ShardWork) {
        guard case .event(let message, _, let route) = work else { return }
        message.prefetchRelease()
        if route != .relayed { processor.stage(message.value) }
    }

    private func handle(_ work: ShardWork) {
        switch work {
        case .event(let message, let tracker, let route):
            process(message, tracker: tracker, route: route)
        case .identity(let unmanaged):
            let change = unmanaged.takeRetainedValue()
            processor.handle(change)
            guard change.source != DeliveryToken.none else {
                sendIdentityChanges(source: nil)
                return
            }
            // What it causes holds the same offset; then the forwarding shard's hold is let go.
            let tracker = DeliveryToken.tracker(change.source), offset = DeliveryToken.offset(change.source)
            sendIdentityChanges(source: (tracker, offset, nil))
            env.trackers[tracker]?.complete(offset: offset)
        }
    }

    /// Delivers the processor's identity messages: to a shard of this instance behind what this shard
    /// forwarded there before, or to the identity topic on the partition of the id whose owner must receive
    /// it. A link, a merge or a relayed event holds `source`'s offset (see ``OffsetTracker/hold(offset:)``)
    /// until the broker has it, or until the receiving shard has handled it and sent what it caused in turn:
    /// called before the source's own hold is let go. An unlink holds nothing: lost, the customer's copy of
    /// the link only lives until its TTL. A relayed event (``IdentityChange/Kind/event``) also carries how its
    /// time was judged here (``RelayedEventTime``) and the source message's topic, partition, offset and key as
    /// headers, so that the instance that dead-letters it names where it came from, not the identity topic.
    @inline(__always)
    private func sendIdentityChanges(source: (tracker: Int, offset: Int64, message: KafkaMessage?)?) {
        guard !processor.outbox.isEmpty else { return }
        let changes = processor.outbox
        processor.outbox.removeAll(keepingCapacity: true)
        for (shard, change) in changes {
            counters.identityMessages.add()
            var token = DeliveryToken.none
            if let source, !change.isUnlink, let tracker = env.trackers[source.tracker] {
                tracker.hold(offset: source.offset)
                token = DeliveryToken.make(tracker: source.tracker, offset: source.offset, recommendation: false)
            }
            guard shard == EventProcessor.otherInstance else {
                forward(.identity(Unmanaged.passRetained(token == DeliveryToken.none ? change : change.caused(by: token))), to: shard)
                continue
            }
            var headers: KafkaHeaders?
            if case .event(_, let time) = change.kind {
                var relayed = KafkaHeaders()
                if token != DeliveryToken.none, let message = source?.message { relayed = Self.sourceHeaders(of: message) }
                if let time { relayed.add(RelayedEventTime.header, time.headerValue) }
                headers = relayed
            }
            let key = change.key
            let partition = key.withUnsafeBytes { env.ownership.partitioner.partition(of: $0, count: Int32(env.ownership.partitionCount)) }
            do {
                try env.producer.send(to: env.identity, key: key, value: IdentityWire.encode(change, fingerprint: env.identityFingerprint),
                                      headers: headers, partition: partition, token: token)
            } catch {
                sendFailed("identity message for \(env.config.topics.identity)", token: token, error)
            }
        }
    }

    /// The outcome of a consumed message: an event, or a message from the identity topic (another instance's
    /// identity change, or an event it relayed to a customer of ours).
    /// A relayed event that is dead-lettered goes out as the original event (`relayedEvent`), not its wrapper.
    private func outcome(of message: KafkaMessage, route: EventRoute, partition: Int) -> (EventOutcome, relayedEvent: [UInt8]?) {
        guard route == .relayed else { return (processor.process(message.value, route: route, partition: partition), nil) }
        let change: IdentityChange
        do throws(IdentityWire.Malformed) {
            change = try IdentityWire.decode(message.value, fingerprint: env.identityFingerprint)
        } catch {
            return (.invalid(DecodeError(.invalidJSON, error.description)), nil)
        }
        if case .event(let value, _) = change.kind {
            // Its watermark is its source partition's, on the instance that read it, which judged its time: no
            // partition here.
            let time = message.headers[RelayedEventTime.header].flatMap { RelayedEventTime(headerValue: $0) }
            let outcome = change.user.withUnsafeBytes { user in
                value.withUnsafeBytes { processor.process($0, route: .relayed, partition: -1, relayedUser: user, relayedTime: time) }
            }
            return (outcome, value)
        }
        processor.handle(change)
        return (.updated, nil)
    }

    private func process(_ message: KafkaMessage, tracker: Int32, route: EventRoute) {
        let trackerIndex = Int(tracker)
        let offset = message.offset
        let (outcome, relayedEvent) = outcome(of: message, route: route, partition: trackerIndex)
        // While the processing hold is still ours: the identity messages the offset waits for take their own.
        sendIdentityChanges(source: (trackerIndex, offset, message))
        switch outcome {
        case .invalid(let error):
            counters.eventsIn.add()
            deadLetter(message, error, trackerIndex: trackerIndex, value: relayedEvent)
        case .misrouted(let owner):
            // The key did not name the customer the event is about (or was empty): hand the
            // message to the shard that owns the customer, so each customer has one writer.
            counters.forwarded.add()
            forward(.event(message, tracker: tracker, route: .forwarded), to: owner)
            return  // the owner releases it
        case .aliased(let owner):
            // An anonymous id linked to another shard's customer: the customer's shard resolves it.
            counters.forwarded.add()
            // A relayed message stays wrapped (the next shard unwraps it again and checks it for duplicates).
            forward(.event(message, tracker: tracker, route: route == .relayed ? .relayed : .aliased), to: owner)
            return
        case .relayed:
            // Bound for the customer's instance (sent above); the offset waits for that delivery.
            counters.eventsIn.add()
            counters.forwarded.add()
            env.trackers[trackerIndex]?.complete(offset: offset)
        case .duplicate:
            counters.eventsIn.add()
            counters.duplicates.add()
            env.trackers[trackerIndex]?.complete(offset: offset)
        case .updated:
            counters.eventsIn.add()
            env.trackers[trackerIndex]?.complete(offset: offset)
        case .outcome(let outcome, let modelSlot):
            counters.eventsIn.add()
            counters.countOutcome(outcome, modelSlot: modelSlot)
            env.trackers[trackerIndex]?.complete(offset: offset)
        case .decided(let json, let customer, let actionSlot, let modelSlot):
            counters.eventsIn.add()
            counters.countDecision(actionSlot: actionSlot, modelSlot: modelSlot)
            do {
                try env.producer.send(to: env.recommendations, key: customer, value: json,
                                      token: DeliveryToken.make(tracker: trackerIndex, offset: offset, recommendation: true))
            } catch {
                // Not completing the offset keeps it uncommitted: it is re-read after a restart.
                sendFailed("recommendation", token: DeliveryToken.make(tracker: trackerIndex, offset: offset, recommendation: true), error)
            }
        }
        message.release()
    }

    /// Sends a timer's decision. No offset waits for it (see ``EventProcessor``'s note on at-least-once).
    private func publish(_ decision: TimerDecision) {
        counters.countDecision(actionSlot: decision.actionSlot, modelSlot: decision.modelSlot)
        do {
            try env.producer.send(to: env.recommendations, key: decision.customer, value: decision.json, token: DeliveryToken.none)
        } catch {
            sendFailed("timer recommendation (\(decision.kind.wireName))", token: DeliveryToken.none, error)
        }
    }

    /// Brings the processor's partitions in line with the instance's assignment, after a rebalance.
    private func syncAssignments() {
        let version = env.assignments.version.load(ordering: .acquiring)
        guard version != assignmentsSeen else { return }
        assignmentsSeen = version
        for slot in 0..<env.assignments.capacity {
            let epoch = env.assignments.epoch(of: slot)
            if epoch != 0 {
                processor.assignPartition(slot, epoch: epoch)
            } else if processor.trackedEpoch(of: slot) != nil {
                processor.revokePartition(slot)
            }
        }
    }

    /// Event-time gauges and counters for metrics: plain stores, once per turn.
    private func publishEventTime() {
        counters.lateEvents.set(processor.lateEvents)
        counters.futureEvents.set(processor.futureEvents)
        counters.watermarkMillis.set(Int(processor.watermarkMillis))
        counters.newestEventMillis.set(Int(processor.newestEventMillis))
        counters.timersScheduled.set(processor.timersScheduled)
        counters.timersFiredCartAbandoned.set(processor.timersFired(.cartAbandoned))
        counters.timersFiredCustomerSilent.set(processor.timersFired(.customerSilent))
        counters.timersDropped.set(processor.timersDropped)
        counters.identityLinks.set(processor.identityLinks)
        counters.identityMerges.set(processor.identityMerges)
        counters.identityLinksForgotten.set(processor.identityLinksForgotten)
        counters.identityMisses.set(processor.identityMisses)
    }

    /// Sends work to another shard's forwards queue, in order: behind anything held for that shard. A full
    /// queue never blocks this thread (two shards forwarding to each other could wait on each other, and
    /// handling our own queue meanwhile could forward again, without bound): the work is held and sent
    /// between events (``sendHeld()``).
    private func forward(_ work: ShardWork, to owner: Int) {
        if held[owner].isEmpty && env.shards[owner].forwards.tryPush(work) {
            // The owner sleeps on its inbox, not on its forwards.
            env.shards[owner].inbox.wakeConsumer()
            return
        }
        held[owner].append(work)
        heldCount += 1
    }

    /// Stopping, after the drain timeout: a shard that finished first never takes work held for it, which
    /// would keep this one waiting for good. Its messages go back unhandled (their offsets uncommitted, so
    /// they are read again after a restart).
    private func dropHeldForFinishedShards() {
        guard heldCount > 0 else { return }
        for owner in held.indices where !held[owner].isEmpty && env.shards[owner].finished.load(ordering: .acquiring) {
            for work in held[owner] { work.discard() }
            heldCount -= held[owner].count
            held[owner].removeAll()
        }
    }

    /// Sends what ``forward(_:to:)`` held while queues were full, in order per shard; true if any went.
    private func sendHeld() -> Bool {
        guard heldCount > 0 else { return false }
        var sent = 0
        for owner in held.indices where !held[owner].isEmpty {
            let target = env.shards[owner].forwards
            let before = held[owner].count
            while let work = held[owner].first, target.tryPush(work) { held[owner].removeFirst() }
            let n = before - held[owner].count
            guard n > 0 else { continue }
            sent += n
            env.shards[owner].inbox.wakeConsumer()
        }
        heldCount -= sent
        return sent > 0
    }

    /// Most bytes of a dead letter's key and value: below librdkafka's default `message.max.bytes` (1,000,000)
    /// and the broker's, with room for the headers. A longer value is cut, and says so in `x-truncated`.
    static let maxDeadLetterBytes = 900_000
    /// Most bytes of a dead letter's key.
    static let maxDeadLetterKeyBytes = 65_536

    private func deadLetter(_ message: KafkaMessage, _ error: DecodeError, trackerIndex: Int, value: [UInt8]? = nil) {
        counters.deadLetters.add()
        var headers = KafkaHeaders()
        headers.add("x-error", error.code.rawValue)
        headers.add("x-error-detail", error.detail)
        let token = DeliveryToken.make(tracker: trackerIndex, offset: message.offset, recommendation: false)
        // A relayed event names the message it was read from on the relaying instance (an instance before
        // these headers relays without them: the identity message is named then), and the relay beside it.
        if let value, case let relayed = message.headers, let topic = relayed["x-source-topic"],
           let partition = relayed["x-source-partition"], let offset = relayed["x-source-offset"], let key = relayed.bytes("x-source-key") {
            headers.add("x-source-topic", topic)
            headers.add("x-source-partition", partition)
            headers.add("x-source-offset", offset)
            headers.add("x-relayed-via", "\(message.topic)/\(message.partition)@\(message.offset)")
            key.withUnsafeBytes { key in value.withUnsafeBytes { sendDeadLetter(key: key, value: $0, headers: &headers, token: token) } }
            return
        }
        Self.addSource(of: message, to: &headers)
        if let value {
            value.withUnsafeBytes { sendDeadLetter(key: message.key, value: $0, headers: &headers, token: token) }
        } else {
            sendDeadLetter(key: message.key, value: message.value, headers: &headers, token: token)
        }
    }

    /// Where a relayed event was read: the headers its identity message carries (see `deadLetter`).
    private static func sourceHeaders(of message: KafkaMessage) -> KafkaHeaders {
        var headers = KafkaHeaders()
        addSource(of: message, to: &headers)
        headers.add("x-source-key", bytes: Array(message.key))
        return headers
    }

    /// `x-source-topic`, `x-source-partition` and `x-source-offset` naming `message`.
    private static func addSource(of message: KafkaMessage, to headers: inout KafkaHeaders) {
        headers.add("x-source-topic", message.topic)
        headers.add("x-source-partition", String(message.partition))
        headers.add("x-source-offset", String(message.offset))
    }

    /// Whatever the source topic let in, a dead letter must fit the producer's (and the broker's) limit: one
    /// refused for good would hold its partition's commit, and once the window filled, the consumer.
    private func sendDeadLetter(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, headers: inout KafkaHeaders, token: UInt64) {
        let key = UnsafeRawBufferPointer(rebasing: key.prefix(Self.maxDeadLetterKeyBytes))
        let budget = Self.maxDeadLetterBytes - key.count
        if value.count > budget {
            headers.add("x-truncated", "the value had \(value.count) bytes; these are the first \(budget)")
        }
        do {
            try env.producer.send(to: env.deadLetters, key: key, value: UnsafeRawBufferPointer(rebasing: value.prefix(budget)),
                                  headers: headers, token: token)
        } catch {
            sendFailed("dead letter", token: token, error)
        }
    }

    /// Counts and logs a send that failed; if an offset of a partition still ours waits for the output (its
    /// `token` names one), that offset never finishes, which is a ``PipelineFault``. A send abandoned as the
    /// pipeline stops is neither (the producer counts those).
    private func sendFailed(_ output: String, token: UInt64, _ error: KafkaError) {
        guard !error.isAbandonedAtClose else { return }
        counters.sendFailures.add()
        env.logger.error("\(output) not sent: \(error)")
        guard let (partition, offset) = env.trackers.outputLost(token: token) else { return }
        env.faults.record("the \(output) caused by \(partition) offset \(offset) could not be sent: \(error)")
    }
}

/// Wall-clock milliseconds since the epoch (for `decided_at`).
@inline(__always) func wallClockMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic nanoseconds (for latency).
@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
