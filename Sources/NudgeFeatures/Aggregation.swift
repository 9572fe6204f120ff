import NudgeEvents

/// What a feature keeps about the events its filter matches.
///
/// Windowed aggregations (`count`, `sum`) keep one Float32 per bucket; a window of ``FeatureWindow/lifetime``
/// keeps one Double. `last` and `timeSinceLast` keep the newest matching event by event time and test it
/// against the window when evaluated. The gauges (`openCount`, `netCount`) fold events in arrival order
/// and need a lifetime window.
public enum Aggregation: Sendable, Equatable {
    /// Number of matching events.
    case count
    /// Sum of `event.amount` over matching events; a non-finite amount adds 0.
    case sum
    /// `event.score` of the newest matching event by event time (ties: the later arrival); events whose
    /// score is not finite are ignored.
    case last
    /// Days (fractional) from the newest matching event to the evaluation time; never negative.
    case timeSinceLast
    /// A gauge: +1 on a filter match, -1 (never below 0) on an event of `closes`, e.g. open tickets.
    case openCount(closes: Set<EventKind>)
    /// A gauge: +1 on a filter match, -1 (never below 0) on `removes`, back to 0 on `resets`, e.g. cart items.
    case netCount(removes: Set<EventKind>, resets: Set<EventKind>)

    /// The short name used in messages and files.
    public var name: String {
        switch self {
        case .count: "count"
        case .sum: "sum"
        case .last: "last"
        case .timeSinceLast: "timeSinceLast"
        case .openCount: "openCount"
        case .netCount: "netCount"
        }
    }

    /// Gauges have no meaningful window: they are a running level, not a tally of recent events.
    var isGauge: Bool {
        switch self {
        case .openCount, .netCount: true
        default: false
        }
    }
}

/// One named feature: which events, what to keep, over which window, and what to report when there is
/// nothing to report.
public struct FeatureDefinition: Sendable, Equatable {
    /// The name models refer to, unique within a ``FeatureSet``.
    public let name: String
    /// Which events the feature looks at.
    public let filter: EventFilter
    /// What it keeps.
    public let aggregation: Aggregation
    /// Over which stretch of event time.
    public let window: FeatureWindow
    /// The value when no matching event was ever applied (and, for `last`/`timeSinceLast`, when the newest
    /// one has left the window), e.g. 365 for days_since_last_order, -1 for nps_last.
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
}
