import Foundation

/// A JSON document held in memory while a model file is validated (off the hot path).
///
/// Model files get their own small parser rather than JSONSerialization/JSONDecoder because
/// those refuse `1e999` or `NaN` with "not valid JSON" and no location, while the contract
/// wants the refusal to name the field. Here such numbers parse (to ±infinity or NaN) and
/// the validator reports them by path.
enum JSONValue {
    case null
    case bool(Bool)
    /// The value and its source text, which error messages quote (`1e999`).
    case number(Double, literal: String)
    case string(String)
    case array([JSONValue])
    /// Members in document order; duplicates are kept so that they can be reported by path.
    case object([(key: String, value: JSONValue)])

    /// How the value is named in "found ..." messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A syntax error with its position, counted in lines and UTF-8 columns from 1.
struct JSONSyntaxError: Error {
    let message: String
    let line: Int
    let column: Int
}

/// Recursive-descent parser for RFC 8259 JSON, plus the tokens `NaN`, `Infinity` and
/// `-Infinity` so that the validator can refuse them by field rather than by line.
struct JSONParser {
    /// Nesting deeper than this is refused rather than risking the stack on a hostile file.
    static let maxDepth = 64

    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    private init(_ data: Data) { bytes = [UInt8](data) }

    /// Parses one JSON document; anything but whitespace after it is an error.
    static func parse(_ data: Data) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(data)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.position < parser.bytes.count {
            throw parser.error("unexpected text after the end of the document")
        }
        return value
    }

    private func error(_ message: String) -> JSONSyntaxError {
        var line = 1
        var column = 1
        for b in bytes[0..<min(position, bytes.count)] {
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return JSONSyntaxError(message: message, line: line, column: column)
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let b = current, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(JSONSyntaxError) {
        guard current == byte else { throw error("expected \(what)") }
        position += 1
    }

    private mutating func parseValue() throws(JSONSyntaxError) -> JSONValue {
        guard let b = current else { throw error("unexpected end of document; expected a value") }
        switch b {
        case UInt8(ascii: "{"): return try nested { (p: inout JSONParser) throws(JSONSyntaxError) in try p.parseObject() }
        case UInt8(ascii: "["): return try nested { (p: inout JSONParser) throws(JSONSyntaxError) in try p.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan, literal: "NaN")
        case UInt8(ascii: "I"): try literal("Infinity"); return .number(.infinity, literal: "Infinity")
        case UInt8(ascii: "-") where position + 1 < bytes.count && bytes[position + 1] == UInt8(ascii: "I"):
            position += 1
            try literal("Infinity")
            return .number(-.infinity, literal: "-Infinity")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character '\(Character(Unicode.Scalar(b)))'; expected a value")
        }
    }

    private mutating func nested(
        _ body: (inout JSONParser) throws(JSONSyntaxError) -> JSONValue
    ) throws(JSONSyntaxError) -> JSONValue {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth) levels") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let start = position
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard current == expected else {
                position = start
                throw error("unexpected text; expected \(word)")
            }
            position += 1
        }
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSONValue {
        position += 1  // "{"
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a quoted member name") }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a member name")
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}' in an object")
            return .object(members)
        }
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSONValue {
        position += 1  // "["
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            if current == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']' in an array")
            return .array(elements)
        }
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = position
        func digits(_ p: inout JSONParser) -> Int {
            let from = p.position
            while let b = p.current, b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") { p.position += 1 }
            return p.position - from
        }
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits(&self) == 0 {
            throw error("expected digits in a number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw error("expected digits after the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw error("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        // The grammar was checked above, so Double(_:) only decides the magnitude: it yields
        // ±infinity on overflow, which the validator then refuses by field.
        guard let value = Double(text) else { throw error("number \(text) cannot be read") }
        return .number(value, literal: text)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        position += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let b = current else { throw error("unterminated string") }
            position += 1
            switch b {
            case UInt8(ascii: "\""):
                guard let s = String(validating: utf8, as: UTF8.self) else {
                    throw error("string is not valid UTF-8")
                }
                return s
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0..<0x20:
                position -= 1
                throw error("control character in a string; escape it")
            default:
                utf8.append(b)
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONSyntaxError) {
        guard let e = current else { throw error("unterminated escape") }
        position += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count,
                      bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired surrogate in \\u escape")
                }
                position += 2
                let low = try parseHex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let u = Unicode.Scalar(scalar) else { throw error("unpaired surrogate in \\u escape") }
            utf8.append(contentsOf: String(Character(u)).utf8)
        default:
            position -= 1
            throw error("unknown escape")
        }
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let b = current else { throw error("unterminated \\u escape") }
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("expected four hex digits in \\u escape")
            }
            v = v << 4 | digit
            position += 1
        }
        return v
    }
}

/// A value with its JSON path, for validation that names the field it refuses.
struct JSONNode {
    let value: JSONValue
    /// JSON path such as `actions[2].weights`; empty for the document root.
    let path: String
    let file: String

    /// An error about this node.
    func refuse(_ problem: String) -> ModelFileError {
        ModelFileError(file: file, field: path, problem: problem)
    }

    private func wrongType(_ expected: String) -> ModelFileError {
        refuse("expected \(expected) but found \(value.kindName)")
    }

    /// This node as an object; duplicate member names are refused.
    func object() throws(ModelFileError) -> JSONObjectNode {
        guard case .object(let members) = value else { throw wrongType("an object") }
        var seen = Set<String>()
        for (key, _) in members where !seen.insert(key).inserted {
            throw JSONObjectNode.childError(path, key, file,
                                            "appears twice in the same object; keep only one")
        }
        return JSONObjectNode(members: members, path: path, file: file)
    }

    /// This node's elements, each with its indexed path.
    func array() throws(ModelFileError) -> [JSONNode] {
        guard case .array(let elements) = value else { throw wrongType("an array") }
        return elements.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// This node as a string.
    func string() throws(ModelFileError) -> String {
        guard case .string(let s) = value else { throw wrongType("a string") }
        return s
    }

    /// This node as a finite number; NaN and infinities are refused.
    func number() throws(ModelFileError) -> Double {
        guard case .number(let v, let literal) = value else { throw wrongType("a number") }
        guard v.isFinite else {
            throw refuse("is \(literal), which is not a finite number; model files hold finite numbers only "
                         + "(check the trainer for overflow, division by zero or missing values)")
        }
        return v
    }

    /// This node as a whole number that fits an Int.
    func integer() throws(ModelFileError) -> Int {
        let v = try number()
        guard v == v.rounded(), let i = Int(exactly: v) else {
            throw refuse("is \(v); expected a whole number")
        }
        return i
    }

    /// This node as an array of finite numbers.
    func numbers() throws(ModelFileError) -> [Double] {
        var out: [Double] = []
        for element in try array() { out.append(try element.number()) }
        return out
    }
}

/// An object node: member lookup by name, with paths for missing members.
struct JSONObjectNode {
    let members: [(key: String, value: JSONValue)]
    let path: String
    let file: String

    static func childPath(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }

    static func childError(_ parent: String, _ key: String, _ file: String, _ problem: String) -> ModelFileError {
        ModelFileError(file: file, field: childPath(parent, key), problem: problem)
    }

    /// The member named `key`, or nil when it is absent or null.
    func optional(_ key: String) -> JSONNode? {
        guard let member = members.first(where: { $0.key == key }) else { return nil }
        if case .null = member.value { return nil }
        return JSONNode(value: member.value, path: Self.childPath(path, key), file: file)
    }

    /// The member named `key`; when absent or null, an error naming it that ends with `hint`.
    func required(_ key: String, _ hint: String) throws(ModelFileError) -> JSONNode {
        guard let node = optional(key) else {
            throw Self.childError(path, key, file, "is missing; \(hint)")
        }
        return node
    }
}
