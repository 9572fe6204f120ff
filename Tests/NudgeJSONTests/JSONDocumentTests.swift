import NudgeJSON
import Testing

/// The located JSON reader behind feature and model files: what it keeps (offsets, number text, every
/// member), what it lets through for readers to refuse by field, and what it refuses itself, with where.
@Suite struct JSONDocumentTests {
    static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try JSONDocument(parsing: text).root
    }

    static func refusal(_ text: String) -> JSONSyntaxError? {
        do {
            _ = try JSONDocument(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    // MARK: What is kept

    /// What the project writes by hand reads back as the same string, escapes and all.
    @Test(arguments: ["plain", "Home, Garden", "say \"hi\"", "back\\slash", "line\nbreak\ttab\r", "bell\u{07}", "k\u{E4}ufe \u{1F6D2}"])
    func stringLiteralsReadBack(text: String) throws {
        let literal = JSONValue.stringLiteral(text)
        #expect(try Self.parse(literal).content == .string(text), "\(literal)")
    }

    @Test func everyValueKnowsWhereItStarts() throws {
        let text = "{\n  \"a\": [1, true],\n  \"b\": {\"c\": null}\n}"
        let document = try JSONDocument(parsing: text)
        guard case .object(let members) = document.root.content, members.count == 2 else {
            Issue.record("not an object of two members: \(document.root)")
            return
        }
        #expect(document.root.offset == 0)
        #expect(members.map(\.key) == ["a", "b"])
        #expect(document.location(of: members[0].keyOffset).lineAndColumn == [2, 3])
        #expect(document.location(of: members[0].value.offset).lineAndColumn == [2, 8])
        guard case .array(let elements) = members[0].value.content else {
            Issue.record("a is not an array")
            return
        }
        #expect(elements.map(\.offset) == [10, 13])
        #expect(elements.map { document.location(of: $0.offset).lineAndColumn } == [[2, 9], [2, 12]])
        #expect(document.location(of: members[1].value.offset).lineAndColumn == [3, 8])
    }

    @Test func numbersKeepTheirText() throws {
        let root = try Self.parse("[0, -1.50, 2e3, 1E-2, 1e999, -1e999]")
        guard case .array(let elements) = root.content else {
            Issue.record("not an array")
            return
        }
        let numbers = elements.compactMap { value -> JSONNumber? in
            if case .number(let number) = value.content { number } else { nil }
        }
        #expect(numbers.map(\.literal) == ["0", "-1.50", "2e3", "1E-2", "1e999", "-1e999"])
        #expect(numbers.map(\.value) == [0, -1.5, 2000, 0.01, .infinity, -.infinity])
    }

    @Test(arguments: [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
    func nonFiniteTokensParseForTheReaderToRefuse(text: String, literal: String) throws {
        let root = try Self.parse("{\"w\": \(text)}")
        guard case .object(let members) = root.content, case .number(let number) = members.first?.value.content else {
            Issue.record("\(text) did not parse to a number")
            return
        }
        #expect(number.literal == literal)
        #expect(!number.value.isFinite)
        #expect(number.value.isNaN == (literal == "NaN"))
        #expect(members.first?.value.offset == 6)
    }

    @Test func repeatedKeysAreKeptInOrder() throws {
        let root = try Self.parse(#"{"k": 1, "j": 2, "k": 3}"#)
        guard case .object(let members) = root.content else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["k", "j", "k"])
        #expect(members.map(\.keyOffset) == [1, 9, 17])
        #expect(members.map(\.value.offset) == [6, 14, 22])
        #expect(members.map(\.value.kindName) == ["a number", "a number", "a number"])
    }

    @Test func stringEscapesAreDecoded() throws {
        let root = try Self.parse(#""\u0063hurn \"q\" \\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE00 é""#)
        #expect(root.content == .string("churn \"q\" \\ / \u{08}\u{0C}\n\r\t é 😀 é"))
    }

    /// Editors on Windows start UTF-8 files with a byte-order mark; it is skipped, and lines still count from it.
    @Test func aLeadingByteOrderMarkIsSkipped() throws {
        let document = try JSONDocument(parsing: [0xEF, 0xBB, 0xBF] + Array("{\"a\": 1}".utf8))
        guard case .object(let members) = document.root.content else {
            Issue.record("not an object: \(document.root)")
            return
        }
        #expect(members.map(\.key) == ["a"])
        #expect(Self.refusal("\u{FEFF}\n{\"a\": }")?.location.lineAndColumn == [2, 7])
        // Only at the start: elsewhere it is an invisible character, named by its code point.
        #expect(Self.refusal("{\"a\": \u{FEFF}1}")?.reason == "unexpected character '\\u{FEFF}'; expected a value")
    }

    @Test func kindsAreNamedForMessages() throws {
        let names = try ["null", "true", "1", "\"s\"", "[]", "{}"].map { try Self.parse($0).kindName }
        #expect(names == ["null", "a boolean", "a number", "a string", "an array", "an object"])
    }

    @Test func nestingUpToTheLimitParses() throws {
        let depth = JSONDocument.maxDepth
        let root = try Self.parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        #expect(root.kindName == "an array")
    }

    // MARK: What is refused

    @Test func deeperNestingIsRefusedNotCrashing() {
        let text = "{\"x\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        let error = Self.refusal(text)
        #expect(error?.reason == "nesting deeper than 64 levels")
        #expect(error?.offset == 5 + 63)
    }

    @Test(arguments: [
        ("", "unexpected end of document; expected a value", 1, 1),
        ("{\"format\": \"nba-logistic/1\",\n  \"name\": }", "unexpected character '}'; expected a value", 2, 11),
        ("{\"a\":1} x", "unexpected text after the end of the document", 1, 9),
        ("{\"a\":\"\u{01}\"}", "control character in a string; escape it", 1, 7),
        ("{\"a\":01}", "expected ',' or '}' in an object", 1, 7),
        ("[1,]", "unexpected character ']'; expected a value", 1, 4),
        ("[1 2]", "expected ',' or ']' in an array", 1, 4),
        ("{\n  \"a\": 1,\n}", "expected a quoted key", 3, 1),
        ("{'a': 1}", "expected a quoted key", 1, 2),
        ("{\"a\" 1}", "expected ':' after key \"a\"", 1, 6),
        ("// note\n{}", "unexpected character '/'; expected a value", 1, 1),
        ("tru", "unexpected text; expected true", 1, 1),
        ("nan", "unexpected text; expected null", 1, 1),
        ("-Inf", "unexpected text; expected Infinity", 1, 2),
        ("+1", "unexpected character '+'; expected a value", 1, 1),
        (".5", "unexpected character '.'; expected a value", 1, 1),
        ("-", "expected digits in a number", 1, 2),
        ("1.", "expected digits after the decimal point", 1, 3),
        ("1e+", "expected digits in the exponent", 1, 4),
        ("é", "unexpected character 'é'; expected a value", 1, 1),
        ("\u{01}", "unexpected character '\\u{01}'; expected a value", 1, 1),
        // Invisible characters are named by their code point: a zero-width space, a no-break space.
        ("\u{200B}{}", "unexpected character '\\u{200B}'; expected a value", 1, 1),
        ("{\"a\":\u{A0}1}", "unexpected character '\\u{00A0}'; expected a value", 1, 6),
        ("[\"abc", "unterminated string", 1, 2),
        ("\"a\\x\"", "unknown escape \\x", 1, 3),
        ("\"\\u12G4\"", "expected four hex digits in \\u escape", 1, 6),
        ("\"\\uD83D\"", "unpaired surrogate in \\u escape", 1, 2),
        ("\"\\uDE00\"", "unpaired surrogate in \\u escape", 1, 2),
        ("\"\\uD83D\\u0041\"", "unpaired surrogate in \\u escape", 1, 2),
    ])
    func syntaxErrorsSayWhatAndWhere(text: String, reason: String, line: Int, column: Int) {
        let error = Self.refusal(text)
        #expect(error?.reason == reason, "\(text)")
        #expect(error?.location.lineAndColumn == [line, column], "\(text)")
        #expect(error?.description == "\(reason) at line \(line), column \(column)")
    }

    @Test func stringsMustBeValidUTF8() {
        let error: JSONSyntaxError?
        do {
            _ = try JSONDocument(parsing: [UInt8(ascii: "["), UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\""), UInt8(ascii: "]")])
            error = nil
        } catch let refused {
            error = refused
        }
        #expect(error?.reason == "string is not valid UTF-8")
        #expect(error?.offset == 1)
        #expect(error?.location.lineAndColumn == [1, 2])
    }

    // MARK: Locations

    @Test func locationsCountLinesAndUTF8Columns() {
        let bytes = Array("ab\néx\n".utf8)
        #expect(TextLocation(offset: 0, in: bytes).lineAndColumn == [1, 1])
        #expect(TextLocation(offset: 2, in: bytes).lineAndColumn == [1, 3])
        #expect(TextLocation(offset: 3, in: bytes).lineAndColumn == [2, 1])
        #expect(TextLocation(offset: 5, in: bytes).lineAndColumn == [2, 3])
        #expect(TextLocation(offset: 99, in: bytes).lineAndColumn == [3, 1])
        #expect(TextLocation(offset: 5, in: bytes).description == "line 2, column 3")
    }
}

extension TextLocation {
    /// `[line, column]`, for comparing.
    var lineAndColumn: [Int] { [line, column] }
}
