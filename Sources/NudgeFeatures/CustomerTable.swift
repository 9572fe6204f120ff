#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPrefetch
import NudgeEvents

/// A customer's place in one ``CustomerTable``: valid only for the table that handed it out, and only
/// until its next ``CustomerTable/evictIdle(olderThanMillis:limit:atMost:onEvict:)``, which may free it for
/// another customer.
public struct CustomerSlot: Sendable, Hashable {
    /// Position of the customer's entry in the table: dense, in order of first sight, until eviction frees
    /// slots, which later customers reuse.
    public let index: Int32

    /// The slot at position `index`, for state kept per slot outside the table (timers by slot): the table
    /// checks the position, not whose it is, so the keeper must know the slot has not changed hands since.
    public init(index: Int32) { self.index = index }
}

/// One shard's customers: identity index plus feature state, for a single writer, in two tiers.
///
/// Each shard thread owns one table and makes every call on it, so it has no locks and is not `Sendable`.
/// The **hot tier** is a few large buffers and nothing allocated per customer:
/// - the **entries**: one 64-byte ``CustomerEntry`` per customer (id location, newest event time, last
///   channel) holding either the customer's only event so far or the handle of their full record;
/// - the **record pool** (``RecordPool``): one fixed-stride record (``FeatureSet/bytesPerCustomer``) per
///   customer with two events or more: header, then the packed feature state (see ``FeatureLayout``);
/// - the **arena**: customer id bytes, written when a customer takes a slot;
/// - the **index**: a ``SlotIndex`` (linear probing, load ≤ 3/4, so between 3/8 and 3/4 once it has grown:
///   an unsuccessful probe reads about 8.5 entries on average at 3/4, one or two cache lines) of 8-byte
///   entries, the upper 32 bits of the
///   id's nudgeHash64 beside the slot, so a probe reads one word and compares id bytes only on a tag match.
///
/// The **cold tier** (``ColdCustomers``) holds customers idle past a TTL as LZ4-compressed records within a
/// byte budget. ``evictIdle(olderThanMillis:limit:atMost:onEvict:)`` moves them there in small steps and frees
/// their slots; ``slot(for:)`` and ``existingSlot(for:)`` bring one back on an index miss, bit for bit, with
/// the ``ColdAttachment`` the caller gave for them (its own per-slot state, through ``onRestore``).
/// Hot memory is bounded by the peak number of hot customers: freed slots and records are reused before
/// their buffers grow, an id written into a reused slot takes the old id's arena bytes when it fits, and the arena
/// drops dead bytes whenever it would grow (see ``bytesUsed``). Deletion from the index is backward-shift,
/// not tombstones, so the hot probe is unchanged and probe runs never lengthen with churn.
///
/// The hot path (``slot(for:)`` on a hot customer, ``apply(_:to:)``, ``evaluate(_:atMillis:into:)``)
/// does not allocate and never looks at the cold tier; creating or restoring a customer allocates only
/// when a buffer grows. Identity stitching lifts a customer out whole (``detach(_:)``) and folds them into
/// another (``merge(_:into:)``). Entries, arena and pool chunks are a few large buffers and the index is
/// rebuilt by hashing the ids again, which keeps a later snapshot a matter of compressing them.
public final class CustomerTable {
    /// The features every record holds.
    public let features: FeatureSet

    /// Bytes per full record.
    private let stride: Int
    private let entrySize = CustomerEntry.size
    /// A fresh record: the state of a customer with no event, and where every full record starts.
    private let template: UnsafeMutableRawPointer
    /// Where a one-event customer's record is rebuilt to be read (see ``CustomerEntry``); valid until the
    /// next call on the table.
    private let scratch: UnsafeMutableRawPointer
    /// Whether a customer's first event stays in their entry; off only in tests comparing both ways.
    private let keepsFirstEventInEntry: Bool
    private let plan: CompiledPlan

    @exclusivity(unchecked) private var entriesBuffer: LargeBuffer
    @exclusivity(unchecked) private var entries: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var entryCapacity: Int
    private let pool: RecordPool
    /// Customer ids; dead bytes are evicted ids and tails of reused regions.
    @exclusivity(unchecked) private var arena: IdArena
    @exclusivity(unchecked) private var index: SlotIndex
    /// Slots handed out so far, hot or free: entries below this are initialized.
    @exclusivity(unchecked) private var slotsUsed = 0
    /// The most recently freed slot, -1 for none. Free slots chain through their own entries (see
    /// ``FreeRecord``), so the free list costs no memory and never grows during a sweep.
    @exclusivity(unchecked) private var freeHead = -1
    /// Where the next ``evictIdle(olderThanMillis:limit:atMost:onEvict:)`` resumes its walk of the entries.
    @exclusivity(unchecked) private var sweepCursor = 0
    /// Over capacity: evict customers whose newest event is older than `cutoff`, in a walk of `length` slots
    /// (the table's when sampled) of which `examined` are done (see
    /// ``evictOverCapacity(_:limit:atMost:onEvict:)``); nil when not over capacity.
    @exclusivity(unchecked) private var pressure: (cutoff: Int64, length: Int, examined: Int)?
    /// Picks the slots ``evictOverCapacity(_:limit:atMost:onEvict:)`` samples (xorshift64).
    @exclusivity(unchecked) private var sampler: UInt64 = 0x9E37_79B9_7F4A_7C15
    private let cold: ColdCustomers
    private let codec: ColdRecordCodec

    /// Called with each customer the cold tier hands back (``slot(for:)`` and ``existingSlot(for:)``) whose
    /// eviction left a non-empty attachment, once the slot is theirs: the caller restores what it keeps per
    /// slot. Set it once, before the first event; it runs on the table's thread, inside the lookup.
    public var onRestore: ((CustomerSlot, ColdAttachment) -> Void)?

    /// Hot customers holding a full record (the others have at most one event, kept in their entry).
    public var fullRecords: Int { pool.count }

    /// Number of customers in the hot tier (with a slot); ``coldCount`` more are evicted.
    @exclusivity(unchecked) public private(set) var count = 0
    /// Customers moved to the cold tier, ever.
    @exclusivity(unchecked) public private(set) var evictions = 0
    /// Of ``evictions``, those moved before their idle TTL because the hot tier was over capacity.
    @exclusivity(unchecked) public private(set) var forcedEvictions = 0
    /// Customers brought back from the cold tier, ever.
    @exclusivity(unchecked) public private(set) var restores = 0
    /// Cold records that failed to decompress on restore, ever (the customer started afresh). LZ4 reading
    /// back what it wrote in this process cannot fail: anything but 0 is a bug.
    @exclusivity(unchecked) public private(set) var restoreFailures = 0

    /// Typical customer id length, for the arena's first size.
    private static let expectedIdBytes = 24
    /// Cold budget when none is given: room for 524,288 idle customers (with the standard features a cold
    /// customer costs about 110 bytes, all in).
    public static let defaultColdBudgetBytes = 64 << 20

    /// A table for `features`, sized for `expectedCustomers` before its first growth, whose cold tier
    /// holds at most `coldBudgetBytes` (at least 4 KiB; see ``coldBytes``).
    public convenience init(features: FeatureSet, expectedCustomers: Int = 1 << 16, coldBudgetBytes: Int = defaultColdBudgetBytes) {
        self.init(features: features, expectedCustomers: expectedCustomers, coldBudgetBytes: coldBudgetBytes,
                  keepsFirstEventInEntry: true)
    }

    /// A table that, with `keepsFirstEventInEntry` false, gives every customer a full record at their first
    /// event: the reference the one-event form is tested against.
    init(features: FeatureSet, expectedCustomers: Int = 1 << 16, coldBudgetBytes: Int = defaultColdBudgetBytes,
         keepsFirstEventInEntry: Bool) {
        self.features = features
        self.keepsFirstEventInEntry = keepsFirstEventInEntry
        let layout = features.layout
        stride = layout.stride
        plan = CompiledPlan(layout)
        template = .allocate(byteCount: layout.stride, alignment: 16)
        UnsafeMutableRawBufferPointer(start: template, count: layout.stride).copyBytes(from: layout.template)
        scratch = .allocate(byteCount: layout.stride, alignment: 16)
        cold = ColdCustomers(budgetBytes: coldBudgetBytes)
        codec = layout.template.withUnsafeBytes { ColdRecordCodec(template: $0) }

        let customers = min(max(expectedCustomers, 16), 1 << 30)
        entryCapacity = customers
        entriesBuffer = LargeBuffer(byteCount: customers * CustomerEntry.size)
        entries = entriesBuffer.base
        pool = RecordPool(stride: layout.stride, expectedRecords: customers / 8)
        arena = IdArena(capacity: customers * Self.expectedIdBytes)
        index = SlotIndex(capacity: (customers * 4 + 2) / 3)  // the customers expected fit at load ≤ 3/4
    }

    deinit {
        template.deallocate()
        scratch.deallocate()
        entriesBuffer.release()
    }

    /// Bytes allocated for the hot tier (entries, record pool, arena and index capacity, not just what is
    /// filled, the compiled features and the cold codec's scratch and LZ4 state): what the process really
    /// holds for it. The cold tier is ``coldBytes``; the figure for memory limits and metrics is the sum.
    ///
    /// Bounded by the peak number of hot customers: entries, pool and index hold at most that many, and the
    /// arena, which drops dead ids whenever it would grow, at most about four times their id bytes.
    public var bytesUsed: Int {
        let hot = hotFootprint
        return hot.entries + hot.records + hot.ids + hot.index + hot.other
    }

    /// ``bytesUsed`` by part, as allocated: entries, full records (the pool), customer ids (the arena), the
    /// index, and the rest (template, scratch, compiled features, cold codec scratch).
    public var hotFootprint: (entries: Int, records: Int, ids: Int, index: Int, other: Int) {
        (entriesBuffer.allocatedBytes, pool.bytesUsed, arena.bytesUsed, index.bytesUsed,
         2 * stride + plan.bytes + codec.bytesUsed)
    }

    /// Bytes the cold tier holds (entries, index, compressed records and ids), never more than its budget.
    public var coldBytes: Int { cold.bytesUsed }

    /// The cold tier's byte budget.
    public var coldBudgetBytes: Int { cold.budgetBytes }

    /// Number of customers in the cold tier.
    public var coldCount: Int { cold.count }

    /// Cold customers dropped, oldest first, to keep the cold tier within its budget, ever. A dropped
    /// customer's history is gone: if they come back they start as a new customer.
    public var coldDropped: Int { cold.dropped }

    // MARK: Identity

    /// Finds, restores or creates the slot of `customerId`. A customer in the cold tier comes back with
    /// their whole history; one the cold tier dropped, or never had, starts afresh. Copies the id bytes
    /// into the arena only when the customer takes a slot. The cold tier is consulted only when the hot
    /// index misses, so a hot customer costs what it did before tiers.
    ///
    /// Slot indexes are `Int32`: 2^31 customers in one shard would need hundreds of gigabytes first.
    public func slot(for customerId: RawText) -> CustomerSlot {
        slot(for: customerId, hash: nudgeHash64(customerId.bytes))
    }

    /// ``slot(for:)`` for a caller that already has the id's `nudgeHash64`.
    @inline(__always)
    public func slot(for customerId: RawText, hash: UInt64) -> CustomerSlot {
        if let slot = hotSlot(customerId, hash: hash) { return slot }
        return admit(customerId, hash: hash, from: cold.find(customerId.bytes, hash: hash))
    }

    /// The slot of `customerId` if the table has seen it, restoring it from the cold tier if it is there
    /// (never creating a customer).
    public func existingSlot(for customerId: RawText) -> CustomerSlot? {
        let hash = nudgeHash64(customerId.bytes)
        if let slot = hotSlot(customerId, hash: hash) { return slot }
        guard let coldEntry = cold.find(customerId.bytes, hash: hash) else { return nil }
        return admit(customerId, hash: hash, from: coldEntry)
    }

    /// The attachment of the cold customer whose id hashes to `hash`, leaving them cold, with their id copied
    /// into `id`; nil when the cold tier holds no such customer. For state the caller keeps by id hash while a
    /// customer is cold (a silence timer): should two cold ids share the hash, the first is found, so check
    /// the attachment is the one expected.
    public func coldCustomer(hash: UInt64, id: inout [UInt8]) -> ColdAttachment? {
        guard let handle = cold.find(hash: hash), let attachment = ColdRecordCodec.attachment(of: cold.payload(of: handle)) else {
            return nil
        }
        id.removeAll(keepingCapacity: true)
        id.append(contentsOf: cold.id(of: handle))
        return attachment
    }

    // MARK: Prefetching

    /// Starts loading the index entry a lookup of the id hashing to `hash` reads first. The first step of
    /// looking a customer up a few events ahead: see ``prefetchRecord(hash:)``.
    @inline(__always)
    public func prefetchIndex(hash: UInt64) {
        index.prefetch(hash: hash)
    }

    /// Starts loading the entry of the customer whose id hashes to `hash`, found through the
    /// index (cheap once ``prefetchIndex(hash:)`` has brought its entry in); returns that slot's index for
    /// state the caller keeps per slot, or nil if no entry carries the hash's tag. Only a hint: a tag can
    /// match another id (1 in 2^32), and the slot is not checked: ``slot(for:hash:)`` decides.
    @inline(__always)
    public func prefetchRecord(hash: UInt64) -> Int? {
        // A short look: most runs are short at load ≤ 3/4, and a long one is not worth stalling on here.
        guard let slot = index.likelySlot(for: hash, within: 4), slot < slotsUsed else { return nil }
        nudge_prefetch_write(entries + slot * entrySize)
        return slot
    }

    /// Starts loading the id bytes and the full record, if any, of the customer in slot `slot` (from
    /// ``prefetchRecord(hash:)``), whose entry should be in the cache by now: the last loads a lookup and
    /// a fold would otherwise wait for.
    @inline(__always)
    public func prefetchId(slot: Int) {
        guard slot >= 0, slot < slotsUsed else { return }
        let entry = entries + slot * entrySize
        // A freed slot's header holds no id: only addresses inside the arena are worth asking for.
        let offset = Int(entry.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self))
        if offset >= 0 && offset < arena.capacity { nudge_prefetch_read(arena.base + offset) }
        guard !isFree(entry) else { return }
        switch CustomerEntry.form(of: entry) {
        case .record: pool.prefetch(CustomerEntry.recordHandle(of: entry))
        case .oneEvent: pool.prefetchNext()
        case .fresh: break
        }
    }

    // MARK: Tiers

    /// Moves hot customers whose newest event is older than `cutoff` (ms; customers with no event count as
    /// older than any cutoff) to the cold tier, freeing their slots, and returns how many moved.
    ///
    /// Examines at most `limit` slots, resuming where the previous call stopped and wrapping around, so a
    /// call costs at most `limit` record reads (about 10 ns each) and `limit` evictions (about 0.6 µs each,
    /// standard features, release build): call it between events with a small limit, e.g. 64.
    ///
    /// `onEvict` is called with each customer's slot as they leave it, for state the caller keeps per slot:
    /// move what should come back with the customer into the attachment (handed to ``onRestore``, or returned
    /// by ``detach(_:)``), and clear the rest, since the slot will be reused for another customer. Slots held
    /// across this call may now belong to nobody or to someone else; a freed slot reads as unknown and
    /// ignores events until it is reused. At most `atMost` are evicted.
    @discardableResult
    public func evictIdle(olderThanMillis cutoff: Int64, limit: Int, atMost: Int = .max,
                          onEvict: (CustomerSlot, inout ColdAttachment) -> Void = { _, _ in }) -> Int {
        sweep(olderThanMillis: cutoff, limit: limit, atMost: atMost, onEvict: onEvict).evicted
    }

    /// ``evictIdle(olderThanMillis:limit:atMost:onEvict:)``, also saying how many slots it examined.
    private func sweep(olderThanMillis cutoff: Int64, limit: Int, atMost: Int,
                       onEvict: (CustomerSlot, inout ColdAttachment) -> Void) -> (evicted: Int, examined: Int) {
        guard slotsUsed > 0, limit > 0 else { return (0, 0) }
        var evicted = 0
        var examined = 0
        for _ in 0..<min(limit, slotsUsed) {
            if evicted >= atMost { break }
            if sweepCursor >= slotsUsed { sweepCursor = 0 }
            examined += 1
            let slot = sweepCursor
            sweepCursor += 1
            let record = entries + slot * entrySize
            guard !isFree(record),
                  record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self) < cutoff,
                  evict(slot, onEvict: onEvict) else { continue }
            evicted += 1
        }
        return (evicted, examined)
    }

    /// Keeps the hot tier within `capacity` customers whatever the input (a flood of new ids included):
    /// past it, moves the customers idle longest to the cold tier, before their idle TTL, until 15/16 of
    /// `capacity` remain. A call examines at most `limit` slots (plus up to 1,024 sampled) and evicts at most
    /// `atMost`, so call it between batches of events with bounds that outpace a batch; it returns how many
    /// it evicted (counted in ``forcedEvictions`` too). `onEvict` is as for
    /// ``evictIdle(olderThanMillis:limit:atMost:onEvict:)``.
    ///
    /// Who is idle longest is estimated: the newest event times of 256 customers picked at random give the
    /// cutoff below which the share to evict lies (plus a margin), and the sweep evicts customers older than
    /// it for one walk of the table; if that walk leaves the tier over its target, a new sample sets a new
    /// cutoff. A sweep cannot find the oldest without walking, and keeping every customer in time order would
    /// cost memory per customer.
    @discardableResult
    public func evictOverCapacity(_ capacity: Int, limit: Int, atMost: Int = .max,
                                  onEvict: (CustomerSlot, inout ColdAttachment) -> Void = { _, _ in }) -> Int {
        let target = capacity - capacity / 16
        guard count > (pressure == nil ? capacity : target) else {
            pressure = nil
            return 0
        }
        // A lap is a walk of as many slots as the table had when sampled, counted by this sweep alone (the TTL
        // sweep moves the same cursor, but checks its own cutoff).
        if pressure.map({ $0.examined >= $0.length }) ?? true {
            pressure = (cutoff: sampledCutoff(evicting: count - target), length: slotsUsed, examined: 0)
        }
        guard let (cutoff, length, examined) = pressure else { return 0 }
        let done = sweep(olderThanMillis: cutoff, limit: min(limit, length - examined), atMost: min(atMost, count - target),
                         onEvict: onEvict)
        forcedEvictions += done.evicted
        pressure = count <= target ? nil : (cutoff, length, examined + done.examined)
        return done.evicted
    }

    /// A newest-event time below which about `share` customers of the hot tier lie (a quarter more, for the
    /// sample's error), from up to 256 picked at random; one past the sample's largest when that is all of them.
    private func sampledCutoff(evicting share: Int) -> Int64 {
        var times: [Int64] = []
        times.reserveCapacity(256)
        for _ in 0..<1_024 where times.count < 256 {
            sampler ^= sampler << 13
            sampler ^= sampler >> 7
            sampler ^= sampler << 17
            let record = entries + Int(sampler % UInt64(slotsUsed)) * entrySize
            if !isFree(record) { times.append(record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)) }
        }
        guard !times.isEmpty else { return .max }
        times.sort()
        let wanted = min(times.count, (share + share / 4) * times.count / max(count, 1) + 1)
        // `<` the cutoff evicts: one past the time at the wanted rank, so that equal times all go.
        return times[wanted - 1] &+ 1
    }

    // MARK: Identity

    /// Where a detached customer was.
    public enum DetachedFrom: Sendable, Equatable {
        /// The hot tier: the slot is freed. Take what the caller keeps per slot, as on eviction.
        case hot(freedSlot: CustomerSlot)
        /// The cold tier, with the attachment the caller gave on eviction.
        case cold(ColdAttachment)
    }

    /// Removes `customerId` from the table, hot or cold, and returns their whole state, to merge into
    /// another customer (see ``merge(_:into:)``), and where it was; nil when the table does not hold them.
    /// Cold path (allocates the copy).
    public func detach(_ customerId: RawText) -> (customer: DetachedCustomer, from: DetachedFrom)? {
        let hash = nudgeHash64(customerId.bytes)
        switch hotSlot(customerId, hash: hash) {
        case .some(let slot):
            let slotIndex = Int(slot.index)
            let entry = entries + slotIndex * entrySize
            let copy = [UInt8](UnsafeRawBufferPointer(start: state(of: entry), count: stride))
            let id = idBytes(entry)
            index.remove(slot: slotIndex, hash: hash, hashOf: idHash)
            release(entry, slot: slotIndex, idBytes: id.count)
            return (DetachedCustomer(record: copy), .hot(freedSlot: slot))
        case .none:
            guard let coldEntry = cold.find(customerId.bytes, hash: hash) else { return nil }
            var copy = [UInt8](repeating: 0, count: stride)
            let attachment = copy.withUnsafeMutableBytes { bytes in
                bytes.baseAddress.flatMap { codec.decode(cold.payload(of: coldEntry), into: $0) }
            }
            cold.remove(coldEntry)
            guard let attachment else {
                restoreFailures += 1
                return nil
            }
            return (DetachedCustomer(record: copy), .cold(attachment))
        }
    }

    /// Folds a detached customer's state into the customer at `slot` (see ``RecordMerge`` for the rules per
    /// aggregation): afterwards the customer's features are those of both customers' events together.
    /// Ignored for a slot this table did not hand out or eviction freed, or state of another layout.
    public func merge(_ detached: DetachedCustomer, into slot: CustomerSlot) {
        guard let entry = entry(of: slot), detached.record.count == stride else { return }
        let target = fullRecord(of: entry)
        defer { mirrorHeader(of: target, into: entry) }
        var source = detached.record
        source.withUnsafeMutableBytes { bytes in
            guard let source = bytes.baseAddress else { return }
            let sourceNewest = source.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
            let targetNewest = target.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
            let newest = max(sourceNewest, targetNewest)
            if targetNewest != .min && newest > targetNewest { advanceRings(target, from: targetNewest, to: newest) }
            if sourceNewest != .min && newest > sourceNewest { advanceRings(source, from: sourceNewest, to: newest) }
            for ring in 0..<plan.rings.count { RecordMerge.combineRing(plan.rings[ring], source, into: target) }
            for updater in 0..<plan.updaters.count { RecordMerge.combineScalar(plan.updaters[updater], source, into: target) }
            if sourceNewest > targetNewest {
                target.storeBytes(of: sourceNewest, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
                target.storeBytes(of: source.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self),
                                  toByteOffset: CustomerRecord.channel, as: UInt8.self)
            }
        }
    }

    /// The customer id stored for `slot` (cold path: builds a String); empty for a slot this table did not
    /// hand out or eviction freed.
    public func customerId(of slot: CustomerSlot) -> String {
        String(decoding: customerIdBytes(of: slot), as: UTF8.self)
    }

    /// The id bytes of `slot`'s customer, without copying: valid until the next call that adds a customer
    /// or evicts one. Empty for a slot this table did not hand out or eviction freed.
    public func customerIdBytes(of slot: CustomerSlot) -> UnsafeRawBufferPointer {
        guard let entry = entry(of: slot) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return idBytes(entry)
    }

    // MARK: Features

    /// Folds one event into the customer's features.
    ///
    /// An event newer than the customer's newest advances every ring to it (clearing the buckets passed).
    /// An out-of-order event lands in its own bucket while that bucket is still in the ring; older events
    /// are outside every window evaluated at or after the newest event, so they only affect lifetime state
    /// (lifetime aggregations, `last`, `timeSinceLast`, gauges). Gauges fold in arrival order. Times are
    /// clamped to ±2^53 ms. Ignored for a slot this table did not hand out or eviction freed.
    ///
    /// `event.properties` must hold the feature set's ``FeatureSet/readProperties`` in that order: decode
    /// with `SegmentDecoder(properties: features.readProperties)`.
    public func apply(_ event: SegmentEvent, to slot: CustomerSlot) {
        assert(features.readProperties.isEmpty || event.properties.count == features.readProperties.count,
               "an event not decoded for this feature set's properties (SegmentDecoder(properties: readProperties))")
        guard let entry = entry(of: slot) else { return }
        let time = CustomerRecord.clampTime(event.timestampMillis)
        // An entry keeps no property read by name: an event carrying one, of a kind some feature reads one on,
        // takes a full record at once.
        if keepsFirstEventInEntry && CustomerEntry.form(of: entry) == .fresh
            && !(plan.propertyKinds.contains(event.kind.rawValue) && event.properties.anyPresent) {
            CustomerEntry.log(event, time: time, hashing: plan.hashedTexts, into: entry)
            return
        }
        let record = fullRecord(of: entry)
        var live = LiveEvent(event)
        fold(&live, kind: event.kind.rawValue, time: time, into: record)
        mirrorHeader(of: record, into: entry)
    }

    /// Folds one event into a full record: the one fold both forms of state share, so a one-event
    /// customer's record rebuilt from their entry is the record folding that event made.
    @inline(__always)
    private func fold<Event: FoldedEvent>(_ event: inout Event, kind: UInt8, time: Int64, into record: UnsafeMutableRawPointer) {
        var newest = record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        if time >= newest {
            if time > newest {
                if newest != .min { advanceRings(record, from: newest, to: time) }
                record.storeBytes(of: time, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
                newest = time
            }
            // Ties go to the later arrival, for the newest time and the last channel alike.
            record.storeBytes(of: event.channel, toByteOffset: CustomerRecord.channel, as: UInt8.self)
        }
        let start = Int(plan.dispatchStart[Int(kind)])
        let end = Int(plan.dispatchStart[Int(kind) + 1])
        guard start < end else { return }
        let updaters = plan.updaters.base
        for position in start..<end {
            let entry = plan.dispatch[position]
            StateUpdater.apply(updaters + Int(entry.updater), &event, time: time, newest: newest, action: entry.gaugeAction,
                               to: record, conditions: plan.conditions.base, conditionHashes: plan.conditionHashes.base)
        }
    }

    /// Feature values as of `atMillis`, in ``FeatureSet`` order, written to the first `features.count`
    /// elements of `output` (fewer if it is shorter).
    ///
    /// Exact under the bucket semantics of ``FeatureWindow`` when `atMillis` is at or after the customer's
    /// newest event (the lead passes max(event time, ``newestEventMillis(of:)``)); at an earlier time,
    /// buckets the rings have already dropped are missing. A slot this table did not hand out, or one
    /// eviction freed, reads as all missing values.
    public func evaluate(_ slot: CustomerSlot, atMillis: Int64, into output: UnsafeMutableBufferPointer<Double>) {
        let readers = plan.readers
        let written = min(output.count, readers.count)
        guard let entry = entry(of: slot) else {
            for position in 0..<written { output[position] = readers[position].missingValue }
            return
        }
        let record = state(of: entry)
        let time = CustomerRecord.clampTime(atMillis)
        let newest = record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        let groups = UnsafePointer(plan.groups.base)
        for group in 0..<plan.groups.count {
            let now = groups[group].resolution.floorDiv(time)
            plan.nows[group] = now
            // Before any event the rings are empty: any head reads nothing.
            plan.heads[group] = newest == .min ? now : groups[group].resolution.floorDiv(newest)
        }
        // Derived features read every value, so without them a long enough output is the scratch itself.
        let values = plan.derived.isEmpty && output.count >= readers.count ? output : plan.values.buffer
        let nows = UnsafePointer(plan.nows.base)
        let heads = UnsafePointer(plan.heads.base)
        let rings = UnsafePointer(plan.rings.base)
        let first = UnsafePointer(readers.base)
        for position in 0..<readers.count {
            values[position] = FeatureReader.value(first + position, of: record, at: time, nows: nows, heads: heads, rings: rings)
        }
        for index in 0..<plan.derived.count {
            let derived = plan.derived[index]
            let reader = first + Int(derived)
            let result = ExpressionMachine.run(plan.program.base, from: Int(reader.pointee.programStart), to: Int(reader.pointee.programEnd),
                                               values: values, stack: plan.stack.base)
            values[Int(derived)] = result.isFinite ? min(result, reader.pointee.cap) : reader.pointee.missingValue
        }
        if values.baseAddress != output.baseAddress {
            for position in 0..<written { output[position] = values[position] }
        }
    }

    /// Channel of the customer's newest event by event time (ties: the later arrival); nil before any event.
    public func lastChannel(of slot: CustomerSlot) -> Channel? {
        guard let entry = entry(of: slot) else { return nil }
        return Channel(rawValue: entry.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self))
    }

    /// Newest event time applied to the customer (clamped to ±2^53); `Int64.min` before any event, so
    /// `max(eventTime, newestEventMillis(of:))` is always the right evaluation time.
    public func newestEventMillis(of slot: CustomerSlot) -> Int64 {
        guard let entry = entry(of: slot) else { return .min }
        return entry.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
    }

    // MARK: Internals

    /// Moves every ring from the bucket of `old` to the bucket of `new` (> old), resolution by resolution.
    @inline(__always)
    private func advanceRings(_ record: UnsafeMutableRawPointer, from old: Int64, to new: Int64) {
        let groups = UnsafePointer(plan.groups.base)
        let count = plan.groups.count
        let rings = UnsafePointer(plan.rings.base)
        var group = 0
        while group < count {
            let before = groups[group].resolution.floorDiv(old)
            let after = groups[group].resolution.floorDiv(new)
            if before == after {
                // Same bucket here, so the same bucket in every coarser group this one divides.
                while group + 1 < count && groups[group].nestsIntoNext { group += 1 }
            } else {
                for ring in groups[group].ringStart..<groups[group].ringEnd {
                    BucketRing.advance(rings + ring, record, from: before, to: after)
                }
            }
            group += 1
        }
    }

    /// The entry of `slot`, nil for a slot this table did not hand out or eviction freed (the channel byte
    /// shares the cache line every caller reads next, so the check is nearly free).
    @inline(__always)
    private func entry(of slot: CustomerSlot) -> UnsafeMutableRawPointer? {
        let index = Int(slot.index)
        guard index >= 0, index < slotsUsed else { return nil }
        let entry = entries + index * entrySize
        return isFree(entry) ? nil : entry
    }

    /// The customer's feature record, to read until the next call on the table: the template, their full
    /// record, or their one event folded into a copy of the template in the scratch.
    @inline(__always)
    private func state(of entry: UnsafeRawPointer) -> UnsafeRawPointer {
        switch CustomerEntry.form(of: entry) {
        case .fresh:
            return UnsafeRawPointer(template)
        case .record:
            return UnsafeRawPointer(pool.record(CustomerEntry.recordHandle(of: entry)))
        case .oneEvent:
            rebuild(entry, into: scratch)
            return UnsafeRawPointer(scratch)
        }
    }

    /// Writes the record a one-event entry stands for into `record`: the template with the event folded in.
    @inline(__always)
    private func rebuild(_ entry: UnsafeRawPointer, into record: UnsafeMutableRawPointer) {
        record.copyMemory(from: template, byteCount: stride)
        var logged = LoggedEvent(entry)
        fold(&logged, kind: logged.kind, time: logged.time, into: record)
    }

    /// The customer's full record, giving them one from the pool first if they have none.
    @inline(__always)
    private func fullRecord(of entry: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let form = CustomerEntry.form(of: entry)
        if form == .record {
            return pool.record(CustomerEntry.recordHandle(of: entry))
        }
        let handle = pool.take()
        let record = pool.record(handle)
        if form == .oneEvent {
            rebuild(entry, into: record)
        } else {
            record.copyMemory(from: template, byteCount: stride)
        }
        entry.storeBytes(of: UInt32(handle), toByteOffset: CustomerEntry.recordHandle, as: UInt32.self)
        CustomerEntry.setForm(.record, of: entry)
        return record
    }

    /// Copies a full record's newest time and channel into its entry, which answers for both.
    @inline(__always)
    private func mirrorHeader(of record: UnsafeRawPointer, into entry: UnsafeMutableRawPointer) {
        entry.storeBytes(of: record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self),
                         toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        entry.storeBytes(of: record.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self),
                         toByteOffset: CustomerRecord.channel, as: UInt8.self)
    }

    /// Frees a hot customer's entry (already out of the index) and their full record, if any.
    private func release(_ entry: UnsafeMutableRawPointer, slot: Int, idBytes: Int) {
        if CustomerEntry.form(of: entry) == .record {
            pool.free(CustomerEntry.recordHandle(of: entry))
        }
        // Every byte of a free slot's id region is dead until an id reuses it.
        arena.free(idBytes)
        FreeRecord.free(entry, next: freeHead)
        freeHead = slot
        count -= 1
    }

    private func idBytes(_ record: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        arena.bytes(at: Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self)),
                    count: Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self)))
    }

    /// The hot slot of `id` (hash `hash`), if it has one.
    @inline(__always)
    private func hotSlot(_ id: RawText, hash: UInt64) -> CustomerSlot? {
        index.slot(for: hash) { idMatches(Int32(truncatingIfNeeded: $0), id) }.map { CustomerSlot(index: Int32(truncatingIfNeeded: $0)) }
    }

    /// The nudgeHash64 of the id in `slot` (the index keeps only half of it: re-homing asks for the rest).
    private func idHash(_ slot: Int) -> UInt64 { nudgeHash64(idBytes(entries + slot * entrySize)) }

    @inline(__always)
    private func idMatches(_ slot: Int32, _ id: RawText) -> Bool {
        let record = entries + Int(slot) * entrySize
        let length = Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self))
        guard length == id.bytes.count else { return false }
        guard length > 0, let candidate = id.bytes.baseAddress else { return true }
        let stored = arena.base + Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self))
        return memcmp(stored, candidate, length) == 0
    }

    /// Gives `id` (hash `hash`, not in the hot tier) a slot, filled from `coldEntry` if given (which then leaves
    /// the cold tier), else fresh. The cold path of ``slot(for:)``.
    @inline(never)
    private func admit(_ id: RawText, hash: UInt64, from coldEntry: ColdCustomers.Handle?) -> CustomerSlot {
        let (slot, freedRegion) = takeSlot()
        let entry = entries + slot * entrySize
        // No id until `place` writes it: an arena rebuild on the way must find an empty one here.
        entry.storeBytes(of: 0, toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        entry.storeBytes(of: 0, toByteOffset: CustomerRecord.idLength, as: UInt32.self)
        entry.storeBytes(of: Int64.min, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        entry.storeBytes(of: CustomerRecord.noChannel, toByteOffset: CustomerRecord.channel, as: UInt8.self)
        CustomerEntry.setForm(.fresh, of: entry)
        var attachment: ColdAttachment?
        if let coldEntry {
            // A restored customer comes back with a full record: the cold tier keeps records, not events.
            let record = fullRecord(of: entry)
            attachment = codec.decode(cold.payload(of: coldEntry), into: record)
            if attachment != nil {
                restores += 1
            } else {
                record.copyMemory(from: template, byteCount: stride)
                restoreFailures += 1
            }
            mirrorHeader(of: record, into: entry)
            cold.remove(coldEntry)
        }
        place(id.bytes, in: slot, reusing: freedRegion)
        index.insert(slot: slot, hash: hash, hashOf: idHash)
        count += 1
        let restored = CustomerSlot(index: Int32(slot))
        if let attachment, attachment.count > 0 { onRestore?(restored, attachment) }
        return restored
    }

    /// The most recently freed slot, with its old id's arena bytes, or a new slot at the end of the entries.
    /// The entry is unspecified until the caller fills it.
    private func takeSlot() -> (slot: Int, freed: IdRegion?) {
        if freeHead >= 0 {
            let slot = freeHead
            let record = entries + slot * entrySize
            freeHead = FreeRecord.next(record)
            return (slot, FreeRecord.region(record))
        }
        reserveEntries(slotsUsed + 1)
        slotsUsed += 1
        return (slotsUsed - 1, nil)
    }

    /// Writes `id` into the arena for `slot` (whose record is filled): into the old id bytes of the freed
    /// slot it took when it fits there (ids are usually of one shape, so churn rarely leaves dead bytes),
    /// else appended.
    private func place(_ id: UnsafeRawBufferPointer, in slot: Int, reusing freed: IdRegion?) {
        let length = id.count
        let offset: Int
        if let freed, freed.length >= length {
            offset = freed.offset
            arena.revive(length)
            if length > 0, let source = id.baseAddress { (arena.base + offset).copyMemory(from: source, byteCount: length) }
        } else {
            offset = arena.append(id, relocatingLive: relocateIds)
        }
        let record = entries + slot * entrySize
        record.storeBytes(of: Int64(offset), toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        record.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: CustomerRecord.idLength, as: UInt32.self)
    }

    /// Moves the hot customer at `slot` to the cold tier, with the attachment `onEvict` fills; false (nothing
    /// changes, `onEvict` is not called) only if LZ4 fails.
    private func evict(_ slot: Int, onEvict: (CustomerSlot, inout ColdAttachment) -> Void) -> Bool {
        let entry = entries + slot * entrySize
        let id = idBytes(entry)
        let hash = nudgeHash64(id)
        let payload = codec.encode(state(of: entry)) {
            var attachment = ColdAttachment()
            onEvict(CustomerSlot(index: Int32(slot)), &attachment)
            return attachment
        }
        guard let payload else { return false }
        cold.insert(id: id, hash: hash, payload: payload)
        index.remove(slot: slot, hash: hash, hashOf: idHash)
        release(entry, slot: slot, idBytes: id.count)
        evictions += 1
        return true
    }

    private func reserveEntries(_ customers: Int) {
        guard customers > entryCapacity else { return }
        let capacity = max(entryCapacity * 2, customers)
        entriesBuffer = entriesBuffer.grown(toByteCount: capacity * entrySize, keeping: slotsUsed * entrySize)
        entries = entriesBuffer.base
        entryCapacity = capacity
    }

    /// Walks the entries for an arena move: live ids move, free slots forget their old region (it does not
    /// survive the move).
    private func relocateIds(_ move: (Int, Int) -> Int) {
        for slot in 0..<slotsUsed {
            let record = entries + slot * entrySize
            guard !isFree(record) else {
                FreeRecord.forgetRegion(record)
                continue
            }
            let offset = move(Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self)),
                              Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self)))
            record.storeBytes(of: Int64(offset), toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        }
    }

    @inline(__always)
    private func isFree(_ record: UnsafeRawPointer) -> Bool { FreeRecord.isFree(record) }
}

/// A ``FeatureLayout`` copied into fixed buffers, plus evaluation scratch, owned by one table: the hot path
/// reads plain memory, never an Array (no retains, no bounds checks, no copy-on-write checks).
private final class CompiledPlan {
    let updaters: FixedArray<StateUpdater>
    let dispatchStart: FixedArray<Int32>
    let dispatch: FixedArray<DispatchEntry>
    let groups: FixedArray<ResolutionGroup>
    let rings: FixedArray<BucketRing>
    let readers: FixedArray<FeatureReader>
    let conditions: FixedArray<CompiledCondition>
    let conditionHashes: FixedArray<UInt64>
    let program: FixedArray<ExpressionStep>
    /// Positions of derived features, in order.
    let derived: FixedArray<Int32>
    /// Scratch: floor(t / r) and floor(newest / r) per group, every value, the expression stack.
    let nows: FixedArray<Int64>
    let heads: FixedArray<Int64>
    let values: FixedArray<Double>
    let stack: FixedArray<Double>
    /// Bytes held.
    let bytes: Int
    /// The text fields whose hashes some fold reads (``CustomerEntry/textBit(_:)``): a kept first event
    /// hashes only those.
    let hashedTexts: UInt8
    /// The kinds (raw values) on which some fold reads a property by name: a first event of such a kind that
    /// carries one cannot be kept in the entry.
    let propertyKinds: ByteSet
    private let allocations: [UnsafeMutableRawPointer]

    init(_ layout: FeatureLayout) {
        var total = 0
        var allocations: [UnsafeMutableRawPointer] = []
        func copy<T>(_ array: [T]) -> FixedArray<T> {
            let fixed = FixedArray(array)
            total += max(array.count, 1) * MemoryLayout<T>.stride
            allocations.append(UnsafeMutableRawPointer(fixed.base))
            return fixed
        }
        updaters = copy(layout.updaters)
        dispatchStart = copy(layout.dispatchStart)
        dispatch = copy(layout.dispatch)
        groups = copy(layout.groups)
        rings = copy(layout.groupRings)
        readers = copy(layout.readers)
        conditions = copy(layout.conditions)
        conditionHashes = copy(layout.conditionHashes)
        program = copy(layout.program)
        derived = copy(layout.readers.indices.filter { layout.readers[$0].operation == .derived }.map { Int32($0) })
        nows = copy([Int64](repeating: 0, count: layout.groups.count))
        heads = copy([Int64](repeating: 0, count: layout.groups.count))
        values = copy([Double](repeating: 0, count: layout.readers.count))
        stack = copy([Double](repeating: 0, count: layout.stackDepth))
        bytes = total
        self.allocations = allocations
        var hashed: UInt8 = 0
        for updater in layout.updaters where updater.operation == .ringBits || updater.operation == .lifetimeBits {
            hashed |= CustomerEntry.textBit(updater.textField)
        }
        for condition in layout.conditions where condition.test != .number { hashed |= CustomerEntry.textBit(condition.textField) }
        hashedTexts = hashed
        var propertyKinds = ByteSet()
        for kind in 0..<max(layout.dispatchStart.count - 1, 0) {
            let entries = layout.dispatch[Int(layout.dispatchStart[kind])..<Int(layout.dispatchStart[kind + 1])]
            if entries.contains(where: { layout.updaters[Int($0.updater)].readsProperty(layout.conditions) }) {
                propertyKinds.insert(UInt8(kind))
            }
        }
        self.propertyKinds = propertyKinds
    }

    deinit {
        // Every element type here is trivial: nothing to deinitialize.
        for allocation in allocations { allocation.deallocate() }
    }
}

/// A fixed-size copy of an array in manually managed memory (freed by its owner), indexed without checks
/// beyond the hot path's own logic.
struct FixedArray<Element> {
    /// First element; valid even when `count` is 0 (one element is always allocated).
    let base: UnsafeMutablePointer<Element>
    let count: Int

    init(_ array: [Element]) {
        base = .allocate(capacity: max(array.count, 1))
        count = array.count
        for (index, element) in array.enumerated() { (base + index).initialize(to: element) }
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    subscript(position: Int) -> Element {
        get { base[position] }
        nonmutating set { base[position] = newValue }
    }

    /// All elements, for the code that takes buffers.
    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }
}
