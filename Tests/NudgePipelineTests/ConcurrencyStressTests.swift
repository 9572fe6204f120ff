import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import Testing
@testable import NudgePipeline

/// Stress tests of the lock-free pieces; CI also runs them under Thread Sanitizer
/// (`swift test --sanitize=thread --filter ConcurrencyStress`).
@Suite("ConcurrencyStress")
struct ConcurrencyStressTests {
    struct Item: BitwiseCopyable, Equatable { var producer: Int32; var sequence: Int32 }

    @Test func queueDeliversEveryValueOnceInProducerOrder() {
        let producers = 4, perProducer = 50_000
        let queue = BoundedQueue<Item>(capacity: 256)  // small: producers hit "full" often
        var threads: [BlockingThread] = []
        for p in 0..<producers {
            threads.append(BlockingThread(name: "producer-\(p)") {
                for s in 0..<perProducer {
                    while !queue.tryPush(Item(producer: Int32(p), sequence: Int32(s))) { sched_yield() }
                }
            })
        }
        var next = [Int32](repeating: 0, count: producers)
        var received = 0
        var outOfOrder = 0
        while received < producers * perProducer {
            guard let item = queue.pop() else {
                queue.waitForValue(timeout: .milliseconds(50))
                continue
            }
            if item.sequence != next[Int(item.producer)] { outOfOrder += 1 }
            next[Int(item.producer)] = item.sequence + 1
            received += 1
        }
        threads.forEach { $0.join() }
        #expect(outOfOrder == 0)
        #expect(next.allSatisfy { $0 == Int32(perProducer) })
        #expect(queue.pop() == nil)
    }

    /// The consumer thread's blocking push: a producer that sleeps while a tiny queue is full loses and
    /// repeats nothing, whether the consumer wakes it after each batch or (missed wake-ups) not at all,
    /// and a consumer that sleeps too is woken by the push.
    @Test(arguments: [true, false])
    func blockingPushDeliversEverythingInOrder(consumerWakesProducer: Bool) {
        let count = 100_000
        let queue = BoundedQueue<Item>(capacity: 8)
        let producer = BlockingThread(name: "producer") {
            for s in 0..<count { queue.push(Item(producer: 0, sequence: Int32(s))) }
        }
        var next: Int32 = 0
        var outOfOrder = 0
        var batches = 0
        while next < Int32(count) {
            var took = 0
            while took < 5, let item = queue.pop() {
                if item.sequence != next { outOfOrder += 1 }
                next = item.sequence + 1
                took += 1
            }
            if took == 0 {
                queue.waitForValue(timeout: .milliseconds(50))
                continue
            }
            batches += 1
            if consumerWakesProducer { queue.wakeProducer() }
            // Now and then the consumer is slow, so that the producer finds the queue full and sleeps.
            if !consumerWakesProducer || batches % 1_000 == 0 { usleep(consumerWakesProducer ? 200 : 5) }
            if !consumerWakesProducer && next > 400 { break }  // without wake-ups, the 10 ms timeout paces it
        }
        if !consumerWakesProducer {
            // Drain the rest quickly, waking the producer as the pipeline's shards do.
            while next < Int32(count) {
                guard let item = queue.pop() else { queue.waitForValue(timeout: .milliseconds(50)); continue }
                if item.sequence != next { outOfOrder += 1 }
                next = item.sequence + 1
                queue.wakeProducer()
            }
        }
        producer.join()
        #expect(outOfOrder == 0)
        #expect(next == Int32(count))
        #expect(queue.pop() == nil)
    }

    @Test func trackerCommitsOnlyFinishedPrefixUnderConcurrentCompletion() {
        // The consumer thread registers offsets and advances; another thread completes them in
        // scrambled order. `committable` may never pass an offset that is not complete.
        let tracker = OffsetTracker(partition: TopicPartition("t", 0), window: 1024)
        let total: Int64 = 100_000
        let completedSet = Locked(Set<Int64>())
        let handOff = Locked<[Int64]>([])
        let completer = BlockingThread(name: "completer") {
            var completed = 0
            var rng = SystemRandomNumberGenerator()
            while completed < Int(total) {
                var batch = handOff.withLock { b -> [Int64] in defer { b.removeAll(keepingCapacity: true) }; return b }
                if batch.isEmpty { sched_yield(); continue }
                batch.shuffle(using: &rng)
                for o in batch {
                    completedSet.withLock { _ = $0.insert(o) }
                    tracker.complete(offset: o)
                }
                completed += batch.count
            }
        }
        var registered: Int64 = 0
        var violations = 0
        while registered < total {
            if tracker.register(offset: registered, arrivalNanos: 0) == .registered {
                handOff.withLock { $0.append(registered) }
                registered += 1
            } else {
                let before = tracker.committable.load(ordering: .relaxed)
                tracker.advance()
                let after = tracker.committable.load(ordering: .relaxed)
                if after > before {
                    // Every offset below the new committable point must have been completed.
                    let done = completedSet.withLock { set in (before..<after).allSatisfy { set.contains($0) } }
                    if !done { violations += 1 }
                }
            }
        }
        completer.join()
        while tracker.pending > 0 { tracker.advance() }
        #expect(violations == 0)
        #expect(tracker.committable.load(ordering: .relaxed) == total)
    }

    @Test func shardedStoreUnderConcurrentRouting() throws {
        // Two router threads feed four shard threads, each owning a CustomerTable, through the
        // same queues the pipeline uses. Every event must land exactly once on its owner.
        let shardCount = 4, routers = 2, perRouter = 20_000, customers = 500
        let queues = (0..<shardCount).map { _ in BoundedQueue<Int32>(capacity: 512) }
        let applied = Locked<[(events: Int, customers: Int, wrongOwner: Int)]>(Array(repeating: (0, 0, 0), count: shardCount))
        let stop = Locked(false)
        let ids: [[UInt8]] = (0..<customers).map { Array("c-\($0)".utf8) }
        let owner: [Int] = ids.map { id in id.withUnsafeBytes { Int(nudgeHash64($0) % UInt64(shardCount)) } }
        let shards = (0..<shardCount).map { s in
            BlockingThread(name: "shard-\(s)") {
                let table = CustomerTable(features: FeatureSet.standard, expectedCustomers: 64)
                var events = 0, wrong = 0
                let out = UnsafeMutableBufferPointer<Double>.allocate(capacity: FeatureSet.standard.definitions.count)
                defer { out.deallocate() }
                while true {
                    if let c = queues[s].pop() {
                        if owner[Int(c)] != s { wrong += 1 }
                        ids[Int(c)].withUnsafeBytes { raw in
                            var e = SegmentEvent()
                            e.kind = .productViewed
                            e.userId = RawText(raw)
                            e.timestampMillis = 1_790_000_000_000 + Int64(events)
                            let slot = table.slot(for: e.customerId)
                            table.apply(e, to: slot)
                            table.evaluate(slot, atMillis: e.timestampMillis, into: out)
                        }
                        events += 1
                    } else if stop.withLock({ $0 }) && !queues[s].hasValue {
                        break
                    } else {
                        queues[s].waitForValue(timeout: .milliseconds(20))
                    }
                }
                applied.withLock { $0[s] = (events, table.count, wrong) }
            }
        }
        let routerThreads = (0..<routers).map { r in
            BlockingThread(name: "router-\(r)") {
                for i in 0..<perRouter {
                    let c = (i * 7 + r * 13) % customers
                    while !queues[owner[c]].tryPush(Int32(c)) { sched_yield() }
                }
            }
        }
        routerThreads.forEach { $0.join() }
        stop.withLock { $0 = true }
        queues.forEach { $0.wakeConsumer() }
        shards.forEach { $0.join() }
        let totals = applied.withLock { $0 }
        #expect(totals.reduce(0) { $0 + $1.events } == routers * perRouter)
        #expect(totals.reduce(0) { $0 + $1.customers } == customers)
        #expect(totals.allSatisfy { $0.wrongOwner == 0 })
    }

    @Test func identityLinksBetweenShardThreads() throws {
        // Shard threads, each owning an EventProcessor, exchange events and identity messages (links, merges,
        // unlinks, aliased events) through BoundedQueues as the pipeline's shards do, IdentityChanges passed
        // retained. However the threads interleave, every event lands once: totals equal one processor's.
        let shardCount = 4
        var stream = IdentityStream(seed: 7)
        let messages = (0..<6_000).map { _ in stream.next() }
        let oracle = try ShardCluster(shards: 1)
        for (bytes, key) in messages { oracle.consume(bytes, key: key) }

        enum Item: BitwiseCopyable {
            case event(Int32, EventRoute)
            case identity(Unmanaged<IdentityChange>)
        }
        let config = {
            var config = PipelineConfig.syntheticTime
            config.expectedCustomersPerShard = 256
            config.eventTime.allowedLateness = .seconds(10 * 365 * 86_400)
            return config
        }()
        let models = ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures))
        let inboxes = (0..<shardCount).map { _ in BoundedQueue<Item>(capacity: 256) }
        let forwards = (0..<shardCount).map { _ in BoundedQueue<Item>(capacity: 256) }
        let inFlight = Locked(0)  // items queued or being handled: 0 means every shard is final
        let stop = Locked(false)
        let totals = Locked([String: Double]())
        let ids = stream.users + stream.visitors
        let at = stream.clock + 3_600_000
        @Sendable func owner(_ id: String) -> Int { Int(Array(id.utf8).withUnsafeBytes { nudgeHash64($0) } % UInt64(shardCount)) }
        let shards = (0..<shardCount).map { s in
            BlockingThread(name: "shard-\(s)") {
                let processor = EventProcessor(shardIndex: s, shardCount: shardCount, config: config, models: models,
                                               features: repoFeatures,
                                               counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                                               wallClock: { 1_800_000_000_000 })
                func send(_ item: Item, to target: Int) {
                    inFlight.withLock { $0 += 1 }
                    while !forwards[target].tryPush(item) { sched_yield() }
                }
                while true {
                    let item = forwards[s].pop() ?? inboxes[s].pop()
                    guard let item else {
                        if stop.withLock({ $0 }) && !inboxes[s].hasValue && !forwards[s].hasValue { break }
                        inboxes[s].waitForValue(timeout: .milliseconds(5)) { forwards[s].hasValue }
                        continue
                    }
                    switch item {
                    case .event(let index, let route):
                        switch messages[Int(index)].bytes.withUnsafeBytes({ processor.process($0, route: route) }) {
                        case .misrouted(let target): send(.event(index, .forwarded), to: target)
                        case .aliased(let target): send(.event(index, .aliased), to: target)
                        default: break
                        }
                    case .identity(let change):
                        processor.handle(change.takeRetainedValue())
                    }
                    for (target, change) in processor.outbox { send(.identity(Unmanaged.passRetained(change)), to: target) }
                    processor.outbox.removeAll()
                    inFlight.withLock { $0 -= 1 }  // after what it caused was counted
                }
                // Every queue is empty and nothing is in flight: this shard's customers are final.
                var mine: [String: Double] = [:]
                for id in ids where owner(id) == s {
                    guard let snapshot = processor.snapshot(of: Array(id.utf8), atMillis: at) else { continue }
                    for feature in snapshot.features where ["orders_lifetime", "revenue_lifetime", "views_24h"].contains(feature.name) {
                        mine[feature.name, default: 0] += max(0, feature.value)
                    }
                }
                totals.withLock { $0.merge(mine, uniquingKeysWith: +) }
            }
        }
        for (index, message) in messages.enumerated() {
            inFlight.withLock { $0 += 1 }
            while !inboxes[owner(message.key)].tryPush(.event(Int32(index), .consumed)) { sched_yield() }
        }
        while inFlight.withLock({ $0 }) > 0 { usleep(1_000) }
        stop.withLock { $0 = true }
        shards.forEach { $0.join() }
        let got = totals.withLock { $0 }
        for feature in ["orders_lifetime", "revenue_lifetime", "views_24h"] {
            let expected = ids.reduce(0.0) { $0 + max(0, oracle.features($1, at: at)?[feature] ?? 0) }
            #expect(abs((got[feature] ?? 0) - expected) <= 1e-6 * max(1, expected), "\(feature): \(got[feature] ?? 0), one shard \(expected)")
        }
    }

    @Test func inspectionsWakeTheSleepingOwnerAndAreAnsweredOnce() async {
        // An owner thread sleeps on its inbox, as a shard does, while readers queue inspections in its
        // mailbox and a burst of events comes in. Every inspection must wake it: the owner sleeps up to 10 s, so a
        // lost wake-up shows as a 5 s timeout. A zero timeout races the timer against the answer: the
        // reader is resumed once either way (a second resume would trap).
        let inbox = BoundedQueue<Int32>(capacity: 64)
        let mailbox = InspectionMailbox(shard: 0, capacity: 64) { inbox.wakeConsumer() }
        let stop = Locked(false)
        let owner = BlockingThread(name: "owner") {
            var events: Int64 = 0
            while true {
                mailbox.answerPending(limit: 8) { id, at in
                    .customer(CustomerSnapshot(customerId: String(decoding: id, as: UTF8.self), shard: 0, evaluatedAtMillis: at ?? -1,
                                               lastEventMillis: 0, lastChannel: nil, shardEventTimeMillis: events,
                                               shardWatermarkMillis: nil, features: [], contacts: []))
                }
                while inbox.pop() != nil { events += 1 }
                if stop.withLock({ $0 }) && !inbox.hasValue && !mailbox.hasPending { return }
                inbox.waitForValue(timeout: .seconds(10)) { mailbox.hasPending }
            }
        }
        let events = BlockingThread(name: "events") {
            for i in 0..<2_000 {
                while !inbox.tryPush(Int32(i)) { sched_yield() }
                if i % 256 == 0 { usleep(100) }
            }
        }
        let readers = 8, perReader = 250
        let outcomes = await withTaskGroup(of: [String: Int].self) { group in
            for r in 0..<readers {
                group.addTask {
                    var counts: [String: Int] = [:]
                    for i in 0..<perReader {
                        let racing = i % 10 == 0
                        // Now and then every reader pauses, so the owner runs out of work and sleeps.
                        if i % 25 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
                        let id = "c-\(r)-\(i)"
                        let result = await mailbox.ask(customerId: Array(id.utf8), atMillis: Int64(i), timeout: racing ? .zero : .seconds(5))
                        switch result {
                        case .success(.customer(let snapshot)) where snapshot.customerId == id && snapshot.evaluatedAtMillis == Int64(i):
                            counts["answered"] = (counts["answered"] ?? 0) + 1
                        case .failure(.timedOut) where racing:
                            counts["raced"] = (counts["raced"] ?? 0) + 1
                        default:
                            counts["wrong: \(result)"] = (counts["wrong: \(result)"] ?? 0) + 1
                        }
                    }
                    return counts
                }
            }
            return await group.reduce(into: [:]) { total, counts in total.merge(counts, uniquingKeysWith: +) }
        }
        events.join()
        stop.withLock { $0 = true }
        inbox.wakeConsumer()
        owner.join()
        #expect(outcomes.keys.allSatisfy { $0 == "answered" || $0 == "raced" }, "\(outcomes)")
        #expect((outcomes["answered"] ?? 0) >= readers * perReader * 9 / 10)
        #expect((outcomes["answered"] ?? 0) + (outcomes["raced"] ?? 0) == readers * perReader)
    }
}
