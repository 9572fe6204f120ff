import NudgeEvents

/// A text property of an event that a filter can test or a distinct count can count.
public enum TextField: String, Sendable, CaseIterable {
    /// `properties.category`.
    case category
    /// `properties.product_id`.
    case productId = "product_id"

    /// The field's bytes in `event` (empty when absent).
    @inline(__always)
    func text(of event: SegmentEvent) -> RawText {
        switch self {
        case .category: event.category
        case .productId: event.productId
        }
    }
}

/// A numeric property of an event that a filter can compare or an aggregation can summarise.
public enum NumberField: String, Sendable, CaseIterable {
    /// Money: see `SegmentEvent.amount`.
    case amount
    /// `properties.score` of a survey (NaN when absent).
    case score

    /// The field's value in `event`.
    @inline(__always)
    func value(of event: SegmentEvent) -> Double {
        switch self {
        case .amount: event.amount
        case .score: event.score
        }
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

    /// E.g. `category in [garden, outdoor]`, `amount >= 100.0`.
    public var description: String {
        switch self {
        case .textIn(let field, let values): "\(field.rawValue) in [\(values.sorted().joined(separator: ", "))]"
        case .textNotIn(let field, let values): "\(field.rawValue) not in [\(values.sorted().joined(separator: ", "))]"
        case .number(let field, let comparison, let constant): "\(field.rawValue) \(comparison.rawValue) \(constant)"
        }
    }
}
