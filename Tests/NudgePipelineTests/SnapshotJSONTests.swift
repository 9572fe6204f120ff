import Foundation
import NudgeEvents
import Testing

@testable import NudgePipeline

@Suite("Metrics snapshot JSON")
struct SnapshotJSONTests {
    /// A snapshot with every kind of value the contract's `nba.metrics` carries, including text that needs
    /// escaping, numbers that need rounding, and shards with and without a watermark.
    static func snapshot() -> MetricsSnapshot {
        var s = MetricsSnapshot(
            instance: "nudge-\"a\"\\b\n", at: "2026-11-30T17:00:00.000Z", uptimeSeconds: 12.345678, eventsIn: 1_234_567,
            eventsPerSecond: 987_654.321, deadLetter: 3, duplicatesDropped: 4,
            recommendationsByAction: ["none": 5, "retention_offer": 6, "tab\there": 1], customers: 42, storeBytes: 1 << 33,
            consumerLag: ["nba.clickstream/0": 7, "nba.clickstream/1": 0, "nba.transactions/12": 1 << 40],
            latencyMs: ["p50": 49.2471234, "p99": 85.8, "p999": 0.0004, "max": 90.0],
            models: ["churn": "churn-2026-11-01", "nba": "nba \u{1F600} v2"], deliveryFailures: 1,
            recommendationsByModel: ["nba-1": 10, "nba-2": 11], modelReloads: 2, modelRefusals: 1)
        s.outcomesByModel = ["nba-1": ["accepted": 3, "viewed": 9]]
        s.cold = ColdTierFigures(customers: 100, evictions: 200, restores: 50, dropped: 1, forced: 30)
        s.lateEvents = 8
        s.futureEvents = 2
        s.eventTime = [ShardEventTime(shard: 0, watermarkMillis: 1_795_000_000_000, newestEventMillis: 1_795_003_600_000),
                       ShardEventTime(shard: 1, watermarkMillis: nil, newestEventMillis: nil)]
        s.timersScheduled = 12
        s.timersFired = ["Cart Abandoned": 3, "Customer Silent": 0]
        s.timersDropped = 2
        s.partitionsRevoked = 6
        s.identity = IdentityFigures(links: 5, merges: 4, forgotten: 3, messages: 2, misses: 1)
        return s
    }

    /// The contract's shape, built for Foundation's encoder independently of the writer.
    static func reference(_ s: MetricsSnapshot) -> [String: Any] {
        func rounded(_ v: Double, _ places: Double) -> Double { (v * pow(10, places)).rounded() / pow(10, places) }
        func time(_ millis: Int64?) -> Any { millis.map { ISO8601Time.format(millis: $0) as Any } ?? NSNull() }
        return [
            "instance": s.instance, "at": s.at, "uptime_s": rounded(s.uptimeSeconds, 3),
            "events_in": s.eventsIn, "events_per_s": rounded(s.eventsPerSecond, 1),
            "deadletter": s.deadLetter, "duplicates_dropped": s.duplicatesDropped,
            "recommendations": ["total": s.recommendations, "by_action": s.recommendationsByAction, "by_model": s.recommendationsByModel],
            "outcomes": ["by_model": s.outcomesByModel],
            "customers": s.customers, "store_bytes": s.storeBytes,
            "cold": ["customers": s.cold.customers, "evictions": s.cold.evictions, "forced": s.cold.forced, "restores": s.cold.restores,
                     "dropped": s.cold.dropped],
            "consumer_lag": ["total": s.totalLag, "partitions": s.consumerLag],
            "latency_ms": s.latencyMs.mapValues { rounded($0, 3) },
            "models": s.models, "delivery_failures": s.deliveryFailures, "partitions_revoked": s.partitionsRevoked,
            "model_reloads": ["swapped": s.modelReloads, "refused": s.modelRefusals],
            "late_events": s.lateEvents, "future_events": s.futureEvents,
            "watermark": ["lag_ms": s.watermarkLagMillis,
                          "shards": s.eventTime.map { shard -> [String: Any] in
                              ["shard": shard.shard, "watermark": time(shard.watermarkMillis),
                               "newest_event": time(shard.newestEventMillis),
                               "lag_ms": shard.watermarkLagMillis.map { $0 as Any } ?? NSNull()]
                          }] as [String: Any],
            "timers": ["scheduled": s.timersScheduled, "fired": s.timersFired, "dropped": s.timersDropped] as [String: Any],
            "identity": ["links": s.identity.links, "merges": s.identity.merges, "forgotten": s.identity.forgotten,
                         "messages": s.identity.messages, "misses": s.identity.misses],
        ]
    }

    @Test func writerOutputReadsBackAsTheContractShape() throws {
        let s = Self.snapshot()
        let bytes = s.json()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
        let expected = try #require(try JSONSerialization.jsonObject(
            with: JSONSerialization.data(withJSONObject: Self.reference(s))) as? NSDictionary)
        #expect(parsed == expected)
        // Spot checks that do not depend on Foundation agreeing with itself.
        #expect(parsed["instance"] as? String == "nudge-\"a\"\\b\n")
        #expect((parsed["models"] as? [String: String])?["nba"] == "nba \u{1F600} v2")
        #expect(((parsed["consumer_lag"] as? [String: Any])?["total"] as? NSNumber)?.int64Value == 1_099_511_627_783)
        #expect(parsed["uptime_s"] as? Double == 12.346)
        #expect((parsed["latency_ms"] as? [String: Double])?["p999"] == 0)
        // The exact text, since parsed NSNumbers compare 5 and 5.0 as equal: integers stay integers (a
        // strict reader rejects 5.0 for an integer field), whole doubles print without a fraction.
        let text = String(decoding: bytes, as: UTF8.self)
        for fragment in ["\"events_in\":1234567,", "\"events_per_s\":987654.3,", "\"uptime_s\":12.346,", "\"max\":90,",
                         "\"total\":1099511627783}", "\"store_bytes\":8589934592,", "\"watermark\":null}",
                         "\"nba.transactions/12\":1099511627776", "\"lag_ms\":3600000"] {
            #expect(text.contains(fragment), "\(fragment)")
        }
    }

    @Test func keysAreSortedAndTheTextIsStable() {
        let text = String(decoding: Self.snapshot().json(), as: UTF8.self)
        #expect(text == String(decoding: Self.snapshot().json(), as: UTF8.self))
        // Top-level keys that occur once in the text, in byte order.
        let top = ["\"at\":", "\"cold\":", "\"consumer_lag\":", "\"deadletter\":", "\"delivery_failures\":",
                   "\"duplicates_dropped\":", "\"events_in\":", "\"events_per_s\":", "\"identity\":", "\"instance\":",
                   "\"late_events\":"]
        let positions = top.compactMap { text.range(of: $0)?.lowerBound }
        #expect(positions.count == top.count)
        #expect(positions == positions.sorted())
        #expect(!text.contains("\n"))  // the instance's newline is escaped
    }

    /// A rate or latency that is not finite (an empty interval) is written as 0, as before; the writer itself
    /// writes a non-finite number as null, so the text is valid JSON either way.
    @Test func nonFiniteNumbersKeepTheTextValid() throws {
        var s = Self.snapshot()
        s.eventsPerSecond = .infinity
        s.latencyMs = ["p50": .nan]
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(s.json())) as? [String: Any])
        #expect(parsed["events_per_s"] as? Double == 0)
        #expect((parsed["latency_ms"] as? [String: Double])?["p50"] == 0)
        let raw = SnapshotJSON.array([.number(.nan), .number(-.infinity), .number(1e-7), .number(-2.5), .number(3)]).bytes
        #expect(String(decoding: raw, as: UTF8.self) == "[null,null,1e-07,-2.5,3]")
    }
}
