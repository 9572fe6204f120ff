import NudgeEvents
import NudgeJSON

/// A text property of an event that a filter can test or a distinct count can count.
public enum TextField: Sendable, Hashable {
    /// `properties.category`.
    case category
    /// `properties.product_id` (a numeric id is kept as its digits).
    case productId
    /// Any other top-level key of `properties`, by name (`properties.<name>` in a feature file): a string's
    /// content, a number's digits, or `true` / `false`. See ``FeatureSet/readProperties``.
    case property(String)

    /// As a feature file names it: `category`, `product_id`, `properties.<name>`.
    public var name: String {
        switch self {
        case .category: "category"
        case .productId: "product_id"
        case .property(let name): FeatureProperty.prefix + name
        }
    }

    /// The field a feature file names `name`; nil for another name.
    public init?(name: String) {
        switch name {
        case "category": self = .category
        case "product_id": self = .productId
        default:
            guard let property = FeatureProperty.name(in: name) else { return nil }
            self = .property(property)
        }
    }

    /// The slow, obvious read (tests and tools; the store reads compiled slots).
    func text(of event: SegmentEvent) -> RawText {
        switch self {
        case .category: event.category
        case .productId: event.productId
        case .property(let name): event.properties.value(named: name)?.text ?? .empty
        }
    }
}

/// A numeric property of an event that a filter can compare or an aggregation can summarise.
public enum NumberField: Sendable, Hashable {
    /// Money: see `SegmentEvent.amount`.
    case amount
    /// `properties.score` of a survey (NaN when absent).
    case score
    /// Any top-level key of `properties` holding a JSON number, by name (`properties.<name>` in a feature
    /// file); NaN when absent or not a number. See ``FeatureSet/readProperties``.
    case property(String)

    /// As a feature file names it: `amount`, `score`, `properties.<name>`.
    public var name: String {
        switch self {
        case .amount: "amount"
        case .score: "score"
        case .property(let name): FeatureProperty.prefix + name
        }
    }

    /// The field a feature file names `name`; nil for another name.
    public init?(name: String) {
        switch name {
        case "amount": self = .amount
        case "score": self = .score
        default:
            guard let property = FeatureProperty.name(in: name) else { return nil }
            self = .property(property)
        }
    }

    /// The slow, obvious read (tests and tools; the store reads compiled slots).
    func value(of event: SegmentEvent) -> Double {
        switch self {
        case .amount: event.amount
        case .score: event.score
        case .property(let name): event.properties.value(named: name)?.number ?? .nan
        }
    }
}

/// How a feature file names a property of `properties` that Nudge does not read on its own.
public enum FeatureProperty {
    /// `properties.`: what names a property by its key.
    public static let prefix = "properties."
    /// The longest key, in UTF-8 bytes.
    public static let maxNameBytes = 64

    /// The key in `properties.<key>`; nil without the prefix.
    static func name(in text: String) -> String? {
        text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : nil
    }

    /// Why `name` cannot be read, or nil when it can: one top-level key, not empty, at most ``maxNameBytes``.
    static func problem(with name: String) -> String? {
        if name.isEmpty { return "names no key: write properties.<key>, e.g. properties.payment_method" }
        if name.contains(".") { return "is nested: only top-level keys of properties are read" }
        if name.utf8.count > maxNameBytes { return "is longer than \(maxNameBytes) bytes" }
        return nil
    }
}

/// How a numeric property is compared with a constant.
public enum ComparisonOperator: String, Sendable, CaseIterable {
    /// `==`
    case equal = "=="
    /// `!=`
    case notEqual = "!="
    /// `<`
    case less = "<"
    /// `<=`
    case lessOrEqual = "<="
    /// `>`
    case greater = ">"
    /// `>=`
    case greaterOrEqual = ">="

    /// `lhs op rhs` for finite values.
    @inline(__always)
    func holds(_ lhs: Double, _ rhs: Double) -> Bool {
        switch self {
        case .equal: lhs == rhs
        case .notEqual: lhs != rhs
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        }
    }
}

/// A condition on an event's properties, part of an ``EventFilter`` (`where` in a feature file).
///
/// Text values compare as exact bytes; the live store compares 64-bit hashes of them (nudgeHash64), so two
/// different values are confused with probability 2^-64 per comparison. An absent text field is the empty
/// string. A non-finite number (an absent score) satisfies no numeric condition, `!=` included.
public enum PropertyCondition: Sendable, Equatable, CustomStringConvertible {
    /// The field's value is one of `values`.
    case textIn(TextField, Set<String>)
    /// The field's value is none of `values`.
    case textNotIn(TextField, Set<String>)
    /// `field op constant`, e.g. `amount >= 100`.
    case number(NumberField, ComparisonOperator, Double)

    /// Whether `event` satisfies the condition (the slow, obvious form; the store compiles it).
    public func holds(for event: SegmentEvent) -> Bool {
        switch self {
        case .textIn(let field, let values):
            return values.contains(field.text(of: event).string)
        case .textNotIn(let field, let values):
            return !values.contains(field.text(of: event).string)
        case .number(let field, let comparison, let constant):
            let value = field.value(of: event)
            return value.isFinite && comparison.holds(value, constant)
        }
    }

    /// E.g. `category in ["garden", "outdoor"]`, `amount >= 100.0`: values quoted as JSON strings, so a
    /// value holding a comma or a quote reads as one, and so are field names other than plain keys (feature
    /// signatures are compared as this text).
    public var description: String {
        switch self {
        case .textIn(let field, let values): "\(Self.fieldText(field.name)) in [\(Self.quoted(values))]"
        case .textNotIn(let field, let values): "\(Self.fieldText(field.name)) not in [\(Self.quoted(values))]"
        case .number(let field, let comparison, let constant): "\(Self.fieldText(field.name)) \(comparison.rawValue) \(constant)"
        }
    }

    /// A field's name as is when it is a plain key (letters, digits, `_`, `.`), else quoted: a property key
    /// may hold a space, and `properties.a not in ["b"]` must not read as two conditions' text.
    private static func fieldText(_ name: String) -> String {
        name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
            ? name : JSONValue.stringLiteral(name)
    }

    /// `values` sorted, each as a JSON string, comma-separated.
    private static func quoted(_ values: Set<String>) -> String {
        values.sorted().map(JSONValue.stringLiteral).joined(separator: ", ")
    }
}
