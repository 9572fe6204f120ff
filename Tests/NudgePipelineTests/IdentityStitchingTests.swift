import Foundation
import NudgeEvents
import NudgeFeatures
@testable import NudgePipeline
@testable import NudgeTraffic
import Testing

/// Shards as the pipeline wires them, without threads: each has an inbox (from the "consumer", by Kafka key)
/// and a forwards queue (from other shards: misrouted and aliased events, identity messages), both FIFO. A
/// step takes the next item of one queue; `interleaved` picks the queue at random (any order the threads
/// could produce), otherwise everything is delivered as soon as it is sent.
final class ShardCluster {
    enum Item {
        case event([UInt8], EventRoute)
        case identity(IdentityChange)
    }

    let processors: [EventProcessor]
    private var inboxes: [[Item]]
    private var forwards: [[Item]]
    private let interleaved: Bool
    private var random: Xoshiro256StarStar

    /// `lateness` defaults to ten years, so that nothing is late: each shard sees its own share of the
    /// partition, and lateness would depend on the split.
    /// `linkTTL` nil keeps the service's default (links expire after the idle-customer TTL).
    init(shards: Int, interleaved: Bool = false, seed: UInt64 = 1, lateness: Duration = .seconds(10 * 365 * 86_400),
         linkTTL: Duration? = nil) throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 256
        config.eventTime.allowedLateness = lateness
        if let linkTTL { config.idleCustomerTTL = linkTTL }
        let models = ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures))
        processors = (0..<shards).map {
            EventProcessor(shardIndex: $0, shardCount: shards, config: config, models: models, features: repoFeatures,
                           counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                           wallClock: { 1_800_000_000_000 })
        }
        inboxes = Array(repeating: [], count: shards)
        forwards = Array(repeating: [], count: shards)
        self.interleaved = interleaved
        random = Xoshiro256StarStar(seed: seed)
    }

    func owner(_ id: String) -> Int { Int(Array(id.utf8).withUnsafeBytes { nudgeHash64($0) } % UInt64(processors.count)) }

    /// The consumer hands a message to the shard of its key.
    func consume(_ bytes: [UInt8], key: String) {
        inboxes[owner(key)].append(.event(bytes, .consumed))
        if interleaved {
            for _ in 0..<Int.random(in: 0...2, using: &random) { step() }
        } else {
            while step() {}
        }
    }

    /// Delivers everything still queued.
    func drain() { while step() {} }

    /// Handles one queued item; false when every queue is empty.
    @discardableResult
    func step() -> Bool {
        let ready = (0..<processors.count).flatMap { shard in
            (inboxes[shard].isEmpty ? [] : [(shard, true)]) + (forwards[shard].isEmpty ? [] : [(shard, false)])
        }
        guard !ready.isEmpty else { return false }
        // In order, the real loop drains forwards first; interleaved, any queue may go next.
        let (shard, fromInbox) = interleaved ? ready[Int.random(in: 0..<ready.count, using: &random)]
            : (ready.first { !$0.1 } ?? ready[0])
        let item = fromInbox ? inboxes[shard].removeFirst() : forwards[shard].removeFirst()
        let processor = processors[shard]
        switch item {
        case .event(let bytes, let route):
            let outcome = bytes.withUnsafeBytes { processor.process($0, route: route) }
            switch outcome {
            case .misrouted(let owner): forwards[owner].append(.event(bytes, .forwarded))
            case .aliased(let owner): forwards[owner].append(.event(bytes, .aliased))
            default: break
            }
        case .identity(let change):
            processor.handle(change)
        }
        for (target, change) in processor.outbox { forwards[target].append(.identity(change)) }
        processor.outbox.removeAll()
        return true
    }

    /// The customer's features as the shard that owns the id holds them, by name; nil if it holds nothing.
    func features(_ id: String, at time: Int64) -> [String: Double]? {
        processors[owner(id)].snapshot(of: Array(id.utf8), atMillis: time).map { snapshot in
            Dictionary(uniqueKeysWithValues: snapshot.features.map { ($0.name, $0.value) })
        }
    }
}

/// A random clickstream of visitors and customers: anonymous browsing, logins (events with both ids,
/// `identify` among them), re-used anonymous ids (a shared device), duplicates and out-of-order times.
struct IdentityStream {
    var random: Xoshiro256StarStar
    let users: [String]
    let visitors: [String]
    var clock = t0
    var sent: [(bytes: [UInt8], key: String)] = []
    private var count = 0

    /// Whether a visitor may log in as several customers (a shared device) rather than always the same one.
    let sharedDevices: Bool

    init(seed: UInt64, sharedDevices: Bool = true) {
        self.sharedDevices = sharedDevices
        random = Xoshiro256StarStar(seed: seed)
        users = (0..<Int.random(in: 2...12, using: &random)).map { "u-\(seed)-\($0)" }
        visitors = (0..<Int.random(in: 2...20, using: &random)).map { "a-\(seed)-\($0)" }
    }

    static let events = ["Product Viewed", "Product Viewed", "Product Added", "Product Removed", "Order Completed",
                         "Checkout Started", "Ticket Opened", "Ticket Closed", "Survey Answered", "Products Searched"]
    static let categories = ["outdoor", "kitchen", "toys", "garden", "fashion"]
    static let channels = ["web", "app", "store", "call_center", "email"]

    /// The next message and its Kafka key.
    mutating func next() -> (bytes: [UInt8], key: String) {
        if !sent.isEmpty, Double.random(in: 0..<1, using: &random) < 0.05, let again = sent.randomElement(using: &random) {
            return again  // a duplicate (same messageId)
        }
        count += 1
        clock += Int64.random(in: 0...(20 * minute), using: &random)
        if Double.random(in: 0..<1, using: &random) < 0.01 { clock += Int64.random(in: 1...20, using: &random) * day }
        let time = clock - (Double.random(in: 0..<1, using: &random) < 0.2 ? Int64.random(in: 0...(2 * day), using: &random) : 0)
        let shape = Double.random(in: 0..<1, using: &random)
        var user: String? = shape < 0.45 ? nil : users.randomElement(using: &random)
        let visitor: String? = shape >= 0.45 && shape < 0.7 ? nil : visitors.randomElement(using: &random)
        if !sharedDevices, user != nil, let visitor, let index = visitors.firstIndex(of: visitor) { user = users[index % users.count] }
        let stamp = ISO8601Time.format(millis: time)
        let channel = Self.channels.randomElement(using: &random) ?? "web"
        let bytes: [UInt8]
        if user != nil, visitor != nil, Double.random(in: 0..<1, using: &random) < 0.3 {
            var fields = ["\"type\":\"identify\"", "\"messageId\":\"m-\(count)\"", "\"timestamp\":\"\(stamp)\"", "\"channel\":\"\(channel)\""]
            if let user { fields.append("\"userId\":\"\(user)\"") }
            if let visitor { fields.append("\"anonymousId\":\"\(visitor)\"") }
            bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        } else {
            let event = Self.events.randomElement(using: &random) ?? "Page"
            let category = Self.categories.randomElement(using: &random) ?? "toys"
            let price = Double(Int.random(in: 1...30_000, using: &random)) / 100
            let score = Int.random(in: 0...10, using: &random)
            bytes = track(event, user: user, anonymous: visitor, id: "m-\(count)", at: stamp, channel: channel,
                          properties: #"{"category":"\#(category)","product_id":"p-\#(Int.random(in: 1...40, using: &random))","price":\#(price),"revenue":\#(price),"score":\#(score)}"#)
        }
        // The contract keys by userId, else anonymousId; some producers key by the anonymous id anyway.
        let key = user.flatMap { visitor != nil && Double.random(in: 0..<1, using: &random) < 0.2 ? nil : $0 } ?? visitor ?? ""
        sent.append((bytes, key))
        return (bytes, key)
    }
}

@Suite struct IdentityStitchingTests {
    /// Aggregations whose merged value does not depend on the order two shards handle things in: everything
    /// but gauges (which fold in arrival order), `last` (ties) and what derives from them.
    static let orderFree: Set<String> = {
        Set(repoFeatures.definitions.filter { definition in
            switch definition.aggregation {
            case .openCount, .netCount, .last, .derived: false
            default: true
            }
        }.map(\.name))
    }()

    static func compare(_ cluster: ShardCluster, with oracle: ShardCluster, ids: [String], at time: Int64,
                        only names: Set<String>?, seed: UInt64) -> Bool {
        for id in ids {
            let expected = oracle.features(id, at: time)
            let actual = cluster.features(id, at: time)
            guard let expected, let actual else {
                guard expected == nil, actual == nil else {
                    Issue.record("seed \(seed), \(id): one shard holds it, \(cluster.processors.count) shards \(actual == nil ? "do not" : "do")")
                    return false
                }
                continue
            }
            for (name, value) in expected where names?.contains(name) ?? true {
                let got = actual[name] ?? .nan
                let tolerance = names == nil ? 0 : 1e-4 * max(1, abs(value))  // Float32 buckets summed in another order
                guard got == value || abs(got - value) <= tolerance else {
                    Issue.record("seed \(seed), \(id), \(name): \(cluster.processors.count) shards \(got), one shard \(value)")
                    return false
                }
            }
        }
        return true
    }

    @Test("Shards linking identities by message equal one shard doing it all, delivered in order", arguments: 1...25)
    func shardsEqualOneShard(seed: Int) throws {
        let seed = UInt64(seed)
        var stream = IdentityStream(seed: seed)
        let oracle = try ShardCluster(shards: 1)
        let cluster = try ShardCluster(shards: Int(seed % 3) + 2)
        for _ in 0..<Int.random(in: 200...1_500, using: &stream.random) {
            let (bytes, key) = stream.next()
            oracle.consume(bytes, key: key)
            cluster.consume(bytes, key: key)
        }
        let ids = stream.users + stream.visitors
        #expect(Self.compare(cluster, with: oracle, ids: ids, at: stream.clock + hour, only: nil, seed: seed))
        #expect(cluster.processors.reduce(0) { $0 + $1.identityMerges } > 0 || oracle.processors[0].identityMerges == 0)
        #expect(cluster.processors.reduce(0) { $0 + $1.identityMisses } == 0)
    }

    /// With shared devices, which customer an anonymous event lands in depends on whether it reaches its shard
    /// before or after the new login's link (as with threads), and so does a link's expiry (an anonymous event
    /// after the TTL starts a new visitor that the next login merges): the events still all land once,
    /// somewhere. Per customer, the comparison runs without shared devices or expiry.
    @Test("In any interleaving of the shards, no event is lost or counted twice", arguments: 1...30)
    func interleavingsKeepEveryEvent(seed: Int) throws {
        let seed = UInt64(seed) + 100
        let sharedDevices = seed % 2 == 0
        var stream = IdentityStream(seed: seed, sharedDevices: sharedDevices)
        let linkTTL: Duration? = sharedDevices ? nil : .seconds(100 * 365 * 86_400)
        let oracle = try ShardCluster(shards: 1, linkTTL: linkTTL)
        let cluster = try ShardCluster(shards: Int(seed % 3) + 2, interleaved: true, seed: seed, linkTTL: linkTTL)
        for _ in 0..<Int.random(in: 200...1_500, using: &stream.random) {
            let (bytes, key) = stream.next()
            oracle.consume(bytes, key: key)
            cluster.consume(bytes, key: key)
        }
        cluster.drain()
        let ids = stream.users + stream.visitors
        let at = stream.clock + hour
        if !sharedDevices {
            #expect(Self.compare(cluster, with: oracle, ids: ids, at: at, only: Self.orderFree, seed: seed))
        }
        for feature in ["orders_lifetime", "revenue_lifetime"] {
            func total(_ shards: ShardCluster) -> Double { ids.reduce(0) { $0 + max(0, shards.features($1, at: at)?[feature] ?? 0) } }
            let (got, expected) = (total(cluster), total(oracle))
            #expect(abs(got - expected) <= 1e-6 * max(1, expected), "seed \(seed), \(feature) over every id: \(got), one shard \(expected)")
        }
        #expect(cluster.processors.reduce(0) { $0 + $1.identityMisses } == 0)
    }

    @Test("A visitor's history, cart timer and later events become the customer's across shards")
    func visitorBecomesCustomer() throws {
        let cluster = try ShardCluster(shards: 4, lateness: .seconds(3_600))
        // An anonymous id and a user id on different shards.
        let visitor = (0..<100).map { "a-\($0)" }.first { cluster.owner($0) != cluster.owner("u-1") } ?? "a-0"
        func send(_ event: String, user: String?, anonymous: String?, id: String, at: Int64) {
            let bytes = track(event, user: user, anonymous: anonymous, id: id, at: ISO8601Time.format(millis: at),
                              properties: #"{"product_id":"p-1","price":30.0,"revenue":30.0}"#)
            cluster.consume(bytes, key: user ?? anonymous ?? "")
        }
        send("Product Viewed", user: nil, anonymous: visitor, id: "m-1", at: t0)
        send("Product Added", user: nil, anonymous: visitor, id: "m-2", at: t0 + minute)
        send("Order Completed", user: "u-1", anonymous: nil, id: "m-3", at: t0 - day)
        #expect(cluster.features(visitor, at: t0 + minute)?["views_24h"] == 1)

        send("Signed In", user: "u-1", anonymous: visitor, id: "m-4", at: t0 + 2 * minute)
        #expect(cluster.features(visitor, at: t0 + 2 * minute) == nil, "the visitor's record moved")
        let merged = cluster.features("u-1", at: t0 + 2 * minute)
        #expect(merged?["views_24h"] == 1)
        #expect(merged?["adds_24h"] == 1)
        #expect(merged?["orders_90d"] == 1)

        // Later anonymous events (a device still logged out) land in the customer; a duplicate does not.
        send("Product Viewed", user: nil, anonymous: visitor, id: "m-5", at: t0 + 3 * minute)
        send("Product Viewed", user: nil, anonymous: visitor, id: "m-5", at: t0 + 3 * minute)
        #expect(cluster.features("u-1", at: t0 + 3 * minute)?["views_24h"] == 2)
        #expect(cluster.features(visitor, at: t0 + 3 * minute) == nil)

        // The visitor's cart moved too: the customer's timer fires, keyed by the customer.
        var fired: [String] = []
        // Event time moves on in every shard (the visitor's shard must not fire the cart it handed over).
        for shard in 0..<cluster.processors.count {
            let tick = (0..<100).map { "tick-\($0)" }.first { cluster.owner($0) == shard } ?? "tick"
            send("Page Viewed", user: nil, anonymous: tick, id: "m-\(tick)", at: t0 + 3 * hour)
        }
        for processor in cluster.processors {
            processor.advance(wallMillis: 1_800_000_000_000) { decision in
                fired.append(String(decoding: decision.customer, as: UTF8.self) + " " + decision.kind.wireName)
            }
        }
        #expect(fired == ["u-1 Cart Abandoned"])
    }

    @Test("The visitor's shard names the customer it links the visitor to, even before it has an event of its own")
    func theVisitorsShardAnswersWithTheLink() throws {
        let cluster = try ShardCluster(shards: 2)
        let visitor = (0..<100).map { "a-\($0)" }.first { cluster.owner($0) != cluster.owner("u-1") } ?? "a-0"
        // The visitor's first event signs in: their shard gets the link and no event, so it has no event time.
        cluster.consume(track("Signed In", user: "u-1", anonymous: visitor, id: "m-1", at: ISO8601Time.format(millis: t0)), key: "u-1")
        let answer = cluster.processors[cluster.owner(visitor)].inspection(of: Array(visitor.utf8), atMillis: nil)
        guard case .linked(let user, let elsewhere) = answer else {
            Issue.record("the visitor's shard answered \(answer), not the link")
            return
        }
        #expect(user == Array("u-1".utf8) && !elsewhere)
        // The customer's shard answers with the customer; a stranger is unknown to both.
        guard case .customer(let snapshot) = cluster.processors[cluster.owner("u-1")].inspection(of: Array("u-1".utf8), atMillis: nil) else {
            Issue.record("u-1's shard does not hold u-1")
            return
        }
        #expect(snapshot.customerId == "u-1")
        for processor in cluster.processors {
            guard case .unknown = processor.inspection(of: Array("a-stranger".utf8), atMillis: nil) else {
                Issue.record("a stranger is known")
                return
            }
        }
    }

    @Test("Re-linking an anonymous id routes it to the new customer; the old keeps what it had")
    func relinkMovesOnlyLaterEvents() throws {
        let cluster = try ShardCluster(shards: 3)
        func send(_ event: String, user: String?, anonymous: String?, id: String, at: Int64) {
            let bytes = track(event, user: user, anonymous: anonymous, id: id, at: ISO8601Time.format(millis: at))
            cluster.consume(bytes, key: user ?? anonymous ?? "")
        }
        send("Product Viewed", user: nil, anonymous: "shared-tablet", id: "m-1", at: t0)
        send("Signed In", user: "u-1", anonymous: "shared-tablet", id: "m-2", at: t0 + minute)
        send("Product Viewed", user: nil, anonymous: "shared-tablet", id: "m-3", at: t0 + 2 * minute)
        send("Signed In", user: "u-2", anonymous: "shared-tablet", id: "m-4", at: t0 + 3 * minute)
        send("Product Viewed", user: nil, anonymous: "shared-tablet", id: "m-5", at: t0 + 4 * minute)
        #expect(cluster.features("u-1", at: t0 + 5 * minute)?["views_24h"] == 2)
        #expect(cluster.features("u-2", at: t0 + 5 * minute)?["views_24h"] == 1)
        #expect(cluster.features("shared-tablet", at: t0 + 5 * minute) == nil)
        // u-1's shard forgot the link (unless it also routes it): only the routing shard and u-2's hold one.
        let holders = cluster.processors.filter { $0.identityLinks > 0 }.count
        #expect(holders == Set([cluster.owner("shared-tablet"), cluster.owner("u-2")]).count)
    }

    /// A link this shard routes (the visitor's partition was this instance's), after a rebalance moved the
    /// visitor's partition to another instance: the next event with both ids, an hour on, says the link to
    /// the identity topic so that the new owner routes the visitor's events to the customer. (Only resolving
    /// links were said again, so the new owner never learnt it and kept the visitor apart for up to the TTL.)
    @Test("A link is said again to the instance a rebalance moved the visitor to")
    func aRoutedLinkIsSaidAgainAfterItsPartitionMoves() throws {
        let ownership = InstanceOwnership.ofTwoPartitions()
        func partition(_ id: String) -> Int32 { ownership.partition(of: id) }
        let user = try #require((0..<50).map { "u-\($0)" }.first { partition($0) == 0 })
        let visitor = try #require((0..<50).map { "a-\($0)" }.first { partition($0) == 1 })
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 256
        let processor = EventProcessor(shardIndex: 0, shardCount: 1, config: config,
                                       models: ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures)),
                                       features: repoFeatures,
                                       counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                                       ownership: ownership, wallClock: { 1_800_000_000_000 })
        func send(at: Int64, id: String) {
            let bytes = track("Product Viewed", user: user, anonymous: visitor, id: id, at: ISO8601Time.format(millis: at))
            _ = bytes.withUnsafeBytes { processor.process($0, route: .consumed) }
        }
        send(at: t0, id: "m-1")
        #expect(processor.outbox.isEmpty, "both ids were this instance's: the link routes here")
        ownership.set(1, owned: false)                     // the visitor's partition went to another instance
        send(at: t0 + 10 * minute, id: "m-2")
        #expect(processor.outbox.isEmpty, "said again at most hourly")
        send(at: t0 + 2 * hour, id: "m-3")
        let said = processor.outbox.map { ($0.shard, $0.change.kind, String(decoding: $0.change.anonymous, as: UTF8.self)) }
        #expect(said.count == 1)
        #expect(said.first?.0 == EventProcessor.otherInstance && said.first?.2 == visitor)
        if case .link? = said.first?.1 {} else { Issue.record("not a link: \(said)") }
    }
}
