import NudgeEvents

/// Which events a feature looks at: a set of kinds, optionally restricted to some channels.
///
/// The sets are compiled to bitmasks whenever they change, so ``matches(_:)`` costs two mask tests.
public struct EventFilter: Sendable, Equatable {
    /// Event kinds that match (for gauges: the kinds that add one).
    public var kinds: Set<EventKind> { didSet { kindMask = ByteSet(kinds.map(\.rawValue)) } }
    /// Channels that match; nil means any channel. Applies to every event the feature looks at,
    /// including a gauge's closing, removing and resetting kinds.
    public var channels: Set<Channel>? { didSet { channelMask = Self.mask(channels) } }

    private(set) var kindMask: ByteSet
    private(set) var channelMask: ByteSet

    /// A filter on `kinds`, from `channels` (nil: any channel).
    public init(kinds: Set<EventKind>, channels: Set<Channel>? = nil) {
        self.kinds = kinds
        self.channels = channels
        kindMask = ByteSet(kinds.map(\.rawValue))
        channelMask = Self.mask(channels)
    }

    /// Events of any of `kinds`, on any channel.
    public static func kinds(_ kinds: EventKind...) -> EventFilter { EventFilter(kinds: Set(kinds)) }

    /// Every event of every kind on every channel.
    public static var anyEvent: EventFilter { EventFilter(kinds: Set(EventKind.allCases)) }

    /// Whether the feature counts `event` (kind and channel both match).
    @inline(__always)
    public func matches(_ event: SegmentEvent) -> Bool {
        kindMask.contains(event.kind.rawValue) && channelMask.contains(event.channel.rawValue)
    }

    private static func mask(_ channels: Set<Channel>?) -> ByteSet {
        guard let channels else { return .all }
        return ByteSet(channels.map(\.rawValue))
    }
}
