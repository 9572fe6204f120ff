import NudgeDecisions
import NudgeEvents
import NudgeFeatures

/// The identity topic's message value: one ``IdentityChange`` in a compact binary form, little-endian:
/// `"NID1"`, kind (u8: 0 link, 1 merge, 2 unlink, 3 event), generation (u64), event time (i64), anonymous id
/// and user id (u32 length + bytes each), then per kind: a merge carries a feature-layout fingerprint (u64), the
/// record (u32 length + bytes, 0 for none), the cart (u8 flag, i32 items, i64 latest add, i64 settle) and the
/// contacts (u8 count, then i64 time, u8 channel, u8 action each); an event carries the original message value.
///
/// Internal to Nudge (instances of one deployment read what others wrote), so it is versioned by its magic
/// rather than by the contract.
enum IdentityWire {
    static let magic: [UInt8] = Array("NID1".utf8)

    /// What a message that does not decode is missing.
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// The value for `change`; `fingerprint` identifies the feature layout a merged record was written in.
    static func encode(_ change: IdentityChange, fingerprint: UInt64) -> [UInt8] {
        var out = magic
        func u8(_ v: UInt8) { out.append(v) }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func bytes(_ b: [UInt8]) { u32(UInt32(clamping: b.count)); out.append(contentsOf: b) }
        switch change.kind {
        case .link: u8(0)
        case .merge: u8(1)
        case .unlink: u8(2)
        case .event: u8(3)
        }
        u64(change.generation)
        u64(UInt64(bitPattern: change.atMillis))
        bytes(change.anonymous)
        bytes(change.user)
        switch change.kind {
        case .merge(let features, let cart, let contacts):
            u64(fingerprint)
            bytes(features?.record ?? [])
            u8(cart == nil ? 0 : 1)
            u32(UInt32(bitPattern: cart?.items ?? 0))
            u64(UInt64(bitPattern: cart?.lastAdd ?? 0))
            u64(UInt64(bitPattern: cart?.settled ?? 0))
            u8(UInt8(contacts.count))
            for i in 0..<contacts.count {
                guard let contact = contacts.contact(at: i) else { continue }
                u64(UInt64(bitPattern: contact.atMillis))
                u8(contact.channel.rawValue)
                u8(contact.action)
            }
        case .event(let value, _):
            out.append(contentsOf: value)
        case .link, .unlink:
            break
        }
        return out
    }

    /// The change in `value`; a merge written with another feature layout than `fingerprint` loses its
    /// features (the rest still merges).
    static func decode(_ value: UnsafeRawBufferPointer, fingerprint: UInt64) throws(Malformed) -> IdentityChange {
        var position = 0
        func take(_ n: Int) throws(Malformed) -> UnsafeRawBufferPointer {
            guard n >= 0, position + n <= value.count else { throw Malformed(description: "identity message cut short at byte \(position)") }
            defer { position += n }
            return UnsafeRawBufferPointer(rebasing: value[position..<(position + n)])
        }
        func u8() throws(Malformed) -> UInt8 { try take(1)[0] }
        func u32() throws(Malformed) -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
        func u64() throws(Malformed) -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }
        func bytes() throws(Malformed) -> [UInt8] { Array(try take(Int(try u32()))) }

        guard Array(try take(magic.count)) == magic else { throw Malformed(description: "not an identity message (no NID1 magic)") }
        let kindCode = try u8()
        let generation = try u64()
        let atMillis = Int64(bitPattern: try u64())
        let anonymous = try bytes()
        let user = try bytes()
        let kind: IdentityChange.Kind
        switch kindCode {
        case 0: kind = .link
        case 2: kind = .unlink
        case 3: kind = .event(Array(try take(value.count - position)), time: nil)  // the time is a header
        case 1:
            let written = try u64()
            let record = try bytes()
            let hasCart = try u8() != 0
            // Clamped as the timers keep them: items never negative, times within ±2^53 ms.
            let items = max(0, Int32(bitPattern: try u32()))
            let cart = CartState(items: items, lastAdd: Self.clampTime(Int64(bitPattern: try u64())),
                                 settled: Self.clampTime(Int64(bitPattern: try u64())))
            var contacts = ContactHistory()
            for _ in 0..<min(Int(try u8()), ContactHistory.capacity) {
                let time = Int64(bitPattern: try u64())
                let channel = Channel(rawValue: try u8()) ?? .other
                contacts.record(atMillis: time, channel: channel, action: try u8())
            }
            let features = record.isEmpty || written != fingerprint ? nil : DetachedCustomer(validating: record)
            kind = .merge(features: features, cart: hasCart ? cart : nil, contacts: contacts)
        default:
            throw Malformed(description: "unknown identity message kind \(kindCode)")
        }
        return IdentityChange(kind, anonymous: anonymous, user: user, atMillis: atMillis, generation: generation)
    }

    /// A time as the timers compare them: `Int64.min` (none) kept, anything else within ±2^53 ms.
    static func clampTime(_ millis: Int64) -> Int64 {
        millis == .min ? .min : min(max(millis, -(1 << 53)), 1 << 53)
    }

    /// A fingerprint of a feature set: each feature's name and signature (``FeatureSet/signatures``: what it
    /// computes) and the record's byte layout (``FeatureSet/recordFormat``). Records travel between instances
    /// only when it matches: the same names over another aggregation or window (a rolling deploy of an edited
    /// feature file), or the same file compiled to another layout (a Nudge upgrade), would be merged byte for
    /// byte under the wrong meaning. A mismatch merges the link without the record.
    static func fingerprint(of features: FeatureSet) -> UInt64 {
        let lines = zip(features.names, features.signatures).map { "\($0): \($1)" }
        let text = Array((lines.joined(separator: "\n") + "\n" + features.recordFormat).utf8)
        return text.withUnsafeBytes { nudgeHash64($0) }
    }
}
