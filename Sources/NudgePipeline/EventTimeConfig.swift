/// What happens to an event older than its shard's watermark, i.e. later than the allowed lateness.
/// Either way it is counted (`late_events`).
public enum LateEventPolicy: String, Sendable, CaseIterable {
    /// Apply it as if it happened at the watermark: it still counts toward the customer's lifetime
    /// aggregates, moves the cart, voids timers and gets its decision, with its window placement moved
    /// forward by how late it was. The default: a late event is usually a real action (an app flushing
    /// an offline queue, a till syncing after an outage), and leaving it out would leave a bought cart
    /// looking abandoned and orders uncounted, while shifting it costs long windows almost nothing.
    case applyToCurrent = "apply"
    /// Send it to the dead-letter topic unchanged with `x-error: late`, and apply nothing: windows stay
    /// exact and the event can be re-processed offline.
    case deadLetter = "dead-letter"
}

/// Event time: allowed lateness, idle partitions and the event-time timers.
///
/// Each shard's watermark is the minimum, over the source partitions it hears from that are not idle,
/// of (newest event time of the partition − `allowedLateness`), and it never moves back. Timers fire when
/// the watermark passes their deadline, so a timer fires `allowedLateness` (in event time) after its
/// deadline is reached: lower the lateness for quicker timers, at the price of more late events.
public struct EventTimeConfig: Sendable, Equatable {
    /// How far behind the newest event of its partition an event may be and still be applied at its
    /// own time.
    public var allowedLateness: Duration = .seconds(3_600)
    /// What happens to events later than that.
    public var latePolicy: LateEventPolicy = .applyToCurrent
    /// Wall-clock time without a message after which a partition stops holding the watermark back
    /// (also from its assignment, for a partition that has sent nothing yet). Long enough to ride out a
    /// slow fetch or a rebalance, short enough that a dead producer does not stall timers for long.
    public var idlePartitionTimeout: Duration = .seconds(10)
    /// How far ahead of the instance's wall clock an event may be stamped; nil: no limit (simulated
    /// traffic, whose event time runs faster than the wall clock). A later stamp is a wrong device clock
    /// (or a typo): applied at its own time it would move its partition's clock, and so the watermark, that
    /// far ahead for good, making every later event late and firing every timer. Such events are counted
    /// and handled by ``latePolicy``: applied at the shard's newest event time without moving any clock, or
    /// dead-lettered (`x-error` future). Keep it below ``allowedLateness`` (`nudge run` refuses otherwise):
    /// an event stamped within the skew moves the watermark up to their difference past the wall clock.
    public var maxClockSkew: Duration? = .seconds(300)
    /// `Cart Abandoned` fires this long after the latest `Product Added` while the cart holds items and
    /// no checkout or order came after it; nil: never.
    public var cartAbandonedAfter: Duration? = .seconds(1_800)
    /// `Customer Silent` fires when a known customer (one with a userId) has had no event for this long;
    /// nil: never.
    public var customerSilentAfter: Duration? = .seconds(14 * 86_400)
    /// Customers with a cart timer one shard keeps at most (each costs about 100 bytes). Past it, new carts
    /// get no timer and `timers_dropped` counts them. Silences need no cap: they are kept per hot customer,
    /// or by id hash for a customer in the cold tier, whose sizes bound them.
    public var maxTimerCustomersPerShard = 1 << 21

    /// Defaults: 1 h lateness applied to the current time, 10 s idle timeout, 5 minutes of clock skew,
    /// 30-minute carts, 14-day silence, 2,097,152 carts with timers per shard.
    public init() {}
}

extension Duration {
    /// Whole milliseconds (truncated), saturating at the bounds of `Int64`.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return ms.addingSaturating(attoseconds / 1_000_000_000_000_000)
    }
}

extension Int64 {
    /// `self + other`, clamped to the bounds of `Int64` instead of trapping: event times come from input.
    @inline(__always) func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }
}
