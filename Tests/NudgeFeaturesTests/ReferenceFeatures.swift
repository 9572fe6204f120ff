import NudgeEvents
import NudgeFeatures

/// The slow, obviously correct model of a feature: recomputed from a customer's raw event list (in arrival
/// order) with the documented semantics, no rings, no layout.
enum ReferenceFeatures {
    /// floor(a / b) written differently from the implementation on purpose.
    static func bucket(_ time: Int64, _ resolution: Int64) -> Int64 {
        time >= 0 ? time / resolution : -((-time + resolution - 1) / resolution)
    }

    /// The FeatureWindow rule: floor(e/r) in (floor(t/r) - B, floor(t/r)].
    static func inWindow(_ window: FeatureWindow, event: Int64, at time: Int64) -> Bool {
        if window.isLifetime { return true }
        let resolution = window.resolutionMillis
        let buckets = window.durationMillis / resolution
        let now = bucket(time, resolution)
        let then = bucket(event, resolution)
        return then > now - buckets && then <= now
    }

    static func channelMatches(_ definition: FeatureDefinition, _ event: TestEvent) -> Bool {
        definition.filter.channels?.contains(event.channel) ?? true
    }

    static func matches(_ definition: FeatureDefinition, _ event: TestEvent) -> Bool {
        definition.filter.kinds.contains(event.kind) && channelMatches(definition, event)
    }

    static func finite(_ value: Double) -> Double { value.isFinite ? value : 0 }

    /// Value of `definition` over `events` (one customer, arrival order) at `time`.
    static func value(_ definition: FeatureDefinition, events: [TestEvent], at time: Int64) -> Double {
        let cap = definition.cap ?? .infinity
        let missing = definition.missingValue
        let matching = events.filter { matches(definition, $0) }
        let inWindow = matching.filter { Self.inWindow(definition.window, event: $0.time, at: time) }
        switch definition.aggregation {
        case .count:
            return matching.isEmpty ? missing : min(Double(inWindow.count), cap)
        case .sum:
            guard !matching.isEmpty else { return missing }
            var total = 0.0
            for event in inWindow { total += finite(event.amount) }
            return min(total, cap)
        case .last:
            var newest: TestEvent?
            for event in matching where event.score.isFinite && event.time >= (newest?.time ?? .min) { newest = event }
            guard let newest, Self.inWindow(definition.window, event: newest.time, at: time) else { return missing }
            return min(newest.score, cap)
        case .timeSinceLast:
            guard let newest = matching.map(\.time).max(),
                  Self.inWindow(definition.window, event: newest, at: time) else { return missing }
            return min(Double(max(time - newest, 0)) / 86_400_000, cap)
        case .openCount(let closes):
            var level: Int?
            for event in events where channelMatches(definition, event) {
                if definition.filter.kinds.contains(event.kind) { level = (level ?? 0) + 1 }
                else if closes.contains(event.kind) { level = max((level ?? 0) - 1, 0) }
            }
            return level.map { min(Double($0), cap) } ?? missing
        case .netCount(let removes, let resets):
            var level: Int?
            for event in events where channelMatches(definition, event) {
                if definition.filter.kinds.contains(event.kind) { level = (level ?? 0) + 1 }
                else if removes.contains(event.kind) { level = max((level ?? 0) - 1, 0) }
                else if resets.contains(event.kind) { level = 0 }
            }
            return level.map { min(Double($0), cap) } ?? missing
        }
    }

    /// How far a CustomerTable value may be from the reference: windowed sums live in Float32 buckets, so
    /// each amount is rounded to 24 bits and each bucket add rounds again; 1e-5 of the absolute amounts
    /// summed bounds that for hundreds of adds per bucket. Everything else must match exactly.
    static func tolerance(_ definition: FeatureDefinition, events: [TestEvent], at time: Int64) -> Double {
        guard definition.aggregation == .sum, !definition.window.isLifetime else { return 0 }
        let magnitude = events.filter { matches(definition, $0) && inWindow(definition.window, event: $0.time, at: time) }
            .reduce(0.0) { $0 + abs(finite($1.amount)) }
        return 1e-5 * magnitude + 1e-9
    }

    /// Channel of the newest event by event time, ties to the later arrival.
    static func lastChannel(_ events: [TestEvent]) -> Channel? {
        var newest: TestEvent?
        for event in events where event.time >= (newest?.time ?? .min) { newest = event }
        return newest?.channel
    }
}
