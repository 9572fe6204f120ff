/// A comparison in an eligibility condition.
public enum ComparisonOperator: String, Sendable, CaseIterable {
    /// `<`
    case less = "<"
    /// `<=`
    case lessOrEqual = "<="
    /// `>`
    case greater = ">"
    /// `>=`
    case greaterOrEqual = ">="
    /// `==`
    case equal = "=="
    /// `!=`
    case notEqual = "!="

    /// Whether `lhs op rhs` holds.
    @inline(__always)
    public func compare(_ lhs: Double, _ rhs: Double) -> Bool {
        switch self {
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        case .equal: lhs == rhs
        case .notEqual: lhs != rhs
        }
    }
}

/// One comparison of a feature (or of the churn probability) with a constant:
/// `{"feature":"tickets_open","op":"==","value":0}`.
public struct EligibilityCondition: Sendable, Equatable, CustomStringConvertible {
    /// What the condition reads.
    public enum Subject: Sendable, Equatable {
        /// A feature, by its position in the schema's vector.
        case feature(index: Int)
        /// The churn model's probability for the same customer at the same instant.
        case churnProbability
    }

    /// The pseudo-feature name that reads the churn score.
    public static let churnProbabilityName = "churn_probability"

    /// The feature name as written in the file.
    public let feature: String
    /// What the name resolved to at load.
    public let subject: Subject
    /// The comparison.
    public let op: ComparisonOperator
    /// The constant compared with.
    public let value: Double

    init(feature: String, subject: Subject, op: ComparisonOperator, value: Double) {
        self.feature = feature
        self.subject = subject
        self.op = op
        self.value = value
    }

    /// Whether the condition holds for vector `x`. A value that is missing (beyond the
    /// vector) or not finite never satisfies a condition, whatever the operator: eligibility
    /// is a gate, and an unknown value must not open it.
    public func holds(_ x: UnsafeBufferPointer<Double>, churnProbability: Double) -> Bool {
        Self.holds(featureIndex: featureIndex, op: op, value: value, x, churnProbability: churnProbability)
    }

    /// The feature's position in the vector, -1 for `churn_probability`.
    var featureIndex: Int {
        if case .feature(let index) = subject { return index }
        return -1
    }

    /// Whether `x[featureIndex]` (`churnProbability` for -1) compares to `value` by `op`; false when it is
    /// missing or not finite. Shared with ``ActionTable``.
    @inline(__always)
    static func holds(featureIndex: Int, op: ComparisonOperator, value: Double, _ x: UnsafeBufferPointer<Double>,
                      churnProbability: Double) -> Bool {
        let lhs: Double
        if featureIndex < 0 {
            lhs = churnProbability
        } else {
            guard featureIndex < x.count else { return false }
            lhs = x[featureIndex]
        }
        guard lhs.isFinite else { return false }
        return op.compare(lhs, value)
    }

    /// `tickets_open == 0`.
    public var description: String {
        let constant = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        return "\(feature) \(op.rawValue) \(constant)"
    }
}

/// One eligibility rule of an action. An action is eligible when all its rules hold; a rule
/// holds when any of its conditions holds. A plain rule (`{"feature":..,"op":..,"value":..}`)
/// has one condition; `{"any":[cond, cond]}` expresses "or", e.g. an open ticket or a recent
/// complaint, which all-must-hold rules alone cannot.
public struct EligibilityRule: Sendable, Equatable, CustomStringConvertible {
    /// The alternatives; at least one.
    public let anyOf: [EligibilityCondition]

    init(anyOf: [EligibilityCondition]) { self.anyOf = anyOf }

    /// Whether at least one condition holds. No allocation.
    public func holds(_ x: UnsafeBufferPointer<Double>, churnProbability: Double) -> Bool {
        for condition in anyOf where condition.holds(x, churnProbability: churnProbability) {
            return true
        }
        return false
    }

    /// `tickets_open >= 1 or complaints_30d >= 1`.
    public var description: String { anyOf.map(\.description).joined(separator: " or ") }
}
