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
///   (newest event time, last channel, id location and hash) then the feature state;
/// - the **arena**: customer id bytes, appended once when a customer is first seen;
/// - the **index**: open addressing (linear probing, load ≤ 1/2) from nudgeHash64 of the id to the slot.
///
/// The hot path (``slot(for:)`` on a known customer, ``apply(_:to:)``, ``evaluate(_:atMillis:into:)``)
/// does not allocate; creating a customer allocates only when a buffer doubles. Slots are dense and stable,
/// which leaves room for an identity merge (fold one record into another) and for snapshots (the slab and
/// arena are contiguous; the index is rebuilt from the hashes in the records).
public final class CustomerTable {
    /// The features every record holds.
    public let features: FeatureSet

    private let kernels: UnsafeMutableBufferPointer<FeatureKernel>
    private let stride: Int
    /// A fresh record, copied into the slab for each new customer.
    private let template: UnsafeMutableRawPointer

    private var slab: UnsafeMutableRawPointer
    private var slabCapacity: Int
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int
    private var arenaUsed = 0
    private var indexHashes: UnsafeMutablePointer<UInt64>
    private var indexSlots: UnsafeMutablePointer<Int32>
    private var indexCapacity: Int
    private var indexShift: UInt64

    /// Number of customers in the table.
    public private(set) var count = 0

    /// Empty index position.
    private static let vacant: Int32 = -1
    /// Typical customer id length, for the arena's first size.
    private static let expectedIdBytes = 24

    /// A table for `features`, sized for `expectedCustomers` before its first growth.
    public init(features: FeatureSet, expectedCustomers: Int = 1 << 16) {
        self.features = features
        let layout = features.layout
        stride = layout.stride
        kernels = .allocate(capacity: layout.kernels.count)
        _ = kernels.initialize(from: layout.kernels)
        template = .allocate(byteCount: layout.stride, alignment: 16)
        UnsafeMutableRawBufferPointer(start: template, count: layout.stride).copyBytes(from: layout.template)

        let customers = min(max(expectedCustomers, 16), 1 << 30)
        slabCapacity = customers
        slab = .allocate(byteCount: customers * stride, alignment: 16)
        arenaCapacity = customers * Self.expectedIdBytes
        arena = .allocate(byteCount: arenaCapacity, alignment: 16)
        indexCapacity = Self.indexCapacity(for: customers)
        indexShift = UInt64(64 - indexCapacity.trailingZeroBitCount)
        indexHashes = .allocate(capacity: indexCapacity)
        indexSlots = .allocate(capacity: indexCapacity)
        indexSlots.initialize(repeating: Self.vacant, count: indexCapacity)
        indexHashes.initialize(repeating: 0, count: indexCapacity)
    }

    deinit {
        kernels.deallocate()
        template.deallocate()
        slab.deallocate()
        arena.deallocate()
        indexHashes.deallocate()
        indexSlots.deallocate()
    }

    /// Bytes allocated for this table (slab, arena and index capacity, not just what is filled): what the
    /// process really holds for it, the figure for memory limits and metrics.
    public var bytesUsed: Int {
        slabCapacity * stride + arenaCapacity + indexCapacity * (MemoryLayout<UInt64>.stride + MemoryLayout<Int32>.stride)
            + stride + kernels.count * MemoryLayout<FeatureKernel>.stride
    }

    // MARK: Identity

    /// Finds or creates the slot of `customerId`. Copies the id bytes into the arena only on creation.
    ///
    /// Slot indexes are `Int32`: 2^31 customers in one shard would need terabytes before reaching the limit.
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
        let bytes = UnsafeRawBufferPointer(start: arena + Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self)),
                                           count: Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self)))
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Features

    /// Folds one event into the customer's features.
    ///
    /// Windowed aggregations put an out-of-order event in its own bucket while that bucket is still in the
    /// ring; older events only affect lifetime state (lifetime counts and sums, `last`, `timeSinceLast`,
    /// gauges). Gauges fold in arrival order. Times are clamped to ±2^53 ms.
    public func apply(_ event: SegmentEvent, to slot: CustomerSlot) {
        guard let record = record(of: slot) else { return }
        let time = CustomerRecord.clampTime(event.timestampMillis)
        let kind = event.kind.rawValue
        let channel = event.channel.rawValue
        if time >= record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self) {
            // Ties go to the later arrival, for the newest time and the last channel alike.
            record.storeBytes(of: time, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
            record.storeBytes(of: channel, toByteOffset: CustomerRecord.channel, as: UInt8.self)
            record.storeBytes(of: 1, toByteOffset: CustomerRecord.hasChannel, as: UInt8.self)
        }
        for kernel in kernels {
            kernel.apply(kind: kind, channel: channel, time: time, event: event, to: record)
        }
    }

    /// Feature values as of `atMillis`, in ``FeatureSet`` order, written to the first `features.count`
    /// elements of `output` (fewer if it is shorter).
    ///
    /// Exact under the bucket semantics of ``FeatureWindow`` when `atMillis` is at or after the customer's
    /// newest event (the lead passes max(event time, ``newestEventMillis(of:)``)); at an earlier time,
    /// buckets the ring has already dropped are missing. A slot this table did not hand out reads as
    /// all missing values.
    public func evaluate(_ slot: CustomerSlot, atMillis: Int64, into output: UnsafeMutableBufferPointer<Double>) {
        let written = min(output.count, kernels.count)
        guard let record = record(of: slot) else {
            for position in 0..<written { output[position] = kernels[position].missingValue }
            return
        }
        let time = CustomerRecord.clampTime(atMillis)
        for position in 0..<written {
            output[position] = kernels[position].value(of: record, at: time)
        }
    }

    /// Channel of the customer's newest event by event time (ties: the later arrival); nil before any event.
    public func lastChannel(of slot: CustomerSlot) -> Channel? {
        guard let record = record(of: slot),
              record.load(fromByteOffset: CustomerRecord.hasChannel, as: UInt8.self) != 0 else { return nil }
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

    @inline(__always)
    private func record(of slot: CustomerSlot) -> UnsafeMutableRawPointer? {
        let index = Int(slot.index)
        guard index >= 0, index < count else { return nil }
        return slab + index * stride
    }

    /// Fibonacci hashing: the top bits of hash × 2^64/φ, so weak low bits in the id hash do not cluster.
    @inline(__always)
    private func home(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> indexShift)
    }

    @inline(__always)
    private func probe(_ id: RawText, hash: UInt64) -> Probe {
        let mask = indexCapacity - 1
        var position = home(hash)
        while true {
            let slot = indexSlots[position]
            if slot == Self.vacant { return .vacant(position) }
            if indexHashes[position] == hash, idMatches(slot, id) { return .found(CustomerSlot(index: slot)) }
            position = (position + 1) & mask
        }
    }

    private func vacantPosition(for hash: UInt64) -> Int {
        let mask = indexCapacity - 1
        var position = home(hash)
        while indexSlots[position] != Self.vacant { position = (position + 1) & mask }
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
        record.storeBytes(of: hash, toByteOffset: CustomerRecord.idHash, as: UInt64.self)
        record.storeBytes(of: UInt32(length), toByteOffset: CustomerRecord.idLength, as: UInt32.self)
        arenaUsed += length
        indexHashes[position] = hash
        indexSlots[position] = slot.index
        count += 1
        return slot
    }

    private static func indexCapacity(for customers: Int) -> Int {
        var capacity = 32
        while capacity < customers * 2 { capacity *= 2 }
        return capacity
    }

    /// Doubles the index and reinserts every customer from the hashes kept in the records.
    private func growIndex() {
        indexHashes.deallocate()
        indexSlots.deallocate()
        indexCapacity *= 2
        indexShift = UInt64(64 - indexCapacity.trailingZeroBitCount)
        indexHashes = .allocate(capacity: indexCapacity)
        indexSlots = .allocate(capacity: indexCapacity)
        indexSlots.initialize(repeating: Self.vacant, count: indexCapacity)
        indexHashes.initialize(repeating: 0, count: indexCapacity)
        for slot in 0..<count {
            let hash = (slab + slot * stride).load(fromByteOffset: CustomerRecord.idHash, as: UInt64.self)
            let position = vacantPosition(for: hash)
            indexHashes[position] = hash
            indexSlots[position] = Int32(slot)
        }
    }

    private func reserveSlab(_ customers: Int) {
        guard customers > slabCapacity else { return }
        let capacity = max(slabCapacity * 2, customers)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity * stride, alignment: 16)
        grown.copyMemory(from: slab, byteCount: count * stride)
        slab.deallocate()
        slab = grown
        slabCapacity = capacity
    }

    private func reserveArena(_ bytes: Int) {
        guard bytes > arenaCapacity else { return }
        let capacity = max(arenaCapacity * 2, bytes)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        grown.copyMemory(from: arena, byteCount: arenaUsed)
        arena.deallocate()
        arena = grown
        arenaCapacity = capacity
    }
}
