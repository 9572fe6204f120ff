import Foundation
import NudgeDecisions
import NudgeEvents
import NudgeFeatures
@testable import NudgePipeline
import Testing

/// What one message came to, as plain values a test can keep.
private enum Handled {
    case invalid(DeadLetterCode)
    case misrouted
    case duplicate
    case updated
    case decided([String: Any])

    var json: [String: Any]? { if case .decided(let j) = self { j } else { nil } }
}

/// One shard's processor on the repository's features and models, with a hand-moved wall clock.
private final class ShardUnderTest {
    let processor: EventProcessor
    private var ids = 0

    init(idleTTL: Duration? = nil, ownership: InstanceOwnership? = nil, _ configure: (inout EventTimeConfig) -> Void = { _ in }) throws {
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        if let idleTTL { config.idleCustomerTTL = idleTTL }
        configure(&config.eventTime)
        let models = try ModelSet.load(directory: repoModels, features: repoFeatures)
        processor = EventProcessor(shardIndex: 0, shardCount: 1, config: config, models: ModelStore(models), features: repoFeatures,
                                   counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                                   ownership: ownership, wallClock: { 1_800_000_000_000 })
    }

    /// Sends a track event (user and/or anonymous id) at event time `at` from `partition`, with message id `id`
    /// (by default a new one).
    @discardableResult
    func send(_ event: String, user: String? = nil, anonymous: String? = nil, at: Int64, partition: Int = 0, id: String? = nil) -> Handled {
        ids += 1
        let bytes = track(event, user: user, anonymous: anonymous, id: id ?? "m-\(ids)", at: ISO8601Time.format(millis: at),
                          properties: #"{"product_id":"p-1","price":25.0}"#)
        return bytes.withUnsafeBytes { value in
            switch processor.process(value, route: .forwarded, partition: partition) {
            case .invalid(let error): .invalid(error.code)
            case .misrouted, .aliased, .relayed: .misrouted
            case .duplicate: .duplicate
            case .updated, .outcome: .updated
            case .decided(let json, _, _, _): .decided(parse(json))
            }
        }
    }

    /// Moves time on the anonymous "clock" customer's partition (no timers of its own) to `at`.
    func tick(to at: Int64, partition: Int = 0) { send("Product Viewed", anonymous: "clock", at: at, partition: partition) }

    /// Moves the wall clock, recomputing the watermark, and returns the timers' recommendations.
    func advance(wall: Int64) -> [[String: Any]] {
        var fired: [[String: Any]] = []
        processor.advance(wallMillis: wall) { decision in
            var json = parse(decision.json)
            json["_key"] = String(decoding: decision.customer, as: UTF8.self)
            fired.append(json)
        }
        return fired
    }

    /// `advance(wall:)`'s decisions as "customer event_time", in firing order.
    func firings(wall: Int64) -> [String] {
        advance(wall: wall).map { "\($0["_key"] as? String ?? "?") \($0["event_time"] as? String ?? "?")" }
    }
}

private func parse(_ bytes: UnsafeRawBufferPointer) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
}

private func trigger(_ json: [String: Any]) -> [String: Any] { json["trigger"] as? [String: Any] ?? [:] }

@Suite("Event time: watermarks, lateness, timers")
struct EventTimeTests {
    @Test func cartAbandonmentFiresOnceAtItsDeadline() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        #expect(shard.send("Product Added", user: "c-1", at: t0).json != nil)  // the add's own decision
        shard.tick(to: t0 + 39 * minute)  // watermark t0 + 29 min: not yet
        #expect(shard.advance(wall: 100).isEmpty)
        #expect(shard.processor.watermarkMillis == t0 + 29 * minute)

        shard.tick(to: t0 + 40 * minute)  // watermark reaches the deadline
        let fired = shard.advance(wall: 200)
        #expect(fired.count == 1)
        let r = try #require(fired.first)
        let deadline = t0 + 30 * minute
        #expect(r["customer_id"] as? String == "c-1")
        #expect(r["_key"] as? String == "c-1")
        #expect(trigger(r)["kind"] as? String == "timer")
        #expect(trigger(r)["event"] as? String == "Cart Abandoned")
        #expect(trigger(r)["message_id"] is NSNull)
        #expect(r["event_time"] as? String == ISO8601Time.format(millis: deadline))
        #expect(r["event_time"] as? String == "2026-11-20T10:30:00.000Z")
        #expect(r["recommendation_id"] as? String == RecommendationID.string(customerId: "c-1", timer: "Cart Abandoned", deadlineMillis: deadline))
        #expect(r["action"] is String)

        // Once: later time fires nothing more, and the record is gone.
        shard.tick(to: t0 + 5 * hour)
        #expect(shard.advance(wall: 300).isEmpty)
        #expect(shard.processor.timersFired(.cartAbandoned) == 1)
    }

    @Test func checkoutOrderAndEmptyCartCancel() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        for c in ["c-1", "c-2", "c-3", "c-4"] { shard.send("Product Added", user: c, at: t0) }
        shard.send("Checkout Started", user: "c-1", at: t0 + 10 * minute)
        shard.send("Order Completed", user: "c-2", at: t0 + 12 * minute)
        shard.send("Product Removed", user: "c-3", at: t0 + 14 * minute)
        shard.tick(to: t0 + 3 * hour)
        let fired = shard.advance(wall: 100)
        // Only the untouched cart is abandoned.
        #expect(fired.map { $0["customer_id"] as? String } == ["c-4"])
        shard.tick(to: t0 + 6 * hour)
        #expect(shard.advance(wall: 200).isEmpty)
    }

    @Test func outOfOrderCheckoutWithinTheLatenessCancelsAndAnOlderAddDoesNotArm() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        shard.send("Product Added", user: "c-1", at: t0)          // deadline t0 + 30 min
        shard.send("Checkout Started", user: "c-2", at: t0 + 20 * minute)
        shard.tick(to: t0 + 25 * minute)
        #expect(shard.advance(wall: 100).isEmpty)                 // watermark t0 + 15 min
        // c-1's checkout, out of order (older than the newest event) but not late, arrives before the
        // watermark passes the deadline: it cancels.
        #expect(shard.send("Checkout Started", user: "c-1", at: t0 + 20 * minute).json != nil)
        // c-2's add is older than c-2's checkout, which came first: the cart was bought, nothing is armed.
        shard.send("Product Added", user: "c-2", at: t0 + 16 * minute)
        #expect(shard.processor.lateEvents == 0)
        shard.tick(to: t0 + 3 * hour)
        #expect(shard.advance(wall: 200).isEmpty)
        #expect(shard.processor.timersFired(.cartAbandoned) == 0)
    }

    @Test func anOlderOrderArrivingAfterANewerAddLeavesTheCartArmed() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(1_800) }
        _ = shard.advance(wall: 0)
        // c-1: the add (t0+10m) arrives before the order it came after (t0).
        shard.send("Product Added", user: "c-1", at: t0 + 10 * minute)
        shard.send("Order Completed", user: "c-1", at: t0)
        // c-2: the same events in event-time order, as a reference.
        shard.send("Product Added", user: "c-2", at: t0)
        shard.send("Order Completed", user: "c-2", at: t0 + 5 * minute)
        shard.send("Product Added", user: "c-2", at: t0 + 10 * minute)
        // c-3: the order is newer than the add: it empties the cart whatever the arrival order.
        shard.send("Product Added", user: "c-3", at: t0)
        shard.send("Order Completed", user: "c-3", at: t0 + 5 * minute)
        #expect(shard.processor.lateEvents == 0)
        shard.tick(to: t0 + 3 * hour)
        let fired = shard.advance(wall: 100).map { "\($0["_key"] as? String ?? "?") \(trigger($0)["event"] as? String ?? "?") \($0["event_time"] as? String ?? "?")" }
        let deadline = ISO8601Time.format(millis: t0 + 40 * minute)
        #expect(fired.sorted() == ["c-1 Cart Abandoned \(deadline)", "c-2 Cart Abandoned \(deadline)"])
    }

    @Test func anAddLaterThanTheLatenessDoesNotArmABoughtCart() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        shard.send("Order Completed", user: "c-1", at: t0 + 30 * minute)
        shard.tick(to: t0 + 2 * hour)
        _ = shard.advance(wall: 100)
        // An offline till flushing its queue: the add from before the order, applied at the watermark.
        shard.send("Product Added", user: "c-1", at: t0)
        #expect(shard.processor.lateEvents == 1)
        shard.tick(to: t0 + 5 * hour)
        let fired = shard.advance(wall: 200)
        #expect(fired.isEmpty, "a bought cart was abandoned: \(fired)")
        // A fresh add later on still arms the cart; another customer's, removed again, does not (the late
        // add's item is not counted: it came before the order).
        shard.send("Product Added", user: "c-1", at: t0 + 5 * hour)
        shard.send("Order Completed", user: "c-2", at: t0 + 2 * hour)
        shard.send("Product Added", user: "c-2", at: t0)
        shard.send("Product Added", user: "c-2", at: t0 + 5 * hour)
        shard.send("Product Removed", user: "c-2", at: t0 + 5 * hour + minute)
        shard.tick(to: t0 + 7 * hour)
        #expect(shard.advance(wall: 300).map { $0["_key"] as? String } == ["c-1"])
    }

    /// A late add is not counted, so neither is a late remove: a flushed pair leaves the in-time item's timer
    /// armed. (Before, the late remove took that item, and the cart never fired.)
    @Test func aLateAddAndRemoveLeaveTheCartArmed() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        shard.tick(to: t0 + 2 * hour + 10 * minute)
        _ = shard.advance(wall: 50)                                        // watermark t0 + 2 h
        shard.send("Product Added", user: "c-1", at: t0 + 2 * hour + 30 * minute)
        shard.send("Product Added", user: "c-1", at: t0 + hour)            // late
        shard.send("Product Removed", user: "c-1", at: t0 + hour + 5 * minute)  // late
        #expect(shard.processor.lateEvents == 2)
        shard.tick(to: t0 + 4 * hour)
        let fired = shard.firings(wall: 100)
        #expect(fired == ["c-1 \(ISO8601Time.format(millis: t0 + 3 * hour))"])
    }

    /// A late order settles the cart as of its own time: older than the latest add, it leaves the cart armed,
    /// as an order that is only out of order does. (Applied at the watermark, it closed the newer add's cart.)
    @Test func aLateOrderOlderThanTheLatestAddLeavesTheCartArmed() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        shard.send("Product Added", user: "c-1", at: t0 + 2 * hour)
        shard.tick(to: t0 + 2 * hour + 20 * minute)
        _ = shard.advance(wall: 50)                                       // watermark t0 + 2 h 10 min
        shard.send("Order Completed", user: "c-1", at: t0 + hour)         // late: an offline till's flush
        #expect(shard.processor.lateEvents == 1)
        shard.tick(to: t0 + 4 * hour)
        let fired = shard.firings(wall: 100)
        #expect(fired == ["c-1 \(ISO8601Time.format(millis: t0 + 2 * hour + 30 * minute))"])
    }

    @Test func aLaterAddRearmsTheCart() throws {
        let shard = try ShardUnderTest { $0.allowedLateness = .seconds(600) }
        _ = shard.advance(wall: 0)
        shard.send("Product Added", user: "c-1", at: t0)
        shard.send("Product Added", user: "c-1", at: t0 + 20 * minute)   // deadline moves to t0 + 50 min
        shard.tick(to: t0 + 45 * minute)
        #expect(shard.advance(wall: 100).isEmpty)                        // t0 + 35 min: the old deadline passed
        shard.tick(to: t0 + 61 * minute)
        let fired = shard.advance(wall: 200)
        #expect(fired.count == 1)
        #expect(fired.first?["event_time"] as? String == ISO8601Time.format(millis: t0 + 50 * minute))
        // An add after the firing is a new cart: it fires again, at its own deadline.
        shard.send("Product Added", user: "c-1", at: t0 + 70 * minute)
        shard.tick(to: t0 + 3 * hour)
        let again = shard.advance(wall: 300)
        #expect(again.map { $0["event_time"] as? String } == [ISO8601Time.format(millis: t0 + 100 * minute)])
    }

    @Test func silentKnownCustomerFiresOncePerSilence() throws {
        let shard = try ShardUnderTest()   // defaults: 1 h lateness, 14 days of silence
        _ = shard.advance(wall: 0)
        shard.send("Product Viewed", user: "c-1", at: t0)
        shard.send("Product Viewed", anonymous: "a-1", at: t0)            // anonymous: never "silent"
        shard.send("Product Viewed", user: "c-1", at: t0 + 3 * day)      // re-arms at t0 + 17 days
        shard.tick(to: t0 + 16 * day)
        #expect(shard.advance(wall: 100).isEmpty)
        shard.tick(to: t0 + 17 * day + hour)
        let fired = shard.advance(wall: 200)
        #expect(fired.count == 1)
        let r = try #require(fired.first)
        #expect(r["customer_id"] as? String == "c-1")
        #expect(trigger(r)["kind"] as? String == "timer")
        #expect(trigger(r)["event"] as? String == "Customer Silent")
        #expect(r["event_time"] as? String == ISO8601Time.format(millis: t0 + 17 * day))
        shard.tick(to: t0 + 40 * day)
        #expect(shard.advance(wall: 300).isEmpty)
        // Back, then silent again: a second firing, with its own deadline and id.
        shard.send("Product Viewed", user: "c-1", at: t0 + 40 * day)
        shard.tick(to: t0 + 55 * day)
        let second = shard.advance(wall: 400)
        #expect(second.map { $0["event_time"] as? String } == [ISO8601Time.format(millis: t0 + 54 * day)])
        #expect(second.first?["recommendation_id"] as? String != r["recommendation_id"] as? String)
        #expect(shard.processor.timersFired(.customerSilent) == 2)
    }

    /// Carts and silences live in two queues; the shard fires them in deadline order, a cart first on a tie.
    @Test func cartsAndSilencesFireInDeadlineOrder() throws {
        let shard = try ShardUnderTest {
            $0.cartAbandonedAfter = .seconds(1_800)
            $0.customerSilentAfter = .seconds(1_800)
        }
        _ = shard.advance(wall: 0)
        shard.send("Product Viewed", user: "c-2", at: t0 - 10 * minute)   // silent at t0 + 20 min
        shard.send("Product Added", user: "c-1", at: t0)                  // cart and silence both at t0 + 30 min
        shard.send("Product Added", user: "c-3", at: t0 + 5 * minute)     // cart and silence at t0 + 35 min
        shard.tick(to: t0 + 2 * hour)
        let fired = shard.advance(wall: 100).map {
            "\($0["_key"] as? String ?? "?") \(trigger($0)["event"] as? String ?? "?") \($0["event_time"] as? String ?? "?")"
        }
        #expect(fired == [
            "c-2 Customer Silent \(ISO8601Time.format(millis: t0 + 20 * minute))",
            "c-1 Cart Abandoned \(ISO8601Time.format(millis: t0 + 30 * minute))",
            "c-1 Customer Silent \(ISO8601Time.format(millis: t0 + 30 * minute))",
            "c-3 Cart Abandoned \(ISO8601Time.format(millis: t0 + 35 * minute))",
            "c-3 Customer Silent \(ISO8601Time.format(millis: t0 + 35 * minute))",
        ])
    }

    @Test func lateEventsAreCountedAndAppliedAtTheWatermarkByDefault() throws {
        let shard = try ShardUnderTest()
        _ = shard.advance(wall: 0)
        shard.tick(to: t0 + 2 * hour)
        _ = shard.advance(wall: 100)
        #expect(shard.processor.watermarkMillis == t0 + hour)
        // Within the lateness: applied at its own time.
        let inTime = try #require(shard.send("Product Added", user: "c-1", at: t0 + 90 * minute).json)
        #expect(inTime["event_time"] as? String == ISO8601Time.format(millis: t0 + 90 * minute))
        #expect(shard.processor.lateEvents == 0)
        // Later than that: counted, and decided as if at the watermark; `event_time` stays the event's own
        // timestamp, which a channel matches the recommendation to.
        let late = try #require(shard.send("Product Added", user: "c-2", at: t0).json)
        #expect(late["event_time"] as? String == ISO8601Time.format(millis: t0))
        #expect(shard.processor.lateEvents == 1)
        let c2 = try #require(shard.processor.snapshot(of: Array("c-2".utf8), atMillis: nil))
        #expect(c2.lastEventMillis == t0 + hour)
        #expect(c2.shardWatermarkMillis == t0 + hour)
        #expect(c2.shardEventTimeMillis == t0 + 2 * hour)
    }

    @Test func lateEventsCanBeDeadLettered() throws {
        let shard = try ShardUnderTest { $0.latePolicy = .deadLetter }
        _ = shard.advance(wall: 0)
        shard.tick(to: t0 + 2 * hour)
        _ = shard.advance(wall: 100)
        guard case .invalid(let code) = shard.send("Product Added", user: "c-2", at: t0) else {
            Issue.record("a late event was not dead-lettered")
            return
        }
        #expect(code == .late)
        #expect(code.rawValue == "late")
        #expect(shard.processor.lateEvents == 1)
        // Nothing applied: the customer does not exist, and no timer was armed.
        #expect(shard.processor.snapshot(of: Array("c-2".utf8), atMillis: nil) == nil)
        shard.tick(to: t0 + 10 * hour)
        #expect(shard.advance(wall: 200).isEmpty)
    }

    /// A late or future event that is dead-lettered leaves its id unrecorded: its sender may correct the time
    /// and send it again with the same messageId, and that is applied, not dropped as a duplicate.
    @Test func aDeadLetteredEventCorrectedAndSentAgainIsApplied() throws {
        let shard = try ShardUnderTest {
            $0.latePolicy = .deadLetter
            $0.maxClockSkew = .seconds(300)
        }
        let wall = t0 + 3 * hour
        _ = shard.advance(wall: wall)
        shard.tick(to: t0 + 2 * hour)
        _ = shard.advance(wall: wall)
        func applied(_ handled: Handled) -> Bool {
            switch handled {
            case .updated, .decided: true
            default: false
            }
        }
        guard case .invalid(.late) = shard.send("Product Added", user: "c-2", at: t0, id: "late-1"),
              case .invalid(.future) = shard.send("Product Added", user: "c-3", at: wall + 365 * day, id: "future-1") else {
            Issue.record("the late and future events were not dead-lettered")
            return
        }
        #expect(applied(shard.send("Product Added", user: "c-2", at: t0 + 2 * hour, id: "late-1")), "the corrected late event")
        #expect(applied(shard.send("Product Added", user: "c-3", at: t0 + 2 * hour, id: "future-1")), "the corrected future event")
        // Once applied, the id is remembered as any other.
        guard case .duplicate = shard.send("Product Added", user: "c-2", at: t0 + 2 * hour, id: "late-1") else {
            Issue.record("a repeat of an applied event was not a duplicate")
            return
        }
        #expect(shard.processor.lateEvents == 1 && shard.processor.futureEvents == 1)
    }

    @Test func aFarFutureStampIsAppliedAtTheShardsEventTimeAndMovesNoClock() throws {
        let shard = try ShardUnderTest { $0.maxClockSkew = .seconds(300) }
        // Catching up: the wall clock is three hours past the input.
        let wall = t0 + 3 * hour
        _ = shard.advance(wall: wall)
        shard.send("Product Added", user: "c-1", at: t0)
        // A device clock a year fast: counted, applied at the shard's newest event time.
        shard.send("Product Viewed", user: "bad-clock", at: wall + 365 * day)
        #expect(shard.processor.futureEvents == 1)
        let badClock = try #require(shard.processor.snapshot(of: Array("bad-clock".utf8), atMillis: nil))
        #expect(badClock.lastEventMillis == t0)
        // It moved no clock: the watermark follows the backlog, and c-1's cart (due at t0 + 30 min) waits.
        #expect(shard.advance(wall: wall + 1_000).isEmpty)
        #expect(shard.processor.watermarkMillis == t0 - hour)
        #expect(shard.processor.lateEvents == 0)
        // Within the skew: its own time.
        shard.send("Product Viewed", user: "c-3", at: wall + 200_000)
        #expect(shard.processor.futureEvents == 1)
        #expect(shard.processor.snapshot(of: Array("c-3".utf8), atMillis: nil)?.lastEventMillis == wall + 200_000)
    }

    @Test func aFarFutureStampDoesNotExpireALink() throws {
        let shard = try ShardUnderTest {
            $0.maxClockSkew = .seconds(300)
            $0.allowedLateness = .seconds(86_400)
        }
        _ = shard.advance(wall: t0)
        shard.send("Product Viewed", user: "u-1", anonymous: "a-1", at: t0)
        // Read at its own time, the stamp would find the link unused for a year, drop it, and start a phantom a-1.
        shard.send("Product Added", anonymous: "a-1", at: t0 + 365 * day)
        #expect(shard.processor.futureEvents == 1)
        #expect(shard.processor.snapshot(of: Array("a-1".utf8), atMillis: nil) == nil)
        #expect(shard.processor.snapshot(of: Array("u-1".utf8), atMillis: nil)?[feature: "adds_24h"] == 1)
    }

    @Test func aFarFutureStampCanBeDeadLettered() throws {
        let shard = try ShardUnderTest {
            $0.maxClockSkew = .seconds(300)
            $0.latePolicy = .deadLetter
        }
        _ = shard.advance(wall: t0)
        guard case .invalid(let code) = shard.send("Product Added", user: "c-1", at: t0 + 301_000) else {
            Issue.record("an event stamped past the skew was not dead-lettered")
            return
        }
        #expect(code.rawValue == "future")
        #expect(shard.processor.futureEvents == 1)
        #expect(shard.processor.snapshot(of: Array("c-1".utf8), atMillis: nil) == nil)
        // The limit follows the wall clock.
        _ = shard.advance(wall: t0 + hour)
        #expect(shard.send("Product Added", user: "c-1", at: t0 + 301_000).json != nil)
        #expect(shard.processor.futureEvents == 1)
    }

    @Test func anIdlePartitionDoesNotStallTimers() throws {
        let shard = try ShardUnderTest {
            $0.allowedLateness = .seconds(600)
            $0.idlePartitionTimeout = .seconds(10)
        }
        _ = shard.advance(wall: 0)
        shard.send("Product Viewed", anonymous: "slow", at: t0, partition: 1)   // partition 1 then goes quiet
        shard.send("Product Added", user: "c-1", at: t0, partition: 0)
        shard.tick(to: t0 + 2 * hour, partition: 0)
        // Partition 1 is behind and not yet idle: it holds the watermark (and the cart) back.
        #expect(shard.advance(wall: 1_000).isEmpty)
        #expect(shard.processor.watermarkMillis == t0 - 10 * minute)
        _ = shard.advance(wall: 9_000)
        shard.tick(to: t0 + 2 * hour + minute, partition: 0)                 // partition 0 keeps talking
        // 10 s after its last message partition 1 is idle: the watermark follows partition 0 and the cart fires.
        let fired = shard.advance(wall: 10_500)
        #expect(fired.map { trigger($0)["event"] as? String } == ["Cart Abandoned"])
        #expect(shard.processor.watermarkMillis == t0 + 2 * hour + minute - 10 * minute)
        // Partition 1 wakes up behind: its event is late, and the watermark does not move back.
        let before = shard.processor.watermarkMillis
        shard.send("Product Viewed", anonymous: "slow", at: t0 + 5 * minute, partition: 1)
        _ = shard.advance(wall: 11_000)
        #expect(shard.processor.lateEvents == 1)
        #expect(shard.processor.watermarkMillis == before)
    }

    @Test func anAssignedPartitionHoldsTheWatermarkUntilItSpeaksOrIdles() throws {
        let shard = try ShardUnderTest {
            $0.allowedLateness = .seconds(600)
            $0.idlePartitionTimeout = .seconds(10)
        }
        _ = shard.advance(wall: 0)
        shard.processor.assignPartition(3, epoch: 7)
        #expect(shard.processor.trackedEpoch(of: 3) == 7)
        shard.send("Product Added", user: "c-1", at: t0)
        shard.tick(to: t0 + 2 * hour)
        #expect(shard.advance(wall: 5_000).isEmpty)
        #expect(shard.processor.watermarkMillis == .min)   // partition 3 may still bring older events
        shard.tick(to: t0 + 2 * hour + minute)
        #expect(shard.advance(wall: 10_001).count == 1)   // partition 3 idled out: the cart fires
        shard.processor.revokePartition(3)
        #expect(shard.processor.trackedEpoch(of: 3) == nil)
    }

    @Test func aBurstMovesTheWatermarkOnceEverythingIsQuiet() throws {
        let shard = try ShardUnderTest {
            $0.allowedLateness = .seconds(600)
            $0.idlePartitionTimeout = .seconds(10)
        }
        _ = shard.advance(wall: 0)
        shard.processor.assignPartition(1, epoch: 1)   // empty all along
        shard.send("Product Added", user: "c-1", at: t0)
        shard.tick(to: t0 + hour)
        #expect(shard.advance(wall: 1_000).isEmpty)
        // Everything idle: the input has caught up, and the watermark goes as far as the events allow.
        #expect(shard.advance(wall: 20_000).count == 1)
        #expect(shard.processor.watermarkMillis == t0 + 50 * minute)
    }

    @Test func cartTimersAreBoundedAndCounted() throws {
        let shard = try ShardUnderTest {
            $0.maxTimerCustomersPerShard = 2
            $0.customerSilentAfter = nil
        }
        _ = shard.advance(wall: 0)
        for c in ["c-1", "c-2", "c-3"] { shard.send("Product Added", user: c, at: t0) }
        #expect(shard.processor.timersScheduled == 2)
        #expect(shard.processor.timersDropped == 1)
    }

    /// Once a rebalance moves a customer's input partition to another instance, this one fires none of their
    /// timers (the new owner decides for them); the customers it still owns fire as before. Before, the old
    /// owner kept firing carts checked out elsewhere, and silences of customers active elsewhere. Between an
    /// eager rebalance's revocation of everything and its assignment, timers wait: none is dropped.
    @Test func timersOfCustomersWhosePartitionMovedAwayDoNotFire() throws {
        let ownership = InstanceOwnership(partitioner: .consistent)
        ownership.setPartitionCount(2)
        ownership.set(0, owned: true)
        ownership.set(1, owned: true)
        func partition(_ id: String) -> Int32 { Array(id.utf8).withUnsafeBytes { ownership.partitioner.partition(of: $0, count: 2) } }
        let ids = (0..<40).map { "c-\($0)" }
        let stays = try #require(ids.first { partition($0) == 0 })
        let moves = try #require(ids.first { partition($0) == 1 })
        let shard = try ShardUnderTest(ownership: ownership) { $0.customerSilentAfter = .seconds(3_600) }
        _ = shard.advance(wall: 0)
        for id in [stays, moves] { shard.send("Product Added", user: id, at: t0) }
        ownership.set(0, owned: false)                       // an eager rebalance revokes everything first
        ownership.set(1, owned: false)
        shard.tick(to: t0 + 3 * 3_600_000)
        #expect(shard.advance(wall: 50).isEmpty)
        #expect(shard.processor.timersDropped == 0, "mid-rebalance, timers wait")
        ownership.set(0, owned: true)                        // partition 1 went to another instance
        let fired = shard.advance(wall: 100).map { "\($0["_key"] as? String ?? "?") \(trigger($0)["event"] as? String ?? "?")" }
        #expect(fired == ["\(stays) Cart Abandoned", "\(stays) Customer Silent"])
        #expect(shard.processor.timersDropped == 2)
        #expect(shard.processor.timersFired(.cartAbandoned) == 1 && shard.processor.timersFired(.customerSilent) == 1)
    }

    /// An assignment that stays empty (more instances than partitions) is not a rebalance for good: past the
    /// grace, the due timers of customers no longer ours are dropped rather than kept waiting (a due silence
    /// kept waiting also holds the TTL sweep back).
    @Test func anEmptyAssignmentDropsTimersAfterTheGrace() throws {
        let ownership = InstanceOwnership(partitioner: .consistent, rebalanceGrace: .zero)
        ownership.setPartitionCount(1)
        ownership.set(0, owned: true)
        let shard = try ShardUnderTest(ownership: ownership)
        _ = shard.advance(wall: 0)
        shard.send("Product Added", user: "c-1", at: t0)
        ownership.set(0, owned: false)
        #expect(!ownership.isBetweenAssignments)
        shard.tick(to: t0 + 3 * 3_600_000)
        #expect(shard.advance(wall: 100).isEmpty)
        #expect(shard.processor.timersDropped == 1)
    }

    /// A customer evicted to the cold tier before their silence comes due keeps it: it fires at its deadline,
    /// once, from the cold tier (which hands the customer back to decide with their features). A customer who
    /// came back in between is silent from their newest event instead, once. (Before, an evicted customer's
    /// silence was dropped.)
    @Test func anEvictedCustomersSilenceFiresFromTheColdTier() throws {
        let shard = try ShardUnderTest(idleTTL: .seconds(7 * 86_400)) { $0.cartAbandonedAfter = nil }
        _ = shard.advance(wall: 0)
        shard.send("Product Viewed", user: "c-1", at: t0)
        shard.send("Product Viewed", user: "c-back", at: t0)
        shard.send("Product Viewed", user: "c-2", at: t0 + 8 * day)   // moves the watermark past their TTL
        #expect(shard.advance(wall: 500).isEmpty)
        #expect(shard.processor.sweepIdle(limit: 64) == 2)
        #expect(shard.processor.table.coldCount == 2)
        shard.send("Product Viewed", user: "c-back", at: t0 + 9 * day)  // back: silent from here on
        shard.send("Product Viewed", user: "c-3", at: t0 + 30 * day)
        let fired = shard.firings(wall: 1_000)
        #expect(fired == ["c-1 \(ISO8601Time.format(millis: t0 + 14 * day))", "c-2 \(ISO8601Time.format(millis: t0 + 22 * day))",
                          "c-back \(ISO8601Time.format(millis: t0 + 23 * day))"])
        #expect(shard.processor.timersDropped == 0)
        #expect(shard.processor.table.restores == 2, "c-back by their event, c-1 to fire")
        shard.send("Product Viewed", user: "c-4", at: t0 + 60 * day)
        #expect(shard.advance(wall: 2_000).map { $0["_key"] as? String } == ["c-3"], "each silence fired once")
    }
}

@Suite("Cart and silence timers")
struct CustomerTimersTests {
    /// A small deterministic generator (SplitMix64), so a failure replays.
    private struct SplitMix {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    @Test func randomOutOfOrderTrafficFiresEachTimerOnceAndFreesEverything() {
        let carts = CartTimers(cartAbandonedAfterMillis: 30 * minute, capacity: 10_000, expectedCarts: 64)
        var silences = SilenceTimers(delayMillis: 14 * day)
        var random = SplitMix(state: 7)
        let kinds: [EventKind] = [.productAdded, .productAdded, .productRemoved, .checkoutStarted, .orderCompleted, .productViewed]
        var watermark = Int64.min
        var fired: [String] = []
        var id: [UInt8] = []
        var now = t0
        // The store: a slot per customer, and the newest event time per slot, which silences are measured from.
        var slots: [String: Int] = [:]
        var names: [String] = []
        var newest: [Int64] = []
        func fire(through mark: Int64) {
            while carts.scheduled + silences.scheduled > 0, min(carts.earliestDeadline, silences.earliestDeadline) <= mark {
                if let deadline = carts.nextDue(watermark: mark, through: silences.earliestDeadline, customerId: &id) {
                    #expect(deadline <= mark)
                    fired.append("\(String(decoding: id, as: UTF8.self))/cart/\(deadline)")
                } else if case .hot(let slot, let deadline)? = silences.nextDue(watermark: mark, through: carts.earliestDeadline,
                                                                                  newestEventMillis: { newest[$0] }) {
                    #expect(deadline <= mark)
                    fired.append("\(names[slot])/silent/\(deadline)")
                }
            }
        }
        for step in 0..<40_000 {
            // Mostly seconds apart, sometimes a quiet spell of days, so that some customers fall silent.
            now += step % 2_000 == 0 ? 15 * day : Int64(random.next(20_000))
            // Up to 10 minutes out of order, never behind the watermark (the lateness is 10 minutes).
            let at = max(now - Int64(random.next(600_000)), watermark)
            let name = "\(step % 3 == 0 ? "a" : "c")-\(random.next(300))"
            let slot = slots[name] ?? names.count
            if slot == names.count {
                slots[name] = slot
                names.append(name)
                newest.append(.min)
            }
            newest[slot] = max(newest[slot], at)
            Array(name.utf8).withUnsafeBytes {
                carts.observe(customer: $0, hash: nudgeHash64($0), kind: kinds[random.next(kinds.count)], at: at, watermark: watermark)
            }
            silences.observe(slot: slot, known: name.hasPrefix("c"), newest: newest[slot], watermark: watermark)
            if step % 50 == 0 {
                watermark = max(watermark, now - 10 * minute)
                fire(through: watermark)
            }
        }
        #expect(carts.fired > 0)
        #expect(silences.fired > 0)
        let silent = silences.fired
        // The end of time: whatever is armed fires, and every record is freed.
        fire(through: .max)
        #expect(Set(fired).count == fired.count, "a timer fired twice")
        #expect(silences.fired > silent)
        #expect(fired.filter { $0.hasPrefix("a-") && $0.contains("/silent/") }.isEmpty)
        // Every known customer's last silence fired, at their newest event + 14 days.
        for (slot, name) in names.enumerated() where name.hasPrefix("c") {
            #expect(fired.contains("\(name)/silent/\(newest[slot] + 14 * day)"), "\(name)")
        }
        #expect(carts.customers == 0)
        #expect(carts.scheduled == 0)
        #expect(silences.scheduled == 0)
        #expect(carts.dropped == 0)
    }

    /// A slot the store frees takes its queued silence with it: its next customer starts with none, and
    /// the old entry never fires for them.
    @Test func aForgottenSlotsSilenceNeverFires() {
        var silences = SilenceTimers(delayMillis: 14 * day)
        var newest: [Int64] = [t0, t0]
        silences.observe(slot: 0, known: true, newest: t0, watermark: t0 - minute)
        silences.observe(slot: 1, known: true, newest: t0, watermark: t0 - minute)
        silences.forget(slot: 0)                   // detached by identity stitching
        #expect(silences.forgotten == 1)
        newest[0] = t0 + day                       // a new customer in the slot
        silences.observe(slot: 0, known: true, newest: t0 + day, watermark: t0)
        var due: [String] = []
        while case .hot(let slot, let deadline)? = silences.nextDue(watermark: .max, newestEventMillis: { newest[$0] }) {
            due.append("\(slot)@\(deadline)")
        }
        #expect(due == ["1@\(t0 + 14 * day)", "0@\(t0 + 15 * day)"])
        #expect(silences.scheduled == 0)
    }

    /// A slot's customer leaving for the cold tier takes the silence's deadline (their newest event + the
    /// delay) to the cold queue, which hands it back by id hash in deadline order with the hot ones; brought
    /// back, the customer's silence is queued in the hot tier again. Compaction keeps what the caller says.
    @Test func aSilenceLeavesWithItsCustomerAndComesBack() {
        var silences = SilenceTimers(delayMillis: 14 * day)
        var newest: [Int64] = [t0, t0, t0 + day]
        for slot in 0..<3 { silences.observe(slot: slot, known: true, newest: newest[slot], watermark: t0 - minute) }
        #expect(silences.leave(slot: 0, hash: 0xAAAA_0000_0000_BBBB, newest: t0 + 2 * day) == t0 + 16 * day)
        #expect(silences.leave(slot: 2, hash: 7, newest: newest[2]) == t0 + 15 * day)
        #expect(silences.leave(slot: 2, hash: 7, newest: newest[2]) == nil, "nothing queued any more")
        #expect(silences.coldScheduled == 2 && silences.forgotten == 0)
        newest[0] = .min                           // the slot is free
        var due: [SilenceTimers.Due] = []
        while let next = silences.nextDue(watermark: .max, newestEventMillis: { newest[$0] }) { due.append(next) }
        #expect(due == [.hot(slot: 1, deadline: t0 + 14 * day), .cold(hash: 7, deadline: t0 + 15 * day),
                        .cold(hash: 0xAAAA_0000_0000_BBBB, deadline: t0 + 16 * day)])
        // Back in slot 0 with the carried deadline: queued there, fired once.
        newest[0] = t0 + day
        silences.restore(slot: 0, deadline: t0 + 15 * day)
        silences.restore(slot: 0, deadline: t0 + 15 * day)
        #expect(silences.nextDue(watermark: .max, newestEventMillis: { newest[$0] }) == .hot(slot: 0, deadline: t0 + 15 * day))
        #expect(silences.nextDue(watermark: .max, newestEventMillis: { newest[$0] }) == nil)

        for slot in 0..<3 { silences.observe(slot: slot, known: true, newest: t0 + 2 * day, watermark: t0) }
        for slot in 0..<3 { _ = silences.leave(slot: slot, hash: UInt64(slot), newest: t0 + 2 * day) }
        silences.compactCold { hash, deadline in hash == 1 && deadline == t0 + 16 * day }
        #expect(silences.coldScheduled == 1)
        #expect(silences.nextDue(watermark: .max, newestEventMillis: { newest[$0] }) == .cold(hash: 1, deadline: t0 + 16 * day))
    }

    @Test func manyCustomersChurningThroughTheIndexFireExactlyAsAModelSays() {
        // In-order carts of 5,000 customers against a plain model of the rule, so that records are created,
        // freed and reused and the index grows and deletes by backward shift thousands of times.
        let timers = CartTimers(cartAbandonedAfterMillis: 30 * minute, capacity: 100_000, expectedCarts: 16)
        var random = SplitMix(state: 11)
        var lastAdd: [Int: Int64] = [:]
        var settled: [Int: Int64] = [:]
        var items: [Int: Int] = [:]
        var id: [UInt8] = []
        var now = t0
        var total = 0
        for step in 1...60_000 {
            now += Int64(random.next(2_000))
            let c = random.next(5_000)
            let order = random.next(4) == 0
            if order {
                items[c] = 0
                settled[c] = now
            } else {
                items[c, default: 0] += 1
                lastAdd[c] = now
            }
            Array("c-\(c)".utf8).withUnsafeBytes {
                timers.observe(customer: $0, hash: nudgeHash64($0), kind: order ? .orderCompleted : .productAdded, at: now,
                               watermark: now - minute)
            }
            guard step % 100 == 0 else { continue }
            let watermark = now - minute
            var expected: [String] = []
            for (customer, added) in lastAdd where (items[customer] ?? 0) > 0 && added > (settled[customer] ?? .min)
                && added + 30 * minute <= watermark {
                expected.append("c-\(customer)@\(added + 30 * minute)")
                settled[customer] = added
            }
            var got: [String] = []
            while let deadline = timers.nextDue(watermark: watermark, customerId: &id) {
                got.append("\(String(decoding: id, as: UTF8.self))@\(deadline)")
            }
            #expect(got.sorted() == expected.sorted(), "step \(step)")
            total += got.count
        }
        #expect(total > 1_000)
        while timers.nextDue(watermark: .max, customerId: &id) != nil {}
        #expect(timers.customers == 0)
        #expect(timers.scheduled == 0)
    }

    /// Random carts out of order, with late events, removes, checkouts and orders, against a plain model of
    /// the rule over each customer's state, checked as the watermark moves: the same carts fire, at the same
    /// deadlines, once. The model keeps every customer forever; the timers free and reuse records, queue
    /// lazily and move deadlines in place. A few busy customers (many events per cart) and many quiet ones.
    @Test(arguments: [40, 1_500])
    func outOfOrderCartsFireExactlyAsAModelSays(customers: Int) {
        struct Cart { var items = 0; var lastAdd = Int64.min; var settled = Int64.min }
        let delay = 30 * minute
        let lateness = 10 * minute
        let timers = CartTimers(cartAbandonedAfterMillis: delay, capacity: 100_000, expectedCarts: 16)
        var random = SplitMix(state: 23)
        let kinds: [EventKind] = [.productAdded, .productAdded, .productAdded, .productAdded, .productRemoved, .productRemoved,
                                  .checkoutStarted, .orderCompleted, .productViewed, .productViewed]
        var model: [Int: Cart] = [:]
        var id: [UInt8] = []
        var now = t0
        var watermark = Int64.min
        var fired = 0
        var lateSeen = 0
        for step in 1...40_000 {
            now += step % 4_000 == 0 ? 2 * hour : Int64(random.next(20_000))
            watermark = max(watermark, now - lateness)
            let at = now - Int64(random.next(Int(15 * minute)))
            let late = at < watermark
            if late { lateSeen += 1 }
            let c = random.next(customers)
            let kind = kinds[random.next(kinds.count)]
            var cart = model[c] ?? Cart()
            switch kind {
            case .productAdded where !late:
                cart.items += 1
                cart.lastAdd = max(cart.lastAdd, at)
            case .productRemoved where !late:
                cart.items = max(0, cart.items - 1)
            case .checkoutStarted, .orderCompleted:
                cart.items = at >= cart.lastAdd ? 0 : min(cart.items, 1)
                cart.settled = max(cart.settled, at)
            default: break
            }
            if cart.lastAdd <= cart.settled { cart.items = 0 }
            model[c] = cart
            Array("c-\(c)".utf8).withUnsafeBytes {
                timers.observe(customer: $0, hash: nudgeHash64($0), kind: kind, at: at, late: late, watermark: watermark)
            }
            guard step % 25 == 0 else { continue }
            var expected: [String] = []
            for (customer, cart) in model where cart.items > 0 && cart.lastAdd > cart.settled && cart.lastAdd + delay <= watermark {
                expected.append("c-\(customer)@\(cart.lastAdd + delay)")
                model[customer]?.settled = cart.lastAdd
                model[customer]?.items = 0
            }
            var got: [String] = []
            while let deadline = timers.nextDue(watermark: watermark, customerId: &id) {
                got.append("\(String(decoding: id, as: UTF8.self))@\(deadline)")
            }
            #expect(got.sorted() == expected.sorted(), "step \(step)")
            if got.sorted() != expected.sorted() { return }
            fired += got.count
        }
        #expect(fired > 500 && lateSeen > 1_000, "\(fired) fired, \(lateSeen) late")
        while timers.nextDue(watermark: .max, customerId: &id) != nil {}
        #expect(timers.customers == 0)
        #expect(timers.scheduled == 0)
    }

    /// A settle behind the watermark is not remembered (no add in lateness can be as old); one at the
    /// watermark or ahead of it is, until the watermark passes it, so that an add in the same millisecond
    /// finds the cart closed. (A settle at the watermark was forgotten, and such an add armed the cart.)
    @Test func aSettleIsRememberedUntilTheWatermarkPassesItAndNothingSpins() {
        let timers = CartTimers(cartAbandonedAfterMillis: 30 * minute, capacity: 100, expectedCarts: 16)
        var id: [UInt8] = []
        let watermark = t0
        func send(_ customer: String, _ kind: EventKind, at: Int64, watermark: Int64) {
            Array(customer.utf8).withUnsafeBytes {
                timers.observe(customer: $0, hash: nudgeHash64($0), kind: kind, at: at, watermark: watermark)
            }
        }
        send("c-0", .checkoutStarted, at: watermark - 1, watermark: watermark)
        #expect(timers.customers == 0)
        send("c-1", .checkoutStarted, at: watermark, watermark: watermark)
        send("c-1", .productAdded, at: watermark, watermark: watermark)
        send("c-2", .orderCompleted, at: watermark + 1, watermark: watermark)
        #expect(timers.customers == 2 && timers.scheduled == 2)  // remembered until the watermark passes them
        // The same watermark again and again, as a shard's idle turns pass it: each marker comes due once.
        for _ in 0..<3 { #expect(timers.nextDue(watermark: watermark + 2, customerId: &id) == nil) }
        #expect(timers.scheduled == 0)
        #expect(timers.customers == 0)
        #expect(timers.nextDue(watermark: watermark + 2 * hour, customerId: &id) == nil, "c-1's add was in a closed cart")
    }
}
