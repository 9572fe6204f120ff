#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The JSON type a field turned out to have (`absent` when the key never appeared).
enum JSONKind: UInt8 {
    case absent, null, bool, number, string, object, array
}

/// A strict RFC 8259 scanner over one message, used once per decode and then dropped.
///
/// It validates every byte it passes (including values it skips), keeps string contents as `RawText`
/// (pointing into the input, or into the decoder's scratch buffer when escapes had to be undone), and never
/// allocates. The scratch buffer is at least as large as the message: an unescaped string is never longer than
/// its escaped source and kept strings come from disjoint parts of the message, so writes cannot overflow it.
struct JSONScanner {
    /// Next byte to read.
    var p: UnsafeRawPointer
    /// First byte of the message (for error offsets).
    let start: UnsafeRawPointer
    /// One past the last byte.
    let end: UnsafeRawPointer
    /// Where the next unescaped string goes in scratch; advances only for strings that are kept.
    var out: UnsafeMutableRawPointer
    /// NUL-terminated copy of a long number for `strtod` (message size + 1 bytes).
    let numberScratch: UnsafeMutablePointer<CChar>

    /// Containers deeper than this (the top-level object is depth 1) are refused as `tooDeep`.
    static let maxDepth = 64

    init(_ message: UnsafeRawPointer, count: Int, scratch: UnsafeMutableRawPointer,
         numberScratch: UnsafeMutablePointer<CChar>) {
        p = message
        start = message
        end = message + count
        out = scratch
        self.numberScratch = numberScratch
    }

    // MARK: - Errors (cold; kept out of line so the hot code stays small)

    /// An `invalidJSON` error saying what was expected at the current byte.
    @inline(never)
    func syntax(_ what: StaticString) -> DecodeError {
        if p >= end { return DecodeError(.invalidJSON, "unexpected end of message at byte \(end - start)") }
        return DecodeError(.invalidJSON, "\(what) at byte \(p - start)")
    }

    /// Where a member's key should start, `b` is not a quote: a trailing comma when it closes the object.
    @inline(never)
    func keyExpected(_ b: UInt8) -> DecodeError {
        b == 0x7D ? syntax("trailing comma before '}' (remove it)") : syntax("expected a string key")
    }

    @inline(never)
    func tooDeep() -> DecodeError {
        DecodeError(.tooDeep, "nesting deeper than \(JSONScanner.maxDepth) levels at byte \(p - start)")
    }

    // MARK: - Tokens

    @inline(__always)
    func byte() -> UInt8 { p.load(as: UInt8.self) }

    /// Skips insignificant whitespace and returns the next byte without consuming it.
    @inline(__always)
    mutating func nextToken() throws(DecodeError) -> UInt8 {
        while p < end {
            let b = byte()
            if b > 0x20 { return b }
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return b }
            p += 1
        }
        throw syntax("unexpected end of message")
    }

    /// True when only whitespace remains.
    mutating func atEndAfterWhitespace() -> Bool {
        while p < end {
            let b = byte()
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return false }
            p += 1
        }
        return true
    }

    /// Consumes `true`, `false` or `null` (the first byte is `b`, not yet consumed); any other byte cannot
    /// start a value.
    @inline(__always)
    mutating func literal(_ b: UInt8) throws(DecodeError) -> JSONKind {
        let available = end - p
        switch b {
        case 0x74 where available >= 4 && read32(p) == 0x6575_7274:  // "true"
            p += 4
            return .bool
        case 0x6E where available >= 4 && read32(p) == 0x6C6C_756E:  // "null"
            p += 4
            return .null
        case 0x66 where available >= 5 && read32(p + 1) == 0x6573_6C61:  // "f" + "alse"
            p += 5
            return .bool
        case 0x74, 0x6E, 0x66:
            throw syntax("invalid literal (expected true, false or null)")
        default:
            throw syntax("expected a value")
        }
    }

    // MARK: - Values

    /// Validates and skips one value whose first byte is `b`, inside a container at `depth`.
    mutating func skipValue(_ b: UInt8, depth: Int) throws(DecodeError) {
        switch b {
        case 0x22:
            p += 1
            _ = try scanString(keep: false)
        case 0x7B:
            p += 1
            try skipObject(depth: depth + 1)
        case 0x5B:
            p += 1
            try skipArray(depth: depth + 1)
        case 0x2D, 0x30...0x39:
            _ = try scanNumber(convert: false)
        default:
            _ = try literal(b)
        }
    }

    /// Reads one value whose first byte is `b` into a slot: strings kept, numbers optionally converted,
    /// containers validated and skipped (only their kind is recorded), `true` and `false` kept as text.
    @inline(__always)
    mutating func readValue(_ b: UInt8, depth: Int, convertNumber: Bool) throws(DecodeError) -> FieldSlot {
        switch b {
        case 0x22:
            p += 1
            return FieldSlot(kind: .string, text: try scanString(keep: true))
        case 0x2D, 0x30...0x39:
            let (text, value) = try scanNumber(convert: convertNumber)
            return FieldSlot(kind: .number, text: text, number: value)
        case 0x7B:
            p += 1
            try skipObject(depth: depth + 1)
            return FieldSlot(kind: .object)
        case 0x5B:
            p += 1
            try skipArray(depth: depth + 1)
            return FieldSlot(kind: .array)
        default:
            // A boolean keeps its literal as text, for a property a feature compares as text.
            let kind = try literal(b)
            return FieldSlot(kind: kind, text: kind != .bool ? .empty : b == 0x74 ? RawText("true") : RawText("false"))
        }
    }

    /// Skips an object whose `{` was consumed; `depth` is the object's own depth.
    mutating func skipObject(depth: Int) throws(DecodeError) {
        guard depth <= JSONScanner.maxDepth else { throw tooDeep() }
        var next = try firstMember()
        while let b = next {
            guard b == 0x22 else { throw keyExpected(b) }
            p += 1
            _ = try scanString(keep: false)
            try expectColon()
            try skipValue(try nextToken(), depth: depth)
            next = try nextMember()
        }
    }

    /// Just after an object's `{`: the first byte of the first member, or nil (and `}` consumed) when empty.
    @inline(__always)
    mutating func firstMember() throws(DecodeError) -> UInt8? {
        let b = try nextToken()
        guard b == 0x7D else { return b }
        p += 1
        return nil
    }

    /// After a member's value: consumes `,` and returns the next member's first byte, or consumes `}` and
    /// returns nil.
    @inline(__always)
    mutating func nextMember() throws(DecodeError) -> UInt8? {
        let b = try nextToken()
        if b == 0x2C {
            p += 1
            return try nextToken()
        }
        guard b == 0x7D else { throw syntax("expected ',' or '}' in an object") }
        p += 1
        return nil
    }

    /// Skips an array whose `[` was consumed; `depth` is the array's own depth.
    mutating func skipArray(depth: Int) throws(DecodeError) {
        guard depth <= JSONScanner.maxDepth else { throw tooDeep() }
        var b = try nextToken()
        if b == 0x5D {
            p += 1
            return
        }
        while true {
            try skipValue(b, depth: depth)
            b = try nextToken()
            if b == 0x5D {
                p += 1
                return
            }
            guard b == 0x2C else { throw syntax("expected ',' or ']' in an array") }
            p += 1
            b = try nextToken()
            if b == 0x5D { throw syntax("trailing comma before ']' (remove it)") }
        }
    }

    /// Consumes the `:` between a key and its value.
    @inline(__always)
    mutating func expectColon() throws(DecodeError) {
        guard try nextToken() == 0x3A else { throw syntax("expected ':' after a key") }
        p += 1
    }

    // MARK: - Strings

    /// Scans a string whose opening quote was consumed, up to and including the closing quote.
    ///
    /// Without escapes the result points into the message. With escapes the content is unescaped into scratch;
    /// `keep` says whether that scratch space is claimed (kept fields) or may be reused (keys, skipped values).
    @inline(__always)
    mutating func scanString(keep: Bool) throws(DecodeError) -> RawText {
        let s = p
        while true {
            // Eight bytes per step until something other than plain printable ASCII shows up.
            while end - p >= 8 {
                let special = specialByteMask(read64(p))
                if special != 0 {
                    p += special.trailingZeroBitCount &>> 3
                    break
                }
                p += 8
            }
            guard p < end else { throw syntax("unterminated string") }
            let b = byte()
            if b == 0x22 {
                let text = RawText(start: s, count: p - s)
                p += 1
                return text
            }
            if b == 0x5C { return try scanEscapedString(from: s, keep: keep) }
            if b < 0x20 { throw syntax("control character in a string (must be escaped)") }
            if b >= 0x80 {
                p += try utf8SequenceLength()
            } else {
                p += 1
            }
        }
    }

    /// Continues `scanString` from the first backslash, writing the unescaped content to scratch.
    @inline(never)
    mutating func scanEscapedString(from s: UnsafeRawPointer, keep: Bool) throws(DecodeError) -> RawText {
        let head = p - s
        out.copyMemory(from: s, byteCount: head)
        var o = out + head
        while true {
            guard p < end else { throw syntax("unterminated string") }
            let b = byte()
            switch b {
            case 0x22:
                p += 1
                let text = RawText(start: out, count: o - out)
                if keep { out = o }
                return text
            case 0x5C:
                p += 1
                guard p < end else { throw syntax("unterminated string") }
                let e = byte()
                p += 1
                switch e {
                case 0x22, 0x5C, 0x2F: put(e, &o)
                case 0x62: put(0x08, &o)
                case 0x66: put(0x0C, &o)
                case 0x6E: put(0x0A, &o)
                case 0x72: put(0x0D, &o)
                case 0x74: put(0x09, &o)
                case 0x75: try unicodeEscape(&o)
                default:
                    p -= 1
                    throw syntax("invalid escape in a string")
                }
            case 0x00..<0x20:
                throw syntax("control character in a string (must be escaped)")
            case 0x80...0xFF:
                let n = try utf8SequenceLength()
                o.copyMemory(from: p, byteCount: n)
                o += n
                p += n
            default:
                put(b, &o)
                p += 1
            }
        }
    }

    @inline(__always)
    private func put(_ b: UInt8, _ o: inout UnsafeMutableRawPointer) {
        o.storeBytes(of: b, as: UInt8.self)
        o += 1
    }

    /// Decodes `XXXX` after `\u` (and a following `\uXXXX` low surrogate when needed) and writes UTF-8.
    /// Unpaired surrogates are refused: they cannot be represented in UTF-8.
    private mutating func unicodeEscape(_ o: inout UnsafeMutableRawPointer) throws(DecodeError) {
        var scalar = try hex4()
        if scalar & 0xFC00 == 0xD800 {
            guard end - p >= 2, read16(p) == 0x755C else { throw syntax("unpaired surrogate in \\u escape") }  // "\u"
            p += 2
            let low = try hex4()
            guard low & 0xFC00 == 0xDC00 else { throw syntax("unpaired surrogate in \\u escape") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if scalar & 0xFC00 == 0xDC00 {
            throw syntax("unpaired surrogate in \\u escape")
        }
        switch scalar {
        case 0..<0x80:
            put(UInt8(truncatingIfNeeded: scalar), &o)
        case 0x80..<0x800:
            put(UInt8(truncatingIfNeeded: 0xC0 | scalar >> 6), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F), &o)
        case 0x800..<0x10000:
            put(UInt8(truncatingIfNeeded: 0xE0 | scalar >> 12), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F), &o)
        default:
            put(UInt8(truncatingIfNeeded: 0xF0 | scalar >> 18), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar >> 12 & 0x3F), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F), &o)
            put(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F), &o)
        }
    }

    /// Four hex digits.
    private mutating func hex4() throws(DecodeError) -> UInt32 {
        guard end - p >= 4 else { throw syntax("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = byte()
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x41...0x46: digit = c - 0x41 + 10
            case 0x61...0x66: digit = c - 0x61 + 10
            default: throw syntax("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            p += 1
        }
        return value
    }

    /// Length of the well-formed UTF-8 sequence at `p` (first byte >= 0x80), per RFC 3629 (no overlongs,
    /// no surrogates, nothing above U+10FFFF).
    @inline(never)
    func utf8SequenceLength() throws(DecodeError) -> Int {
        let available = end - p
        @inline(__always) func at(_ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
        @inline(__always) func isContinuation(_ i: Int) -> Bool { at(i) & 0xC0 == 0x80 }
        let lead = at(0)
        let length: Int
        let secondRange: ClosedRange<UInt8>
        switch lead {
        case 0xC2...0xDF: length = 2; secondRange = 0x80...0xBF
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3; secondRange = 0x80...0xBF
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4; secondRange = 0x80...0xBF
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw syntax("invalid UTF-8 in a string")
        }
        guard available >= length, secondRange.contains(at(1)) else { throw syntax("invalid UTF-8 in a string") }
        if length >= 3 && !isContinuation(2) { throw syntax("invalid UTF-8 in a string") }
        if length == 4 && !isContinuation(3) { throw syntax("invalid UTF-8 in a string") }
        return length
    }

    // MARK: - Numbers

    /// Scans a number per the JSON grammar. When `convert`, also returns its value (fast exact path for up to
    /// 19 significant digits and |exponent| <= 22, `strtod` otherwise); else 0.
    mutating func scanNumber(convert: Bool) throws(DecodeError) -> (RawText, Double) {
        let s = p
        var negative = false
        if byte() == 0x2D {
            negative = true
            p += 1
            guard p < end else { throw syntax("unexpected end of message") }
        }
        var mantissa: UInt64 = 0
        var significantDigits = 0
        var exponent = 0
        var truncated = false
        var d = byte() &- 0x30
        if d == 0 {
            p += 1
            if p < end, byte() &- 0x30 <= 9 { throw syntax("number with a leading zero (JSON writes 7, not 07)") }
        } else if d <= 9 {
            repeat {
                if significantDigits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    significantDigits += 1
                } else {
                    exponent += 1
                    truncated = true
                }
                p += 1
                guard p < end else { break }
                d = byte() &- 0x30
            } while d <= 9
        } else {
            throw syntax("invalid number")
        }
        if p < end && byte() == 0x2E {
            p += 1
            guard p < end, byte() &- 0x30 <= 9 else { throw syntax("expected a digit after '.'") }
            repeat {
                d = byte() &- 0x30
                if mantissa == 0 && d == 0 {
                    exponent -= 1  // leading zeros of the fraction do not use up significant digits
                } else if significantDigits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    significantDigits += 1
                    exponent -= 1
                } else {
                    truncated = true
                }
                p += 1
            } while p < end && byte() &- 0x30 <= 9
        }
        if p < end && byte() | 0x20 == 0x65 {  // 'e' or 'E'
            p += 1
            guard p < end else { throw syntax("unexpected end of message") }
            var exponentNegative = false
            if byte() == 0x2B || byte() == 0x2D {
                exponentNegative = byte() == 0x2D
                p += 1
            }
            guard p < end, byte() &- 0x30 <= 9 else { throw syntax("expected a digit in the exponent") }
            var e = 0
            repeat {
                if e < 1_000_000 { e = e * 10 + Int(byte() &- 0x30) }  // saturate: the value is 0 or inf anyway
                p += 1
            } while p < end && byte() &- 0x30 <= 9
            exponent += exponentNegative ? -e : e
        }
        let text = RawText(start: s, count: p - s)
        guard convert else { return (text, 0) }
        if mantissa == 0 { return (text, negative ? -0.0 : 0.0) }
        var value: Double
        if !truncated && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            // Clinger's fast path: both operands are exact doubles, so one IEEE operation rounds correctly.
            let scale = exactPowerOfTen(exponent < 0 ? -exponent : exponent)
            value = exponent < 0 ? Double(mantissa) / scale : Double(mantissa) * scale
            if negative { value = -value }
        } else {
            value = slowDouble(text)
        }
        return (text, value)
    }

    /// Correctly rounded conversion of an unusual number via the C library (copy is NUL-terminated).
    /// `strtod` follows LC_NUMERIC; Nudge never calls `setlocale`, so the decimal point stays `.`.
    @inline(never)
    func slowDouble(_ text: RawText) -> Double {
        guard let base = text.bytes.baseAddress else { return 0 }
        UnsafeMutableRawPointer(numberScratch).copyMemory(from: base, byteCount: text.bytes.count)
        numberScratch[text.bytes.count] = 0
        return strtod(numberScratch, nil)
    }
}

/// 10^n for 0 <= n <= 22, all exactly representable as doubles (a switch compiles to a table lookup).
@inline(__always)
private func exactPowerOfTen(_ n: Int) -> Double {
    switch n {
    case 0: 1e0
    case 1: 1e1
    case 2: 1e2
    case 3: 1e3
    case 4: 1e4
    case 5: 1e5
    case 6: 1e6
    case 7: 1e7
    case 8: 1e8
    case 9: 1e9
    case 10: 1e10
    case 11: 1e11
    case 12: 1e12
    case 13: 1e13
    case 14: 1e14
    case 15: 1e15
    case 16: 1e16
    case 17: 1e17
    case 18: 1e18
    case 19: 1e19
    case 20: 1e20
    case 21: 1e21
    default: 1e22
    }
}

/// Marks (high bit of each byte) bytes that end fast string scanning: `"`, `\`, control characters (< 0x20)
/// and non-ASCII (>= 0x80). The lowest marked byte is exact; carries only create false marks above it.
@inline(__always)
private func specialByteMask(_ w: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    let quote = w ^ (ones &* 0x22)
    let backslash = w ^ (ones &* 0x5C)
    let hasQuote = (quote &- ones) & ~quote
    let hasBackslash = (backslash &- ones) & ~backslash
    let hasControl = (w &- ones &* 0x20) & ~w
    return (hasQuote | hasBackslash | hasControl | w) & highs
}

@inline(__always)
private func read64(_ p: UnsafeRawPointer) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) }

@inline(__always)
private func read32(_ p: UnsafeRawPointer) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) }

@inline(__always)
private func read16(_ p: UnsafeRawPointer) -> UInt16 { UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)) }
