/// Deterministic recommendation ids: `"r-"` followed by 32 lowercase hex digits of the
/// 128-bit MurmurHash3 (x64, seed 0) of
/// - for an event: `messageId bytes ‖ 0x00 ‖ trigger kind byte ‖ trigger name`;
/// - for a timer: `customerId bytes ‖ 0x00 ‖ trigger kind byte ‖ timer name ‖ 0x00 ‖ deadline`
///   (Unix ms, 8 bytes little-endian).
///
/// Derived from the triggering message (or, for a timer, which no single message causes, from the
/// customer, the timer and its event-time deadline) rather than from topic/partition/offset, so a
/// replay, a re-partitioned topic or a retry after a crash yields the same id, and consumers can
/// de-duplicate on it. The kind byte differs between the two forms, so they do not collide by design.
/// Stable across runs, processes and platforms.
public enum RecommendationID {
    /// Length of an id in bytes.
    public static let length = 34

    /// Writes an event's id into `into` (at least `length` bytes) and returns `length`. No allocation.
    @discardableResult
    public static func write(messageId: UnsafeRawBufferPointer, kind: TriggerKind, name: String,
                             into: UnsafeMutableRawPointer) -> Int {
        var hasher = Murmur3x64_128()
        hasher.add(messageId)
        hasher.add(0)
        hasher.add(kind.rawValue)
        add(name, to: &hasher)
        finish(hasher, into: into)
        return length
    }

    /// Writes a timer's id (customer, timer name, deadline) into `into` (at least `length` bytes) and
    /// returns `length`. No allocation.
    @discardableResult
    public static func write(customerId: UnsafeRawBufferPointer, timer name: String, deadlineMillis: Int64,
                             into: UnsafeMutableRawPointer) -> Int {
        var hasher = Murmur3x64_128()
        hasher.add(customerId)
        hasher.add(0)
        hasher.add(TriggerKind.timer.rawValue)
        add(name, to: &hasher)
        hasher.add(0)
        let deadline = UInt64(bitPattern: deadlineMillis)
        for byte in 0..<8 { hasher.add(UInt8(truncatingIfNeeded: deadline >> (8 * UInt64(byte)))) }
        finish(hasher, into: into)
        return length
    }

    /// The id for `trigger`, written into `into`; returns `length`.
    @discardableResult
    public static func write(trigger: Trigger, into: UnsafeMutableRawPointer) -> Int {
        switch trigger.kind {
        case .event: write(messageId: trigger.messageId, kind: trigger.kind, name: trigger.name, into: into)
        case .timer: write(customerId: trigger.customerId, timer: trigger.name, deadlineMillis: trigger.deadlineMillis, into: into)
        }
    }

    /// A timer's id as a String (allocates; for tools and tests, not the hot path).
    public static func string(customerId: String, timer name: String, deadlineMillis: Int64) -> String {
        var out = [UInt8](repeating: 0, count: length)
        Array(customerId.utf8).withUnsafeBytes { id in
            out.withUnsafeMutableBytes { buffer in
                if let base = buffer.baseAddress { write(customerId: id, timer: name, deadlineMillis: deadlineMillis, into: base) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func add(_ name: String, to hasher: inout Murmur3x64_128) {
        let hashed: Void? = name.utf8.withContiguousStorageIfAvailable { hasher.add(UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for b in name.utf8 { hasher.add(b) }  // only for non-native strings
        }
    }

    private static func finish(_ hasher: Murmur3x64_128, into: UnsafeMutableRawPointer) {
        let (h1, h2) = hasher.finish()
        into.storeBytes(of: UInt8(ascii: "r"), as: UInt8.self)
        into.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 1, as: UInt8.self)
        writeHex(h1, into + 2)
        writeHex(h2, into + 18)
    }

    /// The id as a String (allocates; for tools and tests, not the hot path).
    public static func string(messageId: String, kind: TriggerKind, name: String) -> String {
        var out = [UInt8](repeating: 0, count: length)
        Array(messageId.utf8).withUnsafeBytes { id in
            out.withUnsafeMutableBytes { buffer in
                if let base = buffer.baseAddress { write(messageId: id, kind: kind, name: name, into: base) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The 8 bytes of `h` in little-endian order (the digest's byte order), as 16 hex digits.
    private static func writeHex(_ h: UInt64, _ out: UnsafeMutableRawPointer) {
        for byte in 0..<8 {
            let b = UInt8(truncatingIfNeeded: h >> (8 * UInt64(byte)))
            out.storeBytes(of: hexDigit(b >> 4), toByteOffset: 2 * byte, as: UInt8.self)
            out.storeBytes(of: hexDigit(b & 0xF), toByteOffset: 2 * byte + 1, as: UInt8.self)
        }
    }

    private static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10
    }
}

/// MurmurHash3 x64 128-bit (Austin Appleby, public domain), fed a byte at a time so that
/// several pieces hash as one concatenation without copying them together.
struct Murmur3x64_128 {
    private static let c1: UInt64 = 0x87c3_7b91_1142_53d5
    private static let c2: UInt64 = 0x4cf5_ad43_2745_937f

    private var h1: UInt64
    private var h2: UInt64
    private var k1: UInt64 = 0
    private var k2: UInt64 = 0
    private var pending = 0
    private var length: UInt64 = 0

    init(seed: UInt64 = 0) {
        h1 = seed
        h2 = seed
    }

    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    private static func fmix(_ k: UInt64) -> UInt64 {
        var k = k
        k ^= k >> 33
        k &*= 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k &*= 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }

    private static func mixK1(_ k: UInt64) -> UInt64 { rotl(k &* c1, 31) &* c2 }
    private static func mixK2(_ k: UInt64) -> UInt64 { rotl(k &* c2, 33) &* c1 }

    mutating func add(_ byte: UInt8) {
        if pending < 8 {
            k1 |= UInt64(byte) << (8 * UInt64(pending))
        } else {
            k2 |= UInt64(byte) << (8 * UInt64(pending - 8))
        }
        pending += 1
        length += 1
        guard pending == 16 else { return }
        mixBlock(k1, k2)
        k1 = 0
        k2 = 0
        pending = 0
    }

    /// Adds `bytes`, whole 16-byte blocks at a time where possible.
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while i < bytes.count && pending != 0 {
            add(bytes[i])
            i += 1
        }
        while bytes.count - i >= 16 {
            mixBlock(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)),
                     UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
            length += 16
            i += 16
        }
        while i < bytes.count {
            add(bytes[i])
            i += 1
        }
    }

    private mutating func mixBlock(_ k1: UInt64, _ k2: UInt64) {
        h1 ^= Self.mixK1(k1)
        h1 = Self.rotl(h1, 27) &+ h2
        h1 = h1 &* 5 &+ 0x52dc_e729
        h2 ^= Self.mixK2(k2)
        h2 = Self.rotl(h2, 31) &+ h1
        h2 = h2 &* 5 &+ 0x3849_5ab5
    }

    /// The two 64-bit halves (h1, h2) of the digest.
    func finish() -> (UInt64, UInt64) {
        var h1 = self.h1
        var h2 = self.h2
        if pending > 8 { h2 ^= Self.mixK2(k2) }
        if pending > 0 { h1 ^= Self.mixK1(k1) }
        h1 ^= length
        h2 ^= length
        h1 &+= h2
        h2 &+= h1
        h1 = Self.fmix(h1)
        h2 = Self.fmix(h2)
        h1 &+= h2
        h2 &+= h1
        return (h1, h2)
    }
}
