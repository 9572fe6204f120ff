/// Why a document is not JSON, and where: the byte offset and its line and column.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `expected ',' or '}' in an object`.
    public let reason: String
    /// Byte offset of the problem in the document.
    public let offset: Int
    /// Line and column of ``offset``.
    public let location: TextLocation

    /// `reason at line L, column C`.
    public var description: String { "\(reason) at \(location)" }
}
