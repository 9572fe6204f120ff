import Atomics
import DequeModule
import Foundation
import Histogram
import Logging
import NudgeEvents
import NudgeFeatures
import NudgeKafka

/// Nudge's main job: consume events, keep features, decide, publish recommendations and metrics.
///
/// Threads: one consumer thread blocks in librdkafka's poll and routes each message, untouched, to
/// the shard that owns its customer; one thread per shard decodes, updates the store, decides and
/// sends; librdkafka's delivery thread marks offsets finished when the broker acknowledges what
/// they caused; the consumer thread commits the finished prefix of each partition (at-least-once);
/// a metrics thread publishes snapshots.
public final class Pipeline: @unchecked Sendable {
    // Sendable: configuration is immutable; cross-thread state is atomics, locks or confined to the
    // consumer thread (trackers' registration, partition maps, commits).
    /// Configuration this pipeline runs with.
    public let config: PipelineConfig
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let env: ShardEnvironment
    private let trackers = TrackerTable()
    private let metrics: MetricsRecorder
    private let faults: FaultRecorder
    /// The models in force; replace them to swap models while running.
    public let modelStore: ModelStore
    private var modelWatcher: ModelWatcher?
    private let stopping = ManagedAtomic<Bool>(false)
    private let ready = ManagedAtomic<Bool>(false)
    /// Set once the shard threads run: from then on they answer inspections.
    private let shardsRunning = ManagedAtomic<Bool>(false)
    private var consumerThread: BlockingThread?
    private var metricsThread: BlockingThread?
    private let stopped = Locked(false)
    /// When a stop must be done waiting for in-flight work: set as it begins, `drainTimeout` later.
    private let stopDeadline = Locked<ContinuousClock.Instant?>(nil)
    private let metricsWake = DispatchSemaphore(value: 0)
    // Consumer-thread state.
    private var trackerByPartition: [TopicPartition: Int] = [:]
    private var lastTopic: OpaquePointer?
    private var lastPartition: Int32 = -1
    private var lastTracker = -1
    /// `trackers[lastTracker]`, unretained: the table holds it until `revoked`, which forgets it here first.
    private var lastTrackerObject: Unmanaged<OffsetTracker>?
    private var lastRoute = EventRoute.consumed
    /// Offset trackers of identity-topic partitions (their messages are routed as ``EventRoute/relayed``).
    private var identityTrackers = Set<Int>()
    /// The shards' inboxes, unretained: the shards keep them for the pipeline's life. Retaining and releasing
    /// an inbox and a tracker for every message cost about 1 % of the machine's samples end to end.
    /// `_withUnsafeGuaranteedRef` (as in EventLookahead) is what lets a call skip them: a
    /// `takeUnretainedValue()` hands back a strong reference the optimizer may retain again.
    private let inboxes: [Unmanaged<BoundedQueue<ShardWork>>]
    /// Bumped by every assignment and revocation.
    private var assignmentGeneration: UInt64 = 0
    /// The generation each tracker slot's partition was assigned in.
    private var trackerGeneration = [UInt64](repeating: 0, count: TrackerTable.capacity)
    /// The generation the messages being handled were polled in.
    private var handlingGeneration: UInt64 = 0
    /// When the consumer last polled (for `max.poll.interval.ms`).
    private var lastPoll = ContinuousClock.now
    /// How long the consumer goes without a poll before it pauses its partitions and polls to stay in the group.
    private let keepAliveAfter: Duration
    /// Whether a long wait has paused the partitions; those it paused, and those assigned since, to pause.
    private var pausedForWait = false
    private var paused: [TopicPartition] = []
    /// Assigned partitions the tracker table had no room for (more than its capacity on one instance).
    private var untracked: [TopicPartition] = []
    private var toPause: [TopicPartition] = []
    /// The message registered and waiting for room in an inbox: a revocation of its partition during the wait
    /// drains up to it and commits it as the next to read, and the message is then released, not handed out.
    private var held: (tracker: Int, offset: Int64)?
    private var heldRevoked = false
    /// Messages polled during a wait, with the generation they were polled in, handled after the batch.
    private var carried = Deque<(KafkaMessage, UInt64)>()
    private let keepAliveBatch = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 64)
    private var rebalanceListener: PipelineRebalanceListener?

    /// Connects to Kafka (`kafka` carries `bootstrap.servers` and any client property) and prepares
    /// the shards. Nothing is consumed until `start`.
    public init(config: PipelineConfig, kafka: KafkaConfig, models: ModelSet, features: FeatureSet, logger: Logger) throws {
        self.config = config
        self.logger = logger
        modelStore = ModelStore(models)
        if let directory = config.modelDirectory {
            modelWatcher = ModelWatcher(directory: directory, features: features, store: modelStore,
                                        challengerShare: models.challengerShare, interval: config.modelCheckInterval, logger: logger)
        }
        let counterNames = (actions: CounterNames(capacity: ShardCounters.maxActions + 1, reserved: ["none"]),
                            models: CounterNames(capacity: ShardCounters.maxModels))
        let faults = FaultRecorder(logger: logger)
        self.faults = faults
        let metrics = MetricsRecorder(config: config, models: modelStore, counterNames: counterNames, faults: faults)
        self.metrics = metrics
        let trackers = self.trackers
        producer = try KafkaProducer(config: Self.producerConfig(kafka), logger: logger) { reports in
            metrics.delivered(reports, trackers: trackers)
        }
        var consumerConfig = kafka
        consumerConfig.setDefault("group.id", config.groupId)
        // Let the fetcher batch: a Fetch response carries one batch per partition (KAFKA-NOTES).
        consumerConfig.setDefault("fetch.wait.max.ms", "10")
        // Room for about a second of input. librdkafka before 2.3 (Debian's is 2.0.2) stops fetching for a
        // fixed 1,000 ms whenever its local queue is past either limit, which
        // it is whenever the shards lag, as in any catch-up; with 100,000 messages (the default) that
        // pause emptied the queue and halved the rate: end to end 0.19-0.29 M messages/s, with these 0.42 M.
        // Costs up to 512 MiB of prefetched messages while behind; -X lowers it.
        consumerConfig.setDefault("queued.max.messages.kbytes", "524288")
        consumerConfig.setDefault("queued.min.messages", "1000000")
        // Co-partitioning: the range assignor gives each instance the same partition numbers of every topic
        // (of equal partition counts), so the identity topic's partition p reaches the owner of input partition p.
        consumerConfig.setDefault("partition.assignment.strategy", "range")
        consumer = try KafkaConsumer(config: consumerConfig, logger: logger)
        keepAliveAfter = Self.keepAliveAfter(maxPollInterval: consumerConfig["max.poll.interval.ms"].flatMap { Int($0) } ?? 300_000)
        let env = ShardEnvironment(config: config, producer: producer, trackers: trackers, models: modelStore,
                                   counterNames: counterNames, features: features, faults: faults, logger: logger)
        env.shards = (0..<config.shards).map { ShardWorker(index: $0, env: env) }
        self.env = env
        metrics.shards = env.shards
        inboxes = env.shards.map { Unmanaged.passUnretained($0.inbox) }
    }

    deinit { keepAliveBatch.deallocate() }

    /// A third of `max.poll.interval.ms`, 10 s at most: long past any wait for a busy shard, well before
    /// librdkafka would leave the group.
    static func keepAliveAfter(maxPollInterval milliseconds: Int) -> Duration {
        min(.seconds(10), .milliseconds(max(milliseconds, 3) / 3))
    }

    /// The producer's configuration: `kafka`, with no local delivery deadline unless it sets one (under
    /// either of librdkafka's names for it). Without a deadline librdkafka retries an output until the
    /// broker takes it, so an outage holds the pipeline back (the producer's queue, then the offset windows,
    /// then the consumer) and it resumes when the broker does. With one (300 s is librdkafka's default),
    /// every output still waiting then fails for good, and only a restart, which empties the in-memory
    /// store, gets past it (see ``PipelineFault``).
    static func producerConfig(_ kafka: KafkaConfig) -> KafkaConfig {
        var config = kafka
        if config["delivery.timeout.ms"] == nil { config.setDefault("message.timeout.ms", "0") }
        return config
    }

    /// Applies one event to its customer's shard before ``start()``, on the calling thread, with no Kafka
    /// offset, recommendation or metric: for benchmarks that must time a store already holding their
    /// customers. The key routes it as the consumer would; identity messages it would send to other shards
    /// are dropped (preload events that carry one id each). False (and nothing done) once started.
    @discardableResult
    public func preload(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard !shardsRunning.load(ordering: .acquiring) else { return false }
        let shards = UInt64(env.shards.count)
        let shard = key.isEmpty ? 0 : Int(nudgeHash64(key) % shards)
        env.shards[shard].preload(value)
        return true
    }

    /// Subscribes to the input topics and starts every thread.
    public func start() throws {
        let listener = PipelineRebalanceListener(pipeline: self)
        rebalanceListener = listener
        consumer.setRebalanceListener(listener)
        checkIdentityTopic()
        try consumer.subscribe(config.topics.subscribed)
        for shard in env.shards { shard.start() }
        shardsRunning.store(true, ordering: .releasing)
        consumerThread = BlockingThread(name: "nudge-consumer") { [self] in consumeLoop() }
        metricsThread = BlockingThread(name: "nudge-metrics") { [self] in metricsLoop() }
        modelWatcher?.start()
        logger.info("nudge started: \(config.shards) shard(s), consuming \(config.topics.inputs.joined(separator: ", ")), librdkafka \(librdkafkaVersion)")
    }

    /// Learns the input partition count, which places customers on instances, and warns when the identity
    /// topic cannot carry identity changes between instances (missing, or with another partition count).
    private func checkIdentityTopic() {
        let topics = config.topics
        guard let inputs = try? consumer.partitions(of: topics.clickstream) else {
            logger.warning("could not read \(topics.clickstream)'s partitions: identity links stay within this instance until it can")
            return
        }
        env.ownership.setPartitionCount(inputs.count)
        let identity = (try? consumer.partitions(of: topics.identity))?.count ?? 0
        if identity != inputs.count {
            logger.warning("""
                topic \(topics.identity) has \(identity) partitions, \(topics.clickstream) \(inputs.count): create it with \(inputs.count) \
                partitions, or identity links between customers on different instances will not reach them
                """)
        }
    }

    /// Live counters with the rate and latency of the last closed metrics interval.
    public func snapshot() -> MetricsSnapshot { metrics.latest() }

    /// Messages handled so far, summed live over the shards (cheap; for progress and benchmarks).
    public var eventsHandled: Int { env.shards.reduce(0) { $0 + $1.counters.eventsIn.value } }

    /// True once the group has given this instance partitions and it is consuming them.
    public var isReady: Bool { ready.load(ordering: .relaxed) && !stopping.load(ordering: .relaxed) }

    /// True between `start` and `stop`: shard threads are there to answer inspections.
    var isRunning: Bool { shardsRunning.load(ordering: .acquiring) && !stopping.load(ordering: .relaxed) }

    /// The shard that owns the customer with these id bytes: the consumer's routing, by the same hash.
    func shardOwning(customer id: [UInt8]) -> ShardWorker {
        env.shards[env.owner(ofHash: id.withUnsafeBytes { nudgeHash64($0) })]
    }

    /// Why the pipeline can commit no further on some partition until it is restarted, if it cannot: the
    /// first output refused for good, or the producer's fatal error. `/health` answers 503 with it.
    public var fault: PipelineFault? {
        if let recorded = faults.current { return recorded }
        guard let fatal = producer.fatalFailure else { return nil }
        faults.record("the producer can send nothing more, so no offset after the last delivered output finishes: \(fatal)")
        return faults.current
    }

    /// Prometheus text exposition of the latest figures.
    public func prometheusText() -> String { metrics.prometheusText() }

    /// Graceful stop: stop consuming, finish what is in flight, flush, commit, leave the group.
    /// Blocks until done; safe to call more than once and from any thread.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else {
            waitUntilStopped()
            return
        }
        stopDeadline.withLock { $0 = ContinuousClock.now + config.drainTimeout }
        modelWatcher?.stop()
        consumerThread?.join()   // it drains, commits and closes the consumer on its way out
        // The drain is over: a shard (or the metrics thread) waiting for room in the producer's queue, which a
        // broker outage never empties, gives its send up; those offsets stay uncommitted and are read again.
        producer.stopWaiting()
        for shard in env.shards { shard.requestStop() }
        for shard in env.shards { shard.join() }
        for shard in env.shards { shard.releaseLeftovers() }
        metricsWake.signal()
        metricsThread?.join()
        producer.close(timeout: max(stopTimeLeft ?? .zero, .seconds(1)))
        stopped.withLock { $0 = true }
        logger.info("nudge stopped")
    }

    /// Blocks until `stop` has finished.
    public func waitUntilStopped() {
        while !stopped.withLock({ $0 }) { usleep(20_000) }
    }

    // MARK: Consumer thread

    /// Waits until `offset` fits in its partition's window (processing is a whole window ahead of the
    /// commit: let it catch up), then registers it. A long wait is a slow shard or broker, or an offset whose
    /// output was refused for good (a send or delivery failure), which is never committed, so only a restart
    /// reads it again. After 30 s that is said once, naming it. Meanwhile the consumer keeps its place in the
    /// group (``keepMembership()``), which may revoke this very partition.
    private func waitForRoom(_ unretained: Unmanaged<OffsetTracker>, offset: Int64, arrivalNanos: UInt64) -> Room {
        // Held: a revocation during the wait may free the table's reference.
        let tracker = unretained.takeUnretainedValue()
        let start = ContinuousClock.now
        var said = false
        var registration = tracker.register(offset: offset, arrivalNanos: arrivalNanos)
        while registration == .full {
            if stopping.load(ordering: .relaxed) { return .stopping }
            if !tracker.advance() { usleep(200) }
            keepMembership()
            if tracker.revoked.load(ordering: .relaxed) { return .revoked }
            if !said && ContinuousClock.now - start > .seconds(30) {
                said = true
                logger.error("\(tracker.partition) has waited 30 s for offset \(tracker.committable.load(ordering: .relaxed)) to finish. If its output failed for good (/health answers 503, and the log says which), it stays uncommitted until a restart reads it again; else the shards or the broker are slow, or the broker is down.")
            }
            registration = tracker.register(offset: offset, arrivalNanos: arrivalNanos)
        }
        endWait()
        return registration == .registered ? .registered : .behind
    }

    /// How a wait for room in a partition's window ended.
    private enum Room { case registered, stopping, revoked, behind }

    private func consumeLoop() {
        let capacity = 1024
        let batch = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: capacity)
        defer { batch.deallocate() }
        var nextCommit = ContinuousClock.now + config.commitInterval
        while !stopping.load(ordering: .relaxed) {
            let n = consumer.poll(into: batch, timeout: .milliseconds(100))
            lastPoll = .now
            handle(batch, count: n, arrival: monotonicNanos(), polledIn: assignmentGeneration)
            // Messages a wait's polls returned (none while every partition is paused, which it is), in order.
            while !carried.isEmpty && !stopping.load(ordering: .relaxed) {
                let (message, generation) = carried.removeFirst()
                batch[0] = message
                handle(batch, count: 1, arrival: monotonicNanos(), polledIn: generation)
            }
            if ContinuousClock.now >= nextCommit {
                commitFinished(synchronous: false)
                nextCommit = ContinuousClock.now + config.commitInterval
            }
        }
        for (message, _) in carried { message.release() }
        carried.removeAll()
        // Shutdown: everything polled has been handed out; wait for it, commit, leave the group
        // (which revokes and so commits once more through the listener).
        drain(Array(trackerByPartition.values))
        commitFinished(synchronous: true)
        // Leaving the group takes tens of milliseconds with the coordinator up; with it down, librdkafka's
        // close would wait about 40 s more. Bounded by the stop's deadline, with a few seconds kept for it.
        consumer.close(waitingUpTo: max(stopTimeLeft ?? .zero, Self.leaveGroupFloor))
    }

    /// Registers each polled message with its partition's tracker and hands it to its customer's shard.
    /// `generation` is the assignment the messages were polled under: a partition revoked and assigned again
    /// since (by a poll during a wait) is read again from its commit, so its messages here are not ours.
    private func handle(_ batch: UnsafeMutableBufferPointer<KafkaMessage>, count n: Int, arrival: UInt64, polledIn generation: UInt64) {
        handlingGeneration = generation
        let inboxes = inboxes
        let shardCount = UInt64(inboxes.count)
        for i in 0..<n {
            let message = batch[i]
            guard let trackerIndex = tracker(for: message), let tracker = lastTrackerObject else {
                // Not (or no longer) ours: it will be read again by whoever owns the partition.
                message.release()
                continue
            }
            switch tracker._withUnsafeGuaranteedRef({ $0.register(offset: message.offset, arrivalNanos: arrival) }) {
            case .registered: break
            case .behind:
                rewound(message)
                continue
            case .full:
                switch waitForRoom(tracker, offset: message.offset, arrivalNanos: arrival) {
                case .registered: break
                case .behind:
                    rewound(message)
                    continue
                case .revoked:
                    endWait()
                    message.release()
                    continue
                case .stopping:
                    // This message and the rest of the batch stay uncommitted, and are read again after a restart.
                    for rest in i..<n { batch[rest].release() }
                    return
                }
            }
            let key = message.key
            let shard = key.isEmpty ? Int(UInt64(message.partition) % shardCount) : Int(nudgeHash64(key) % shardCount)
            let work = ShardWork.event(message, tracker: Int32(trackerIndex), route: lastRoute)
            // A shard waiting on a broker that is down fills its inbox: a stop waits for it only until its
            // deadline (a full inbox is also just a busy shard, which the drain lets finish).
            var waited = false
            let pushed = inboxes[shard]._withUnsafeGuaranteedRef {
                $0.push(work) {
                    if !waited {
                        waited = true
                        held = (trackerIndex, message.offset)
                    }
                    keepMembership()
                    return heldRevoked || stopDeadlinePassed
                }
            }
            if waited { held = nil }
            if heldRevoked {
                // Committed as the next offset to read by the revocation: its next owner reads it. Finished here
                // so that the retired tracker can be freed.
                heldRevoked = false
                tracker._withUnsafeGuaranteedRef { $0.complete(offset: message.offset) }
                message.release()
                endWait()
                continue
            }
            guard pushed else {
                for rest in i..<n { batch[rest].release() }
                return
            }
            if waited { endWait() }
        }
        // Whatever a wait paused is fetched again once the batch is handed out (a rebalance may end a wait early).
        if pausedForWait { endWait() }
    }

    /// A message below what its partition's tracker has registered: librdkafka rewound a partition still ours
    /// (a reset after a log truncation, say). Its offset was handed out already, or skipped as a gap, so it is
    /// released unhandled (see ``OffsetTracker/Registration/behind``). Cold path.
    private func rewound(_ message: KafkaMessage) {
        logger.warning("\(message.topic)[\(message.partition)] offset \(message.offset) arrived again, below what this instance has taken from it: not handled twice")
        message.release()
    }

    private func tracker(for message: KafkaMessage) -> Int? {
        if message.topicIdentity == lastTopic && message.partition == lastPartition { return lastTracker }
        let tp = TopicPartition(message.topic, message.partition)
        guard let index = trackerByPartition[tp], let tracker = trackers[index],
              trackerGeneration[index] <= handlingGeneration else { return nil }
        lastTopic = message.topicIdentity
        lastPartition = message.partition
        lastTracker = index
        lastTrackerObject = Unmanaged.passUnretained(tracker)
        lastRoute = identityTrackers.contains(index) ? .relayed : .consumed
        return index
    }

    // MARK: Keeping the group through a long wait

    /// Called while the consumer thread waits for room (a window or an inbox full: the shards are slow, or
    /// the output broker is down and nothing finishes). librdkafka leaves the group when its consumer has not
    /// polled for `max.poll.interval.ms` (300 s by default), and the partitions then move and are read again.
    /// So once `keepAliveAfter` has passed without a poll it pauses every assigned partition (a paused
    /// partition returns nothing more, and fetches again from where the last poll left off once resumed) and
    /// polls once a second, which serves rebalances too. Waits as short as any catch-up's never pause:
    /// resuming drops librdkafka's prefetched messages.
    private func keepMembership() {
        let now = ContinuousClock.now
        guard now - lastPoll >= (pausedForWait ? .seconds(1) : keepAliveAfter) else { return }
        if !pausedForWait {
            pausedForWait = true
            paused = assignedPartitions
            consumer.pause(paused)
            logger.warning("the consumer has waited \(keepAliveAfter) for room (a slow shard, or an output broker down: see the log): \(paused.count) partition(s) paused, polling each second to stay in the group")
        }
        // Not zero: librdkafka stops its poll-interval clock only during a blocking poll, and a revocation served
        // here may drain and commit for a while.
        let n = consumer.poll(into: keepAliveBatch, timeout: .milliseconds(1))
        lastPoll = .now
        // Read after the poll: a partition assigned in it counts as assigned for what it returned.
        let generation = assignmentGeneration
        for i in 0..<n { carried.append((keepAliveBatch[i], generation)) }
        // Partitions assigned in the poll are paused now that librdkafka has taken the assignment; a poll that
        // returned messages means some partition is not paused, so pause them all again.
        if n > 0 { toPause = assignedPartitions }
        if !toPause.isEmpty {
            consumer.pause(toPause)
            for tp in toPause where !paused.contains(tp) { paused.append(tp) }
            toPause = []
        }
    }

    /// Every partition assigned to this instance, tracked or not.
    private var assignedPartitions: [TopicPartition] { Array(trackerByPartition.keys) + untracked }

    /// A wait is over: resume what ``keepMembership()`` paused.
    private func endWait() {
        guard pausedForWait else { return }
        pausedForWait = false
        consumer.resume(paused)
        logger.notice("room again: \(paused.count) partition(s) resumed")
        paused = []
        toPause = []
    }

    /// Commits each partition's finished prefix. Consumer thread.
    private func commitFinished(synchronous: Bool) {
        trackers.sweepRetired()
        var offsets: [(TopicPartition, Int64)] = []
        var lag: [TopicPartition: Int64] = [:]
        for (tp, index) in trackerByPartition {
            guard let tracker = trackers[index] else { continue }
            tracker.advance()
            var next = tracker.committable.load(ordering: .relaxed)
            // Given back while messages read before are still in flight: not past their first copies.
            if !trackers.retired.isEmpty, let floor = trackers.retiredFloor(of: tp) { next = min(next, floor) }
            // A synchronous commit (revocation, shutdown) sends every position again: an asynchronous one
            // whose failure was never reported may have left the broker behind `lastCommitted`.
            if next >= 0 && (synchronous || next > tracker.lastCommitted) {
                offsets.append((tp, next))
                tracker.lastCommitted = next
            }
            if let marks = consumer.cachedWatermarks(tp) {
                lag[tp] = max(0, marks.high - (next >= 0 ? next : marks.low))
            }
        }
        metrics.setLag(lag)
        do {
            if synchronous {
                // Bounded: stopping, by what is left of the stop's deadline (the coordinator may be down too).
                let wait = stopTimeLeft.map { max($0, .seconds(1)) } ?? config.drainTimeout
                try consumer.commit(offsets, waitingUpTo: wait)
            } else {
                try consumer.commit(offsets, synchronous: false)
            }
        } catch {
            logger.warning("commit failed (will retry at the next interval): \(error)")
            for (tp, _) in offsets { if let i = trackerByPartition[tp] { trackers[i]?.lastCommitted = -1 } }
        }
    }

    /// The least a stop waits to leave the group, even past its deadline: a healthy coordinator answers in
    /// milliseconds, and leaving (rather than expiring) hands the partitions over at once.
    static let leaveGroupFloor: Duration = .seconds(5)

    /// Time left until the stop's deadline (negative once past); nil when no stop has begun.
    private var stopTimeLeft: Duration? { stopDeadline.withLock { $0 }.map { $0 - .now } }

    /// Whether a stop has begun and its deadline has passed.
    private var stopDeadlinePassed: Bool { stopping.load(ordering: .relaxed) && (stopTimeLeft.map { $0 <= .zero } ?? false) }

    /// Waits for in-flight work of these trackers to finish, up to the drain timeout (or, stopping, up to
    /// the stop's deadline: the shutdown drain and the revocation that leaving the group causes share it).
    /// `held` names a message the consumer thread itself holds (registered, not handed out): its tracker is
    /// done when everything before that message has finished.
    private func drain(_ indices: [Int], holding held: (tracker: Int, offset: Int64)? = nil) {
        let deadline = ContinuousClock.now + min(config.drainTimeout, stopTimeLeft ?? config.drainTimeout)
        var open = indices.compactMap { trackers[$0] }
        let heldTracker = held.flatMap { trackers[$0.tracker] }
        repeat {
            // An offset whose output was lost for good will not finish: waiting for it would only run out the timeout.
            open.removeAll { t in t.settled(below: t === heldTracker ? held?.offset : nil) }
            if !open.isEmpty { usleep(2_000) }
        } while !open.isEmpty && ContinuousClock.now < deadline
        for t in open { logger.warning("\(t.partition): \(t.pending) message(s) still in flight after the drain timeout; they will be re-read") }
    }

    fileprivate func assigned(_ partitions: [TopicPartition]) {
        for tp in partitions {
            guard let offset = trackers.returned(tp) else { continue }
            faults.record("an output caused by \(tp) offset \(offset) was refused for good while the partition was being handed over, and the partition came back to this instance, whose duplicate filter drops the message read again")
        }
        for tp in partitions where trackerByPartition[tp] == nil {
            guard let index = trackers.add(OffsetTracker(partition: tp, window: config.offsetWindow)) else {
                logger.error("more than \(TrackerTable.capacity) partitions on one instance; \(tp) is not tracked")
                untracked.append(tp)  // its messages are released; a long wait pauses it with the rest
                if pausedForWait { toPause.append(tp) }
                continue
            }
            trackerByPartition[tp] = index
            trackerGeneration[index] = assignmentGeneration + 1
            // Given during a long wait: paused with the rest until it ends, once librdkafka has taken it.
            if pausedForWait { toPause.append(tp) }
            if tp.topic == config.topics.identity {
                identityTrackers.insert(index)  // no event time of its own: not in the watermarks
                continue
            }
            identityTrackers.remove(index)
            if tp.topic == config.topics.clickstream { env.ownership.set(tp.partition, owned: true) }
            // Before any of its messages is queued, so shards count it from the start.
            env.assignments.assign(index)
        }
        assignmentGeneration += 1
        ready.store(true, ordering: .relaxed)
    }

    fileprivate func revoked(_ partitions: [TopicPartition]) {
        // The consumer loop's unretained tracker must not outlive the table's reference: forget it first.
        lastTopic = nil
        lastPartition = -1
        lastTrackerObject = nil
        assignmentGeneration += 1
        untracked.removeAll { partitions.contains($0) }
        // The stop's own revocation is not a rebalance.
        if !stopping.load(ordering: .relaxed) {
            metrics.partitionsRevoked.wrappingIncrement(by: partitions.count, ordering: .relaxed)
        }
        let indices = partitions.compactMap { trackerByPartition[$0] }
        // A message registered and waiting in `push` finishes only once handed out: drain up to it, and commit it
        // as the next to read.
        let heldHere = held.flatMap { indices.contains($0.tracker) ? $0 : nil }
        // From here an output lost for good is no fault: the commit stops below its offset, which the next owner reads.
        for index in indices { trackers[index]?.beginGivingUp() }
        drain(indices, holding: heldHere)
        if heldHere != nil { heldRevoked = true }
        commitFinished(synchronous: true)
        // librdkafka keeps a partition's pause through a revocation and a later assignment: resume it, once its
        // offsets are committed (resumed earlier, a partition still fetching would prefetch for the drain).
        let pausedHere = paused.filter { partitions.contains($0) }
        if !pausedHere.isEmpty {
            consumer.resume(pausedHere)
            paused.removeAll { partitions.contains($0) }
        }
        toPause.removeAll { partitions.contains($0) }
        for tp in partitions {
            guard let index = trackerByPartition.removeValue(forKey: tp) else { continue }
            if tp.topic == config.topics.clickstream { env.ownership.set(tp.partition, owned: false) }
            env.assignments.revoke(index)
            // Committed: offsets whose output was lost are finished now, so the tracker can be freed.
            trackers[index]?.finishRevocation()
            // Reuse the index only once nothing in flight can still name it.
            trackers.retire(index)
        }
    }

    // MARK: Metrics thread

    private func metricsLoop() {
        let topic = producer.topic(config.topics.metrics)
        let interval = config.metricsInterval
        let ms = Int(interval.wholeMilliseconds)
        while true {
            let woken = metricsWake.wait(timeout: .now() + .milliseconds(ms)) == .success
            let final = woken || stopping.load(ordering: .relaxed)
            _ = fault  // records a fatal producer error, for the snapshot's `nudge_fault`
            let snapshot = metrics.publishSnapshot()
            do {
                try producer.send(to: topic, key: Array(config.instanceId.utf8), value: snapshot.json(), token: DeliveryToken.none)
            } catch {
                logger.warning("metrics snapshot not sent: \(error)")
            }
            if final { return }
        }
    }
}

/// Forwards the consumer's rebalance calls to the pipeline (weakly, to avoid a cycle).
private final class PipelineRebalanceListener: RebalanceListener, @unchecked Sendable {
    // Sendable: called only on the consumer thread.
    weak var pipeline: Pipeline?
    init(pipeline: Pipeline) { self.pipeline = pipeline }
    func assigned(_ partitions: [TopicPartition]) { pipeline?.assigned(partitions) }
    func revoked(_ partitions: [TopicPartition]) { pipeline?.revoked(partitions) }
}
