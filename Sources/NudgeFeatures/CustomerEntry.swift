import NudgeEvents

/// The fixed 64-byte entry, one cache line, that every hot customer of a ``CustomerTable`` has: where their
/// id is, their newest event time and channel, and their feature state in one of three forms.
///
/// Most customers of a retailer are seen once in a window (a visit that bounces, a single store purchase),
/// and a full feature record (``FeatureSet/bytesPerCustomer``, 544 bytes with the default feature file) would
/// hold one event in mostly empty rings. So the state of a customer with one event is that event, kept in
/// the entry: the record it implies is the fresh record with that event folded in, and the table folds it
/// again whenever it needs the record (to evaluate, evict or merge), which gives the same bytes as folding
/// it once because folding is deterministic. The second event moves the customer to a full record in the
/// table's record pool, as Redis moves a small hash from its listpack to a real table; so does a first event
/// carrying a property that a fold of its kind reads by name, which the entry has no room for.
///
/// The first 21 bytes are laid out as in ``CustomerRecord``, so ``FreeRecord`` marks free entries as it
/// marks free records. For a one-event customer, `newestMillis` and `channel` are that event's (clamped)
/// time and channel; for a full record they mirror the record's header.
enum CustomerEntry {
    /// Bytes per entry.
    static let size = 64
    /// UInt8: ``Form`` raw value.
    static let form = 21
    /// UInt8: the one event's ``EventKind`` raw value.
    static let loggedKind = 22
    /// UInt8: which of the one event's text fields are present (bit 0 category, bit 1 product id).
    static let loggedTexts = 23
    /// Double: the one event's `amount`.
    static let loggedAmount = 24
    /// Double: the one event's `score`.
    static let loggedScore = 32
    /// UInt64: `nudgeHash64` of the one event's category (of the empty text when absent, as a live fold
    /// would compute it); 0 when no fold reads it.
    static let loggedCategoryHash = 40
    /// UInt64: `nudgeHash64` of the one event's product id.
    static let loggedProductHash = 48
    /// UInt32: the customer's record in the pool, for ``Form/record``.
    static let recordHandle = 56

    /// How an entry holds the customer's feature state.
    enum Form: UInt8 {
        /// No event yet: the state is the layout's fresh record.
        case fresh
        /// One event, kept in the entry.
        case oneEvent
        /// A full record in the table's pool.
        case record
    }

    @inline(__always)
    static func form(of entry: UnsafeRawPointer) -> Form {
        Form(rawValue: entry.load(fromByteOffset: form, as: UInt8.self)) ?? .fresh
    }

    @inline(__always)
    static func setForm(_ value: Form, of entry: UnsafeMutableRawPointer) {
        entry.storeBytes(of: value.rawValue, toByteOffset: form, as: UInt8.self)
    }

    /// The pool handle of a ``Form/record`` entry's full record.
    @inline(__always)
    static func recordHandle(of entry: UnsafeRawPointer) -> Int {
        Int(entry.load(fromByteOffset: recordHandle, as: UInt32.self))
    }

    /// A text field's bit in ``loggedTexts`` and in the table's set of hashed fields; none for a property
    /// read by name, which an entry never keeps (an event whose fold would read one takes a full record).
    @inline(__always)
    static func textBit(_ field: TextSource) -> UInt8 {
        switch field {
        case .category: 1
        case .productId: 2
        case .property: 0
        }
    }

    /// Keeps `event` (whose clamped time is `time`) as a fresh entry's one event, with the hashes of the text
    /// fields in `hashing` (``textBit(_:)``s: those some fold reads; the others stay 0).
    @inline(__always)
    static func log(_ event: SegmentEvent, time: Int64, hashing: UInt8, into entry: UnsafeMutableRawPointer) {
        entry.storeBytes(of: time, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        entry.storeBytes(of: event.channel.rawValue, toByteOffset: CustomerRecord.channel, as: UInt8.self)
        entry.storeBytes(of: event.kind.rawValue, toByteOffset: loggedKind, as: UInt8.self)
        let texts = (event.category.isEmpty ? 0 : textBit(.category)) | (event.productId.isEmpty ? 0 : textBit(.productId))
        entry.storeBytes(of: texts, toByteOffset: loggedTexts, as: UInt8.self)
        entry.storeBytes(of: event.amount, toByteOffset: loggedAmount, as: Double.self)
        entry.storeBytes(of: event.score, toByteOffset: loggedScore, as: Double.self)
        let category = hashing & textBit(.category) != 0 ? event.category.hash64 : 0
        let productId = hashing & textBit(.productId) != 0 ? event.productId.hash64 : 0
        entry.storeBytes(of: category, toByteOffset: loggedCategoryHash, as: UInt64.self)
        entry.storeBytes(of: productId, toByteOffset: loggedProductHash, as: UInt64.self)
        setForm(.oneEvent, of: entry)
    }
}

/// The one event a ``CustomerEntry`` keeps, read back for folding: everything a fold reads of an event.
struct LoggedEvent: FoldedEvent {
    let entry: UnsafeRawPointer

    @inline(__always)
    init(_ entry: UnsafeRawPointer) { self.entry = entry }

    /// The event's kind.
    var kind: UInt8 {
        @inline(__always) get { entry.load(fromByteOffset: CustomerEntry.loggedKind, as: UInt8.self) }
    }

    /// The event's clamped time.
    var time: Int64 {
        @inline(__always) get { entry.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self) }
    }

    var channel: UInt8 {
        @inline(__always) get { entry.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self) }
    }

    // A kept event carries no property that a fold of its kind reads by name (see `CustomerTable.apply`):
    // those read as absent.

    @inline(__always)
    func number(_ field: NumberSource) -> Double {
        switch field {
        case .amount: entry.load(fromByteOffset: CustomerEntry.loggedAmount, as: Double.self)
        case .score: entry.load(fromByteOffset: CustomerEntry.loggedScore, as: Double.self)
        case .property: .nan
        }
    }

    @inline(__always)
    func hasText(_ field: TextSource) -> Bool {
        entry.load(fromByteOffset: CustomerEntry.loggedTexts, as: UInt8.self) & CustomerEntry.textBit(field) != 0
    }

    @inline(__always)
    func hash(_ field: TextSource) -> UInt64 {
        switch field {
        case .category: entry.load(fromByteOffset: CustomerEntry.loggedCategoryHash, as: UInt64.self)
        case .productId: entry.load(fromByteOffset: CustomerEntry.loggedProductHash, as: UInt64.self)
        case .property: RawText.empty.hash64
        }
    }
}
