/// Recursive descent over UTF-8 bytes for ``JSONDocument``: RFC 8259 plus the tokens `NaN`, `Infinity` and
/// `-Infinity`, keeping every value's offset, every number's text and every member of an object.
struct JSONParser {
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// One value surrounded only by whitespace, after an optional UTF-8 byte-order mark (which editors on
    /// Windows write and RFC 8259 lets a reader ignore).
    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        skipWhitespace()
        let root = try value()
        skipWhitespace()
        guard position == bytes.count else { throw failure("unexpected text after the end of the document") }
        return root
    }

    // MARK: Reading

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func failure(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        let offset = offset ?? position
        return JSONSyntaxError(reason: reason, offset: offset, location: TextLocation(offset: offset, in: bytes))
    }

    /// The character at `offset` as a message quotes it: itself, or an escape when it would not show (a control
    /// or format character, a space other than ' ').
    private func quoted(at offset: Int) -> String {
        let text = String(decoding: bytes[offset..<min(offset + 4, bytes.count)], as: UTF8.self)
        guard let scalar = text.unicodeScalars.first else { return "" }
        switch scalar.properties.generalCategory {
        case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate:
            return scalar == " " ? " " : scalar.escaped(asASCII: true)
        default:
            return String(Character(scalar))
        }
    }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    // MARK: Values

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        let start = position
        guard let byte = current else { throw failure("unexpected end of document; expected a value") }
        let content: JSONValue.Content
        switch byte {
        case UInt8(ascii: "{"): content = .object(try object())
        case UInt8(ascii: "["): content = .array(try array())
        case UInt8(ascii: "\""): content = .string(try string())
        case UInt8(ascii: "t"): try literal("true"); content = .bool(true)
        case UInt8(ascii: "f"): try literal("false"); content = .bool(false)
        case UInt8(ascii: "n"): try literal("null"); content = .null
        case UInt8(ascii: "N"): try literal("NaN"); content = .number(JSONNumber(literal: "NaN", value: .nan))
        case UInt8(ascii: "I"): try literal("Infinity"); content = .number(JSONNumber(literal: "Infinity", value: .infinity))
        case UInt8(ascii: "-") where position + 1 < bytes.count && bytes[position + 1] == UInt8(ascii: "I"):
            position += 1
            try literal("Infinity")
            content = .number(JSONNumber(literal: "-Infinity", value: -.infinity))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): content = .number(try number())
        default: throw failure("unexpected character '\(quoted(at: position))'; expected a value")
        }
        return JSONValue(content: content, offset: start)
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        guard position + count <= bytes.count, bytes[position..<(position + count)].elementsEqual(expected) else {
            throw failure("unexpected text; expected \(word)")
        }
        position += count
    }

    private mutating func object() throws(JSONSyntaxError) -> [JSONMember] {
        var members: [JSONMember] = []
        try list(closedBy: "}", in: "an object") { (parser: inout JSONParser) throws(JSONSyntaxError) in
            members.append(try parser.member())
        }
        return members
    }

    private mutating func member() throws(JSONSyntaxError) -> JSONMember {
        let keyOffset = position
        guard current == UInt8(ascii: "\"") else { throw failure("expected a quoted key") }
        let key = try string()
        skipWhitespace()
        guard current == UInt8(ascii: ":") else { throw failure("expected ':' after key \"\(key)\"") }
        position += 1
        skipWhitespace()
        return JSONMember(key: key, keyOffset: keyOffset, value: try value())
    }

    private mutating func array() throws(JSONSyntaxError) -> [JSONValue] {
        var elements: [JSONValue] = []
        try list(closedBy: "]", in: "an array") { (parser: inout JSONParser) throws(JSONSyntaxError) in
            elements.append(try parser.value())
        }
        return elements
    }

    /// Reads a bracketed, comma-separated list from its opening bracket to `close`, calling `item` at the
    /// start of each item; each list is one level of nesting.
    private mutating func list(
        closedBy close: Unicode.Scalar, in container: String,
        _ item: (inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        guard depth < JSONDocument.maxDepth else { throw failure("nesting deeper than \(JSONDocument.maxDepth) levels") }
        depth += 1
        defer { depth -= 1 }
        position += 1 // the opening bracket
        skipWhitespace()
        if current == UInt8(ascii: close) { position += 1; return }
        while true {
            skipWhitespace()
            try item(&self)
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            guard current == UInt8(ascii: close) else { throw failure("expected ',' or '\(close)' in \(container)") }
            position += 1
            return
        }
    }

    // MARK: Numbers

    private mutating func digits() -> Int {
        let from = position
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
        return position - from
    }

    private mutating func number() throws(JSONSyntaxError) -> JSONNumber {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            throw failure("expected digits in a number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw failure("expected digits after the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw failure("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        // The grammar is checked above, so Double(_:) only decides the magnitude: ±infinity on overflow.
        guard let value = Double(text) else { throw failure("number \(text) cannot be read", at: start) }
        return JSONNumber(literal: text, value: value)
    }

    // MARK: Strings

    private mutating func string() throws(JSONSyntaxError) -> String {
        let start = position
        position += 1 // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = current else { throw failure("unterminated string", at: start) }
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw failure("string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                utf8.append(contentsOf: try escape().utf8)
            case 0..<0x20:
                throw failure("control character in a string; escape it")
            default:
                utf8.append(byte)
                position += 1
            }
        }
    }

    /// The character an escape stands for; `position` is just after the backslash.
    private mutating func escape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let backslash = position - 1
        guard let byte = current else { throw failure("unterminated escape", at: backslash) }
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            guard (0xD800..<0xDC00).contains(high) else {
                guard let scalar = Unicode.Scalar(high) else { throw failure("unpaired surrogate in \\u escape", at: backslash) }
                return scalar
            }
            // A high surrogate must be followed by an escaped low surrogate.
            guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                throw failure("unpaired surrogate in \\u escape", at: backslash)
            }
            position += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low),
                  let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) else {
                throw failure("unpaired surrogate in \\u escape", at: backslash)
            }
            return scalar
        default:
            throw failure("unknown escape \\\(quoted(at: position - 1))", at: backslash)
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            let digit: UInt32
            switch current {
            case .some(let byte) where byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case .some(let byte) where byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case .some(let byte) where byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("expected four hex digits in \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}
