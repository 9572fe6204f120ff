/// An arithmetic expression over other features, for derived features such as
/// `adds_24h / max(views_24h, 1)`.
///
/// Grammar: numbers, feature names, `+ - * /`, unary minus, parentheses, and the functions `min(a, b, ...)`,
/// `max(a, b, ...)`, `abs(x)`, `log1p(x)`, `sqrt(x)`. Operands are the referenced features' evaluated values
/// (their missing value when they have none). IEEE arithmetic throughout; a result that is not finite
/// (division by zero, `sqrt(-1)`) reports the derived feature's missing value.
public indirect enum FeatureExpression: Sendable, Equatable, CustomStringConvertible {
    /// A constant.
    case constant(Double)
    /// The value of the feature called `name`.
    case feature(String)
    /// `-x`
    case negate(FeatureExpression)
    /// `lhs op rhs`
    case binary(ArithmeticOperator, FeatureExpression, FeatureExpression)
    /// `function(arguments...)`
    case call(ExpressionFunction, [FeatureExpression])

    /// `+ - * /`.
    public enum ArithmeticOperator: String, Sendable {
        /// `+`
        case add = "+"
        /// `-`
        case subtract = "-"
        /// `*`
        case multiply = "*"
        /// `/`
        case divide = "/"
    }

    /// The functions an expression may call.
    public enum ExpressionFunction: String, Sendable, CaseIterable {
        /// Smallest argument (two or more).
        case min
        /// Largest argument (two or more).
        case max
        /// Absolute value (one argument).
        case abs
        /// log(1 + x) (one argument).
        case log1p
        /// Square root (one argument).
        case sqrt

        /// Whether `count` arguments are acceptable.
        func accepts(_ count: Int) -> Bool {
            switch self {
            case .min, .max: count >= 2
            case .abs, .log1p, .sqrt: count == 1
            }
        }
    }

    /// Feature names the expression reads, in order of first appearance.
    public var references: [String] {
        var names: [String] = []
        collect(into: &names)
        return names
    }

    private func collect(into names: inout [String]) {
        switch self {
        case .constant: break
        case .feature(let name): if !names.contains(name) { names.append(name) }
        case .negate(let operand): operand.collect(into: &names)
        case .binary(_, let lhs, let rhs): lhs.collect(into: &names); rhs.collect(into: &names)
        case .call(_, let arguments): for argument in arguments { argument.collect(into: &names) }
        }
    }

    /// Fully parenthesised text that parses back to the same expression.
    public var description: String {
        switch self {
        case .constant(let value): "\(value)"
        case .feature(let name): name
        case .negate(let operand): "(-\(operand))"
        case .binary(let op, let lhs, let rhs): "(\(lhs) \(op.rawValue) \(rhs))"
        case .call(let function, let arguments):
            "\(function.rawValue)(\(arguments.map(\.description).joined(separator: ", ")))"
        }
    }

    /// Parses `text`; errors name the position (0-based character offset) and what was expected.
    public static func parse(_ text: String) throws(ExpressionError) -> FeatureExpression {
        var parser = ExpressionParser(Array(text.unicodeScalars))
        let expression = try parser.expression()
        parser.skipSpaces()
        guard parser.atEnd else { throw parser.failure("unexpected '\(parser.currentText)' after a complete expression") }
        return expression
    }
}

/// Why an expression does not parse.
public struct ExpressionError: Error, Equatable, CustomStringConvertible {
    /// 0-based character offset where parsing stopped.
    public let position: Int
    /// What was wrong there.
    public let reason: String

    /// An error at `position` for `reason`.
    public init(position: Int, reason: String) {
        self.position = position
        self.reason = reason
    }

    /// "at character N: reason".
    public var description: String { "at character \(position + 1): \(reason)" }
}

/// Recursive descent over unicode scalars. Depth and operands are bounded so a hostile file cannot exhaust
/// the stack: a flat `a+a+…` nests no parentheses, but its tree is as deep as it is long, and the passes
/// over it (and its deinit) recurse once per operand.
private struct ExpressionParser {
    let scalars: [Unicode.Scalar]
    var position = 0
    var depth = 0
    var operands = 0
    static let maxDepth = 64
    static let maxOperands = 256

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var atEnd: Bool { position >= scalars.count }
    var current: Unicode.Scalar? { atEnd ? nil : scalars[position] }
    var currentText: String { current.map { String(Character($0)) } ?? "end of text" }

    func failure(_ reason: String) -> ExpressionError { ExpressionError(position: position, reason: reason) }

    mutating func skipSpaces() {
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { position += 1 }
    }

    mutating func take(_ symbol: Unicode.Scalar) -> Bool {
        skipSpaces()
        guard current == symbol else { return false }
        position += 1
        return true
    }

    mutating func expression() throws(ExpressionError) -> FeatureExpression {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw failure("expression nested more than \(Self.maxDepth) deep") }
        var lhs = try term()
        while true {
            if take("+") { lhs = .binary(.add, lhs, try term()) }
            else if take("-") { lhs = .binary(.subtract, lhs, try term()) }
            else { return lhs }
        }
    }

    mutating func term() throws(ExpressionError) -> FeatureExpression {
        var lhs = try unary()
        while true {
            if take("*") { lhs = .binary(.multiply, lhs, try unary()) }
            else if take("/") { lhs = .binary(.divide, lhs, try unary()) }
            else { return lhs }
        }
    }

    mutating func unary() throws(ExpressionError) -> FeatureExpression {
        if take("-") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw failure("expression nested more than \(Self.maxDepth) deep") }
            return .negate(try unary())
        }
        return try primary()
    }

    mutating func primary() throws(ExpressionError) -> FeatureExpression {
        skipSpaces()
        guard let scalar = current else { throw failure("expected a number, a feature name or '(' but the text ended") }
        operands += 1
        guard operands <= Self.maxOperands else {
            throw failure("more than \(Self.maxOperands) numbers, names and parentheses in one expression: split it into features")
        }
        if take("(") {
            let inner = try expression()
            guard take(")") else { throw failure("expected ')' but found '\(currentText)'") }
            return inner
        }
        if Self.isDigit(scalar) || scalar == "." { return .constant(try number()) }
        if Self.isNameStart(scalar) {
            let start = position
            let name = identifier()
            guard take("(") else { return .feature(name) }
            guard let function = FeatureExpression.ExpressionFunction(rawValue: name) else {
                throw ExpressionError(position: start, reason: "unknown function '\(name)': use min, max, abs, log1p or sqrt")
            }
            var arguments: [FeatureExpression] = []
            if !take(")") {
                repeat { arguments.append(try expression()) } while take(",")
                guard take(")") else { throw failure("expected ',' or ')' in the arguments of \(name) but found '\(currentText)'") }
            }
            guard function.accepts(arguments.count) else {
                let wanted = function == .min || function == .max ? "two or more arguments" : "one argument"
                throw ExpressionError(position: start, reason: "\(name) takes \(wanted), not \(arguments.count)")
            }
            return .call(function, arguments)
        }
        throw failure("expected a number, a feature name or '(' but found '\(currentText)'")
    }

    mutating func number() throws(ExpressionError) -> Double {
        let start = position
        while let scalar = current, Self.isDigit(scalar) || scalar == "." { position += 1 }
        if let scalar = current, scalar == "e" || scalar == "E" {
            position += 1
            if let sign = current, sign == "+" || sign == "-" { position += 1 }
            while let scalar = current, Self.isDigit(scalar) { position += 1 }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        guard let value = Double(text), value.isFinite else {
            throw ExpressionError(position: start, reason: "'\(text)' is not a finite number")
        }
        return value
    }

    mutating func identifier() -> String {
        let start = position
        while let scalar = current, Self.isNameStart(scalar) || Self.isDigit(scalar) { position += 1 }
        return String(String.UnicodeScalarView(scalars[start..<position]))
    }

    static func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }
    static func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_"
    }
}
