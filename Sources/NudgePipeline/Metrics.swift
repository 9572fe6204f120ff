import Atomics
import Foundation
import Histogram
import NudgeEvents
import NudgeKafka

/// One shard's position in event time, for metrics.
public struct ShardEventTime: Sendable, Equatable {
    /// The shard.
    public var shard: Int
    /// Its watermark (Unix ms); nil before it has one.
    public var watermarkMillis: Int64?
    /// The newest event time it has seen; nil before any.
    public var newestEventMillis: Int64?

    /// How far the watermark trails the newest event (ms): the allowed lateness, plus however far the
    /// slowest active partition is behind. Nil without both.
    public var watermarkLagMillis: Int64? {
        guard let watermarkMillis, let newestEventMillis else { return nil }
        return newestEventMillis.addingSaturating(-watermarkMillis)
    }

    /// A shard's figures.
    public init(shard: Int, watermarkMillis: Int64?, newestEventMillis: Int64?) {
        self.shard = shard
        self.watermarkMillis = watermarkMillis
        self.newestEventMillis = newestEventMillis
    }
}

/// One metrics snapshot, in the contract's shape (`nba.metrics`).
public struct MetricsSnapshot: Sendable, Equatable {
    /// Instance id (also the message key).
    public var instance: String
    /// When the snapshot was taken (ISO-8601).
    public var at: String
    /// Seconds since the pipeline started.
    public var uptimeSeconds: Double
    /// Messages consumed and handled, in total.
    public var eventsIn: Int
    /// Messages per second over the last interval.
    public var eventsPerSecond: Double
    /// Messages dead-lettered.
    public var deadLetter: Int
    /// Duplicate message ids dropped.
    public var duplicatesDropped: Int
    /// Decisions published, by action (`none` included).
    public var recommendationsByAction: [String: Int]
    /// Customers in the store.
    public var customers: Int
    /// Bytes of store state.
    public var storeBytes: Int
    /// The cold tier: customers held (`customers` counts the hot tier), evictions and restores since start,
    /// and customers dropped at the cold tier's memory budget.
    public var cold: ColdTierFigures = ColdTierFigures()
    /// Messages not yet committed, per partition (`topic/partition`).
    public var consumerLag: [String: Int64]
    /// Event arrival to recommendation delivered, over the last interval: p50, p99, p999, max (ms).
    public var latencyMs: [String: Double]
    /// Loaded model versions.
    public var models: [String: String]
    /// Outputs refused for good, by `send` or by the broker once librdkafka's retries ran out (the offsets
    /// waiting for them stay uncommitted).
    public var deliveryFailures: Int
    /// Whether a ``PipelineFault`` has been recorded: `/health` answers 503 (Prometheus only).
    public var faulted = false
    /// Partitions taken from this instance by rebalances since start (a leave and rejoin counts all it held).
    public var partitionsRevoked = 0
    /// Decisions by NBA model version (champion and challenger).
    public var recommendationsByModel: [String: Int]
    /// Offer outcomes (`delivered`, `viewed`, `accepted`, `dismissed`) by the NBA model version of the
    /// customer's champion/challenger group: the acceptance rates to compare two versions by.
    public var outcomesByModel: [String: [String: Int]] = [:]
    /// Model files swapped in, and refused, since start.
    public var modelReloads: Int
    public var modelRefusals: Int
    /// Events older than their shard's watermark (applied at it or dead-lettered, per the late policy).
    public var lateEvents: Int = 0
    /// Events stamped further ahead of the wall clock than the allowed skew (applied at their shard's newest
    /// event time, or dead-lettered, per the late policy).
    public var futureEvents: Int = 0
    /// Each shard's watermark and newest event time.
    public var eventTime: [ShardEventTime] = []
    /// Timers queued now.
    public var timersScheduled: Int = 0
    /// Timers fired, by name (`Cart Abandoned`, `Customer Silent`).
    public var timersFired: [String: Int] = [:]
    /// Cart timers refused at the per-shard capacity or due for a customer no longer in the store, and
    /// silences whose customer left the hot tier before they came due.
    public var timersDropped: Int = 0
    /// Identity stitching: links held, histories merged, links forgotten, messages between shards.
    public var identity = IdentityFigures()

    /// Recommendations in total.
    public var recommendations: Int { recommendationsByAction.values.reduce(0, +) }
    /// Lag summed over partitions.
    public var totalLag: Int64 { consumerLag.values.reduce(0, +) }
    /// The largest watermark lag of any shard (ms), 0 when none has a watermark.
    public var watermarkLagMillis: Int64 { eventTime.compactMap(\.watermarkLagMillis).max() ?? 0 }

    /// The snapshot as the contract's JSON.
    public func json() -> [UInt8] {
        typealias J = SnapshotJSON
        func time(_ millis: Int64?) -> J { millis.map { .string(ISO8601Time.format(millis: $0)) } ?? .null }
        let object: [String: J] = [
            "instance": .string(instance), "at": .string(at), "uptime_s": .rounded(uptimeSeconds, toPlaces: 3),
            "events_in": .int(eventsIn), "events_per_s": .rounded(eventsPerSecond, toPlaces: 1),
            "deadletter": .int(deadLetter), "duplicates_dropped": .int(duplicatesDropped),
            "recommendations": .object(["total": .int(recommendations), "by_action": .counts(recommendationsByAction),
                                        "by_model": .counts(recommendationsByModel)]),
            "outcomes": .object(["by_model": .object(outcomesByModel.mapValues { .counts($0) })]),
            "customers": .int(customers), "store_bytes": .int(storeBytes),
            "cold": .object(["customers": .int(cold.customers), "evictions": .int(cold.evictions), "forced": .int(cold.forced),
                             "restores": .int(cold.restores), "dropped": .int(cold.dropped)]),
            "consumer_lag": .object(["total": .integer(totalLag), "partitions": .object(consumerLag.mapValues { .integer($0) })]),
            "latency_ms": .object(latencyMs.mapValues { .rounded($0, toPlaces: 3) }),
            "models": .object(models.mapValues { .string($0) }), "delivery_failures": .int(deliveryFailures),
            "partitions_revoked": .int(partitionsRevoked),
            "model_reloads": .object(["swapped": .int(modelReloads), "refused": .int(modelRefusals)]),
            "late_events": .int(lateEvents), "future_events": .int(futureEvents),
            "watermark": .object([
                "lag_ms": .integer(watermarkLagMillis),
                "shards": .array(eventTime.map { shard in
                    .object(["shard": .int(shard.shard), "watermark": time(shard.watermarkMillis),
                             "newest_event": time(shard.newestEventMillis),
                             "lag_ms": shard.watermarkLagMillis.map { .integer($0) } ?? .null])
                }),
            ]),
            "timers": .object(["scheduled": .int(timersScheduled), "fired": .counts(timersFired), "dropped": .int(timersDropped)]),
            "identity": .object(["links": .int(identity.links), "merges": .int(identity.merges), "forgotten": .int(identity.forgotten),
                                 "messages": .int(identity.messages), "misses": .int(identity.misses)]),
        ]
        return J.object(object).bytes
    }

    /// The same figures in Prometheus' text exposition format.
    public func prometheusText() -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP nudge_\(name) \(help)\n# TYPE nudge_\(name) \(type)\n"
            for (labels, value) in samples { out += "nudge_\(name)\(labels) \(value)\n" }
        }
        let inst = "instance=\"\(instance)\""
        metric("events_in_total", "counter", "Messages consumed and handled.", [("{\(inst)}", "\(eventsIn)")])
        metric("events_per_second", "gauge", "Messages per second over the last interval.", [("{\(inst)}", "\(eventsPerSecond)")])
        metric("deadletter_total", "counter", "Messages sent to the dead-letter topic.", [("{\(inst)}", "\(deadLetter)")])
        metric("duplicates_dropped_total", "counter", "Duplicate message ids dropped.", [("{\(inst)}", "\(duplicatesDropped)")])
        metric("recommendations_total", "counter", "Decisions published, by action.",
               recommendationsByAction.sorted { $0.key < $1.key }.map { ("{\(inst),action=\"\($0.key)\"}", "\($0.value)") })
        metric("customers", "gauge", "Customers in the store.", [("{\(inst)}", "\(customers)")])
        metric("store_bytes", "gauge", "Bytes of store state (hot and cold tiers).", [("{\(inst)}", "\(storeBytes)")])
        metric("cold_customers", "gauge", "Customers in the LZ4 cold tier.", [("{\(inst)}", "\(cold.customers)")])
        metric("cold_moves_total", "counter", "Customers moved to the cold tier and back, and dropped at its budget.",
               [("{\(inst),move=\"evicted\"}", "\(cold.evictions)"), ("{\(inst),move=\"restored\"}", "\(cold.restores)"),
                ("{\(inst),move=\"dropped\"}", "\(cold.dropped)")])
        metric("hot_cap_evictions_total", "counter", "Customers moved to the cold tier before their idle TTL: the hot tier was at its cap.",
               [("{\(inst)}", "\(cold.forced)")])
        metric("consumer_lag", "gauge", "Messages not yet committed, per partition.",
               consumerLag.sorted { $0.key < $1.key }.map { ("{\(inst),partition=\"\($0.key)\"}", "\($0.value)") })
        metric("latency_ms", "gauge", "Event arrival to recommendation delivered over the last interval.",
               latencyMs.sorted { $0.key < $1.key }.map { ("{\(inst),quantile=\"\($0.key)\"}", "\($0.value)") })
        metric("recommendations_by_model_total", "counter", "Decisions by NBA model version.",
               recommendationsByModel.sorted { $0.key < $1.key }.map { ("{\(inst),model=\"\($0.key)\"}", "\($0.value)") })
        metric("offer_outcomes_total", "counter", "Offer outcomes by the NBA model version of the customer's group.",
               outcomesByModel.sorted { $0.key < $1.key }.flatMap { model, counts in
                   counts.sorted { $0.key < $1.key }.map { ("{\(inst),model=\"\(model)\",outcome=\"\($0.key)\"}", "\($0.value)") }
               })
        metric("model_reloads_total", "counter", "Model files swapped in and refused.",
               [("{\(inst),result=\"swapped\"}", "\(modelReloads)"), ("{\(inst),result=\"refused\"}", "\(modelRefusals)")])
        metric("delivery_failures_total", "counter", "Outputs refused for good, at send or by the broker.", [("{\(inst)}", "\(deliveryFailures)")])
        metric("partitions_revoked_total", "counter", "Partitions taken from this instance by rebalances.", [("{\(inst)}", "\(partitionsRevoked)")])
        metric("fault", "gauge", "1 once an output failed for good: /health answers 503 and the instance wants a restart.",
               [("{\(inst)}", faulted ? "1" : "0")])
        metric("late_events_total", "counter", "Events older than their shard's watermark.", [("{\(inst)}", "\(lateEvents)")])
        metric("future_events_total", "counter", "Events stamped further ahead of the wall clock than the allowed skew.",
               [("{\(inst)}", "\(futureEvents)")])
        metric("watermark_ms", "gauge", "Shard event-time watermark, Unix milliseconds.",
               eventTime.compactMap { s in s.watermarkMillis.map { ("{\(inst),shard=\"\(s.shard)\"}", "\($0)") } })
        metric("watermark_lag_ms", "gauge", "How far a shard's watermark trails its newest event time.",
               eventTime.compactMap { s in s.watermarkLagMillis.map { ("{\(inst),shard=\"\(s.shard)\"}", "\($0)") } })
        metric("timers_scheduled", "gauge", "Event-time timers queued.", [("{\(inst)}", "\(timersScheduled)")])
        metric("timers_fired_total", "counter", "Event-time timers fired, by timer.",
               timersFired.sorted { $0.key < $1.key }.map { ("{\(inst),timer=\"\($0.key)\"}", "\($0.value)") })
        metric("timers_dropped_total", "counter", "Cart timers refused at capacity, silences of anonymous ids merged into a customer, and timers due for a customer no longer stored or whose partition moved to another instance.",
               [("{\(inst)}", "\(timersDropped)")])
        metric("identity_links", "gauge", "Identity links (anonymousId to userId) held by the shards.", [("{\(inst)}", "\(identity.links)")])
        metric("identity_merges_total", "counter", "Anonymous histories merged into known customers.", [("{\(inst)}", "\(identity.merges)")])
        metric("identity_links_forgotten_total", "counter", "Identity links expired or dropped at capacity.",
               [("{\(inst)}", "\(identity.forgotten)")])
        metric("model_info", "gauge", "Loaded model versions.",
               models.sorted { $0.key < $1.key }.map { ("{\(inst),model=\"\($0.key)\",version=\"\($0.value)\"}", "1") })
        return out
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        guard isFinite else { return 0 }
        let f = Foundation.pow(10.0, Double(places))
        return (self * f).rounded() / f
    }
}

/// Gathers the figures: shard counters (read without locks), delivery latencies (recorded on the
/// delivery thread into an HDR histogram), lag (from the consumer thread).
final class MetricsRecorder: @unchecked Sendable {
    // Sendable: mutable state is behind `state`'s lock; `shards` is set once before start.
    private struct State {
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)  // µs
        var lag: [TopicPartition: Int64] = [:]
        var lastEvents = 0
        var lastAt = ContinuousClock.now
        var latest: MetricsSnapshot?
    }
    private let state = Locked(State())
    private let config: PipelineConfig
    private let store: ModelStore
    private let counterNames: (actions: CounterNames, models: CounterNames)
    private let started = ContinuousClock.now
    private let deliveryFailures = ManagedAtomic<Int>(0)
    /// Partitions taken from this instance by rebalances (not by its stop). Consumer thread writes.
    let partitionsRevoked = ManagedAtomic<Int>(0)
    private let faults: FaultRecorder
    var shards: [ShardWorker] = []

    init(config: PipelineConfig, models: ModelStore, counterNames: (actions: CounterNames, models: CounterNames),
         faults: FaultRecorder) {
        self.config = config
        self.faults = faults
        store = models
        self.counterNames = counterNames
    }

    /// Delivery reports: finish offsets, time recommendations. Delivery thread; one lock per batch.
    func delivered(_ reports: UnsafeBufferPointer<DeliveryReport>, trackers: TrackerTable) {
        let now = monotonicNanos()
        state.withLock { s in
            for report in reports {
                if let error = report.error {
                    // librdkafka has retried (until message.timeout.ms, if the config sets one): the failure is
                    // final. Purged at close is not refused. Outputs no offset waits for (timer decisions, unlinks,
                    // metrics) are counted only.
                    if error.isAbandonedAtClose { continue }
                    deliveryFailures.wrappingIncrement(ordering: .relaxed)
                    if let (partition, offset) = trackers.outputLost(token: report.token) {
                        faults.record("the \(DeliveryToken.isRecommendation(report.token) ? "recommendation" : "dead letter or identity message") caused by \(partition) offset \(offset) was refused for good: \(error)")
                    }
                    continue
                }
                guard report.token != DeliveryToken.none, let tracker = trackers[DeliveryToken.tracker(report.token)] else { continue }
                let offset = DeliveryToken.offset(report.token)
                if DeliveryToken.isRecommendation(report.token) {
                    let arrival = tracker.arrivalNanos(offset: offset)
                    _ = s.latency.record(now > arrival ? (now - arrival) / 1000 : 0)
                }
                tracker.complete(offset: offset)
            }
        }
    }

    /// Latest per-partition lag. Consumer thread.
    func setLag(_ lag: [TopicPartition: Int64]) { state.withLock { $0.lag = lag } }

    /// Takes a snapshot that closes the interval (rates and latency restart).
    func publishSnapshot() -> MetricsSnapshot {
        let now = ContinuousClock.now
        return state.withLock { s in
            var snap = makeSnapshot(lag: s.lag)
            let seconds = Double((now - s.lastAt).components.attoseconds) / 1e18 + Double((now - s.lastAt).components.seconds)
            snap.eventsPerSecond = seconds > 0 ? Double(snap.eventsIn - s.lastEvents) / seconds : 0
            let h = s.latency
            snap.latencyMs = h.totalCount == 0 ? ["p50": 0, "p99": 0, "p999": 0, "max": 0] : [
                "p50": Double(h.valueAtPercentile(50)) / 1000, "p99": Double(h.valueAtPercentile(99)) / 1000,
                "p999": Double(h.valueAtPercentile(99.9)) / 1000, "max": Double(h.max) / 1000,
            ]
            s.latency.reset()
            s.lastEvents = snap.eventsIn
            s.lastAt = now
            s.latest = snap
            return snap
        }
    }

    /// Live counters, with the rate and latency of the last closed interval.
    func latest() -> MetricsSnapshot {
        state.withLock { s in
            var snap = makeSnapshot(lag: s.lag)
            if let last = s.latest {
                snap.eventsPerSecond = last.eventsPerSecond
                snap.latencyMs = last.latencyMs
            }
            return snap
        }
    }

    func prometheusText() -> String { latest().prometheusText() }

    private func makeSnapshot(lag: [TopicPartition: Int64]) -> MetricsSnapshot {
        var byAction: [String: Int] = [:]
        for (slot, name) in counterNames.actions.all.enumerated() {
            byAction[name] = shards.reduce(0) { $0 + $1.counters.decisions(slot: slot) }
        }
        var byModel: [String: Int] = [:]
        var outcomesByModel: [String: [String: Int]] = [:]
        for (slot, name) in counterNames.models.all.enumerated() {
            byModel[name] = shards.reduce(0) { $0 + $1.counters.decisions(modelSlot: slot) }
            var counts: [String: Int] = [:]
            for outcome in OfferOutcome.allCases {
                counts[outcome.name] = shards.reduce(0) { $0 + $1.counters.outcomes(outcome, modelSlot: slot) }
            }
            if counts.values.contains(where: { $0 > 0 }) { outcomesByModel[name] = counts }
        }
        let uptime = ContinuousClock.now - started
        return MetricsSnapshot(
            instance: config.instanceId,
            at: ISO8601DateFormatter().string(from: Date()),
            uptimeSeconds: Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18,
            eventsIn: shards.reduce(0) { $0 + $1.counters.eventsIn.value },
            eventsPerSecond: 0,
            deadLetter: shards.reduce(0) { $0 + $1.counters.deadLetters.value },
            duplicatesDropped: shards.reduce(0) { $0 + $1.counters.duplicates.value },
            recommendationsByAction: byAction,
            customers: shards.reduce(0) { $0 + $1.counters.customers.value },
            storeBytes: shards.reduce(0) { $0 + $1.counters.storeBytes.value },
            cold: ColdTierFigures(customers: shards.reduce(0) { $0 + $1.counters.coldCustomers.value },
                                  evictions: shards.reduce(0) { $0 + $1.counters.evictions.value },
                                  restores: shards.reduce(0) { $0 + $1.counters.restores.value },
                                  dropped: shards.reduce(0) { $0 + $1.counters.coldDropped.value },
                                  forced: shards.reduce(0) { $0 + $1.counters.forcedEvictions.value }),
            consumerLag: Dictionary(uniqueKeysWithValues: lag.map { ("\($0.key.topic)/\($0.key.partition)", $0.value) }),
            latencyMs: ["p50": 0, "p99": 0, "p999": 0, "max": 0],
            models: store.models.versions,
            deliveryFailures: deliveryFailures.load(ordering: .relaxed) + shards.reduce(0) { $0 + $1.counters.sendFailures.value },
            faulted: faults.current != nil,
            partitionsRevoked: partitionsRevoked.load(ordering: .relaxed),
            recommendationsByModel: byModel,
            outcomesByModel: outcomesByModel,
            modelReloads: store.reloads.load(ordering: .relaxed),
            modelRefusals: store.refusals.load(ordering: .relaxed),
            lateEvents: shards.reduce(0) { $0 + $1.counters.lateEvents.value },
            futureEvents: shards.reduce(0) { $0 + $1.counters.futureEvents.value },
            eventTime: shards.map { shard in
                let watermark = Int64(shard.counters.watermarkMillis.value)
                let newest = Int64(shard.counters.newestEventMillis.value)
                return ShardEventTime(shard: shard.index, watermarkMillis: watermark == .min ? nil : watermark,
                                      newestEventMillis: newest == .min ? nil : newest)
            },
            timersScheduled: shards.reduce(0) { $0 + $1.counters.timersScheduled.value },
            timersFired: [TimerKind.cartAbandoned.wireName: shards.reduce(0) { $0 + $1.counters.timersFiredCartAbandoned.value },
                          TimerKind.customerSilent.wireName: shards.reduce(0) { $0 + $1.counters.timersFiredCustomerSilent.value }],
            timersDropped: shards.reduce(0) { $0 + $1.counters.timersDropped.value },
            identity: IdentityFigures(links: shards.reduce(0) { $0 + $1.counters.identityLinks.value },
                                      merges: shards.reduce(0) { $0 + $1.counters.identityMerges.value },
                                      forgotten: shards.reduce(0) { $0 + $1.counters.identityLinksForgotten.value },
                                      messages: shards.reduce(0) { $0 + $1.counters.identityMessages.value },
                                      misses: shards.reduce(0) { $0 + $1.counters.identityMisses.value }))
    }
}

/// Identity stitching's figures in a metrics snapshot.
public struct IdentityFigures: Sendable, Equatable {
    /// Links held by the shards (a link between two shards is held by both).
    public var links = 0
    /// Anonymous histories folded into known customers since start.
    public var merges = 0
    /// Links expired after the idle TTL or dropped at the per-shard capacity since start.
    public var forgotten = 0
    /// Identity messages sent between shards since start.
    public var messages = 0
    /// Aliased events that found no link (not expected; applied to the anonymous id).
    public var misses = 0
}

/// The cold tier's figures in a metrics snapshot.
public struct ColdTierFigures: Sendable, Equatable {
    /// Customers held in the cold tier.
    public var customers = 0
    /// Moves to the cold tier since start.
    public var evictions = 0
    /// Moves back to the hot tier since start.
    public var restores = 0
    /// Customers dropped at the cold tier's memory budget since start.
    public var dropped = 0
    /// Of ``evictions``, those moved before their idle TTL because the hot tier was at its cap.
    public var forced = 0
}
