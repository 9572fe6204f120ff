import NudgeEvents
@testable import NudgePipeline
import Testing

/// Events another instance relays through the identity topic to the instance of the customer their
/// anonymous id is linked to.
@Suite struct RelayedEventTests {
    /// The shard of `user` and another one, of a two-shard cluster.
    private func shards(for user: String) throws -> (cluster: ShardCluster, owner: EventProcessor, other: EventProcessor) {
        let cluster = try ShardCluster(shards: 2)
        let owner = cluster.owner(user)
        return (cluster, cluster.processors[owner], cluster.processors[1 - owner])
    }

    private func relay(_ bytes: [UInt8], to user: String, via processor: EventProcessor) -> EventOutcome {
        Array(user.utf8).withUnsafeBytes { u in bytes.withUnsafeBytes { processor.process($0, route: .relayed, partition: -1, relayedUser: u) } }
    }

    @Test func aRelayedEventReachesTheCustomerItNamesWithoutALinkHereAndOnlyOnce() throws {
        let (_, owner, other) = try shards(for: "u-1")
        let event = track("Product Added", user: nil, anonymous: "a-1", id: "m-1", at: ISO8601Time.format(millis: t0),
                          properties: #"{"product_id":"p-1","price":25.0}"#)
        // This instance holds no link for a-1 (lost in a restart, or expired sooner than on the relaying side).
        let first = relay(event, to: "u-1", via: owner)
        #expect(owner.identityMisses == 0)
        let customer = try #require(owner.snapshot(of: Array("u-1".utf8), atMillis: nil), "the event was not applied to u-1")
        #expect(customer[feature: "adds_24h"] == 1)
        #expect(owner.snapshot(of: Array("a-1".utf8), atMillis: nil) == nil, "a phantom customer under the anonymous id")
        // Product Added decides: the recommendation's key is the customer, still readable after the relayed
        // message (and the user id it carried) is gone.
        guard case .decided(_, let key, _, _) = first else {
            Issue.record("the first relay made no decision: \(first)")
            return
        }
        _ = Array(repeating: UInt8(0x5a), count: 4_096)  // reuse freed memory, if the key pointed into it
        #expect(String(decoding: key, as: UTF8.self) == "u-1")
        // Relayed again by an instance that crashed before committing: dropped here.
        guard case .duplicate = relay(event, to: "u-1", via: owner) else {
            Issue.record("a relayed event repeated was applied again")
            return
        }
        #expect(owner.snapshot(of: Array("u-1".utf8), atMillis: nil)?[feature: "adds_24h"] == 1)
        // Reaching a shard that does not own the customer, it goes to the one that does.
        let elsewhere = track("Product Viewed", user: nil, anonymous: "a-1", id: "m-2", at: ISO8601Time.format(millis: t0 + 1_000))
        guard case .aliased = relay(elsewhere, to: "u-1", via: other) else {
            Issue.record("a relayed event for another shard's customer was not handed on")
            return
        }
    }

    /// One shard with an hour's allowed lateness, under `policy`, owning what `ownership` says (everything if nil).
    private func shard(_ policy: LateEventPolicy, ownership: InstanceOwnership? = nil) throws -> EventProcessor {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 256
        config.eventTime.allowedLateness = .seconds(3_600)
        config.eventTime.latePolicy = policy
        return EventProcessor(shardIndex: 0, shardCount: 1, config: config,
                              models: ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures)),
                              features: repoFeatures,
                              counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                              ownership: ownership, wallClock: { t0 + 24 * hour })
    }

    private func view(_ id: String, anonymous: String? = nil, _ message: String, at millis: Int64) -> [UInt8] {
        track("Product Viewed", user: anonymous == nil ? id : nil, anonymous: anonymous, id: message, at: ISO8601Time.format(millis: millis))
    }

    private func consume(_ bytes: [UInt8], by processor: EventProcessor) -> EventOutcome {
        bytes.withUnsafeBytes { processor.process($0, route: .consumed, partition: 0) }
    }

    /// The customer's instance keeps no clock for the partition a visitor's event was read from: it follows the
    /// relaying instance's judgement (`x-event-time`) rather than its own partitions' watermark, by which an
    /// event from a partition that lags there would be late. Without one (an older sender), it judges.
    @Test func aRelayedEventsTimeIsJudgedWhereItWasRead() throws {
        let here = try shard(.deadLetter)
        _ = consume(view("c-9", "m-0", at: t0 + 5 * hour), by: here)  // this instance's own input is 5 h on
        here.advance(wallMillis: 100) { _ in }
        #expect(here.watermarkMillis == t0 + 4 * hour)
        func relay(_ message: String, _ time: RelayedEventTime?) -> EventOutcome {
            let bytes = view("a-1", anonymous: "a-1", message, at: t0)
            return Array("u-1".utf8).withUnsafeBytes { u in
                bytes.withUnsafeBytes { here.process($0, route: .relayed, partition: -1, relayedUser: u, relayedTime: time) }
            }
        }
        func lastEvent() -> Int64? { here.snapshot(of: Array("u-1".utf8), atMillis: nil)?.lastEventMillis }
        guard case .updated = relay("m-1", .onTime) else {
            Issue.record("an event on time where it was read was refused here")
            return
        }
        #expect(lastEvent() == t0, "applied at its own time")
        #expect(here.lateEvents == 0)
        // From an instance that sends no judgement: judged here, late by this instance's clock.
        guard case .invalid(let error) = relay("m-2", nil), error.code == .late else {
            Issue.record("an unjudged relayed event was not judged by this instance's clock")
            return
        }
        #expect(here.lateEvents == 1)
        // Late where it was read, under `--late-events apply` there: applied at that watermark, counted there.
        _ = relay("m-3", .late(atMillis: t0 + 2 * hour))
        #expect(lastEvent() == t0 + 2 * hour)
        _ = relay("m-4", .future(atMillis: t0 + 3 * hour))
        #expect(lastEvent() == t0 + 3 * hour)
        #expect(here.lateEvents == 1 && here.futureEvents == 0)
    }

    /// An add relayed on time but behind this shard's watermark arms no cart: this clock, which the add's
    /// partition does not hold back, would fire it at once, before the checkout from that partition arrives.
    @Test func aRelayedAddBehindThisWatermarkArmsNoCart() throws {
        let here = try shard(.applyToCurrent)
        _ = consume(view("c-9", "m-0", at: t0 + 5 * hour), by: here)
        here.advance(wallMillis: 100) { _ in }
        func relayAdd(_ message: String, at millis: Int64) {
            let bytes = track("Product Added", user: nil, anonymous: "a-1", id: message, at: ISO8601Time.format(millis: millis),
                              properties: #"{"product_id":"p-1","price":25.0}"#)
            _ = Array("u-1".utf8).withUnsafeBytes { u in
                bytes.withUnsafeBytes { here.process($0, route: .relayed, partition: -1, relayedUser: u, relayedTime: .onTime) }
            }
        }
        relayAdd("m-1", at: t0 + hour)
        #expect(here.snapshot(of: Array("u-1".utf8), atMillis: nil)?[feature: "cart_items"] == 1, "the add counts in the features")
        here.advance(wallMillis: 200) { _ in }
        #expect(here.timersFired(.cartAbandoned) == 0, "a cart fired before its checkout could arrive")
        // One ahead of the watermark arms as ever, and fires 30 minutes on.
        relayAdd("m-2", at: t0 + 4 * hour + minute)
        _ = consume(view("c-9", "m-3", at: t0 + 6 * hour), by: here)
        here.advance(wallMillis: 300) { _ in }
        #expect(here.timersFired(.cartAbandoned) == 1)
    }

    /// The instance that reads a visitor's event relays it to the customer's instance with how it judged the
    /// event's time by that partition's clock: on time; late, moved to the watermark (`apply`); or late and
    /// dead-lettered here, not relayed (`dead-letter`).
    @Test("the relaying instance judges the visitor's event's time", arguments: [LateEventPolicy.applyToCurrent, .deadLetter])
    func theRelayingInstanceJudgesTheTime(policy: LateEventPolicy) throws {
        let ownership = InstanceOwnership.ofTwoPartitions()
        func partition(_ id: String) -> Int32 { ownership.partition(of: id) }
        let user = try #require((0..<50).map { "u-\($0)" }.first { partition($0) == 1 })
        let here = try shard(policy, ownership: ownership)
        _ = consume(track("Signed In", user: user, anonymous: "a-1", id: "s-1", at: ISO8601Time.format(millis: t0)), by: here)
        ownership.set(1, owned: false)  // the customer's partition went to another instance
        here.outbox.removeAll()
        func relayedTime() -> RelayedEventTime?? {
            defer { here.outbox.removeAll() }
            guard here.outbox.count == 1, case (EventProcessor.otherInstance, let change) = here.outbox[0],
                  case .event(_, let time) = change.kind else { return nil }
            return time
        }
        guard case .relayed = consume(view("a-1", anonymous: "a-1", "m-1", at: t0 + minute), by: here) else {
            Issue.record("the visitor's event was not relayed")
            return
        }
        #expect(relayedTime() == .some(.onTime))
        _ = consume(view("c-9", "m-2", at: t0 + 5 * hour), by: here)  // the partition's clock moves 5 h on
        here.advance(wallMillis: 100) { _ in }
        #expect(here.watermarkMillis == t0 + 4 * hour)
        let late = consume(view("a-1", anonymous: "a-1", "m-3", at: t0 + 2 * minute), by: here)
        #expect(here.lateEvents == 1)
        switch (policy, late) {
        case (.applyToCurrent, .relayed):
            #expect(relayedTime() == .some(.late(atMillis: t0 + 4 * hour)), "moved to the watermark: 5 h less the hour's lateness")
        case (.deadLetter, .invalid(let error)):
            #expect(error.code == .late)
            #expect(here.outbox.isEmpty, "a late event to dead-letter was relayed too")
        default:
            Issue.record("under \(policy), a late visitor's event came to \(late)")
        }
    }
}

extension InstanceOwnership {
    /// An instance that owns both partitions of a two-partition topic (tests then give one away).
    static func ofTwoPartitions() -> InstanceOwnership {
        let ownership = InstanceOwnership(partitioner: .consistent)
        ownership.setPartitionCount(2)
        ownership.set(0, owned: true)
        ownership.set(1, owned: true)
        return ownership
    }

    /// The partition of `id` of the two.
    func partition(of id: String) -> Int32 { Array(id.utf8).withUnsafeBytes { partitioner.partition(of: $0, count: 2) } }
}
