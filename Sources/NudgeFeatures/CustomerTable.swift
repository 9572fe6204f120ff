#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NudgeEvents

/// A customer's place in one ``CustomerTable``: valid only for the table that handed it out.
public struct CustomerSlot: Sendable, Hashable {
    /// Position of the customer's record in the table's slab (dense, in order of first sight).
    public let index: Int32

    init(index: Int32) { self.index = index }
}

/// One shard's customers: identity index plus feature state, for a single writer.
///
/// Each shard thread owns one table and makes every call on it, so it has no locks and is not `Sendable`.
/// Memory is three growable buffers and nothing per customer:
/// - the **slab**: one fixed-stride record per customer (``FeatureSet/bytesPerCustomer``): header
///   (newest event time, last channel, id location) then the packed feature state (see ``FeatureLayout``);
/// - the **arena**: customer id bytes, appended once when a customer is first seen;
/// - the **index**: open addressing (linear probing, load ≤ 1/2) of 8-byte entries, the upper 32 bits of the
///   id's nudgeHash64 beside the slot, so a probe reads one word and compares id bytes only on a tag match.
///
/// The hot path (``slot(for:)`` on a known customer, ``apply(_:to:)``, ``evaluate(_:atMillis:into:)``)
/// does not allocate; creating a customer allocates only when a buffer grows. Slots are dense and stable,
/// which leaves room for an identity merge (fold one record into another) and for snapshots (the slab and
/// arena are contiguous; the index is rebuilt by hashing the ids again).
public final class CustomerTable {
    /// The features every record holds.
    public let features: FeatureSet

    private let stride: Int
    /// A fresh record, copied into the slab for each new customer.
    private let template: UnsafeMutableRawPointer
    private let plan: CompiledPlan

    @exclusivity(unchecked) private var slabBuffer: LargeBuffer
    @exclusivity(unchecked) private var slab: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var slabCapacity: Int
    @exclusivity(unchecked) private var arenaBuffer: LargeBuffer
    @exclusivity(unchecked) private var arena: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var arenaCapacity: Int
    @exclusivity(unchecked) private var arenaUsed = 0
    @exclusivity(unchecked) private var indexBuffer: LargeBuffer
    @exclusivity(unchecked) private var index: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var indexCapacity: Int
    @exclusivity(unchecked) private var indexShift: UInt64

    /// Number of customers in the table.
    @exclusivity(unchecked) public private(set) var count = 0

    /// Empty index entry (slot bits all ones: no slot reaches 2^32 - 1).
    private static let vacant = UInt64.max
    /// Typical customer id length, for the arena's first size.
    private static let expectedIdBytes = 24

    /// A table for `features`, sized for `expectedCustomers` before its first growth.
    public init(features: FeatureSet, expectedCustomers: Int = 1 << 16) {
        self.features = features
        let layout = features.layout
        stride = layout.stride
        plan = CompiledPlan(layout)
        template = .allocate(byteCount: layout.stride, alignment: 16)
        UnsafeMutableRawBufferPointer(start: template, count: layout.stride).copyBytes(from: layout.template)

        let customers = min(max(expectedCustomers, 16), 1 << 30)
        slabCapacity = customers
        slabBuffer = LargeBuffer(byteCount: customers * stride)
        slab = slabBuffer.base
        arenaCapacity = customers * Self.expectedIdBytes
        arenaBuffer = LargeBuffer(byteCount: arenaCapacity)
        arena = arenaBuffer.base
        indexCapacity = Self.indexCapacity(for: customers)
        indexShift = UInt64(64 - indexCapacity.trailingZeroBitCount)
        indexBuffer = LargeBuffer(byteCount: indexCapacity * MemoryLayout<UInt64>.stride)
        index = indexBuffer.base.bindMemory(to: UInt64.self, capacity: indexCapacity)
        index.initialize(repeating: Self.vacant, count: indexCapacity)
    }

    deinit {
        template.deallocate()
        slabBuffer.release()
        arenaBuffer.release()
        indexBuffer.release()
    }

    /// Bytes allocated for this table (slab, arena and index capacity, not just what is filled, plus the
    /// compiled features): what the process really holds for it, the figure for memory limits and metrics.
    public var bytesUsed: Int {
        slabCapacity * stride + arenaCapacity + indexCapacity * MemoryLayout<UInt64>.stride + stride + plan.bytes
    }

    // MARK: Identity

    /// Finds or creates the slot of `customerId`. Copies the id bytes into the arena only on creation.
    ///
    /// Slot indexes are `Int32`: 2^31 customers in one shard would need hundreds of gigabytes first.
    public func slot(for customerId: RawText) -> CustomerSlot {
        let hash = nudgeHash64(customerId.bytes)
        switch probe(customerId, hash: hash) {
        case .found(let slot):
            return slot
        case .vacant(var position):
            if (count + 1) * 2 > indexCapacity {
                growIndex()
                position = vacantPosition(for: hash)
            }
            return insert(customerId, hash: hash, at: position)
        }
    }

    /// The slot of `customerId` if the table has seen it.
    public func existingSlot(for customerId: RawText) -> CustomerSlot? {
        if case .found(let slot) = probe(customerId, hash: nudgeHash64(customerId.bytes)) { return slot }
        return nil
    }

    /// The customer id stored for `slot` (cold path: builds a String); empty for a slot this table did not
    /// hand out.
    public func customerId(of slot: CustomerSlot) -> String {
        guard let record = record(of: slot) else { return "" }
        return String(decoding: idBytes(record), as: UTF8.self)
    }

    // MARK: Features

    /// Folds one event into the customer's features.
    ///
    /// An event newer than the customer's newest advances every ring to it (clearing the buckets passed).
    /// An out-of-order event lands in its own bucket while that bucket is still in the ring; older events
    /// are outside every window evaluated at or after the newest event, so they only affect lifetime state
    /// (lifetime aggregations, `last`, `timeSinceLast`, gauges). Gauges fold in arrival order. Times are
    /// clamped to ±2^53 ms.
    public func apply(_ event: SegmentEvent, to slot: CustomerSlot) {
        guard let record = record(of: slot) else { return }
        let time = CustomerRecord.clampTime(event.timestampMillis)
        var newest = record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
        if time >= newest {
            if time > newest {
                if newest != .min { advanceRings(record, from: newest, to: time) }
                record.storeBytes(of: time, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
                newest = time
            }
            // Ties go to the later arrival, for the newest time and the last channel alike.
            record.storeBytes(of: event.channel.rawValue, toByteOffset: CustomerRecord.channel, as: UInt8.self)
        }
        let kind = Int(event.kind.rawValue)
        let start = Int(plan.dispatchStart[kind])
        let end = Int(plan.dispatchStart[kind + 1])
        guard start < end else { return }
        let updaters = plan.updaters.base
        var hashes = EventHashes()
        for position in start..<end {
            let entry = plan.dispatch[position]
            StateUpdater.apply(updaters + Int(entry.updater), event, time: time, newest: newest, action: entry.gaugeAction,
                               to: record, hashes: &hashes, conditions: plan.conditions.base,
                               conditionHashes: plan.conditionHashes.base)
        }
    }

    /// Feature values as of `atMillis`, in ``FeatureSet`` order, written to the first `features.count`
    /// elements of `output` (fewer if it is shorter).
    ///
    /// Exact under the bucket semantics of ``FeatureWindow`` when `atMillis` is at or after the customer's
    /// newest event (the lead passes max(event time, ``newestEventMillis(of:)``)); at an earlier time,
    /// buckets the rings have already dropped are missing. A slot this table did not hand out reads as
    /// all missing values.
    public func evaluate(_ slot: CustomerSlot, atMillis: Int64, into output: UnsafeMutableBufferPointer<Double>) {
        let readers = plan.readers
        let written = min(output.count, readers.count)
        guard let record = record(of: slot) else {
            for position in 0..<written { output[position] = readers[position].missingValue }
            return
        }
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
        guard let record = record(of: slot) else { return nil }
        return Channel(rawValue: record.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self))
    }

    /// Newest event time applied to the customer (clamped to ±2^53); `Int64.min` before any event, so
    /// `max(eventTime, newestEventMillis(of:))` is always the right evaluation time.
    public func newestEventMillis(of slot: CustomerSlot) -> Int64 {
        guard let record = record(of: slot) else { return .min }
        return record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self)
    }

    // MARK: Internals

    private enum Probe {
        case found(CustomerSlot)
        case vacant(Int)
    }

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

    @inline(__always)
    private func record(of slot: CustomerSlot) -> UnsafeMutableRawPointer? {
        let index = Int(slot.index)
        guard index >= 0, index < count else { return nil }
        return slab + index * stride
    }

    private func idBytes(_ record: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: arena + Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self)),
                               count: Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self)))
    }

    /// Fibonacci hashing: the top bits of hash × 2^64/φ, so weak low bits in the id hash do not cluster.
    @inline(__always)
    private func home(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> indexShift)
    }

    @inline(__always)
    private static func entry(tag hash: UInt64, slot: Int32) -> UInt64 {
        (hash & 0xFFFF_FFFF_0000_0000) | UInt64(UInt32(bitPattern: slot))
    }

    @inline(__always)
    private func probe(_ id: RawText, hash: UInt64) -> Probe {
        let mask = indexCapacity - 1
        let tag = hash & 0xFFFF_FFFF_0000_0000
        var position = home(hash)
        while true {
            let entry = index[position]
            if entry == Self.vacant { return .vacant(position) }
            if entry & 0xFFFF_FFFF_0000_0000 == tag {
                let slot = Int32(bitPattern: UInt32(truncatingIfNeeded: entry))
                if idMatches(slot, id) { return .found(CustomerSlot(index: slot)) }
            }
            position = (position + 1) & mask
        }
    }

    private func vacantPosition(for hash: UInt64) -> Int {
        let mask = indexCapacity - 1
        var position = home(hash)
        while index[position] != Self.vacant { position = (position + 1) & mask }
        return position
    }

    @inline(__always)
    private func idMatches(_ slot: Int32, _ id: RawText) -> Bool {
        let record = slab + Int(slot) * stride
        let length = Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self))
        guard length == id.bytes.count else { return false }
        guard length > 0, let candidate = id.bytes.baseAddress else { return true }
        let stored = arena + Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self))
        return memcmp(stored, candidate, length) == 0
    }

    private func insert(_ id: RawText, hash: UInt64, at position: Int) -> CustomerSlot {
        let length = id.bytes.count
        reserveSlab(count + 1)
        reserveArena(arenaUsed + length)
        if length > 0, let source = id.bytes.baseAddress {
            (arena + arenaUsed).copyMemory(from: source, byteCount: length)
        }
        let slot = CustomerSlot(index: Int32(count))
        let record = slab + count * stride
        record.copyMemory(from: template, byteCount: stride)
        record.storeBytes(of: Int64(arenaUsed), toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        record.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: CustomerRecord.idLength, as: UInt32.self)
        arenaUsed += length
        index[position] = Self.entry(tag: hash, slot: slot.index)
        count += 1
        return slot
    }

    private static func indexCapacity(for customers: Int) -> Int {
        var capacity = 32
        while capacity < customers * 2 { capacity *= 2 }
        return capacity
    }

    /// Doubles the index and reinserts every customer, hashing the ids again (growth is rare; records stay
    /// smaller without a stored hash).
    private func growIndex() {
        indexBuffer.release()
        indexCapacity *= 2
        indexShift = UInt64(64 - indexCapacity.trailingZeroBitCount)
        indexBuffer = LargeBuffer(byteCount: indexCapacity * MemoryLayout<UInt64>.stride)
        index = indexBuffer.base.bindMemory(to: UInt64.self, capacity: indexCapacity)
        index.initialize(repeating: Self.vacant, count: indexCapacity)
        for slot in 0..<count {
            let hash = nudgeHash64(idBytes(slab + slot * stride))
            index[vacantPosition(for: hash)] = Self.entry(tag: hash, slot: Int32(slot))
        }
    }

    private func reserveSlab(_ customers: Int) {
        guard customers > slabCapacity else { return }
        let capacity = max(slabCapacity * 2, customers)
        let grown = LargeBuffer(byteCount: capacity * stride)
        grown.base.copyMemory(from: slab, byteCount: count * stride)
        slabBuffer.release()
        slabBuffer = grown
        slab = grown.base
        slabCapacity = capacity
    }

    private func reserveArena(_ bytes: Int) {
        guard bytes > arenaCapacity else { return }
        let capacity = max(arenaCapacity * 2, bytes)
        let grown = LargeBuffer(byteCount: capacity)
        grown.base.copyMemory(from: arena, byteCount: arenaUsed)
        arenaBuffer.release()
        arenaBuffer = grown
        arena = grown.base
        arenaCapacity = capacity
    }
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
