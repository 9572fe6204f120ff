import NudgeEvents

/// A growable byte buffer reused for every message, so writing an event allocates nothing
/// once the buffer has reached its working size.
///
/// It owns raw memory: the owner must call ``release()`` exactly once (``TrafficGenerator``
/// does so in `deinit`). It is a struct so that appends inline into the generator's hot loop.
struct ByteWriter {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    func release() {
        base.deallocate()
    }

    /// The written bytes; valid until the next mutation of this writer.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    @inline(__always)
    mutating func reset() {
        count = 0
    }

    /// Drops everything after the first `length` bytes (used to forge truncated JSON).
    mutating func truncate(to length: Int) {
        count = min(count, max(0, length))
    }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Reserves `length` bytes at the end and returns where they start; the caller writes all of them.
    @inline(__always)
    mutating func claim(_ length: Int) -> UnsafeMutablePointer<UInt8> {
        reserve(length)
        let start = base + count
        count += length
        return start
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    @inline(__always)
    mutating func append(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let source = buffer.baseAddress, !buffer.isEmpty else { return }
        reserve(buffer.count)
        (base + count).update(from: source, count: buffer.count)
        count += buffer.count
    }

    @inline(__always)
    mutating func append(_ buffer: UnsafeRawBufferPointer) {
        append(buffer.bindMemory(to: UInt8.self))
    }

    /// The 24-byte ISO-8601 UTC form of Unix milliseconds (`2026-11-23T10:15:02.120Z`), written
    /// by the decoder's own `ISO8601Time` so that what is written is what it parses.
    @inline(__always)
    mutating func appendTimestamp(_ millis: Int64) {
        let start = claim(ISO8601Time.formattedLength)
        ISO8601Time.write(millis: millis, into: UnsafeMutableRawPointer(start))
    }

    /// Decimal digits of a non-negative integer.
    @inline(__always)
    mutating func appendDecimal(_ value: UInt64) {
        var digits = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        appendDigits(value, count: digits, radix: 10)
    }

    /// A signed integer in decimal.
    @inline(__always)
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(value.magnitude)
        } else {
            appendDecimal(UInt64(value))
        }
    }

    /// An amount of money from integer cents, as a JSON number with two decimals (`59.90`).
    @inline(__always)
    mutating func appendCents(_ cents: Int64) {
        if cents < 0 { append(UInt8(ascii: "-")) }
        let magnitude = cents.magnitude
        appendDecimal(magnitude / 100)
        append(UInt8(ascii: "."))
        appendDigits(magnitude % 100, count: 2, radix: 10)
    }

    /// Lowercase hexadecimal without leading zeros (`0` for zero).
    @inline(__always)
    mutating func appendHex(_ value: UInt64) {
        let digits = value == 0 ? 1 : (64 - value.leadingZeroBitCount + 3) / 4
        appendHex(value, digits: digits)
    }

    /// Exactly `digits` lowercase hexadecimal digits of the low bits of `value`.
    @inline(__always)
    mutating func appendHex(_ value: UInt64, digits: Int) {
        appendDigits(value, count: digits, radix: 16)
    }

    /// Exactly `count` digits of `value` in `radix` (10 or 16, lowercase), zero-padded, most
    /// significant first; higher digits are dropped. Callers pass a constant radix, so once
    /// inlined the division is by a constant.
    @inline(__always)
    private mutating func appendDigits(_ value: UInt64, count digits: Int, radix: UInt64) {
        reserve(digits)
        var rest = value
        var index = count + digits - 1
        while index >= count {
            let digit = UInt8(truncatingIfNeeded: rest % radix)
            base[index] = digit < 10 ? digit &+ 0x30 : digit &+ 0x57
            rest /= radix
            index -= 1
        }
        count += digits
    }
}
