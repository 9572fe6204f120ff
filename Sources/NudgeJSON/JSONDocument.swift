/// A parsed JSON document: its root value, and its text for turning a value's offset into a line and column.
///
/// The grammar is RFC 8259 and strict (no comments, trailing commas, leading zeros or single quotes; strings
/// must be valid UTF-8), with two deliberate allowances that leave the decision to the reader, who can then
/// refuse by field name rather than by line:
/// - the tokens `NaN`, `Infinity` and `-Infinity` parse as numbers, and a number too large for a `Double`
///   parses as ±infinity, each keeping its source text (see ``JSONNumber``);
/// - an object may repeat a key; every member is kept, in order (see ``JSONValue/Content/object(_:)``).
///
/// Nesting deeper than ``maxDepth`` is refused, so a hostile file cannot exhaust the stack.
public struct JSONDocument: Sendable {
    /// The deepest nesting of arrays and objects a document may have.
    public static let maxDepth = 64

    /// The document's single top-level value.
    public let root: JSONValue
    /// The document's text as UTF-8 bytes, which offsets index.
    public let bytes: [UInt8]

    /// Parses `bytes` as one JSON value surrounded only by whitespace.
    public init(parsing bytes: [UInt8]) throws(JSONSyntaxError) {
        var parser = JSONParser(bytes: bytes)
        root = try parser.parseDocument()
        self.bytes = bytes
    }

    /// Parses `text` as one JSON value surrounded only by whitespace.
    public init(parsing text: String) throws(JSONSyntaxError) {
        try self.init(parsing: Array(text.utf8))
    }

    /// The line and column of byte `offset`, such as a ``JSONValue/offset`` or ``JSONMember/keyOffset``.
    public func location(of offset: Int) -> TextLocation {
        TextLocation(offset: offset, in: bytes)
    }
}
