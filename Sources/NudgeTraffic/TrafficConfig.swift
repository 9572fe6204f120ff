/// Knobs of the traffic generator; every one has a sensible default.
///
/// Out-of-range values are clamped when a ``TrafficGenerator`` is created (rates to 0...1,
/// counts and durations to at least 1), so any config produces a stream.
public struct TrafficConfig: Sendable {
    /// Seed of every random choice: the same config gives a byte-identical stream.
    public var seed: UInt64 = 42
    /// Number of customers, named `c-1` ... `c-<customers>` (clamped to 1...10,000,000).
    public var customers: Int = 10_000
    /// Simulated event time of the first event, Unix milliseconds (default 2026-09-21T14:13:20Z).
    public var startMillis: Int64 = 1_790_000_000_000
    /// Mean simulated event-time gap between consecutive events of the whole stream, in milliseconds.
    ///
    /// The default, 6 s, is 14,400 events per simulated day: with 10,000 customers that is about
    /// 1.4 events per customer per day (a visit every few days, an order every 1-3 weeks for
    /// active buyers), so 1M events span about 70 days: enough for 30-day churn labels. The rate
    /// is calibrated on the population 30 days in; later, as churned customers fall silent,
    /// traffic thins slowly (5M events span about 370 days rather than 347). Keep the
    /// per-customer rate when changing `customers` with ``suggestedMeanGapMillis(customers:)``.
    public var meanGapMillis: Int64 = 6_000
    /// Share of events whose timestamp is shifted back by up to `maxLatenessMillis` behind the
    /// latest timestamp already emitted: they arrive late, out of event-time order.
    public var outOfOrderRate: Double = 0.03
    /// Largest shift back of an out-of-order event, in milliseconds (default 20 minutes).
    public var maxLatenessMillis: Int64 = 20 * 60_000
    /// Share of well-formed events emitted a second time, byte for byte (same messageId), a few
    /// messages later, as an at-least-once upstream does.
    public var duplicateRate: Double = 0.0
    /// Share of messages that are broken: truncated JSON, not JSON at all, no userId/anonymousId,
    /// an unparsable timestamp, a field of the wrong type, or an unknown message type, in equal parts.
    public var malformedRate: Double = 0.0
    /// Share of online sessions that begin anonymous (anonymousId only) and are stitched to the
    /// customer by an `identify` after their first one to three events; a session that ends
    /// before that point (a bounce) stays anonymous.
    public var anonymousShare: Double = 0.2
    /// Share of customer journeys that are offer deliveries: `Offer Delivered`, then usually
    /// `Offer Viewed` and `Offer Accepted` or `Offer Dismissed`, with `recommendation_id` and
    /// `action`. Acceptance depends on the customer's latent type, the action and the context
    /// (an abandoned cart, an open ticket, days since the last order), so it can be learned.
    /// 0 leaves the outcomes topic empty.
    public var outcomeRate: Double = 0.05

    /// The defaults above.
    public init() {}

    /// A `meanGapMillis` that keeps the default per-customer activity (about 1.4 events per
    /// customer per simulated day) for another population size.
    public static func suggestedMeanGapMillis(customers: Int) -> Int64 {
        max(1, 60_000_000 / Int64(max(1, customers)))
    }
}
