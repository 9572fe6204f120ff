#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NudgeEvents

/// One link from an anonymous id to the known customer (`userId`) it belongs to, as a value: what
/// ``IdentityLinks`` hands out when it forgets or removes one (it stores links otherwise).
public struct IdentityLink: Sendable {
    /// The anonymous id's bytes, then the user id's.
    private let ids: [UInt8]
    private let anonymousLength: Int
    /// nudgeHash64 of the user id: which shard owns the customer.
    public let userHash: UInt64
    /// This shard owns the anonymous id: it routes the id's events to the customer, and tells the customer's
    /// shard when it forgets the link. Otherwise the shard owns the customer and only resolves the id.
    public let routes: Bool
    /// Newest event time the link resolved an anonymous event (or was made at): for expiry. Events that carry
    /// both ids do not count: a link lives while its anonymous id still sends events of its own.
    public let lastUsedMillis: Int64
    /// Which link this is, as numbered by the customer's shard when it made it: an unlink names it, so that a
    /// late unlink of an earlier link between the same two ids cannot remove a newer one.
    public let generation: UInt64

    /// A link from `anonymous` to `user`, made or last used at `atMillis`.
    public init(anonymous: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, routes: Bool, atMillis: Int64, generation: UInt64) {
        self.init(anonymous: anonymous, user: user, userHash: nudgeHash64(user), routes: routes, atMillis: atMillis,
                  generation: generation)
    }

    /// A link whose user id hashes to `userHash` (known already: a stored link read back).
    init(anonymous: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, userHash: UInt64, routes: Bool, atMillis: Int64,
         generation: UInt64) {
        ids = Array(anonymous) + Array(user)
        anonymousLength = anonymous.count
        self.userHash = userHash
        self.routes = routes
        lastUsedMillis = atMillis
        self.generation = generation
    }

    /// The anonymous id's bytes, then the user id's, for the duration of `body`.
    public func withIds<R>(_ body: (_ anonymous: UnsafeRawBufferPointer, _ user: UnsafeRawBufferPointer) -> R) -> R {
        ids.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[..<anonymousLength]), UnsafeRawBufferPointer(rebasing: bytes[anonymousLength...]))
        }
    }

    /// The user id as bytes (a copy: cold path).
    public var user: [UInt8] { Array(ids[anonymousLength...]) }
    /// The anonymous id as bytes (a copy: cold path).
    public var anonymous: [UInt8] { Array(ids[..<anonymousLength]) }

    /// Whether the anonymous id is `id`.
    public func isAnonymous(_ id: UnsafeRawBufferPointer) -> Bool { withIds { anonymous, _ in anonymous.elementsEqual(id) } }
    /// Whether the user id is `id`.
    public func isUser(_ id: UnsafeRawBufferPointer) -> Bool { withIds { _, user in user.elementsEqual(id) } }

    /// Whether the link has gone unused too long to resolve an event at `atMillis`: more than `ttlMillis` of
    /// event time since its last use. Decided by the event's own time, so that every replay of the same
    /// events (the service on any number of shards, `nudge dataset`) decides alike.
    public func isExpired(atMillis: Int64, ttlMillis: Int64) -> Bool {
        Self.isExpired(lastUsedMillis: lastUsedMillis, atMillis: atMillis, ttlMillis: ttlMillis)
    }

    /// The expiry rule, for a link last used at `lastUsedMillis` (shared with the stored links).
    @inline(__always)
    static func isExpired(lastUsedMillis: Int64, atMillis: Int64, ttlMillis: Int64) -> Bool {
        lastUsedMillis < atMillis &- ttlMillis
    }
}

/// A link as ``IdentityLinks`` stores it: plain fields and no references, so reading one retains nothing.
/// 64 bytes, one cache line.
struct StoredLink {
    /// nudgeHash64 of the anonymous id: the link's key.
    var anonymousHash: UInt64
    /// These four as in ``IdentityLink``.
    var userHash: UInt64
    var lastUsedMillis: Int64
    var generation: UInt64
    var routes: Bool
    /// The link's place in line; 0 marks a free slot, so that stale line entries and arena rebuilds skip it.
    var place: UInt64
    /// Where its ids start in the arena: the anonymous id's bytes, then the user id's.
    var idsOffset: Int
    /// Id lengths: ids come from messages, far below 4 GiB.
    var anonymousLength: UInt32
    var userLength: UInt32

    /// Whether the slot holds a link.
    var isLive: Bool { place != 0 }
    /// Arena bytes of the two ids.
    var idsLength: Int { Int(anonymousLength) + Int(userLength) }
}

/// A shard's identity links, by anonymous id. A shard holds a link when it owns the anonymous id (it routes
/// that id's later events to the customer) or the customer (it resolves the id when those events arrive),
/// or both.
///
/// **Bounds.** Links the shard routes are at most `capacity`; past it the first in line goes (counted in
/// ``dropped``). The line is in order of making, except that ``expire(before:limit:forget:)``, which drops
/// those unused since a cutoff (the idle-customer TTL, on event time), sends a link still in use to the back,
/// and so does dropping the first routing link at the capacity with the resolving links it passes.
/// Links a shard only resolves are dropped when the routing shard says it forgot them, so they are bounded
/// by the other shards' capacities, and expire by the same TTL (a routing instance that restarted forgot them
/// without saying so).
///
/// **Storage.** Every event carrying both ids looks its link up, so nothing on that path hashes ids again,
/// allocates or retains:
/// - the **records**: a flat array of 64-byte ``StoredLink`` slots; freed slots are reused;
/// - the **arena**: the id bytes, anonymous then user, of each link; it doubles when full, and whenever it
///   moves it keeps only live ids, at the same size when they need at most half of it;
/// - the **index**: a ``SlotIndex`` from the anonymous id's nudgeHash64 (which callers have) to the slot.
///
/// A lookup (``link(of:hash:)``) is one probe, a record and a compare of the id in the arena; the accessors
/// taking an ``Index`` read a record's fields in place. Making a link copies its ids into the arena; the
/// ``IdentityLink`` values handed out (links forgotten, removed or replaced) are the rare cold path.
public final class IdentityLinks {
    /// A link's slot, from ``IdentityLinks/link(of:hash:)``: valid until the next change to the set.
    public struct Index: Equatable, Sendable {
        fileprivate let slot: Int
    }

    // One owner thread (a shard): unchecked exclusivity keeps runtime access tracking off the lookups.
    @exclusivity(unchecked) private var index = SlotIndex()
    @exclusivity(unchecked) private var recordBuffer: LargeBuffer
    @exclusivity(unchecked) private var records: UnsafeMutablePointer<StoredLink>
    @exclusivity(unchecked) private var recordCapacity: Int
    /// Slots handed out so far, live or free: records below this are initialized.
    @exclusivity(unchecked) private var slotsUsed = 0
    @exclusivity(unchecked) private var freeSlots: [Int] = []
    /// Each link's ids, anonymous then user; dead bytes are links gone.
    @exclusivity(unchecked) private var arena = IdArena(capacity: initialArenaBytes)
    /// Links in line, first first: slot and place. An entry whose slot is free or holds a later place (the
    /// link re-made, sent to the back, or gone and the slot reused) is stale and skipped on the way out.
    @exclusivity(unchecked) private var order: [(slot: Int, place: UInt64)] = []
    @exclusivity(unchecked) private var orderHead = 0
    @exclusivity(unchecked) private var places: UInt64 = 0

    /// Most routing links kept.
    public let capacity: Int
    /// Links the shard routes.
    @exclusivity(unchecked) public private(set) var routing = 0
    /// Routing links dropped at the capacity.
    @exclusivity(unchecked) public private(set) var dropped = 0
    /// Routing links dropped as expired (see ``IdentityLink/isExpired(atMillis:ttlMillis:)``).
    @exclusivity(unchecked) public private(set) var expired = 0

    /// Records and arena bytes to start with: small, since the set grows by doubling (tests and `nudge dataset`
    /// make sets with a huge capacity that hold few links).
    private static let initialRecords = 16
    private static let initialArenaBytes = 1_024

    /// An empty set routing at most `capacity` links.
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        recordCapacity = Self.initialRecords
        recordBuffer = LargeBuffer(byteCount: recordCapacity * MemoryLayout<StoredLink>.stride)
        records = recordBuffer.base.bindMemory(to: StoredLink.self, capacity: recordCapacity)
    }

    deinit {
        recordBuffer.release()
    }

    /// Links held (routing or resolving).
    public var count: Int { index.count }
    /// No link held.
    public var isEmpty: Bool { index.count == 0 }

    /// Bytes allocated (records, index, arena, line and free list capacity).
    public var bytesUsed: Int {
        let parts = footprint
        return parts.records + parts.index + parts.ids + parts.other
    }

    /// ``bytesUsed`` by part, as allocated.
    var footprint: (records: Int, index: Int, ids: Int, other: Int) {
        (recordBuffer.allocatedBytes, index.bytesUsed, arena.bytesUsed,
         order.capacity * MemoryLayout<(slot: Int, place: UInt64)>.stride + freeSlots.capacity * MemoryLayout<Int>.stride)
    }

    // MARK: Hot path

    /// The link of anonymous id `id` (hash `hash`, its nudgeHash64), if any.
    @inline(__always)
    public func link(of id: UnsafeRawBufferPointer, hash: UInt64) -> Index? {
        guard index.count > 0, let slot = index.slot(for: hash, where: { records[$0].anonymousHash == hash }),
              Self.equal(arena.base + records[slot].idsOffset, count: Int(records[slot].anonymousLength), id) else { return nil }
        return Index(slot: slot)
    }

    /// The anonymous id's bytes, then the user id's, of the link at `link`, in place for the duration of `body`.
    @inline(__always)
    public func withIds<R>(at link: Index, _ body: (_ anonymous: UnsafeRawBufferPointer, _ user: UnsafeRawBufferPointer) -> R) -> R {
        let record = records + link.slot
        let anonymous = UnsafeRawBufferPointer(start: arena.base + record.pointee.idsOffset, count: Int(record.pointee.anonymousLength))
        return body(anonymous, UnsafeRawBufferPointer(start: anonymous.baseAddress.map { $0 + anonymous.count },
                                                      count: Int(record.pointee.userLength)))
    }

    /// Whether the user id of the link at `link` is `id`.
    @inline(__always)
    public func isUser(at link: Index, _ id: UnsafeRawBufferPointer) -> Bool {
        let record = records + link.slot
        return Self.equal(arena.base + record.pointee.idsOffset + Int(record.pointee.anonymousLength), count: Int(record.pointee.userLength), id)
    }

    /// nudgeHash64 of the user id of the link at `link`: which shard owns the customer.
    @inline(__always)
    public func userHash(at link: Index) -> UInt64 { records[link.slot].userHash }

    /// Whether this shard routes the link at `link` (see ``IdentityLink/routes``).
    @inline(__always)
    public func routes(at link: Index) -> Bool { records[link.slot].routes }

    /// The generation of the link at `link` (see ``IdentityLink/generation``).
    @inline(__always)
    public func generation(at link: Index) -> UInt64 { records[link.slot].generation }

    /// When the link at `link` was last used (see ``IdentityLink/lastUsedMillis``).
    @inline(__always)
    public func lastUsedMillis(at link: Index) -> Int64 { records[link.slot].lastUsedMillis }

    /// Whether the link at `link` is expired for an event at `atMillis` (see
    /// ``IdentityLink/isExpired(atMillis:ttlMillis:)``).
    @inline(__always)
    public func isExpired(at link: Index, atMillis: Int64, ttlMillis: Int64) -> Bool {
        IdentityLink.isExpired(lastUsedMillis: records[link.slot].lastUsedMillis, atMillis: atMillis, ttlMillis: ttlMillis)
    }

    /// Notes that the link at `link` resolved an event at `atMillis`.
    @inline(__always)
    public func touch(_ link: Index, atMillis: Int64) {
        if records[link.slot].lastUsedMillis < atMillis { records[link.slot].lastUsedMillis = atMillis }
    }

    // MARK: Changes

    /// Links anonymous id `anonymous` (hash `hash`, its nudgeHash64) to `user` at `atMillis` (see
    /// ``IdentityLink``), replacing any link of the id; returns the link replaced (also one of another id with the
    /// same 64-bit hash). A routing link beyond the capacity drops the oldest, handed to `forget`. Copies the ids
    /// into the arena and allocates nothing else, unless a buffer grows.
    @discardableResult
    public func set(anonymous: UnsafeRawBufferPointer, hash: UInt64, user: UnsafeRawBufferPointer, routes: Bool, atMillis: Int64,
                    generation: UInt64, forget: (IdentityLink) -> Void) -> IdentityLink? {
        let replaced = slot(hash: hash).map { take($0) }
        if replaced?.routes == true { routing -= 1 }
        places += 1
        let link = StoredLink(anonymousHash: hash, userHash: nudgeHash64(user), lastUsedMillis: atMillis, generation: generation,
                              routes: routes, place: places, idsOffset: 0, anonymousLength: UInt32(truncatingIfNeeded: anonymous.count),
                              userLength: UInt32(truncatingIfNeeded: user.count))
        order.append((store(link, anonymous: anonymous, user: user), places))  // resolving links too: they expire as well
        if routes {
            routing += 1
            while routing > capacity, let oldest = popOldest() {
                dropped += 1
                forget(oldest)
            }
        }
        // Expiry and the cap consume the line slowly, or never (resolving links have no cap): links re-made
        // faster than that must not grow it.
        compactOrder()
        return replaced
    }

    /// Removes the link of anonymous id `id` if it is link `generation` to user `user` and only resolves here
    /// (the routing shard forgot it); true if removed.
    @discardableResult
    public func removeResolving(anonymous id: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, generation: UInt64) -> Bool {
        guard let link = link(of: id, hash: nudgeHash64(id)), !routes(at: link), self.generation(at: link) == generation,
              isUser(at: link, user) else {
            return false
        }
        discard(link.slot)
        return true
    }

    /// Removes the link at `link` (found expired when it was to resolve an event) and returns it.
    @discardableResult
    public func remove(at link: Index) -> IdentityLink {
        let removed = take(link.slot)
        if removed.routes {
            routing -= 1
            expired += 1
        }
        return removed
    }

    /// Drops links unused since before `cutoff` (event time), examining at most `limit` of the oldest; each
    /// routing one goes to `forget`. A link still in use goes to the back of the line. Memory only: call it with a
    /// cutoff no event can still be older than (the watermark minus the TTL), so that the links it drops are
    /// ones ``IdentityLink/isExpired(atMillis:ttlMillis:)`` would refuse anyway.
    public func expire(before cutoff: Int64, limit: Int, forget: (IdentityLink) -> Void) {
        var examined = 0
        while examined < limit, orderHead < order.count {
            examined += 1
            let entry = order[orderHead]
            orderHead += 1
            guard isCurrent(entry) else { continue }
            if records[entry.slot].lastUsedMillis < cutoff {
                // A resolving link goes quietly: its routing shard forgets it by the same rule (or lost it
                // in a restart, which is why resolving links expire at all).
                guard records[entry.slot].routes else {
                    discard(entry.slot)
                    continue
                }
                routing -= 1
                expired += 1
                forget(take(entry.slot))
            } else {
                sendToBack(entry.slot)
            }
        }
        compactOrder()
    }

    /// One of the periodic expiry passes the shard makes, once per minute of event time: examines a 1,440th of
    /// the line (stale entries included) plus 64, so that 1,440 passes (a day of event time) walk the whole
    /// line whatever the rate links are made at. A fixed 64 a minute let links made faster than that (92,160 a
    /// day) pile up long after their TTL, up to the cap for routing links and without one for resolving links.
    public func sweep(before cutoff: Int64, forget: (IdentityLink) -> Void) {
        expire(before: cutoff, limit: queuedEntries / 1_440 + 64, forget: forget)
    }

    /// The oldest routing link, removed. Resolving links passed on the way go to the back of the line, where
    /// ``expire(before:limit:forget:)`` still finds them: taken off it, one would stay until its routing shard
    /// said to forget it, which a routing instance that restarted never does.
    private func popOldest() -> IdentityLink? {
        let end = order.count
        while orderHead < end {
            let entry = order[orderHead]
            orderHead += 1
            guard isCurrent(entry) else { continue }
            guard records[entry.slot].routes else {
                sendToBack(entry.slot)
                continue
            }
            let link = take(entry.slot)
            routing -= 1
            compactOrder()
            return link
        }
        return nil
    }

    /// Gives the link in `slot` a new place at the back of the line; its old entry goes stale.
    private func sendToBack(_ slot: Int) {
        places += 1
        records[slot].place = places
        order.append((slot, places))
    }

    /// Whether a line entry is its link's place (not stale).
    private func isCurrent(_ entry: (slot: Int, place: UInt64)) -> Bool { records[entry.slot].place == entry.place }

    /// Keeps the order queue within a few times the links held: consumed entries go once they are half of it, and
    /// the stale entries re-made links leave behind once the rest is four times the links (each pass then pays
    /// for itself: it leaves at most one entry per link).
    private func compactOrder() {
        if orderHead > 1024, orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
        if order.count - orderHead > 4 * max(count, 256) {
            order = order[orderHead...].filter(isCurrent)
            orderHead = 0
        }
    }

    /// Entries waiting in the order queue, stale ones included: what expiry passes walk.
    var queuedEntries: Int { order.count - orderHead }

    // MARK: Storage

    /// The slot of the link whose anonymous id hashes to `hash`, whatever the id.
    private func slot(hash: UInt64) -> Int? {
        index.slot(for: hash, where: { records[$0].anonymousHash == hash })
    }

    /// Stores `link` with its ids (its anonymous id not held, its `idsOffset` to be set); returns its slot.
    private func store(_ link: StoredLink, anonymous: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer) -> Int {
        // Room first: an arena move walks the live records, which the new one is not yet.
        let offset = arena.reserve(anonymous.count + user.count, relocatingLive: relocateIds)
        let slot = takeSlot()
        var link = link
        link.idsOffset = offset
        UnsafeMutableRawBufferPointer(start: arena.base + offset, count: anonymous.count).copyMemory(from: anonymous)
        UnsafeMutableRawBufferPointer(start: arena.base + offset + anonymous.count, count: user.count).copyMemory(from: user)
        (records + slot).initialize(to: link)
        let records = records  // captured instead of self, which would be retained around the call
        index.insert(slot: slot, hash: link.anonymousHash, hashOf: { records[$0].anonymousHash })
        return slot
    }

    /// Removes the link in `slot` and returns it as a value.
    private func take(_ slot: Int) -> IdentityLink {
        let record = records[slot]
        let link = withIds(at: Index(slot: slot)) { anonymous, user in
            IdentityLink(anonymous: anonymous, user: user, userHash: record.userHash, routes: record.routes,
                         atMillis: record.lastUsedMillis, generation: record.generation)
        }
        discard(slot)
        return link
    }

    /// Removes the link in `slot`: its ids become dead bytes and the slot free.
    private func discard(_ slot: Int) {
        let records = records  // captured instead of self, which would be retained around the call
        index.remove(slot: slot, hash: records[slot].anonymousHash, hashOf: { records[$0].anonymousHash })
        arena.free(records[slot].idsLength)
        records[slot].place = 0
        freeSlots.append(slot)
    }

    /// A free slot, the most recently freed first, or a new one at the end of the records.
    private func takeSlot() -> Int {
        if let slot = freeSlots.popLast() { return slot }
        if slotsUsed == recordCapacity {
            let capacity = recordCapacity * 2
            recordBuffer = recordBuffer.grown(toByteCount: capacity * MemoryLayout<StoredLink>.stride,
                                              keeping: slotsUsed * MemoryLayout<StoredLink>.stride)
            records = recordBuffer.base.bindMemory(to: StoredLink.self, capacity: capacity)
            recordCapacity = capacity
        }
        slotsUsed += 1
        return slotsUsed - 1
    }

    /// Walks the live records for an arena move.
    private func relocateIds(_ move: (Int, Int) -> Int) {
        for slot in 0..<slotsUsed where records[slot].isLive {
            records[slot].idsOffset = move(records[slot].idsOffset, records[slot].idsLength)
        }
    }

    /// Whether the `count` bytes at `stored` are `id`.
    @inline(__always)
    private static func equal(_ stored: UnsafeRawPointer, count: Int, _ id: UnsafeRawBufferPointer) -> Bool {
        guard count == id.count else { return false }
        guard count > 0, let bytes = id.baseAddress else { return true }
        return memcmp(stored, bytes, count) == 0
    }
}
