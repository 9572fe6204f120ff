/// A borrowed run of UTF-8 bytes: JSON string content, already unescaped, or the digits of a number.
///
/// Valid only while the source message bytes and the decoder that produced it are alive, and only until that
/// decoder's next `decode` call (escaped strings live in the decoder's scratch buffer, which is reused).
/// Copy out with `string` (allocates) or hash with `hash64` to keep something longer.
///
/// `@unchecked Sendable`: the struct is two words naming read-only memory; nothing here mutates it. Whether the
/// memory is still alive on another thread is the lifetime rule above, which the owner of the buffer enforces.
public struct RawText: @unchecked Sendable, Equatable, CustomStringConvertible {
    /// The bytes; an empty buffer (possibly with a nil base) when the field was absent.
    public var bytes: UnsafeRawBufferPointer

    /// Wraps bytes without copying.
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Wraps a static string literal (lives forever), e.g. to compare a field against `"EUR"` without allocating.
    public init(_ literal: StaticString) {
        if literal.hasPointerRepresentation {
            bytes = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        } else {
            // A single-scalar literal has no stored bytes; there is nothing to borrow.
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        }
    }

    /// `init` for the decoder: a start pointer and a length.
    @inline(__always)
    init(start: UnsafeRawPointer, count: Int) {
        bytes = UnsafeRawBufferPointer(start: start, count: count)
    }

    /// No bytes.
    public static let empty = RawText(UnsafeRawBufferPointer(start: nil, count: 0))

    /// True when there are no bytes (field absent, null or `""`).
    @inline(__always)
    public var isEmpty: Bool { bytes.isEmpty }

    /// The bytes as a String (invalid UTF-8 repaired). Allocates: tests, logs and cold paths only.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Same as `string`.
    public var description: String { string }

    /// Stable 64-bit hash of the bytes (`nudgeHash64`): same bytes, same value, in every run and process.
    @inline(__always)
    public var hash64: UInt64 { nudgeHash64(bytes) }

    /// Byte equality (where the bytes live does not matter).
    @inline(__always)
    public static func == (a: RawText, b: RawText) -> Bool {
        a.bytes.matches(b.bytes)
    }
}

extension UnsafeRawBufferPointer {
    /// Byte-wise equality with another buffer, eight bytes at a time.
    @inline(__always)
    func matches(_ other: UnsafeRawBufferPointer) -> Bool {
        let n = count
        guard n == other.count else { return false }
        guard n > 0, let a = baseAddress, let b = other.baseAddress else { return true }
        return bytesEqual(a, b, count: n)
    }

    /// Byte-wise equality with a static string literal, without creating a String.
    @inline(__always)
    func matches(_ literal: StaticString) -> Bool {
        guard literal.hasPointerRepresentation else { return false }
        return matches(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}

/// Compares `count` bytes at two addresses. Short runs (keys, names, ids) take two overlapping word loads
/// per side instead of a byte loop.
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
    @inline(__always) func word(_ p: UnsafeRawPointer, _ i: Int) -> UInt64 {
        p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
    }
    @inline(__always) func half(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 {
        p.loadUnaligned(fromByteOffset: i, as: UInt32.self)
    }
    if count >= 8 {
        var i = 0
        while i &+ 8 < count {
            if word(a, i) != word(b, i) { return false }
            i &+= 8
        }
        return word(a, count &- 8) == word(b, count &- 8)
    }
    if count >= 4 {
        return half(a, 0) == half(b, 0) && half(a, count &- 4) == half(b, count &- 4)
    }
    var i = 0
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i &+= 1
    }
    return true
}

/// The hash every Nudge module uses for keys (customer ids, message ids): wyhash final 4.2 with seed 0 and the
/// reference secrets, so values match the C reference and never change between runs or processes.
/// Fast (eight bytes per step, one 128-bit multiply) and well mixed; not meant to resist deliberate collisions.
public func nudgeHash64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let secret0: UInt64 = 0x2d35_8dcc_aa6c_78a5
    let secret1: UInt64 = 0x8bb8_4b93_962e_acc9
    let secret2: UInt64 = 0x4b33_a62e_d433_d4a3
    let secret3: UInt64 = 0x4d5a_2da5_1de1_aa47
    let length = bytes.count
    var seed: UInt64 = wyMix(secret0, secret1)  // seed 0: seed ^= mix(seed ^ s0, s1)
    var a: UInt64 = 0
    var b: UInt64 = 0
    if let start = bytes.baseAddress, length > 0 {
        if length <= 16 {
            if length >= 4 {
                let quarter = (length >> 3) << 2
                a = (read4(start) << 32) | read4(start + quarter)
                b = (read4(start + length - 4) << 32) | read4(start + length - 4 - quarter)
            } else {
                a = UInt64(start.load(as: UInt8.self)) << 16
                    | UInt64(start.load(fromByteOffset: length >> 1, as: UInt8.self)) << 8
                    | UInt64(start.load(fromByteOffset: length - 1, as: UInt8.self))
            }
        } else {
            var p = start
            var remaining = length
            if remaining >= 48 {
                var see1 = seed
                var see2 = seed
                repeat {
                    seed = wyMix(read8(p) ^ secret1, read8(p + 8) ^ seed)
                    see1 = wyMix(read8(p + 16) ^ secret2, read8(p + 24) ^ see1)
                    see2 = wyMix(read8(p + 32) ^ secret3, read8(p + 40) ^ see2)
                    p += 48
                    remaining -= 48
                } while remaining >= 48
                seed ^= see1 ^ see2
            }
            while remaining > 16 {
                seed = wyMix(read8(p) ^ secret1, read8(p + 8) ^ seed)
                remaining -= 16
                p += 16
            }
            a = read8(p + remaining - 16)
            b = read8(p + remaining - 8)
        }
    }
    let product = (a ^ secret1).multipliedFullWidth(by: b ^ seed)
    return wyMix(product.low ^ secret0 ^ UInt64(length), product.high ^ secret1)
}

/// wyhash's mixer: the two halves of a 128-bit product, xored.
@inline(__always)
private func wyMix(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let product = a.multipliedFullWidth(by: b)
    return product.high ^ product.low
}

@inline(__always)
private func read8(_ p: UnsafeRawPointer) -> UInt64 {
    UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
}

@inline(__always)
private func read4(_ p: UnsafeRawPointer) -> UInt64 {
    UInt64(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
}
