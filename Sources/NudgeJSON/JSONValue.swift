/// One value of a parsed JSON document, with the byte offset where it starts so that a reader can say
/// which line a refused value is on (see ``JSONDocument/location(of:)``).
public struct JSONValue: Sendable, Equatable {
    /// What a value is.
    public indirect enum Content: Sendable, Equatable {
        /// `null`.
        case null
        /// `true` or `false`.
        case bool(Bool)
        /// A number with its source text; `NaN`, `Infinity` and `-Infinity` parse as numbers too.
        case number(JSONNumber)
        /// A string, escapes decoded.
        case string(String)
        /// An array's elements, in document order.
        case array([JSONValue])
        /// An object's members in document order; a key written twice appears twice, so that each reader
        /// applies its own policy to duplicates.
        case object([JSONMember])
    }

    /// What the value is.
    public let content: Content
    /// Byte offset of the value's first character in the document.
    public let offset: Int

    /// How messages name the kind of value found: "null", "a boolean", "a number", "a string",
    /// "an array" or "an object".
    public var kindName: String {
        switch content {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One `"key": value` of an object, with where the key is written.
public struct JSONMember: Sendable, Equatable {
    /// The member name, escapes decoded.
    public let key: String
    /// Byte offset of the key's opening quote.
    public let keyOffset: Int
    /// The member's value.
    public let value: JSONValue
}
