import NudgeEvents
import NudgeFeatures

/// Messages a shard has decoded before processing them, so the memory each will touch is already on its
/// way into the cache when its turn comes.
///
/// With a million customers, an event's duplicate-filter entries, index entry, record and id bytes are
/// each a cache miss, and each depends on the one before (the index gives the slot, the record gives the
/// id's place). Waited for one by one they cost more than the decoding. A message staged `depth` events
/// ahead has its filter and index entries requested; two events ahead, its record (every line), timer
/// record and contact-history handle; one event ahead, its id bytes. Each step reads only what the step before requested,
/// about one event's work earlier, so the shard never waits on memory to issue a request (software
/// pipelining, as in the prefetching hash joins of Chen et al., "Improving hash join performance through
/// prefetching", ICDE 2004).
///
/// Decoding ahead needs a decoder per staged message: a decoder's events point into its scratch memory
/// until its next decode. Staged messages must stay alive and unmoved until processed or ``clear()``ed:
/// an entry is matched to its message by address and length.
///
/// The ring lives in fixed buffers allocated once, not arrays: every write to an array stored in the
/// processor checked its uniqueness, and calling a decoder out of one retained and released it (perf:
/// 12 % of staging). Non-copyable, as it owns them.
struct EventLookahead: ~Copyable {
    /// How many events ahead of processing a message is staged: the distance from its first request to
    /// its turn. Up to `depth + 1` messages are staged at once (the next one to process and `depth` after it).
    static let depth = 3
    /// Entries in the ring.
    private static let entries = depth + 1

    /// A decoder per staged message, owned here; `decoderRefs` calls them without reference counting.
    private let decoders: [SegmentDecoder]
    private let decoderRefs: UnsafeMutablePointer<Unmanaged<SegmentDecoder>>
    // A ring of `depth + 1` entries in parallel buffers (copying whole entries per step cost more than the
    // cache misses it saves): `count` of them from `head` on are staged.
    private let bases: UnsafeMutablePointer<UnsafeRawPointer?>
    private let lengths: UnsafeMutablePointer<Int>
    private let events: UnsafeMutablePointer<SegmentEvent>
    /// Whether an entry failed to decode; its error is then in `errors`.
    private let failed: UnsafeMutablePointer<Bool>
    /// The decode error of each entry that failed (read only for those).
    private var errors: [DecodeError?]
    /// The message id hash of each entry.
    let messageHashes: UnsafeMutablePointer<UInt64>
    /// The customer id hash of each entry.
    let customerHashes: UnsafeMutablePointer<UInt64>
    /// The slot the index pointed at when its record was requested (a hint, unchecked); -1 if none or not
    /// yet. Each entry passes distance 2, then 1, once: no other record of its progress is needed.
    let slotHints: UnsafeMutablePointer<Int>
    private var head = 0
    private(set) var count = 0

    /// `properties`: as ``SegmentDecoder/init(maxMessageBytes:properties:)``, the feature set's.
    init(maxMessageBytes: Int, properties: [String] = []) {
        let n = Self.entries
        // A decoder per staged message; the one just taken was processed before the next is staged.
        decoders = (0..<n).map { _ in SegmentDecoder(maxMessageBytes: maxMessageBytes, properties: properties) }
        decoderRefs = .allocate(capacity: n)
        decoderRefs.initialize(from: decoders.map { Unmanaged.passUnretained($0) }, count: n)
        bases = .allocate(capacity: n)
        bases.initialize(repeating: nil, count: n)
        lengths = .allocate(capacity: n)
        lengths.initialize(repeating: 0, count: n)
        events = .allocate(capacity: n)
        events.initialize(repeating: SegmentEvent(), count: n)
        failed = .allocate(capacity: n)
        failed.initialize(repeating: false, count: n)
        errors = Array(repeating: nil, count: n)
        messageHashes = .allocate(capacity: n)
        messageHashes.initialize(repeating: 0, count: n)
        customerHashes = .allocate(capacity: n)
        customerHashes.initialize(repeating: 0, count: n)
        slotHints = .allocate(capacity: n)
        slotHints.initialize(repeating: -1, count: n)
    }

    deinit {
        // All plain values: nothing to deinitialize.
        decoderRefs.deallocate()
        bases.deallocate()
        lengths.deallocate()
        events.deallocate()
        failed.deallocate()
        messageHashes.deallocate()
        customerHashes.deallocate()
        slotHints.deallocate()
    }

    /// Whether another message can be staged.
    var hasRoom: Bool { count <= Self.depth }

    /// Decodes `bytes` and stages it; returns its entry for the caller's first requests, nil when full or
    /// when it did not decode (processing reports the error).
    mutating func stage(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard hasRoom else { return nil }
        let at = position(count)
        count += 1
        bases[at] = bytes.baseAddress
        lengths[at] = bytes.count
        slotHints[at] = -1
        let decoded = decoderRefs[at]._withUnsafeGuaranteedRef { decoder in
            Result { () throws(DecodeError) in try decoder.decode(bytes) }
        }
        switch decoded {
        case .success(let event):
            events[at] = event
            failed[at] = false
        case .failure(let error):
            failed[at] = true
            errors[at] = error
            return nil
        }
        messageHashes[at] = events[at].messageId.hash64
        customerHashes[at] = events[at].customerId.hash64
        return at
    }

    /// The entry staged for `bytes` if it is the oldest staged message, now taken (read it before staging
    /// again); otherwise nil (a message processed without being staged, such as one another instance
    /// relayed, leaves the staged ones waiting).
    mutating func take(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard count > 0, bases[head] == bytes.baseAddress && lengths[head] == bytes.count else { return nil }
        let taken = head
        head = position(1)
        count -= 1
        return taken
    }

    /// The decoded event of entry `at`, or its decode error.
    @inline(__always)
    func event(at: Int) throws(DecodeError) -> SegmentEvent {
        if failed[at] { throw errors[at] ?? DecodeError(.invalidJSON, "message did not decode") }
        return events[at]
    }

    /// Whether entry `at` decoded.
    @inline(__always)
    func decoded(_ at: Int) -> Bool { !failed[at] }

    /// The entry `distance` events from processing (1 is next), if staged.
    @inline(__always)
    func entry(atDistance distance: Int) -> Int? {
        distance >= 1 && distance <= count ? position(distance - 1) : nil
    }

    /// The ring position `offset` entries after the head.
    @inline(__always)
    private func position(_ offset: Int) -> Int { (head + offset) % Self.entries }

    /// Drops everything staged: before the staged messages may be released.
    mutating func clear() {
        head = 0
        count = 0
    }
}
