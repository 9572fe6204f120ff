import NudgeEvents

/// What a feature keeps about the events its filter matches, and what that costs per customer.
///
/// Windowed aggregations keep a ring of buckets (see ``FeatureWindow`` for the bucket rule); features on the
/// same filter and resolution share rings, so `orders_30d` and `orders_90d` at one resolution cost one ring.
/// The rings' heads are the customer's newest event time, so they cost no bytes. A window of
/// ``FeatureWindow/lifetime`` keeps one scalar. `last` and `timeSinceLast` keep the newest matching event by
/// event time and test it against the window when evaluated. The gauges (`openCount`, `netCount`) fold
/// events in arrival order and need a lifetime window. Derived features keep nothing.
///
/// Count buckets are saturating counters. A bucket is 8 bits (at most 255 events per bucket) when its
/// resolution is at most one hour (255 events an hour is more than four a minute, sustained) or when every
/// kind the filter matches is a low-volume kind (``lowVolumeKinds``: orders, refunds, cancellations,
/// checkouts, coupons, tickets, complaints, surveys, identifies, accepted and dismissed offers); otherwise
/// 16 bits (at most 65,535 per bucket). A saturated bucket stays at its maximum until it leaves the window.
public enum Aggregation: Sendable, Equatable {
    /// Number of matching events. Missing when none ever matched.
    case count
    /// Sum of the field (`amount` in a feature file that names none) over matching events; a non-finite value
    /// adds 0. Windowed sums keep Float32 buckets (24-bit significand: about 7 significant digits per bucket).
    /// Missing when none ever matched.
    case sum(NumberField)
    /// The field (`score` in a feature file that names none) of the newest matching event by event time
    /// (ties: the later arrival); events whose field is not finite are ignored.
    case last(NumberField)
    /// Days (fractional) from the newest matching event to the evaluation time; never negative.
    case timeSinceLast
    /// A gauge: +1 on a filter match, -1 (never below 0) on an event of `closes`, e.g. open tickets.
    /// Saturates at 65,534.
    case openCount(closes: Set<EventKind>)
    /// A gauge: +1 on a filter match, -1 (never below 0) on `removes`, back to 0 on `resets`, e.g. cart items.
    /// Saturates at 65,534.
    case netCount(removes: Set<EventKind>, resets: Set<EventKind>)
    /// Smallest finite value of the field among matching events. Windowed: Float32 buckets, so the value is
    /// the field rounded to Float32. Missing when there is none (in the window).
    case minimum(NumberField)
    /// Largest finite value of the field among matching events; as ``minimum(_:)`` otherwise.
    case maximum(NumberField)
    /// Mean of the finite values of the field among matching events: a Float32 sum bucket and a 16-bit count
    /// bucket per step (exact until 65,535 values per bucket). Missing when there is none (in the window).
    case average(NumberField)
    /// Estimated number of distinct non-empty values of the field among matching events.
    ///
    /// Each bucket is a 64-bit bitmap (8 bytes); a value sets bit `nudgeHash64(value) >> 58`. The estimate is
    /// linear counting over the union of the window's bitmaps: with `z` of the 64 bits clear,
    /// ln(z / 64) / ln(63 / 64), the number of values whose expected count of clear bits is `z` (z = 1 when
    /// none is clear: a ceiling of about 264). Error bound, from simulation of uniform hashes: unbiased below
    /// 100 values; one value reads exactly 1; relative standard error 6-9% for 2 to 20 values, 10% at 40,
    /// 11% at 60, 13% at 100, 17% at 150. Use it for small sets such as categories, not thousands of
    /// products. Missing when none ever matched.
    case distinctCount(TextField)
    /// An expression over other features of the set (no state, no window, no filter).
    case derived(FeatureExpression)

    /// The kinds whose count buckets are 8-bit at any resolution: events a customer makes a few of a day.
    public static let lowVolumeKinds: Set<EventKind> = [
        .orderCompleted, .orderRefunded, .orderCancelled, .checkoutStarted, .couponApplied, .ticketOpened,
        .ticketClosed, .complaintFiled, .surveyAnswered, .identify, .offerAccepted, .offerDismissed,
    ]

    /// The short name used in messages.
    public var name: String {
        switch self {
        case .count: "count"
        case .sum: "sum"
        case .last: "last"
        case .timeSinceLast: "timeSinceLast"
        case .openCount: "openCount"
        case .netCount: "netCount"
        case .minimum: "minimum"
        case .maximum: "maximum"
        case .average: "average"
        case .distinctCount: "distinctCount"
        case .derived: "derived"
        }
    }

    /// Gauges have no meaningful window: they are a running level, not a tally of recent events.
    var isGauge: Bool {
        switch self {
        case .openCount, .netCount: true
        default: false
        }
    }

    /// Derived features read other features instead of events.
    var isDerived: Bool {
        if case .derived = self { return true }
        return false
    }
}

/// One named feature: which events, what to keep, over which window, and what to report when there is
/// nothing to report.
public struct FeatureDefinition: Sendable, Equatable {
    /// The name models refer to, unique within a ``FeatureSet``.
    public let name: String
    /// Which events the feature looks at (ignored by derived features).
    public let filter: EventFilter
    /// What it keeps.
    public let aggregation: Aggregation
    /// Over which stretch of event time.
    public let window: FeatureWindow
    /// The value when no matching event was ever applied (and, for `last`/`timeSinceLast`, when the newest
    /// one has left the window; for derived features, when the expression is not finite), e.g. 365 for
    /// days_since_last_order, -1 for nps_last.
    public let missingValue: Double
    /// Upper bound applied to computed values (not to `missingValue`); nil for none.
    public let cap: Double?

    /// A feature definition; validated when a ``FeatureSet`` is built from it.
    public init(name: String, filter: EventFilter, aggregation: Aggregation, window: FeatureWindow = .lifetime,
                missingValue: Double = 0, cap: Double? = nil) {
        self.name = name
        self.filter = filter
        self.aggregation = aggregation
        self.window = window
        self.missingValue = missingValue
        self.cap = cap
    }

    /// A derived feature: `expression` over other features of the set.
    public init(name: String, expression: FeatureExpression, missingValue: Double = 0, cap: Double? = nil) {
        self.init(name: name, filter: .anyEvent, aggregation: .derived(expression), missingValue: missingValue, cap: cap)
    }

    /// What the feature computes, as one line that two equal definitions share whatever the order they list
    /// events, channels or conditions in (the name and description left out), e.g.
    /// `count of [Order Completed] on [store] over 90d@1d, missing 0.0`. A model records it for each of its
    /// features (`trained.feature_definitions`, with a derived feature's inputs: ``FeatureSet/signatures``),
    /// so that one served with a feature redefined under the same name is refused rather than fed values it
    /// never learnt.
    public var signature: String {
        var text: String
        if case .derived(let expression) = aggregation {
            text = "derived \(expression)"
        } else {
            text = "\(Self.text(of: aggregation)) of \(Self.list(filter.kinds.map(\.wireName)))"
            if let channels = filter.channels { text += " on \(Self.list(channels.map(\.wireName)))" }
            if !filter.conditions.isEmpty { text += " where " + filter.conditions.map(\.description).sorted().joined(separator: " and ") }
            text += " over \(window)"
        }
        text += ", missing \(missingValue)"
        if let cap { text += ", cap \(cap)" }
        return text
    }

    private static func list(_ names: [String]) -> String { "[" + names.sorted().joined(separator: ", ") + "]" }

    private static func text(of aggregation: Aggregation) -> String {
        switch aggregation {
        case .count: "count"
        case .sum(let field): "sum(\(field.name))"
        case .last(let field): "last(\(field.name))"
        case .minimum(let field): "min(\(field.name))"
        case .maximum(let field): "max(\(field.name))"
        case .average(let field): "avg(\(field.name))"
        case .distinctCount(let field): "distinct_count(\(field.name))"
        case .timeSinceLast: "time_since_last"
        case .openCount(let closes): "open_count(closes: \(list(closes.map(\.wireName))))"
        case .netCount(let removes, let resets):
            "net_count(removes: \(list(removes.map(\.wireName))), resets: \(list(resets.map(\.wireName))))"
        case .derived(let expression): "derived \(expression)"
        }
    }
}
