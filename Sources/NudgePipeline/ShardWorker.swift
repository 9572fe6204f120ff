import Foundation
import Logging
import NudgeEvents
import NudgeFeatures
import NudgeKafka

/// One consumed message on its way through a shard.
struct ShardWork: BitwiseCopyable {
    /// The consumed message (released by the shard that finishes with it).
    var message: KafkaMessage
    /// Index of the partition's offset tracker.
    var tracker: Int32
    /// Set once another shard has routed this message to its owner: it is never routed again.
    var forwarded: Bool
}

/// What every shard shares: read-only after start, or thread-safe.
final class ShardEnvironment: @unchecked Sendable {
    // Sendable: immutable references to thread-safe objects; `shards` is set once before any
    // shard thread starts.
    let config: PipelineConfig
    let producer: KafkaProducer
    let recommendations: ProducerTopic
    let deadLetters: ProducerTopic
    let trackers: TrackerTable
    let models: ModelStore
    let counterNames: (actions: CounterNames, models: CounterNames)
    let features: FeatureSet
    let logger: Logger
    /// Which partitions are assigned, for the watermarks.
    let assignments = PartitionAssignments()
    var shards: [ShardWorker] = []

    init(config: PipelineConfig, producer: KafkaProducer, trackers: TrackerTable, models: ModelStore,
         counterNames: (actions: CounterNames, models: CounterNames), features: FeatureSet, logger: Logger) {
        self.counterNames = counterNames
        self.config = config
        self.producer = producer
        recommendations = producer.topic(config.topics.recommendations)
        deadLetters = producer.topic(config.topics.deadLetter)
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

    init(index: Int, env: ShardEnvironment) {
        self.index = index
        self.env = env
        let inbox = BoundedQueue<ShardWork>(capacity: env.config.shardQueueCapacity)
        self.inbox = inbox
        forwards = BoundedQueue(capacity: env.config.shardQueueCapacity)
        // The thread sleeps on its inbox: a queued inspection wakes it there.
        inspections = InspectionMailbox(shard: index, capacity: Self.inspectionCapacity) { inbox.wakeConsumer() }
        processor = EventProcessor(shardIndex: index, shardCount: env.config.shards, config: env.config,
                                   models: env.models, features: env.features, counterNames: env.counterNames)
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

    /// Asks the thread to finish once its queues are empty, and waits for it.
    func stopAfterDraining() {
        stoppingFlag.withLock { $0 = true }
        inbox.wakeConsumer()
        thread?.join()
    }

    private func run() {
        while true {
            // Between events: the one writer reads its own state, so the snapshot is consistent without a lock.
            inspections.answerPending(limit: Self.inspectionsPerTurn) { processor.snapshot(of: $0, atMillis: $1) }
            processor.refreshModels()
            syncAssignments()
            // One clock read per turn: the watermark moves, idle partitions drop out, due timers fire.
            let fired = processor.advance(wallMillis: wallClockMillis(), limit: Self.timersPerTurn) { publish($0) }
            var worked = fired == Self.timersPerTurn
            processor.sweepIdle()
            while let w = forwards.pop() { process(w); worked = true }
            var n = 0
            while n < 256, let w = inbox.pop() { process(w); n += 1; worked = true }
            publishEventTime()
            if worked {
                counters.customers.set(processor.table.count)
                continue
            }
            counters.storeBytes.set(processor.stateBytes)
            counters.coldCustomers.set(processor.table.coldCount)
            counters.evictions.set(processor.table.evictions)
            counters.restores.set(processor.table.restores)
            counters.coldDropped.set(processor.table.coldDropped)
            if stoppingFlag.withLock({ $0 }) && !inbox.hasValue && !forwards.hasValue && !inspections.hasPending { return }
            inbox.waitForValue(timeout: .milliseconds(200)) { [forwards, inspections] in forwards.hasValue || inspections.hasPending }
        }
    }

    private func process(_ work: ShardWork) {
        let message = work.message
        let trackerIndex = Int(work.tracker)
        let offset = message.offset
        switch processor.process(message.value, forwarded: work.forwarded, partition: trackerIndex) {
        case .invalid(let error):
            counters.eventsIn.add()
            deadLetter(message, error, trackerIndex: trackerIndex)
        case .misrouted(let owner):
            // The key did not name the customer the event is about (or was empty): hand the
            // message to the shard that owns the customer, so each customer has one writer.
            counters.forwarded.add()
            forward(ShardWork(message: message, tracker: work.tracker, forwarded: true), to: owner)
            return  // the owner releases it
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
                counters.sendFailures.add()
                env.logger.error("recommendation not sent: \(error)")
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
            counters.sendFailures.add()
            env.logger.error("timer recommendation (\(decision.kind.wireName)) not sent: \(error)")
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
        counters.watermarkMillis.set(Int(processor.watermarkMillis))
        counters.newestEventMillis.set(Int(processor.newestEventMillis))
        counters.timersScheduled.set(processor.timersScheduled)
        counters.timersFiredCartAbandoned.set(processor.timersFired(.cartAbandoned))
        counters.timersFiredCustomerSilent.set(processor.timersFired(.customerSilent))
        counters.timersDropped.set(processor.timersDropped)
    }

    private func forward(_ work: ShardWork, to owner: Int) {
        let target = env.shards[owner].forwards
        while !target.tryPush(work) {
            // While the owner is full, keep draining our own forwards so two shards forwarding to
            // each other can never wait on each other.
            if let mine = forwards.pop() { process(mine) } else { sched_yield() }
        }
        // The owner sleeps on its inbox, not on its forwards.
        env.shards[owner].inbox.wakeConsumer()
    }

    private func deadLetter(_ message: KafkaMessage, _ error: DecodeError, trackerIndex: Int) {
        counters.deadLetters.add()
        var headers = KafkaHeaders()
        headers.add("x-error", error.code.rawValue)
        headers.add("x-error-detail", error.detail)
        headers.add("x-source-topic", message.topic)
        headers.add("x-source-partition", String(message.partition))
        headers.add("x-source-offset", String(message.offset))
        do {
            try env.producer.send(to: env.deadLetters, key: message.key, value: message.value, headers: headers,
                                  token: DeliveryToken.make(tracker: trackerIndex, offset: message.offset, recommendation: false))
        } catch {
            counters.sendFailures.add()
            env.logger.error("dead letter not sent: \(error)")
        }
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
