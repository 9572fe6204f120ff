import NudgeEvents

/// An ordered list of feature definitions compiled to a fixed per-customer memory layout.
///
/// The order is the order of ``CustomerTable/evaluate(_:atMillis:into:)``'s output and of model feature
/// vectors. `init` is the seam for declarative definitions loaded from a file: whatever parses the file
/// builds `[FeatureDefinition]` and gets every check here.
public struct FeatureSet: Sendable, Equatable {
    /// The definitions, in output order.
    public let definitions: [FeatureDefinition]
    let layout: FeatureLayout

    /// The most buckets one window may have: bounds per-customer memory (a 512-bucket ring is at most 4 KiB).
    public static let maxBucketsPerWindow: Int64 = 512
    /// The most keys of `properties` one set may read by name (`properties.<key>`): the decoder compares every
    /// key of every event's `properties` against them.
    public static let maxReadProperties = 8
    /// The longest feature name: names are CSV columns, model-file entries and recommendation reasons.
    public static let maxNameLength = 64
    /// Names the training datasets give their own columns (ids, times, labels): a feature so named would be
    /// read as one of them, a label among them, so no feature may take one.
    public static let reservedNames: Set<String> = [
        "customer_id", "cutoff", "churn", "delivered_at", "recommendation_id", "action", "channel",
        "viewed", "dismissed", "accepted",
    ]

    /// Why `name` cannot name a feature, or nil. A name is what an expression can refer to
    /// (`[A-Za-z_][A-Za-z0-9_]*`), a CSV column needing no quotes, and no dataset column of its own.
    static func problem(withName name: String) -> String? {
        let bytes = Array(name.utf8)
        func isLetter(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x5F }
        if bytes.count > maxNameLength { return "is longer than \(maxNameLength) bytes" }
        if let first = bytes.first, !isLetter(first) { return "must start with a letter or '_'" }
        if bytes.contains(where: { !isLetter($0) && !(0x30...0x39).contains($0) }) {
            return "may hold only letters, digits and '_' (expressions refer to features by name)"
        }
        if reservedNames.contains(name) { return "is a column of the training datasets" }
        return nil
    }

    /// Validates and compiles `definitions`; throws the first problem found, naming the feature.
    public init(_ definitions: [FeatureDefinition]) throws(FeatureSetError) {
        try Self.validate(definitions)
        self.init(validated: definitions)
    }

    /// Compiles definitions already known to be valid (the built-in sets, checked by tests).
    init(validated definitions: [FeatureDefinition]) {
        self.definitions = definitions
        layout = FeatureLayout(definitions)
    }

    /// Feature names, in output order.
    public var names: [String] { definitions.map(\.name) }

    /// What each feature computes, in output order: its ``FeatureDefinition/signature``, and for a derived
    /// feature, in braces, the signature of every feature it reads, directly or through other derived
    /// features, each once by name (`derived (a / b), missing 0.0 {a: …; b: …}`): redefining any of them
    /// changes what it computes. Each listed once, so the text grows with the number of inputs, not with the
    /// depth of the chain. Models record these (`trained.feature_definitions`) and the service compares them.
    public var signatures: [String] {
        var own: [String: String] = [:]
        var inputs: [String: Set<String>] = [:]
        return definitions.map { definition in
            var text = definition.signature
            own[definition.name] = text
            if case .derived(let expression) = definition.aggregation {
                // Validation put every reference above this feature, so each is known already.
                var all = Set<String>()
                for reference in expression.references {
                    all.insert(reference)
                    all.formUnion(inputs[reference] ?? [])
                }
                inputs[definition.name] = all
                text += " {" + all.sorted().map { "\($0): \(own[$0] ?? "?")" }.joined(separator: "; ") + "}"
            }
            return text
        }
    }

    /// The feature record's byte layout as text: every ring (offset, cell, length, resolution), every
    /// piece of state and the updates and conditions that write it, every reader, the record's size and
    /// template, after ``recordEncodingVersion``. Two sets that describe their records alike lay them out
    /// alike, whether they differ by feature file or by the Nudge version that compiled it; how the bytes
    /// are encoded and merged beyond the layout is what the version stands for. The layout holds value types
    /// of no private type (which would print with an address), so the text is the same in every process.
    public var recordFormat: String { "v\(Self.recordEncodingVersion) " + String(reflecting: layout) }

    /// Raise it with any change to how records are encoded or merged that the layout does not show (the
    /// header, a cell's saturation, the distinct-count bitmap rule, ``RecordMerge``): instances then stop
    /// exchanging records with older ones rather than merge them under another meaning.
    public static let recordEncodingVersion = 1

    /// Number of features (the length of an evaluated vector).
    public var count: Int { definitions.count }

    /// Bytes of a full feature record in a ``CustomerTable`` (header included), which a customer takes at
    /// their second event (or first, see ``readProperties``); entries, identity bytes and the index are extra, see ``CustomerTable/bytesUsed``.
    public var bytesPerCustomer: Int { layout.stride }

    /// The keys of `properties` that features read by name, in order of first use. Decode events for this set
    /// with `SegmentDecoder(properties: readProperties)`, so each event's `properties` holds them in this order.
    /// A customer's first event that carries one, of a kind some feature reads one on, takes a full record
    /// at once rather than the one-event entry.
    public var readProperties: [String] { layout.properties }

    /// Position of the feature called `name`, if any.
    public func index(of name: String) -> Int? { definitions.firstIndex { $0.name == name } }

    /// Equal when the definitions are equal (the layout follows from them).
    public static func == (lhs: FeatureSet, rhs: FeatureSet) -> Bool { lhs.definitions == rhs.definitions }

    private static func validate(_ definitions: [FeatureDefinition]) throws(FeatureSetError) {
        var seen = Set<String>()
        for (position, definition) in definitions.enumerated() {
            let name = definition.name
            guard !name.isEmpty else { throw .emptyName(position: position) }
            if let problem = problem(withName: name) { throw .badName(name, problem: problem) }
            guard seen.insert(name).inserted else { throw .duplicateName(name) }
        }
        // Derived features may use any event feature and the derived features above them: no cycles.
        let eventFeatures = Set(definitions.filter { !$0.aggregation.isDerived }.map(\.name))
        var derivedAbove = Set<String>()
        for definition in definitions {
            try validate(definition)
            if case .derived(let expression) = definition.aggregation {
                for reference in expression.references where !eventFeatures.contains(reference) && !derivedAbove.contains(reference) {
                    throw .unknownReference(feature: definition.name, reference: reference)
                }
                derivedAbove.insert(definition.name)
            }
        }
        var read = Set<String>()
        for definition in definitions {
            let uses = FeatureLayout.properties(in: definition.filter).map { ($0, "where") }
                + FeatureLayout.properties(in: definition.aggregation).map { ($0, "of") }
            for (property, field) in uses {
                if let problem = FeatureProperty.problem(with: property) {
                    throw .badProperty(feature: definition.name, name: property, problem: problem)
                }
                guard read.insert(property).inserted, read.count > maxReadProperties else { continue }
                throw .tooManyProperties(feature: definition.name, field: field, property: property, limit: maxReadProperties)
            }
        }
    }

    private static func validate(_ definition: FeatureDefinition) throws(FeatureSetError) {
        let name = definition.name
        guard definition.missingValue.isFinite else { throw .nonFiniteValue(feature: name, field: "missingValue") }
        if let cap = definition.cap, !cap.isFinite { throw .nonFiniteValue(feature: name, field: "cap") }
        let window = definition.window
        if definition.aggregation.isDerived {
            guard window.isLifetime else { throw .derivedTakesNoWindow(feature: name) }
            return
        }
        guard !definition.filter.kinds.isEmpty else { throw .noKinds(feature: name) }
        if let channels = definition.filter.channels, channels.isEmpty { throw .noChannels(feature: name) }
        for condition in definition.filter.conditions {
            switch condition {
            case .textIn(_, let values), .textNotIn(_, let values):
                guard !values.isEmpty else { throw .emptyCondition(feature: name, condition: condition.description) }
            case .number(_, _, let constant):
                guard constant.isFinite else { throw .nonFiniteValue(feature: name, field: "where") }
            }
        }
        if !window.isLifetime {
            if definition.aggregation.isGauge {
                throw .gaugeNeedsLifetimeWindow(feature: name, aggregation: definition.aggregation.name)
            }
            guard window.durationMillis > 0, window.resolutionMillis > 0 else {
                throw .nonPositiveWindow(feature: name, window: window)
            }
            guard window.durationMillis % window.resolutionMillis == 0 else {
                throw .resolutionDoesNotDivide(feature: name, window: window)
            }
            guard window.buckets <= maxBucketsPerWindow else {
                throw .tooManyBuckets(feature: name, window: window, buckets: window.buckets, limit: maxBucketsPerWindow)
            }
        }
        let conflicts = conflictingKinds(definition)
        guard conflicts.isEmpty else {
            throw .conflictingKinds(feature: name, kinds: conflicts.map(\.wireName).sorted())
        }
    }

    /// Kinds a gauge would both add on and take away on (or both remove on and reset on).
    private static func conflictingKinds(_ definition: FeatureDefinition) -> Set<EventKind> {
        switch definition.aggregation {
        case .openCount(let closes):
            return definition.filter.kinds.intersection(closes)
        case .netCount(let removes, let resets):
            return definition.filter.kinds.intersection(removes.union(resets)).union(removes.intersection(resets))
        default:
            return []
        }
    }
}
