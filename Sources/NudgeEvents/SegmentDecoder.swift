/// Decodes one Segment-spec message (a Kafka message value) into a `SegmentEvent`, validating the whole
/// document as strict JSON and classifying every failure into a `DeadLetterCode`.
///
/// Zero heap allocation per successful decode: strings are borrowed from the message, escaped strings are
/// unescaped into scratch memory this decoder owns. Reuse one decoder per thread (each shard owns one); it is
/// not thread-safe, and each decode invalidates the `RawText`s of the previous one.
///
/// Order of checks: size, JSON validity of the whole document (and nesting depth), `type`, ids, `messageId`,
/// `event` (track only), `timestamp`, then `channel`, `properties` and the properties Nudge reads.
/// A field's wrong JSON type is reported when that field's turn comes, as `wrongType`.
public final class SegmentDecoder {
    /// Default size limit: 64 KiB.
    public static let defaultMaxMessageBytes = 64 * 1024
    /// Containers nested deeper than this are refused as `tooDeep` (the top-level object is level 1).
    public static let maxNestingDepth = JSONScanner.maxDepth
    /// Largest magnitude of a number Nudge reads (`revenue`, `total`, `price`, `quantity`): a quadrillion,
    /// beyond any real amount in any currency. Windowed sums keep 32-bit floats (at most about 3.4e38), so
    /// a bigger finite amount would read back as infinity, or NaN beside a negative one.
    public static let maxMagnitude = 1e15
    /// Longest `userId` or `anonymousId` accepted, in UTF-8 bytes. The store keeps ids per customer, per
    /// identity link and per cart, so an id must be bounded far below the message limit for memory to be
    /// bounded by the customer caps; real ids (UUIDs, emails, database keys, hashes) are well within it.
    public static let maxIdBytes = 256

    /// Messages larger than this are refused as `tooLarge` before parsing.
    public let maxMessageBytes: Int
    /// Unescaped strings; as large as the largest message, which is always enough (see `JSONScanner`).
    private let scratch: UnsafeMutableRawPointer
    /// NUL-terminated copies of long numbers for `strtod`.
    private let numberScratch: UnsafeMutablePointer<CChar>
    /// The properties read by name, and where their values go.
    private let declared: DeclaredProperties

    /// Creates a decoder and its scratch memory (about twice `maxMessageBytes`). A limit below 1 is raised to 1.
    ///
    /// `properties` names top-level keys of `properties` to read besides those Nudge always reads (a feature
    /// file's `properties.<name>`, see `FeatureSet.readProperties`): each event's ``SegmentEvent/properties``
    /// holds their values in this order: give each name once. A key Nudge does not read itself takes any JSON
    /// type (see ``PropertyValue`` for what each reads as); one it does (`revenue`, `total`, `price`,
    /// `quantity`, `score`, `currency`, `category`, `product_id`, `recommendation_id`, `action`) keeps the
    /// contract's type and range, and a wrong one refuses the event as before. With no names, decoding costs
    /// what it did before names existed.
    public init(maxMessageBytes: Int = SegmentDecoder.defaultMaxMessageBytes, properties: [String] = []) {
        let limit = max(1, maxMessageBytes)
        self.maxMessageBytes = limit
        scratch = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
        numberScratch = UnsafeMutablePointer<CChar>.allocate(capacity: limit + 1)
        declared = DeclaredProperties(properties)
    }

    deinit {
        scratch.deallocate()
        numberScratch.deallocate()
        declared.deallocate()
    }

    /// Decodes one message. The result's `RawText` fields are valid while `bytes` and this decoder are alive
    /// and until the next call.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> SegmentEvent {
        guard bytes.count <= maxMessageBytes else {
            throw DecodeError(.tooLarge, "message is \(bytes.count) bytes; the limit is \(maxMessageBytes)")
        }
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            throw DecodeError(.invalidJSON, "empty message; expected a JSON object")
        }
        var scanner = JSONScanner(base, count: bytes.count, scratch: scratch, numberScratch: numberScratch)
        var fields = EnvelopeFields(declared: declared)
        try scanner.scanEnvelope(into: &fields)
        return try fields.makeEvent()
    }
}

/// What one field held: its JSON kind, its text (string content or number digits) and, for numbers that
/// were converted, the value.
struct FieldSlot {
    var kind: JSONKind
    var text: RawText
    var number: Double

    @inline(__always)
    init(kind: JSONKind, text: RawText = .empty, number: Double = 0) {
        self.kind = kind
        self.text = text
        self.number = number
    }

    /// The key never appeared.
    static let absent = FieldSlot(kind: .absent)
}

/// The raw fields of one message, filled by `scanEnvelope`, then checked and shaped by `makeEvent()`.
struct EnvelopeFields {
    var type = FieldSlot.absent
    var event = FieldSlot.absent
    var messageId = FieldSlot.absent
    var userId = FieldSlot.absent
    var anonymousId = FieldSlot.absent
    var timestamp = FieldSlot.absent
    var channel = FieldSlot.absent
    var properties = JSONKind.absent
    var revenue = FieldSlot.absent
    var total = FieldSlot.absent
    var price = FieldSlot.absent
    var quantity = FieldSlot.absent
    var score = FieldSlot.absent
    var currency = FieldSlot.absent
    var category = FieldSlot.absent
    var productId = FieldSlot.absent
    var recommendationId = FieldSlot.absent
    var action = FieldSlot.absent
    /// The properties read by name: their slots are filled in place.
    let declared: DeclaredProperties

    init(declared: DeclaredProperties) {
        self.declared = declared
        declared.clear()
    }

    /// Keeps `slot` as the value of `key`.
    @inline(__always)
    mutating func store(_ slot: FieldSlot, as key: PropertyKey) {
        switch key {
        case .revenue: revenue = slot
        case .total: total = slot
        case .price: price = slot
        case .quantity: quantity = slot
        case .score: score = slot
        case .currency: currency = slot
        case .category: category = slot
        case .productId: productId = slot
        case .recommendationId: recommendationId = slot
        case .action: action = slot
        case .other: break
        }
    }

    /// A repeated `properties` replaces the earlier one entirely (last wins).
    mutating func clearProperties() {
        declared.clear()
        revenue = .absent
        total = .absent
        price = .absent
        quantity = .absent
        score = .absent
        currency = .absent
        category = .absent
        productId = .absent
        recommendationId = .absent
        action = .absent
    }
}

// MARK: - Scanning the envelope

/// Top-level keys Nudge reads.
private enum EnvelopeKey {
    case type, event, messageId, userId, anonymousId, timestamp, channel, properties, other

    @inline(__always)
    init(_ key: RawText) {
        let k = key.bytes
        switch k.count {
        case 4: self = k.matches("type") ? .type : .other
        case 5: self = k.matches("event") ? .event : .other
        case 6: self = k.matches("userId") ? .userId : .other
        case 7: self = k.matches("channel") ? .channel : .other
        case 9: self = k.matches("messageId") ? .messageId : k.matches("timestamp") ? .timestamp : .other
        case 10: self = k.matches("properties") ? .properties : .other
        case 11: self = k.matches("anonymousId") ? .anonymousId : .other
        default: self = .other
        }
    }

    /// The key quoted at `p` (just after its opening quote) and its length, when it is one the decoder
    /// reads or a common one it skips, spelled plainly: guessed from its first byte, then checked whole
    /// along with the closing quote, so that the key is not scanned for its end first. Nil for anything
    /// else, which ``init(_:)`` then names from the scanned key.
    @inline(__always)
    static func quoted(at p: UnsafeRawPointer, available: Int) -> (key: EnvelopeKey, length: Int)? {
        @inline(__always) func key(_ key: EnvelopeKey, _ literal: StaticString) -> (key: EnvelopeKey, length: Int)? {
            isQuoted(literal, at: p, available: available) ? (key, literal.utf8CodeUnitCount) : nil
        }
        switch p.load(as: UInt8.self) {
        case UInt8(ascii: "t"): return key(.type, "type") ?? key(.timestamp, "timestamp")
        case UInt8(ascii: "m"): return key(.messageId, "messageId")
        case UInt8(ascii: "c"): return key(.channel, "channel")
        case UInt8(ascii: "p"): return key(.properties, "properties")
        case UInt8(ascii: "u"): return key(.userId, "userId")
        case UInt8(ascii: "e"): return key(.event, "event")
        case UInt8(ascii: "a"): return key(.anonymousId, "anonymousId")
        case UInt8(ascii: "n"): return key(.other, "name")  // page and screen names: skipped
        default: return nil
        }
    }
}

/// Whether the bytes at `p` (`available` of them readable) are `literal` and a closing quote.
@inline(__always)
private func isQuoted(_ literal: StaticString, at p: UnsafeRawPointer, available: Int) -> Bool {
    let n = literal.utf8CodeUnitCount
    return available > n && p.load(fromByteOffset: n, as: UInt8.self) == UInt8(ascii: "\"")
        && bytesEqual(p, literal.utf8Start, count: n)
}

/// Keys inside `properties` that Nudge reads.
enum PropertyKey {
    case revenue, total, price, quantity, score, currency, category, productId, recommendationId, action, other

    @inline(__always)
    init(_ key: RawText) {
        let k = key.bytes
        switch k.count {
        case 5: self = k.matches("price") ? .price : k.matches("total") ? .total : k.matches("score") ? .score : .other
        case 6: self = k.matches("action") ? .action : .other
        case 7: self = k.matches("revenue") ? .revenue : .other
        case 8:
            self = k.matches("quantity") ? .quantity : k.matches("currency") ? .currency
                : k.matches("category") ? .category : .other
        case 10: self = k.matches("product_id") ? .productId : .other
        case 17: self = k.matches("recommendation_id") ? .recommendationId : .other
        default: self = .other
        }
    }

    /// As ``EnvelopeKey/quoted(at:available:)``, for the property keys read and common skipped ones.
    @inline(__always)
    static func quoted(at p: UnsafeRawPointer, available: Int) -> (key: PropertyKey, length: Int)? {
        @inline(__always) func key(_ key: PropertyKey, _ literal: StaticString) -> (key: PropertyKey, length: Int)? {
            isQuoted(literal, at: p, available: available) ? (key, literal.utf8CodeUnitCount) : nil
        }
        switch p.load(as: UInt8.self) {
        case UInt8(ascii: "c"): return key(.category, "category") ?? key(.currency, "currency") ?? key(.other, "cart_id")
        case UInt8(ascii: "p"): return key(.productId, "product_id") ?? key(.price, "price") ?? key(.other, "path")
        case UInt8(ascii: "l"): return key(.other, "list_id")
        case UInt8(ascii: "q"): return key(.quantity, "quantity") ?? key(.other, "query")
        case UInt8(ascii: "r"): return key(.revenue, "revenue")
        case UInt8(ascii: "t"): return key(.total, "total")
        case UInt8(ascii: "a"): return key(.action, "action")
        case UInt8(ascii: "s"): return key(.score, "score")
        default: return nil
        }
    }

    /// Numbers are converted only for the fields used as numbers.
    var isNumeric: Bool {
        switch self {
        case .revenue, .total, .price, .quantity, .score: true
        default: false
        }
    }
}

extension JSONScanner {
    /// Scans the whole message: one object, nothing but whitespace after it.
    mutating func scanEnvelope(into fields: inout EnvelopeFields) throws(DecodeError) {
        guard try nextToken() == 0x7B else {
            if end - p >= 3, p.load(as: UInt8.self) == 0xEF, p.load(fromByteOffset: 1, as: UInt8.self) == 0xBB,
               p.load(fromByteOffset: 2, as: UInt8.self) == 0xBF {
                throw syntax("the message starts with a UTF-8 byte order mark (EF BB BF), which JSON messages must not: send it without")
            }
            throw syntax("top level must be a JSON object")
        }
        p += 1
        var next = try firstMember()
        while let b = next {
            let key = try scanKey(b, EnvelopeKey.quoted, EnvelopeKey.init)
            let value = try nextToken()
            switch key {
            case .type: fields.type = try readValue(value, depth: 1, convertNumber: false)
            case .event: fields.event = try readValue(value, depth: 1, convertNumber: false)
            case .messageId: fields.messageId = try readValue(value, depth: 1, convertNumber: false)
            case .userId: fields.userId = try readValue(value, depth: 1, convertNumber: false)
            case .anonymousId: fields.anonymousId = try readValue(value, depth: 1, convertNumber: false)
            case .timestamp: fields.timestamp = try readValue(value, depth: 1, convertNumber: false)
            case .channel: fields.channel = try readValue(value, depth: 1, convertNumber: false)
            case .properties:
                fields.clearProperties()
                if value == 0x7B {
                    p += 1
                    fields.properties = .object
                    try scanProperties(into: &fields)
                } else {
                    fields.properties = try readValue(value, depth: 1, convertNumber: false).kind
                }
            case .other: try skipValue(value, depth: 1)
            }
            next = try nextMember()
        }
        guard atEndAfterWhitespace() else { throw syntax("unexpected data after the top-level object") }
    }

    /// Scans `properties` (its `{` consumed; depth 2), keeping the fields Nudge reads.
    private mutating func scanProperties(into fields: inout EnvelopeFields) throws(DecodeError) {
        if fields.declared.count > 0 { return try scanPropertiesReadingDeclared(into: &fields) }
        var next = try firstMember()
        while let b = next {
            let key = try scanKey(b, PropertyKey.quoted, PropertyKey.init)
            let value = try nextToken()
            if key == .other {
                try skipValue(value, depth: 2)
            } else {
                fields.store(try readValue(value, depth: 2, convertNumber: key.isNumeric), as: key)
            }
            next = try nextMember()
        }
    }

    /// `scanProperties` for a decoder that also reads properties by name: every key is scanned as text and
    /// looked up among the names (a few compares of length and bytes), so the fast in-place key recognition is
    /// given up only by decoders that were asked for more.
    private mutating func scanPropertiesReadingDeclared(into fields: inout EnvelopeFields) throws(DecodeError) {
        let declared = fields.declared
        var next = try firstMember()
        while let b = next {
            let (key, slot) = try scanKey(b, { _, _ in nil }, { name in (PropertyKey(name), declared.slot(of: name)) })
            let value = try nextToken()
            if key == .other && slot < 0 {
                try skipValue(value, depth: 2)
            } else {
                let read = try readValue(value, depth: 2, convertNumber: key.isNumeric || slot >= 0)
                if slot >= 0 { declared.fields[slot] = read }
                fields.store(read, as: key)
            }
            next = try nextMember()
        }
    }

    /// Reads a key (first byte `b`, not consumed) and the colon after it, and names it: by `quoted` when
    /// it recognises the key in place, else by `named` from the scanned key. An escaped key is unescaped
    /// into scratch only long enough to classify it: the scratch space is released before the value is read.
    @inline(__always)
    private mutating func scanKey<Key>(_ b: UInt8, _ quoted: (UnsafeRawPointer, Int) -> (key: Key, length: Int)?,
                                       _ named: (RawText) -> Key) throws(DecodeError) -> Key {
        guard b == 0x22 else { throw keyExpected(b) }
        p += 1
        let key: Key
        if p < end, let known = quoted(p, end - p) {
            p += known.length + 1
            key = known.key
        } else {
            key = named(try scanString(keep: false))
        }
        try expectColon()
        return key
    }
}

// MARK: - Checking and shaping the event

extension EnvelopeFields {
    /// Applies the contract's rules in order and builds the event.
    func makeEvent() throws(DecodeError) -> SegmentEvent {
        var event = SegmentEvent()

        switch type.kind {
        case .absent, .null:
            throw DecodeError(.unknownType, "type is missing; expected track, page, screen or identify")
        case .string:
            guard let t = SegmentType(wireBytes: type.text.bytes) else {
                throw DecodeError(.unknownType,
                                  "type \(quoted(type.text)) is not one of track, page, screen, identify")
            }
            event.type = t
        default:
            throw DecodeError(.wrongType, "type must be a string")
        }

        event.userId = try optionalString(userId, "userId")
        event.anonymousId = try optionalString(anonymousId, "anonymousId")
        try boundedId(event.userId, "userId")
        try boundedId(event.anonymousId, "anonymousId")
        guard !event.userId.isEmpty || !event.anonymousId.isEmpty else {
            throw DecodeError(.missingId, "neither userId nor anonymousId is a non-empty string; send at least one")
        }

        event.messageId = try optionalString(messageId, "messageId")
        guard !event.messageId.isEmpty else {
            throw DecodeError(.missingMessageId, "messageId is missing or empty; it is needed to drop duplicates")
        }

        switch event.type {
        case .track:
            event.eventName = try optionalString(self.event, "event")
            guard !event.eventName.isEmpty else {
                throw DecodeError(.missingEvent, "track message has no \"event\" name")
            }
            event.kind = EventKind(trackEventName: event.eventName.bytes)
        case .page: event.kind = .page
        case .screen: event.kind = .screen
        case .identify: event.kind = .identify
        }

        switch timestamp.kind {
        case .absent, .null:
            throw DecodeError(.badTimestamp, "timestamp is missing; expected ISO-8601 such as 2026-11-23T10:15:02.120Z")
        case .string:
            guard let millis = ISO8601Time.parseMillis(timestamp.text.bytes) else {
                if ISO8601Time.lacksOffset(timestamp.text.bytes) {
                    throw DecodeError(.badTimestamp, "timestamp \(quoted(timestamp.text)) has no UTC offset: end it with Z (UTC) or an offset such as +01:00")
                }
                throw DecodeError(.badTimestamp, "timestamp \(quoted(timestamp.text)) is not ISO-8601 with a valid date, time and offset")
            }
            event.timestampMillis = millis
        default:
            throw DecodeError(.wrongType, "timestamp must be an ISO-8601 string")
        }

        event.channel = Channel(wireBytes: try optionalString(channel, "channel").bytes)

        switch properties {
        case .absent, .null, .object: break
        default: throw DecodeError(.wrongType, "properties must be an object")
        }
        let revenue = try optionalNumber(self.revenue, "properties.revenue")
        let total = try optionalNumber(self.total, "properties.total")
        let price = try optionalNumber(self.price, "properties.price")
        let quantity = try optionalNumber(self.quantity, "properties.quantity")
        let score = try optionalNumber(self.score, "properties.score")
        event.currency = try optionalString(currency, "properties.currency")
        event.category = try optionalString(category, "properties.category")
        switch productId.kind {
        case .string, .number: event.productId = productId.text  // numeric ids are kept as their digits
        case .absent, .null: break
        default: throw DecodeError(.wrongType, "properties.product_id must be a string or a number")
        }
        event.recommendationId = try optionalString(recommendationId, "properties.recommendation_id")
        event.action = try optionalString(action, "properties.action")
        event.properties = declared.values()

        switch event.kind {
        case .orderCompleted, .orderRefunded, .orderCancelled:
            event.amount = !revenue.isNaN ? revenue : total
        case .productViewed, .productAdded, .productRemoved, .productAddedToWishlist:
            event.amount = price * (quantity.isNaN ? 1 : quantity)
        case .surveyAnswered:
            if !score.isNaN {
                // NPS is asked on an 11-point scale: 7.5 is a sender's bug, not an answer.
                guard score >= 0 && score <= 10 && score == Double(Int(score)) else {  // Int(score) cannot trap: 0...10
                    throw DecodeError(.wrongType, "properties.score must be a whole number 0-10")
                }
                event.score = score
            }
        default:
            break
        }
        return event
    }

    /// A string field or nothing (absent/null → empty); any other JSON type is `wrongType`.
    @inline(__always)
    private func optionalString(_ slot: FieldSlot, _ name: StaticString) throws(DecodeError) -> RawText {
        switch slot.kind {
        case .string: return slot.text
        case .absent, .null: return .empty
        default: throw DecodeError(.wrongType, "\(name) must be a string")
        }
    }

    /// A number within ±``maxMagnitude`` or NaN for absent/null; another JSON type or a number beyond it is
    /// `wrongType`.
    @inline(__always)
    private func optionalNumber(_ slot: FieldSlot, _ name: StaticString) throws(DecodeError) -> Double {
        switch slot.kind {
        case .number:
            guard slot.number.magnitude <= SegmentDecoder.maxMagnitude else {
                throw DecodeError(.wrongType, "\(name) is out of range (at most ±1e15)")
            }
            return slot.number
        case .absent, .null: return .nan
        default: throw DecodeError(.wrongType, "\(name) must be a number")
        }
    }

    /// Refuses an id over ``SegmentDecoder/maxIdBytes``.
    @inline(__always)
    private func boundedId(_ id: RawText, _ name: StaticString) throws(DecodeError) {
        guard id.bytes.count > SegmentDecoder.maxIdBytes else { return }
        throw DecodeError(.wrongType, "\(name) is \(id.bytes.count) bytes, over the limit of \(SegmentDecoder.maxIdBytes): send a shorter id (a hash of it, for instance)")
    }

    /// A value for an error detail: quoted, cut to 64 bytes.
    private func quoted(_ text: RawText) -> String {
        let cut = UnsafeRawBufferPointer(rebasing: text.bytes.prefix(64))
        return "\"\(String(decoding: cut, as: UTF8.self))\(text.bytes.count > 64 ? "…" : "")\""
    }
}
