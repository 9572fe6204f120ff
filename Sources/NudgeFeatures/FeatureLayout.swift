import NudgeEvents

/// A feature set compiled to a packed customer record: the state units events update, the readers that
/// turn state into feature values, and the record's initial bytes.
///
/// Sharing, so memory follows what the features need rather than how many there are:
/// - one **stream** per distinct filter (kinds, channels, conditions); one "ever matched" bit per stream;
/// - one **ring** per (stream, resolution, cell kind), as long as the longest window reading it, so
///   `orders_30d` and `orders_90d` at 6d share a ring, and `revenue_90d` and an average share a sum ring;
/// - no ring heads: every ring is advanced to the customer's newest event time (the header), so its head is
///   `floor(newest / r)`. A late event older than the ring is outside every window evaluated at or after the
///   newest event, so dropping it loses nothing the documented windows count;
/// - `timeSinceLast` over every event reads the header's newest time.
///
/// Fields are packed after the 21-byte header, largest alignment first, filling gaps.
struct FeatureLayout: Sendable {
    var updaters: [StateUpdater] = []
    /// `dispatch[dispatchStart[k] ..< dispatchStart[k + 1]]`: the updaters that react to kind raw value `k`.
    var dispatchStart: [Int32] = []
    var dispatch: [DispatchEntry] = []
    /// Resolution groups, finest first: every ring of a group advances together.
    var groups: [ResolutionGroup] = []
    /// Every ring, by group: `groupRings[groups[g].ringStart ..< groups[g].ringEnd]`; readers refer to
    /// rings by position here.
    var groupRings: [BucketRing] = []
    var readers: [FeatureReader] = []
    var conditions: [CompiledCondition] = []
    var conditionHashes: [UInt64] = []
    var program: [ExpressionStep] = []
    /// Deepest stack the derived features' programs need.
    var stackDepth = 0
    /// Bytes per customer record (a multiple of 8).
    var stride = 0
    /// A fresh customer's record: sentinels for "never seen".
    var template: [UInt8] = []
    /// The keys of `properties` that features read by name, in order of first use: a decoded event's
    /// ``SegmentEvent/properties`` holds them in this order.
    var properties: [String] = []

    init(_ definitions: [FeatureDefinition]) {
        var compiler = LayoutCompiler(definitions)
        compiler.compile()
        self = compiler.layout
    }

    fileprivate init() {}

    /// The keys of `properties` that `definitions` read by name, in order of first use.
    static func properties(of definitions: [FeatureDefinition]) -> [String] {
        var names: [String] = []
        for definition in definitions {
            for name in properties(in: definition.filter) + properties(in: definition.aggregation) where !names.contains(name) {
                names.append(name)
            }
        }
        return names
    }

    /// The keys `filter`'s conditions read by name, in order.
    static func properties(in filter: EventFilter) -> [String] {
        filter.conditions.compactMap { condition in
            switch condition {
            case .textIn(.property(let name), _), .textNotIn(.property(let name), _), .number(.property(let name), _, _): name
            default: nil
            }
        }
    }

    /// The key `aggregation` reads by name, if any.
    static func properties(in aggregation: Aggregation) -> [String] {
        switch aggregation {
        case .sum(.property(let name)), .last(.property(let name)), .minimum(.property(let name)),
             .maximum(.property(let name)), .average(.property(let name)), .distinctCount(.property(let name)):
            [name]
        default: []
        }
    }

    // The `?? 0`s below never apply: `properties` holds every key the definitions read.

    /// Where compiled code reads `field`.
    func source(_ field: NumberField) -> NumberSource {
        switch field {
        case .amount: .amount
        case .score: .score
        case .property(let name): .property(slot: Int32(properties.firstIndex(of: name) ?? 0))
        }
    }

    /// Where compiled code reads `field`.
    func source(_ field: TextField) -> TextSource {
        switch field {
        case .category: .category
        case .productId: .productId
        case .property(let name): .property(slot: Int32(properties.firstIndex(of: name) ?? 0))
        }
    }
}

/// Where compiled code reads a number of an event: a plain value (no String), so copying an updater or a
/// condition in the per-event loop retains nothing.
enum NumberSource: Sendable, Equatable {
    case amount, score
    /// `SegmentEvent.properties[slot]`.
    case property(slot: Int32)

    var isProperty: Bool { if case .property = self { true } else { false } }
}

/// Where compiled code reads a text of an event; see ``NumberSource``.
enum TextSource: Sendable, Equatable {
    case category, productId
    /// `SegmentEvent.properties[slot]`.
    case property(slot: Int32)

    var isProperty: Bool { if case .property = self { true } else { false } }
}

/// One resolution shared by rings: its divisor and where its rings are listed.
struct ResolutionGroup: Sendable {
    let resolution: Divisor
    let ringStart: Int
    let ringEnd: Int
    /// The next group's resolution is a multiple of this one: if this group's bucket did not change, the
    /// next group's did not either.
    let nestsIntoNext: Bool
}

/// An updater to run for an event of some kind, and what a gauge does on that kind.
struct DispatchEntry: Sendable {
    let updater: Int32
    let gaugeAction: GaugeAction
}

/// What an event does to a gauge.
enum GaugeAction: UInt8, Sendable { case add, takeAway, reset }

/// A property condition compiled to hashes and numbers.
struct CompiledCondition: Sendable {
    enum Test: UInt8, Sendable { case textIn, textNotIn, number }
    let test: Test
    let textField: TextSource
    let numberField: NumberSource
    let comparison: ComparisonOperator
    let constant: Double
    /// `conditionHashes[hashStart ..< hashStart + hashCount]`.
    let hashStart: Int32
    let hashCount: Int32
}

/// One step of a derived feature's postfix program.
struct ExpressionStep: Sendable {
    enum Operation: UInt8, Sendable { case constant, feature, add, subtract, multiply, divide, negate, min, max, abs, log1p, sqrt }
    let operation: Operation
    /// Feature position for `feature`.
    let index: Int32
    /// Value for `constant`.
    let constant: Double
}

/// What a ring holds; rings with equal stream, resolution and content are one ring.
enum LayoutRingContent: Hashable, Sendable {
    case count(BucketCell)
    case finiteCount(NumberField)
    case sum(NumberField)
    case minimum(NumberField)
    case maximum(NumberField)
    case bits(TextField)

    var cell: BucketCell {
        switch self {
        case .count(let cell): cell
        case .finiteCount: .count16
        case .sum: .sum32
        case .minimum: .min32
        case .maximum: .max32
        case .bits: .bits64
        }
    }

    var numberField: NumberField {
        switch self {
        case .finiteCount(let field), .sum(let field), .minimum(let field), .maximum(let field): field
        default: .amount
        }
    }

    var textField: TextField {
        if case .bits(let field) = self { return field }
        return .category
    }
}

/// Lifetime and time state, shared by features on the same stream (gauges excepted).
enum LayoutScalarKey: Hashable, Sendable {
    case count(stream: Int)
    case finiteCount(stream: Int, NumberField)
    case sum(stream: Int, NumberField)
    case minimum(stream: Int, NumberField)
    case maximum(stream: Int, NumberField)
    case bits(stream: Int, TextField)
    case last(stream: Int, NumberField)
    case latestTime(stream: Int)
    /// Gauges are per feature: their kinds differ even on one filter.
    case gauge(feature: Int)

    var size: Int {
        switch self {
        case .count, .finiteCount: 4
        case .gauge: 2
        case .last: 16
        default: 8
        }
    }

    var stream: Int? {
        switch self {
        case .count(let s), .finiteCount(let s, _), .sum(let s, _), .minimum(let s, _), .maximum(let s, _),
             .bits(let s, _), .last(let s, _), .latestTime(let s): s
        case .gauge: nil
        }
    }
}

/// Builds a ``FeatureLayout``: streams, rings, scalar state, readers, packing.
private struct LayoutCompiler {
    let definitions: [FeatureDefinition]
    var layout = FeatureLayout()

    /// Distinct filters (derived features excluded).
    var streams: [EventFilter] = []
    var streamNeedsSeen: [Bool] = []
    /// What each ring holds, by key, and its longest window.
    var ringKeys: [RingKey] = []
    var ringLengths: [Int64] = []
    /// Scalar state units by key.
    var scalarKeys: [LayoutScalarKey] = []
    var fields: [Field] = []

    struct RingKey: Hashable {
        let stream: Int
        let resolution: Int64
        let content: LayoutRingContent
    }

    /// Something that needs bytes in the record.
    enum FieldOwner {
        case ring(Int)
        case scalar(Int)
        case seen(byte: Int)
    }

    struct Field {
        let owner: FieldOwner
        let size: Int
        let alignment: Int
        var offset = 0
    }

    init(_ definitions: [FeatureDefinition]) { self.definitions = definitions }

    mutating func compile() {
        layout.properties = FeatureLayout.properties(of: definitions)
        // 1. Streams, rings and scalars each feature needs.
        var plans: [Plan] = []
        for (position, definition) in definitions.enumerated() { plans.append(plan(definition, position: position)) }

        // 2. Bytes: rings, scalars, seen bits; then packing.
        var seenBits: [Int: (byte: Int, mask: UInt8)] = [:]
        var seenCount = 0
        for (stream, needs) in streamNeedsSeen.enumerated() where needs {
            seenBits[stream] = (seenCount / 8, UInt8(1) << UInt8(seenCount % 8))
            seenCount += 1
        }
        for (index, key) in ringKeys.enumerated() {
            let width = key.content.cell.width
            fields.append(Field(owner: .ring(index), size: width * Int(ringLengths[index]), alignment: width))
        }
        for (index, key) in scalarKeys.enumerated() {
            fields.append(Field(owner: .scalar(index), size: key.size, alignment: min(key.size, 8)))
        }
        for byte in 0..<((seenCount + 7) / 8) { fields.append(Field(owner: .seen(byte: byte), size: 1, alignment: 1)) }
        let end = pack()
        layout.stride = (end + 7) & ~7

        var ringOffsets = [Int](repeating: 0, count: ringKeys.count)
        var scalarOffsets = [Int](repeating: 0, count: scalarKeys.count)
        var seenOffsets: [Int] = []
        for field in fields {
            switch field.owner {
            case .ring(let index): ringOffsets[index] = field.offset
            case .scalar(let index): scalarOffsets[index] = field.offset
            case .seen: seenOffsets.append(field.offset)
            }
        }
        func seen(_ stream: Int) -> SeenBit {
            guard let bit = seenBits[stream] else { return .none }
            return SeenBit(offset: seenOffsets[bit.byte], mask: bit.mask)
        }

        // 3. Rings grouped by resolution, finest first.
        let resolutions = Set(ringKeys.map(\.resolution)).sorted()
        var rings = [BucketRing](repeating: .none, count: ringKeys.count)
        var ringPositions = [Int32](repeating: 0, count: ringKeys.count)
        for (group, resolution) in resolutions.enumerated() {
            let start = layout.groupRings.count
            for (index, key) in ringKeys.enumerated() where key.resolution == resolution {
                let ring = BucketRing(offset: ringOffsets[index], cell: key.content.cell, length: ringLengths[index],
                                      group: group, resolution: Divisor(resolution))
                rings[index] = ring
                ringPositions[index] = Int32(layout.groupRings.count)
                layout.groupRings.append(ring)
            }
            let next = group + 1 < resolutions.count ? resolutions[group + 1] : 0
            layout.groups.append(ResolutionGroup(resolution: Divisor(resolution), ringStart: start,
                                                 ringEnd: layout.groupRings.count,
                                                 nestsIntoNext: next > 0 && next % resolution == 0))
        }

        // 4. Updaters, one per ring and per scalar, dispatched by kind.
        var byKind = [[DispatchEntry]](repeating: [], count: 256)
        for (index, key) in ringKeys.enumerated() {
            let updater = StateUpdater(ring: rings[index], content: key.content,
                                       filter: streams[key.stream], seen: seen(key.stream), layout: &layout)
            addUpdater(updater, kinds: streams[key.stream].kinds, to: &byKind)
        }
        for (index, key) in scalarKeys.enumerated() {
            guard let updater = StateUpdater(scalar: key, offset: scalarOffsets[index],
                                             seen: key.stream.map(seen) ?? .none, definitions: definitions,
                                             streams: streams, layout: &layout) else { continue }
            if case .gauge(let feature) = key {
                addGauge(updater, definitions[feature], to: &byKind)
            } else if let stream = key.stream {
                addUpdater(updater, kinds: streams[stream].kinds, to: &byKind)
            }
        }
        layout.dispatchStart = [0]
        for entries in byKind {
            layout.dispatch.append(contentsOf: entries)
            layout.dispatchStart.append(Int32(layout.dispatch.count))
        }

        // 5. Readers, in definition order.
        let positions = Dictionary(definitions.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (position, plan) in plans.enumerated() {
            let definition = definitions[position]
            var reader = FeatureReader(definition)
            switch plan {
            case .ring(let operation, let primary, let secondary, let stream):
                reader.operation = operation
                reader.ring = ringPositions[primary]
                reader.secondRing = secondary.map { ringPositions[$0] } ?? 0
                reader.seen = stream.map(seen) ?? .none
            case .scalar(let operation, let primary, let secondary, let stream):
                reader.operation = operation
                reader.offset = primary.map { scalarOffsets[$0] } ?? CustomerRecord.newestMillis
                reader.secondOffset = secondary.map { scalarOffsets[$0] } ?? 0
                reader.seen = stream.map(seen) ?? .none
            case .derived(let expression):
                reader.operation = .derived
                reader.programStart = Int32(layout.program.count)
                var depth = 0
                emit(expression, positions: positions, depth: &depth)
                reader.programEnd = Int32(layout.program.count)
            }
            layout.readers.append(reader)
        }

        // 6. The fresh record.
        var template = [UInt8](repeating: 0, count: layout.stride)
        template.withUnsafeMutableBytes { bytes in
            guard let record = bytes.baseAddress else { return }
            record.storeBytes(of: Int64.min, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
            record.storeBytes(of: CustomerRecord.noChannel, toByteOffset: CustomerRecord.channel, as: UInt8.self)
            for ring in rings { ring.clearAll(record) }
            for updater in layout.updaters { updater.initialize(record) }
        }
        layout.template = template
    }

    // MARK: Planning

    /// Where a feature's value comes from.
    enum Plan {
        case ring(ReadOperation, primary: Int, secondary: Int?, seenStream: Int?)
        /// `primary` nil: the header's newest time.
        case scalar(ReadOperation, primary: Int?, secondary: Int?, seenStream: Int?)
        case derived(FeatureExpression)
    }

    mutating func plan(_ definition: FeatureDefinition, position: Int) -> Plan {
        let aggregation = definition.aggregation
        if case .derived(let expression) = aggregation { return .derived(expression) }
        let stream = streamIndex(definition.filter)
        let window = definition.window
        if window.isLifetime || !Self.usesRing(aggregation) {
            return planScalar(aggregation, stream: stream, position: position, filter: definition.filter)
        }
        let resolution = max(window.resolutionMillis, 1)
        let buckets = max(window.durationMillis / resolution, 1)
        func ring(_ content: LayoutRingContent) -> Int { ringIndex(RingKey(stream: stream, resolution: resolution, content: content), buckets) }
        switch aggregation {
        case .sum(let field):
            streamNeedsSeen[stream] = true
            return .ring(.windowSum, primary: ring(.sum(field)), secondary: nil, seenStream: stream)
        case .minimum(let field):
            return .ring(.windowMinimum, primary: ring(.minimum(field)), secondary: nil, seenStream: nil)
        case .maximum(let field):
            return .ring(.windowMaximum, primary: ring(.maximum(field)), secondary: nil, seenStream: nil)
        case .average(let field):
            return .ring(.windowAverage, primary: ring(.sum(field)), secondary: ring(.finiteCount(field)), seenStream: nil)
        case .distinctCount(let field):
            streamNeedsSeen[stream] = true
            return .ring(.windowDistinct, primary: ring(.bits(field)), secondary: nil, seenStream: stream)
        default: // .count
            streamNeedsSeen[stream] = true
            let cell = Self.countCell(kinds: definition.filter.kinds, resolution: resolution)
            return .ring(.windowCount, primary: ring(.count(cell)), secondary: nil, seenStream: stream)
        }
    }

    mutating func planScalar(_ aggregation: Aggregation, stream: Int, position: Int, filter: EventFilter) -> Plan {
        switch aggregation {
        case .count:
            return .scalar(.lifetimeCount, primary: scalarIndex(.count(stream: stream)), secondary: nil, seenStream: nil)
        case .sum(let field):
            return .scalar(.lifetimeSum, primary: scalarIndex(.sum(stream: stream, field)), secondary: nil, seenStream: nil)
        case .minimum(let field):
            return .scalar(.lifetimeMinimum, primary: scalarIndex(.minimum(stream: stream, field)), secondary: nil, seenStream: nil)
        case .maximum(let field):
            return .scalar(.lifetimeMaximum, primary: scalarIndex(.maximum(stream: stream, field)), secondary: nil, seenStream: nil)
        case .average(let field):
            return .scalar(.lifetimeAverage, primary: scalarIndex(.sum(stream: stream, field)),
                           secondary: scalarIndex(.finiteCount(stream: stream, field)), seenStream: nil)
        case .distinctCount(let field):
            streamNeedsSeen[stream] = true
            return .scalar(.lifetimeDistinct, primary: scalarIndex(.bits(stream: stream, field)), secondary: nil, seenStream: stream)
        case .last(let field):
            return .scalar(.last, primary: scalarIndex(.last(stream: stream, field)), secondary: nil, seenStream: nil)
        case .timeSinceLast:
            // Over every event, the newest matching event is the newest event: the header has it.
            let time = filter.isAnyEvent ? nil : scalarIndex(.latestTime(stream: stream))
            return .scalar(.timeSinceLast, primary: time, secondary: nil, seenStream: nil)
        default: // gauges
            return .scalar(.gauge, primary: scalarIndex(.gauge(feature: position)), secondary: nil, seenStream: nil)
        }
    }

    static func usesRing(_ aggregation: Aggregation) -> Bool {
        switch aggregation {
        case .count, .sum, .minimum, .maximum, .average, .distinctCount: true
        default: false
        }
    }

    /// The counter width rule documented on ``Aggregation``.
    static func countCell(kinds: Set<EventKind>, resolution: Int64) -> BucketCell {
        resolution <= FeatureWindow.hourMillis || kinds.isSubset(of: Aggregation.lowVolumeKinds) ? .count8 : .count16
    }

    mutating func streamIndex(_ filter: EventFilter) -> Int {
        if let index = streams.firstIndex(of: filter) { return index }
        streams.append(filter)
        streamNeedsSeen.append(false)
        return streams.count - 1
    }

    mutating func ringIndex(_ key: RingKey, _ buckets: Int64) -> Int {
        if let index = ringKeys.firstIndex(of: key) {
            ringLengths[index] = max(ringLengths[index], buckets)
            return index
        }
        ringKeys.append(key)
        ringLengths.append(buckets)
        return ringKeys.count - 1
    }

    mutating func scalarIndex(_ key: LayoutScalarKey) -> Int {
        if let index = scalarKeys.firstIndex(of: key) { return index }
        scalarKeys.append(key)
        return scalarKeys.count - 1
    }

    // MARK: Packing

    /// Places every field after the header: largest alignment first, each in the first gap it fits.
    /// Returns the end of the last field.
    mutating func pack() -> Int {
        var gaps: [Range<Int>] = []
        var end = CustomerRecord.headerSize
        let order = fields.indices.sorted {
            (fields[$0].alignment, fields[$0].size) > (fields[$1].alignment, fields[$1].size)
        }
        for index in order {
            let size = fields[index].size
            let alignment = fields[index].alignment
            if let gap = gaps.firstIndex(where: { Self.align($0.lowerBound, alignment) + size <= $0.upperBound }) {
                let start = Self.align(gaps[gap].lowerBound, alignment)
                let (before, after) = (gaps[gap].lowerBound..<start, (start + size)..<gaps[gap].upperBound)
                gaps.remove(at: gap)
                gaps.append(contentsOf: [before, after].filter { !$0.isEmpty })
                gaps.sort { $0.lowerBound < $1.lowerBound }
                fields[index].offset = start
            } else {
                let start = Self.align(end, alignment)
                if start > end { gaps.append(end..<start) }
                fields[index].offset = start
                end = start + size
            }
        }
        return end
    }

    static func align(_ offset: Int, _ alignment: Int) -> Int { (offset + alignment - 1) / alignment * alignment }

    // MARK: Dispatch

    mutating func addUpdater(_ updater: StateUpdater, kinds: Set<EventKind>, to byKind: inout [[DispatchEntry]]) {
        let index = Int32(layout.updaters.count)
        layout.updaters.append(updater)
        for kind in kinds { byKind[Int(kind.rawValue)].append(DispatchEntry(updater: index, gaugeAction: .add)) }
    }

    mutating func addGauge(_ updater: StateUpdater, _ definition: FeatureDefinition, to byKind: inout [[DispatchEntry]]) {
        let index = Int32(layout.updaters.count)
        layout.updaters.append(updater)
        var actions: [(Set<EventKind>, GaugeAction)] = [(definition.filter.kinds, .add)]
        switch definition.aggregation {
        case .openCount(let closes): actions.append((closes, .takeAway))
        case .netCount(let removes, let resets): actions += [(removes, .takeAway), (resets, .reset)]
        default: break
        }
        for (kinds, action) in actions {
            for kind in kinds { byKind[Int(kind.rawValue)].append(DispatchEntry(updater: index, gaugeAction: action)) }
        }
    }

    // MARK: Derived programs

    /// Postfix code for `expression`; `depth` tracks the stack height.
    mutating func emit(_ expression: FeatureExpression, positions: [String: Int], depth: inout Int) {
        func push(_ step: ExpressionStep) {
            layout.program.append(step)
            switch step.operation {
            case .constant, .feature:
                depth += 1
                layout.stackDepth = max(layout.stackDepth, depth)
            case .add, .subtract, .multiply, .divide, .min, .max:
                depth -= 1
            case .negate, .abs, .log1p, .sqrt:
                break
            }
        }
        switch expression {
        case .constant(let value):
            push(ExpressionStep(operation: .constant, index: 0, constant: value))
        case .feature(let name):
            // Validation guarantees the name exists; an unvalidated unknown name reads as NaN (missing).
            if let position = positions[name] {
                push(ExpressionStep(operation: .feature, index: Int32(position), constant: 0))
            } else {
                push(ExpressionStep(operation: .constant, index: 0, constant: .nan))
            }
        case .negate(let operand):
            emit(operand, positions: positions, depth: &depth)
            push(ExpressionStep(operation: .negate, index: 0, constant: 0))
        case .binary(let op, let lhs, let rhs):
            emit(lhs, positions: positions, depth: &depth)
            emit(rhs, positions: positions, depth: &depth)
            let operation: ExpressionStep.Operation = switch op {
            case .add: .add
            case .subtract: .subtract
            case .multiply: .multiply
            case .divide: .divide
            }
            push(ExpressionStep(operation: operation, index: 0, constant: 0))
        case .call(let function, let arguments):
            guard let first = arguments.first else {
                push(ExpressionStep(operation: .constant, index: 0, constant: .nan))
                return
            }
            emit(first, positions: positions, depth: &depth)
            switch function {
            case .min, .max:
                for argument in arguments.dropFirst() {
                    emit(argument, positions: positions, depth: &depth)
                    push(ExpressionStep(operation: function == .min ? .min : .max, index: 0, constant: 0))
                }
            case .abs: push(ExpressionStep(operation: .abs, index: 0, constant: 0))
            case .log1p: push(ExpressionStep(operation: .log1p, index: 0, constant: 0))
            case .sqrt: push(ExpressionStep(operation: .sqrt, index: 0, constant: 0))
            }
        }
    }
}
