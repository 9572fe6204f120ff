import NudgeEvents

/// Which events a feature looks at: a set of kinds, optionally restricted to some channels and to events
/// whose properties satisfy every one of `conditions`.
///
/// The sets are compiled to bitmasks whenever they change, so the kind and channel test costs two mask tests.
public struct EventFilter: Sendable, Equatable {
    /// Event kinds that match (for gauges: the kinds that add one).
    public var kinds: Set<EventKind> { didSet { kindMask = ByteSet(kinds.map(\.rawValue)) } }
    /// Channels that match; nil means any channel. Applies to every event the feature looks at,
    /// including a gauge's closing, removing and resetting kinds.
    public var channels: Set<Channel>? { didSet { channelMask = Self.mask(channels) } }
    /// Property conditions that must all hold (empty: none). Like `channels`, they apply to every event the
    /// feature looks at, gauges' closing kinds included. Kept in one order whatever the order they were
    /// given in (by their text): two filters that test the same share their state in a record, so the
    /// record's layout follows from what the features compute, as their signatures say.
    public var conditions: [PropertyCondition] { didSet { conditions.sort(by: Self.canonicalOrder) } }

    private(set) var kindMask: ByteSet
    private(set) var channelMask: ByteSet

    /// A filter on `kinds`, from `channels` (nil: any channel), whose events satisfy all `conditions`.
    public init(kinds: Set<EventKind>, channels: Set<Channel>? = nil, conditions: [PropertyCondition] = []) {
        self.kinds = kinds
        self.channels = channels
        self.conditions = conditions.sorted(by: Self.canonicalOrder)
        kindMask = ByteSet(kinds.map(\.rawValue))
        channelMask = Self.mask(channels)
    }

    private static func canonicalOrder(_ a: PropertyCondition, _ b: PropertyCondition) -> Bool { a.description < b.description }

    /// Events of any of `kinds`, on any channel.
    public static func kinds(_ kinds: EventKind...) -> EventFilter { EventFilter(kinds: Set(kinds)) }

    /// Every event of every kind on every channel.
    public static var anyEvent: EventFilter { EventFilter(kinds: Set(EventKind.allCases)) }

    /// True when the filter lets every event through (so "newest matching event" is the newest event).
    var isAnyEvent: Bool { kinds.count == EventKind.allCases.count && channels == nil && conditions.isEmpty }

    /// Whether the feature counts `event`: kind, channel and every condition match.
    @inline(__always)
    public func matches(_ event: SegmentEvent) -> Bool {
        kindMask.contains(event.kind.rawValue) && accepts(event)
    }

    /// Whether `event`'s channel and properties pass, whatever its kind (gauges' closing kinds use this).
    @inline(__always)
    public func accepts(_ event: SegmentEvent) -> Bool {
        channelMask.contains(event.channel.rawValue) && conditions.allSatisfy { $0.holds(for: event) }
    }

    private static func mask(_ channels: Set<Channel>?) -> ByteSet {
        guard let channels else { return .all }
        return ByteSet(channels.map(\.rawValue))
    }
}
