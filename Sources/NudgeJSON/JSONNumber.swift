/// A number as the document writes it: its source text, which messages quote (`1e999`, `NaN`), and the
/// nearest `Double`.
///
/// The value is not always finite: a literal too large for a `Double` reads as ±infinity, and the tokens
/// `NaN`, `Infinity` and `-Infinity` read as themselves. Readers that need finite numbers refuse these by
/// field, quoting ``literal``.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    /// The source text, exactly as written.
    public let literal: String
    /// The nearest `Double` to ``literal``.
    public let value: Double

    /// A number read from `literal`, whose nearest `Double` is `value`.
    init(literal: String, value: Double) {
        self.literal = literal
        self.value = value
    }

    /// Two numbers are equal when they are written alike (so `NaN` equals `NaN`, and `1.0` differs from `1`).
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool { lhs.literal == rhs.literal }

    /// The source text.
    public var description: String { literal }
}
