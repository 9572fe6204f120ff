import NudgeEvents

/// One unit of per-customer state (a ring or a scalar) and how an event changes it.
///
/// Plain data (masks, offsets, divisors), so the per-event loop touches no heap object. The kinds an
/// updater reacts to are not stored here: ``FeatureLayout`` dispatches by kind.
struct StateUpdater: Sendable {
    enum Operation: UInt8, Sendable {
        case ringCount8, ringCount16, ringFiniteCount, ringSum, ringMinimum, ringMaximum, ringBits
        case lifetimeCount, lifetimeFiniteCount, lifetimeSum, lifetimeMinimum, lifetimeMaximum, lifetimeBits
        case last, latestTime, gauge
    }

    let operation: Operation
    let channels: ByteSet
    /// `conditions[conditionStart ..< conditionStart + conditionCount]` must all hold.
    let conditionStart: Int32
    let conditionCount: Int32
    /// Scalar state offset (rings: see `ring`).
    let offset: Int
    let ring: BucketRing
    let numberField: NumberSource
    let textField: TextSource
    let seen: SeenBit

    /// Gauges saturate below the "never seen" sentinel.
    static let gaugeNever = UInt16.max
    static let gaugeLimit = UInt16.max - 1

    /// The updater of a ring.
    init(ring: BucketRing, content: LayoutRingContent, filter: EventFilter, seen: SeenBit, layout: inout FeatureLayout) {
        switch content {
        case .count(let cell): operation = cell == .count8 ? .ringCount8 : .ringCount16
        case .finiteCount: operation = .ringFiniteCount
        case .sum: operation = .ringSum
        case .minimum: operation = .ringMinimum
        case .maximum: operation = .ringMaximum
        case .bits: operation = .ringBits
        }
        numberField = layout.source(content.numberField)
        textField = layout.source(content.textField)
        self.ring = ring
        offset = ring.offset
        channels = filter.channelMask
        (conditionStart, conditionCount) = Self.compile(filter.conditions, into: &layout)
        self.seen = seen
    }

    /// The updater of a scalar; nil for keys that need none.
    init?(scalar: LayoutScalarKey, offset: Int, seen: SeenBit, definitions: [FeatureDefinition], streams: [EventFilter],
          layout: inout FeatureLayout) {
        let filter: EventFilter
        var numberField = NumberField.amount
        var textField = TextField.category
        switch scalar {
        case .count(let stream): operation = .lifetimeCount; filter = streams[stream]
        case .finiteCount(let stream, let field): operation = .lifetimeFiniteCount; filter = streams[stream]; numberField = field
        case .sum(let stream, let field): operation = .lifetimeSum; filter = streams[stream]; numberField = field
        case .minimum(let stream, let field): operation = .lifetimeMinimum; filter = streams[stream]; numberField = field
        case .maximum(let stream, let field): operation = .lifetimeMaximum; filter = streams[stream]; numberField = field
        case .bits(let stream, let field): operation = .lifetimeBits; filter = streams[stream]; textField = field
        case .last(let stream, let field): operation = .last; filter = streams[stream]; numberField = field
        case .latestTime(let stream): operation = .latestTime; filter = streams[stream]
        case .gauge(let feature): operation = .gauge; filter = definitions[feature].filter
        }
        self.numberField = layout.source(numberField)
        self.textField = layout.source(textField)
        self.offset = offset
        ring = .none
        channels = filter.channelMask
        (conditionStart, conditionCount) = Self.compile(filter.conditions, into: &layout)
        self.seen = seen
    }

    private static func compile(_ conditions: [PropertyCondition], into layout: inout FeatureLayout) -> (Int32, Int32) {
        let start = Int32(layout.conditions.count)
        for condition in conditions {
            let hashStart = Int32(layout.conditionHashes.count)
            switch condition {
            case .textIn(let field, let values), .textNotIn(let field, let values):
                for value in values.sorted() {
                    let bytes = Array(value.utf8)
                    layout.conditionHashes.append(bytes.withUnsafeBytes { nudgeHash64($0) })
                }
                let test: CompiledCondition.Test = if case .textIn = condition { .textIn } else { .textNotIn }
                layout.conditions.append(CompiledCondition(test: test, textField: layout.source(field), numberField: .amount, comparison: .equal,
                                                           constant: 0, hashStart: hashStart, hashCount: Int32(values.count)))
            case .number(let field, let comparison, let constant):
                layout.conditions.append(CompiledCondition(test: .number, textField: .category, numberField: layout.source(field),
                                                           comparison: comparison, constant: constant,
                                                           hashStart: hashStart, hashCount: 0))
            }
        }
        return (start, Int32(layout.conditions.count) - start)
    }

    /// Whether folding reads a property by name: as its number or text, or in one of its conditions.
    func readsProperty(_ conditions: [CompiledCondition]) -> Bool {
        numberField.isProperty || textField.isProperty
            || conditions[Int(conditionStart)..<Int(conditionStart + conditionCount)].contains { condition in
                condition.test == .number ? condition.numberField.isProperty : condition.textField.isProperty
            }
    }

    /// Writes the "never seen" state of a scalar into a fresh record (rings are cleared by the layout).
    func initialize(_ record: UnsafeMutableRawPointer) {
        switch operation {
        case .lifetimeSum, .lifetimeMinimum, .lifetimeMaximum:
            record.storeBytes(of: Double.nan, toByteOffset: offset, as: Double.self)
        case .last, .latestTime:
            record.storeBytes(of: Int64.min, toByteOffset: offset, as: Int64.self)
        case .gauge:
            record.storeBytes(of: Self.gaugeNever, toByteOffset: offset, as: UInt16.self)
        default:
            break // zero
        }
    }

    // MARK: Folding events

    /// Folds one event into `record` with the updater at `updater`. Fields are read through the pointer:
    /// calling a method on the (large) struct in a buffer would copy it first. `time` is the event's clamped
    /// time; `newest` the customer's newest time after this event, to which every ring has been advanced.
    @inline(__always)
    static func apply<Event: FoldedEvent>(_ updater: UnsafePointer<StateUpdater>, _ event: inout Event, time: Int64, newest: Int64,
                                          action: GaugeAction, to record: UnsafeMutableRawPointer,
                                          conditions: UnsafeMutablePointer<CompiledCondition>,
                                          conditionHashes: UnsafeMutablePointer<UInt64>) {
        guard updater.pointee.channels.contains(event.channel) else { return }
        let conditionCount = Int(updater.pointee.conditionCount)
        if conditionCount > 0 {
            let first = Int(updater.pointee.conditionStart)
            for index in first..<(first + conditionCount) {
                guard holds(conditions[index], &event, conditionHashes) else { return }
            }
        }
        updater.pointee.seen.set(record)
        let offset = updater.pointee.offset
        switch updater.pointee.operation {
        case .ringCount8:
            guard let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            let count = cell.load(as: UInt8.self)
            if count != .max { cell.storeBytes(of: count + 1, as: UInt8.self) }
        case .ringCount16:
            guard let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            let count = cell.load(as: UInt16.self)
            if count != .max { cell.storeBytes(of: count + 1, as: UInt16.self) }
        case .ringFiniteCount:
            guard event.number(updater.pointee.numberField).isFinite,
                  let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            let count = cell.load(as: UInt16.self)
            if count != .max { cell.storeBytes(of: count + 1, as: UInt16.self) }
        case .ringSum:
            guard let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            let amount = Float32(finite(event.number(updater.pointee.numberField)))
            cell.storeBytes(of: cell.load(as: Float32.self) + amount, as: Float32.self)
        case .ringMinimum:
            let value = event.number(updater.pointee.numberField)
            guard value.isFinite, let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            cell.storeBytes(of: min(cell.load(as: Float32.self), Float32(value)), as: Float32.self)
        case .ringMaximum:
            let value = event.number(updater.pointee.numberField)
            guard value.isFinite, let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            cell.storeBytes(of: max(cell.load(as: Float32.self), Float32(value)), as: Float32.self)
        case .ringBits:
            let field = updater.pointee.textField
            guard event.hasText(field), let cell = ringCell(updater, time: time, newest: newest, record) else { return }
            let bit = UInt64(1) << (event.hash(field) >> 58)
            cell.storeBytes(of: cell.load(as: UInt64.self) | bit, as: UInt64.self)
        case .lifetimeCount:
            let count = record.load(fromByteOffset: offset, as: UInt32.self)
            if count != .max { record.storeBytes(of: count + 1, toByteOffset: offset, as: UInt32.self) }
        case .lifetimeFiniteCount:
            guard event.number(updater.pointee.numberField).isFinite else { return }
            let count = record.load(fromByteOffset: offset, as: UInt32.self)
            if count != .max { record.storeBytes(of: count + 1, toByteOffset: offset, as: UInt32.self) }
        case .lifetimeSum:
            let sum = record.load(fromByteOffset: offset, as: Double.self)
            record.storeBytes(of: (sum.isNaN ? 0 : sum) + finite(event.number(updater.pointee.numberField)),
                              toByteOffset: offset, as: Double.self)
        case .lifetimeMinimum:
            let value = event.number(updater.pointee.numberField)
            let current = record.load(fromByteOffset: offset, as: Double.self)
            if value.isFinite, current.isNaN || value < current { record.storeBytes(of: value, toByteOffset: offset, as: Double.self) }
        case .lifetimeMaximum:
            let value = event.number(updater.pointee.numberField)
            let current = record.load(fromByteOffset: offset, as: Double.self)
            if value.isFinite, current.isNaN || value > current { record.storeBytes(of: value, toByteOffset: offset, as: Double.self) }
        case .lifetimeBits:
            let field = updater.pointee.textField
            guard event.hasText(field) else { return }
            let bits = record.load(fromByteOffset: offset, as: UInt64.self)
            record.storeBytes(of: bits | UInt64(1) << (event.hash(field) >> 58), toByteOffset: offset, as: UInt64.self)
        case .last:
            let value = event.number(updater.pointee.numberField)
            guard value.isFinite, time >= record.load(fromByteOffset: offset, as: Int64.self) else { return }
            record.storeBytes(of: time, toByteOffset: offset, as: Int64.self)
            record.storeBytes(of: value, toByteOffset: offset + 8, as: Double.self)
        case .latestTime:
            if time > record.load(fromByteOffset: offset, as: Int64.self) {
                record.storeBytes(of: time, toByteOffset: offset, as: Int64.self)
            }
        case .gauge:
            let stored = record.load(fromByteOffset: offset, as: UInt16.self)
            let level = stored == gaugeNever ? 0 : stored
            let next: UInt16 = switch action {
            case .add: min(level + 1, gaugeLimit)
            case .takeAway: level == 0 ? 0 : level - 1
            case .reset: 0
            }
            record.storeBytes(of: next, toByteOffset: offset, as: UInt16.self)
        }
    }

    /// The bucket of `time` in the updater's ring, or nil when it has left the ring (at or before
    /// head - length).
    @inline(__always)
    private static func ringCell(_ updater: UnsafePointer<StateUpdater>, time: Int64, newest: Int64,
                                 _ record: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        let bucket = updater.pointee.ring.resolution.floorDiv(time)
        let head = time == newest ? bucket : updater.pointee.ring.resolution.floorDiv(newest)
        guard bucket > head &- updater.pointee.ring.length else { return nil }
        let position = Int(updater.pointee.ring.positions.floorMod(bucket))
        return record + updater.pointee.ring.offset + position * updater.pointee.ring.cell.width
    }

    @inline(__always)
    private static func holds<Event: FoldedEvent>(_ condition: CompiledCondition, _ event: inout Event,
                                                  _ conditionHashes: UnsafeMutablePointer<UInt64>) -> Bool {
        switch condition.test {
        case .number:
            let value = event.number(condition.numberField)
            return value.isFinite && condition.comparison.holds(value, condition.constant)
        case .textIn, .textNotIn:
            let hash = event.hash(condition.textField)
            var found = false
            for index in Int(condition.hashStart)..<Int(condition.hashStart + condition.hashCount) where conditionHashes[index] == hash {
                found = true
            }
            return found == (condition.test == .textIn)
        }
    }

    @inline(__always)
    static func finite(_ value: Double) -> Double { value.isFinite ? value : 0 }
}

/// What folding an event into a record reads of it: ``LiveEvent`` for one just decoded, ``LoggedEvent`` for
/// the one a customer's entry keeps (see ``CustomerEntry``). Generic rather than an existential so each input
/// gets its own specialised fold and the live path costs what it did with `SegmentEvent` alone.
protocol FoldedEvent {
    /// Raw value of the event's channel.
    var channel: UInt8 { get }
    /// The number field's value (NaN when absent).
    func number(_ field: NumberSource) -> Double
    /// Whether the text field is present (non-empty).
    func hasText(_ field: TextSource) -> Bool
    /// The text field's `nudgeHash64` (of the empty text when absent).
    mutating func hash(_ field: TextSource) -> UInt64
}

/// A decoded event being folded: its text hashes are computed at most once, and only if a feature needs them.
struct LiveEvent: FoldedEvent {
    let event: SegmentEvent
    private var category: UInt64 = 0
    private var productId: UInt64 = 0
    private var known: UInt8 = 0

    @inline(__always)
    init(_ event: SegmentEvent) { self.event = event }

    var channel: UInt8 {
        @inline(__always) get { event.channel.rawValue }
    }

    @inline(__always)
    func number(_ field: NumberSource) -> Double {
        switch field {
        case .amount: event.amount
        case .score: event.score
        case .property(let slot): event.properties[Int(slot)].number
        }
    }

    @inline(__always)
    func hasText(_ field: TextSource) -> Bool { !text(field).isEmpty }

    @inline(__always)
    private func text(_ field: TextSource) -> RawText {
        switch field {
        case .category: event.category
        case .productId: event.productId
        case .property(let slot): event.properties[Int(slot)].text
        }
    }

    @inline(__always)
    mutating func hash(_ field: TextSource) -> UInt64 {
        switch field {
        case .category:
            if known & 1 == 0 { category = event.category.hash64; known |= 1 }
            return category
        case .productId:
            if known & 2 == 0 { productId = event.productId.hash64; known |= 2 }
            return productId
        case .property(let slot):
            // Hashed per use: only feature files that read properties by name get here.
            return event.properties[Int(slot)].text.hash64
        }
    }
}
