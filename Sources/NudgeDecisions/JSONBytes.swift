import NudgeEvents

/// A growable byte buffer with the JSON primitives the recommendation writer needs (and the metrics
/// snapshot, which uses its string escaping). Grows by doubling, so after warm-up writing allocates
/// nothing. No Foundation.
public final class JSONBytes {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes written since the last `reset`.
    private(set) var count = 0

    /// An empty buffer with room for `capacity` bytes (at least 64).
    public init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    /// A buffer with the same contents (copy-on-write support for the writer).
    func copy() -> JSONBytes {
        let other = JSONBytes(capacity: capacity)
        other.base.copyMemory(from: base, byteCount: count)
        other.count = count
        return other
    }

    /// The bytes written, valid until the next write.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets the contents, keeping the memory.
    func reset() { count = 0 }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        grown.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    /// Appends one byte.
    @inline(__always)
    public func byte(_ b: UInt8) {
        reserve(1)
        base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends literal JSON text.
    public func raw(_ text: StaticString) {
        guard text.hasPointerRepresentation else {
            // A literal stored as one scalar has no bytes to point at.
            text.withUTF8Buffer { for b in $0 { byte(b) } }
            return
        }
        reserve(text.utf8CodeUnitCount)
        (base + count).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    /// Appends `bytes` unchanged (JSON text already).
    @inline(__always)
    func raw(_ bytes: UnsafeRawBufferPointer) { copy(bytes, 0..<bytes.count) }

    /// Room for `n` more bytes at the end; call `advance` with how many were written there.
    func tail(reserving n: Int) -> UnsafeMutableRawPointer {
        reserve(n)
        return base + count
    }

    /// Accounts for `n` bytes written through `tail(reserving:)`.
    func advance(_ n: Int) { count += n }

    // MARK: - Strings

    /// Appends a quoted JSON string of `s` (already valid UTF-8, as every Swift String is).
    public func string(_ s: String) {
        byte(UInt8(ascii: "\""))
        stringContent(s)
        byte(UInt8(ascii: "\""))
    }

    /// Appends the escaped content of `s`, without quotes.
    func stringContent(_ s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { escaped(UnsafeRawBufferPointer($0), validating: false) }
        if done == nil {
            for b in s.utf8 { escaped(b) }  // only for non-native strings
        }
    }

    /// Appends a quoted JSON string of raw bytes meant as UTF-8. Ill-formed sequences are
    /// replaced by U+FFFD so that the output is always valid JSON.
    func string(bytes: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        escaped(bytes, validating: true)
        byte(UInt8(ascii: "\""))
    }

    /// Appends `bytes` as JSON string content: runs that need no escaping are copied in one
    /// go; `"`, `\\` and control characters are escaped; with `validating`, ill-formed UTF-8
    /// becomes U+FFFD (without it, the bytes are known to be valid UTF-8).
    private func escaped(_ bytes: UnsafeRawBufferPointer, validating: Bool) {
        var run = 0
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") && b < 0x80 {
                i += 1
                continue
            }
            if b >= 0x80 {
                let n = validating ? Self.wellFormedLength(bytes, at: i) : 1
                if n > 0 {
                    i += n
                    continue
                }
                copy(bytes, run..<i)
                raw("\u{FFFD}")
            } else {
                copy(bytes, run..<i)
                escaped(b)
            }
            i += 1
            run = i
        }
        copy(bytes, run..<bytes.count)
    }

    /// Appends `bytes[range]` unchanged.
    @inline(__always)
    private func copy(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !range.isEmpty, let source = bytes.baseAddress else { return }
        reserve(range.count)
        (base + count).copyMemory(from: source + range.lowerBound, byteCount: range.count)
        count += range.count
    }

    /// Length of the well-formed UTF-8 sequence starting with a non-ASCII byte at `i`, or 0
    /// (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
    private static func wellFormedLength(_ s: UnsafeRawBufferPointer, at i: Int) -> Int {
        switch s[i] {
        case 0xC2...0xDF: return continues(s, i + 1) ? 2 : 0
        case 0xE0: return continues(s, i + 1, 0xA0) && continues(s, i + 2) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF: return continues(s, i + 1) && continues(s, i + 2) ? 3 : 0
        case 0xED: return continues(s, i + 1, 0x80, 0x9F) && continues(s, i + 2) ? 3 : 0
        case 0xF0: return continues(s, i + 1, 0x90) && continues(s, i + 2) && continues(s, i + 3) ? 4 : 0
        case 0xF1...0xF3: return continues(s, i + 1) && continues(s, i + 2) && continues(s, i + 3) ? 4 : 0
        case 0xF4: return continues(s, i + 1, 0x80, 0x8F) && continues(s, i + 2) && continues(s, i + 3) ? 4 : 0
        default: return 0
        }
    }

    /// Whether byte `j` exists and lies in `low...high` (a continuation byte by default).
    private static func continues(_ s: UnsafeRawBufferPointer, _ j: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
        j < s.count && s[j] >= low && s[j] <= high
    }

    /// One byte of string content, escaped as JSON requires (`"`, `\`, control characters).
    @inline(__always)
    private func escaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): raw("\\\"")
        case UInt8(ascii: "\\"): raw("\\\\")
        case 0x0A: raw("\\n")
        case 0x0D: raw("\\r")
        case 0x09: raw("\\t")
        case 0x08: raw("\\b")
        case 0x0C: raw("\\f")
        case 0..<0x20:
            raw("\\u00")
            byte(Self.hex(b >> 4))
            byte(Self.hex(b & 0xF))
        default: byte(b)
        }
    }

    private static func hex(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }

    // MARK: - Numbers and times

    /// Appends `v` with at most 6 significant digits, shortest form (`0.318`, `15`,
    /// `1234570`, `1.5e-8`). Not-finite values print as `0` (JSON has no NaN or infinity,
    /// and consumers expect a number); magnitudes below 1e-300 print as `0` too.
    ///
    /// Writes into one span reserved up front, digits right to left by constant divisions (no room
    /// reserved per byte). Not measurably faster than writing byte by byte: perf counted 166 samples in
    /// this function before and 174 after; the printf property test pins what it writes.
    func number(_ v: Double) {
        guard v.isFinite, v.magnitude >= 1e-300 else { byte(UInt8(ascii: "0")); return }
        // Longest form: a sign, 6 digits and 15 zeros (e = 20), or "-0.000000" and 6 digits.
        let start = tail(reserving: 24)
        var p = start
        var x = v
        if x < 0 {
            p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            p += 1
            x = -x
        }
        // Six significant digits: x ≈ m × 10^(e-5) with 100000 <= m < 1000000.
        // e = floor(log10(x)), estimated from the binary exponent and corrected on the table.
        var e = Int((Double(x.exponent) * 0.301_029_995_663_981_2).rounded(.down))
        while e < 308 && x >= Self.power(e + 1) { e += 1 }
        while x < Self.power(e) { e -= 1 }
        var m = (x / Self.power(e - 5)).rounded()
        if m >= 1_000_000 {  // 999999.5 and up rounds to the next power of ten
            e += 1
            m = 100_000
        }
        var digits = Int(m)
        var n = 6
        while n > 1 && digits % 10 == 0 {
            digits /= 10
            n -= 1
        }
        // Now x ≈ 0.d1…dn × 10^(e+1).
        if e >= 0 && e < 21 {
            if e + 1 >= n {
                p = Self.write(digits, n, at: p)
                p = Self.fill(UInt8(ascii: "0"), e + 1 - n, at: p)
            } else {
                p = Self.write(digits, n, pointAfter: e + 1, at: p)
            }
        } else if e < 0 && e >= -7 {
            p = Self.fill(UInt8(ascii: "0"), 1, at: p)
            p = Self.fill(UInt8(ascii: "."), 1, at: p)
            p = Self.fill(UInt8(ascii: "0"), -e - 1, at: p)
            p = Self.write(digits, n, at: p)
        } else {
            p = Self.write(digits, n, pointAfter: 1, at: p)
            p = Self.fill(UInt8(ascii: "e"), 1, at: p)
            if e < 0 { p = Self.fill(UInt8(ascii: "-"), 1, at: p) }
            let magnitude = Int(e.magnitude)
            p = Self.write(magnitude, magnitude >= 100 ? 3 : magnitude >= 10 ? 2 : 1, at: p)
        }
        advance(p - start)
    }

    /// Powers of ten from 1e-308 to 1e308, each the double nearest the exact value.
    private static let powersOfTen: [Double] = (-308...308).map { Double("1e\($0)") ?? 0 }

    /// 10^e for -308 <= e <= 308.
    @inline(__always)
    private static func power(_ e: Int) -> Double { powersOfTen[e + 308] }

    /// Writes the `n` decimal digits of `value` (leading zeros included) at `p`; returns the end.
    @inline(__always)
    private static func write(_ value: Int, _ n: Int, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var rest = value
        var i = n
        while i > 0 {
            i -= 1
            p.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), toByteOffset: i, as: UInt8.self)
            rest /= 10
        }
        return p + n
    }

    /// Writes the `n` digits of `value` with a decimal point after the first `pointAfter` (no point
    /// when nothing follows it) at `p`; returns the end.
    @inline(__always)
    private static func write(_ value: Int, _ n: Int, pointAfter: Int, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard pointAfter < n else { return write(value, n, at: p) }
        var scale = 1
        for _ in 0..<(n - pointAfter) { scale &*= 10 }
        let whole = write(value / scale, pointAfter, at: p)
        whole.storeBytes(of: UInt8(ascii: "."), as: UInt8.self)
        return write(value % scale, n - pointAfter, at: whole + 1)
    }

    /// Writes `count` copies of `b` at `p` (none if `count` ≤ 0); returns the end.
    @inline(__always)
    private static func fill(_ b: UInt8, _ count: Int, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard count > 0 else { return p }
        p.initializeMemory(as: UInt8.self, repeating: b, count: count)
        return p + count
    }

    /// Appends a quoted ISO-8601 UTC time with milliseconds.
    func time(_ millis: Int64) {
        byte(UInt8(ascii: "\""))
        advance(ISO8601Time.write(millis: millis, into: tail(reserving: 24)))
        byte(UInt8(ascii: "\""))
    }
}
