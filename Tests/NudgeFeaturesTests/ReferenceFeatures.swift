import Foundation
import NudgeEvents
import NudgeFeatures

/// A customer's raw history: their events in arrival order, after the histories merged into them by identity
/// links (a merge puts the absorbed history first: on equal times its events count as the earlier arrivals).
struct History {
    /// One identity link: `source` (the anonymous visitor's history) folded into `target` (the customer's).
    final class Merge {
        let source: History
        let target: History
        init(source: History, target: History) {
            self.source = source
            self.target = target
        }
    }

    var merge: Merge?
    var events: [TestEvent] = []

    init(events: [TestEvent] = []) { self.events = events }

    /// `source` merged into `target`; later events follow.
    init(merging source: History, into target: History) { merge = Merge(source: source, target: target) }

    /// Every event: merged histories (source, then target), then the events since.
    var all: [TestEvent] { (merge.map { $0.source.all + $0.target.all } ?? []) + events }

    var isMerged: Bool { merge != nil }

    /// A gauge's level: histories merged add their levels (nil: the gauge never saw an event), then the
    /// events since fold in arrival order with `step`.
    func gaugeLevel(_ step: (Int?, TestEvent) -> Int?) -> Int? {
        var level: Int?
        if let merge {
            let (a, b) = (merge.source.gaugeLevel(step), merge.target.gaugeLevel(step))
            level = a == nil && b == nil ? nil : (a ?? 0) + (b ?? 0)
        }
        for event in events { level = step(level, event) }
        return level
    }
}

/// The slow, obviously correct model of a feature: recomputed from a customer's raw event list (in arrival
/// order) with the documented semantics, no rings, no layout, no hashing tricks beyond the documented
/// distinct-count bitmap.
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

    static func text(_ field: TextField, of event: TestEvent) -> String {
        switch field {
        case .category: event.category
        case .productId: event.productId
        case .property(let name): event.property(name).text
        }
    }

    static func number(_ field: NumberField, of event: TestEvent) -> Double {
        switch field {
        case .amount: event.amount
        case .score: event.score
        case .property(let name): event.property(name).number
        }
    }

    /// Channel and every property condition (not the kind).
    static func accepts(_ definition: FeatureDefinition, _ event: TestEvent) -> Bool {
        guard definition.filter.channels?.contains(event.channel) ?? true else { return false }
        for condition in definition.filter.conditions {
            switch condition {
            case .textIn(let field, let values): if !values.contains(text(field, of: event)) { return false }
            case .textNotIn(let field, let values): if values.contains(text(field, of: event)) { return false }
            case .number(let field, let comparison, let constant):
                let value = number(field, of: event)
                guard value.isFinite else { return false }
                let holds = switch comparison {
                case .equal: value == constant
                case .notEqual: value != constant
                case .less: value < constant
                case .lessOrEqual: value <= constant
                case .greater: value > constant
                case .greaterOrEqual: value >= constant
                }
                if !holds { return false }
            }
        }
        return true
    }

    static func matches(_ definition: FeatureDefinition, _ event: TestEvent) -> Bool {
        definition.filter.kinds.contains(event.kind) && accepts(definition, event)
    }

    static func finite(_ value: Double) -> Double { value.isFinite ? value : 0 }

    /// The documented counter width: 8 bits at resolutions up to 1h or for low-volume kinds only, else 16.
    static func bucketLimit(_ definition: FeatureDefinition) -> Int {
        let lowVolume: Set<EventKind> = [.orderCompleted, .orderRefunded, .orderCancelled, .checkoutStarted, .couponApplied,
                                         .ticketOpened, .ticketClosed, .complaintFiled, .surveyAnswered, .identify,
                                         .offerAccepted, .offerDismissed]
        let small = definition.window.resolutionMillis <= 3_600_000 || definition.filter.kinds.isSubset(of: lowVolume)
        return small ? 255 : 65_535
    }

    /// Linear counting over the documented 64-bit bitmap.
    static func distinctEstimate(_ values: Set<String>) -> Double {
        var bits: UInt64 = 0
        for value in values where !value.isEmpty {
            let hash = Array(value.utf8).withUnsafeBytes { nudgeHash64($0) }
            bits |= UInt64(1) << (hash >> 58)
        }
        guard bits != 0 else { return 0 }
        let zeros = Double(max(64 - bits.nonzeroBitCount, 1))
        return log(zeros / 64) / log(63.0 / 64.0)
    }

    /// Value of the feature at `position` of `set` over `events` (one customer, arrival order) at `time`.
    static func value(_ position: Int, of set: FeatureSet, events: [TestEvent], at time: Int64) -> Double {
        value(position, of: set, history: History(events: events), at: time)
    }

    /// Value of the feature at `position` of `set` over a customer's history at `time`.
    static func value(_ position: Int, of set: FeatureSet, history: History, at time: Int64) -> Double {
        let events = history.all
        let definition = set.definitions[position]
        let cap = definition.cap ?? .infinity
        let missing = definition.missingValue
        let matching = events.filter { matches(definition, $0) }
        let inWindow = matching.filter { Self.inWindow(definition.window, event: $0.time, at: time) }
        switch definition.aggregation {
        case .count:
            guard !matching.isEmpty else { return missing }
            if definition.window.isLifetime { return min(Double(matching.count), cap) }
            let perBucket = Dictionary(grouping: inWindow) { bucket($0.time, definition.window.resolutionMillis) }
            let limit = bucketLimit(definition)
            return min(Double(perBucket.values.reduce(0) { $0 + min($1.count, limit) }), cap)
        case .sum(let field):
            guard !matching.isEmpty else { return missing }
            var total = 0.0
            for event in inWindow { total += finite(number(field, of: event)) }
            return min(total, cap)
        case .minimum(let field), .maximum(let field):
            // Windowed buckets are Float32: the value rounded to Float32 (rounding keeps the order).
            let values = inWindow.map { number(field, of: $0) }.filter(\.isFinite)
                .map { definition.window.isLifetime ? $0 : Double(Float32($0)) }
            let isMinimum = if case .minimum = definition.aggregation { true } else { false }
            guard let extreme = isMinimum ? values.min() : values.max() else { return missing }
            return min(extreme, cap)
        case .average(let field):
            let values = inWindow.map { number(field, of: $0) }.filter(\.isFinite)
            guard !values.isEmpty else { return missing }
            var total = 0.0
            for value in values { total += value }
            return min(total / Double(values.count), cap)
        case .distinctCount(let field):
            guard !matching.isEmpty else { return missing }
            return min(distinctEstimate(Set(inWindow.map { text(field, of: $0) })), cap)
        case .last(let field):
            var newest: TestEvent?
            for event in matching where number(field, of: event).isFinite && event.time >= (newest?.time ?? .min) { newest = event }
            guard let newest, Self.inWindow(definition.window, event: newest.time, at: time) else { return missing }
            return min(number(field, of: newest), cap)
        case .timeSinceLast:
            guard let newest = matching.map(\.time).max(),
                  Self.inWindow(definition.window, event: newest, at: time) else { return missing }
            return min(Double(max(time - newest, 0)) / 86_400_000, cap)
        case .openCount(let closes):
            let level = history.gaugeLevel { level, event in
                guard accepts(definition, event) else { return level }
                if definition.filter.kinds.contains(event.kind) { return (level ?? 0) + 1 }
                if closes.contains(event.kind) { return max((level ?? 0) - 1, 0) }
                return level
            }
            return level.map { min(Double($0), cap) } ?? missing
        case .netCount(let removes, let resets):
            let level = history.gaugeLevel { level, event in
                guard accepts(definition, event) else { return level }
                if definition.filter.kinds.contains(event.kind) { return (level ?? 0) + 1 }
                if removes.contains(event.kind) { return max((level ?? 0) - 1, 0) }
                if resets.contains(event.kind) { return 0 }
                return level
            }
            return level.map { min(Double($0), cap) } ?? missing
        case .derived(let expression):
            let result = evaluate(expression) { name in
                guard let index = set.index(of: name) else { return .nan }
                return value(index, of: set, history: history, at: time)
            }
            return result.isFinite ? min(result, cap) : missing
        }
    }

    /// A tree walk, left operand first, as written.
    static func evaluate(_ expression: FeatureExpression, _ lookup: (String) -> Double) -> Double {
        switch expression {
        case .constant(let value): return value
        case .feature(let name): return lookup(name)
        case .negate(let operand): return -evaluate(operand, lookup)
        case .binary(let op, let lhs, let rhs):
            let (a, b) = (evaluate(lhs, lookup), evaluate(rhs, lookup))
            switch op {
            case .add: return a + b
            case .subtract: return a - b
            case .multiply: return a * b
            case .divide: return a / b
            }
        case .call(let function, let arguments):
            let values = arguments.map { evaluate($0, lookup) }
            switch function {
            // Missing anywhere is missing: stated here without Swift.min's argument-order rules.
            case .min: return values.contains { $0.isNaN } ? .nan : values.min() ?? .nan
            case .max: return values.contains { $0.isNaN } ? .nan : values.max() ?? .nan
            case .abs: return Swift.abs(values[0])
            case .log1p: return log1p(values[0])
            case .sqrt: return values[0].squareRoot()
            }
        }
    }

    /// How far a CustomerTable value may be from the reference: windowed sums and averages live in Float32
    /// buckets, so each value is rounded to 24 bits and each bucket add rounds again; 1e-5 of the absolute
    /// values summed bounds that for hundreds of adds per bucket. Everything else must match exactly.
    ///
    /// A merged history adds its parts' lifetime sums in another order than one customer's events would:
    /// there, lifetime sums and averages may differ by rounding (1e-12 of the magnitudes).
    /// Whether a derived feature reads, directly or through other derived ones, a windowed sum or average
    /// (kept in 32-bit floats).
    static func readsWindowedSum(_ definition: FeatureDefinition, of set: FeatureSet) -> Bool {
        func reads(_ expression: FeatureExpression) -> Bool {
            switch expression {
            case .constant: return false
            case .feature(let name):
                guard let index = set.index(of: name) else { return false }
                let input = set.definitions[index]
                switch input.aggregation {
                case .derived: return readsWindowedSum(input, of: set)
                case .sum, .average: return !input.window.isLifetime
                default: return false
                }
            case .negate(let inner): return reads(inner)
            case .binary(_, let lhs, let rhs): return reads(lhs) || reads(rhs)
            case .call(_, let arguments): return arguments.contains(where: reads)
            }
        }
        guard case .derived(let expression) = definition.aggregation else { return false }
        return reads(expression)
    }

    static func tolerance(_ definition: FeatureDefinition, events: [TestEvent], at time: Int64, merged: Bool = false) -> Double {
        if definition.window.isLifetime {
            guard merged else { return 0 }
            switch definition.aggregation {
            case .sum, .average: break
            default: return 0
            }
            let field: NumberField = if case .average(let averaged) = definition.aggregation { averaged } else { .amount }
            let magnitude = events.filter { matches(definition, $0) }.map { number(field, of: $0) }.filter(\.isFinite)
                .reduce(0.0) { $0 + abs($1) }
            return 1e-12 * magnitude + 1e-12
        }
        let field: NumberField
        switch definition.aggregation {
        case .sum: field = .amount
        case .average(let averaged): field = averaged
        default: return 0
        }
        let values = events.filter { matches(definition, $0) && inWindow(definition.window, event: $0.time, at: time) }
            .map { number(field, of: $0) }.filter(\.isFinite)
        let magnitude = values.reduce(0.0) { $0 + abs($1) }
        if case .average = definition.aggregation { return 1e-5 * magnitude / Double(max(values.count, 1)) + 1e-9 }
        return 1e-5 * magnitude + 1e-9
    }

    /// Channel of the newest event by event time, ties to the later arrival.
    static func lastChannel(_ events: [TestEvent]) -> Channel? {
        var newest: TestEvent?
        for event in events where event.time >= (newest?.time ?? .min) { newest = event }
        return newest?.channel
    }
}
