import NudgeEvents

/// One link from an anonymous id to the known customer (`userId`) it belongs to, as a shard holds it.
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
    public internal(set) var lastUsedMillis: Int64
    /// Which link this is, as numbered by the customer's shard when it made it: an unlink names it, so that a
    /// late unlink of an earlier link between the same two ids cannot remove a newer one.
    public let generation: UInt64
    /// The link's place in its set's line (see ``IdentityLinks``): entries of earlier places are stale.
    var place: UInt64 = 0

    /// A link from `anonymous` to `user`, made or last used at `atMillis`.
    public init(anonymous: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, routes: Bool, atMillis: Int64, generation: UInt64) {
        ids = Array(anonymous) + Array(user)
        anonymousLength = anonymous.count
        userHash = nudgeHash64(user)
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
    public func isExpired(atMillis: Int64, ttlMillis: Int64) -> Bool { lastUsedMillis < atMillis &- ttlMillis }
}

/// A shard's identity links, by anonymous id. A shard holds a link when it owns the anonymous id (it routes
/// that id's later events to the customer) or the customer (it resolves the id when those events arrive),
/// or both.
///
/// **Bounds.** Links the shard routes are at most `capacity`; past it the first in line goes (counted in
/// ``dropped``). The line is in order of making, except that ``expire(before:limit:forget:)``, which drops
/// those unused since a cutoff (the idle-customer TTL, on event time), sends a link still in use to the back. Links a shard only resolves are dropped when the
/// routing shard says it forgot them, so they are bounded by the other shards' capacities, and expire by the
/// same TTL (a routing instance that restarted forgot them without saying so). Lookups by anonymous id cost one hash probe and
/// allocate nothing; making a link allocates its ids (identify events are rare next to the clickstream).
public final class IdentityLinks {
    // One owner thread (a shard): unchecked exclusivity keeps runtime access tracking off the lookups.
    @exclusivity(unchecked) private var links: [UInt64: IdentityLink] = [:]
    /// Links in line, first first: anonymous-id hash and place. An entry whose link has gone or has a later
    /// place (re-made, or sent to the back) is stale and skipped on the way out.
    @exclusivity(unchecked) private var order: [(hash: UInt64, place: UInt64)] = []
    @exclusivity(unchecked) private var orderHead = 0
    @exclusivity(unchecked) private var places: UInt64 = 0
    /// Position of a link, valid until the next change.
    public typealias Index = Dictionary<UInt64, IdentityLink>.Index

    /// Most routing links kept.
    public let capacity: Int
    /// Links the shard routes.
    public private(set) var routing = 0
    /// Routing links dropped at the capacity.
    public private(set) var dropped = 0
    /// Routing links dropped as expired (see ``IdentityLink/isExpired(atMillis:ttlMillis:)``).
    public private(set) var expired = 0

    /// An empty set routing at most `capacity` links.
    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Links held (routing or resolving).
    public var count: Int { links.count }
    /// No link held.
    public var isEmpty: Bool { links.isEmpty }

    /// Approximate bytes held (ids, dictionary entries, order queue).
    public var bytesUsed: Int { links.capacity * (MemoryLayout<IdentityLink>.stride + 8 + 48) + order.capacity * 8 }

    /// The link of anonymous id `id` (hash `hash`), if any.
    @inline(__always)
    public func link(of id: UnsafeRawBufferPointer, hash: UInt64) -> Index? {
        guard !links.isEmpty, let index = links.index(forKey: hash), links.values[index].isAnonymous(id) else { return nil }
        return index
    }

    /// The link at `index` (from ``link(of:hash:)``, valid until the next change).
    public subscript(index: Index) -> IdentityLink {
        // Read in place: a copy would retain and release the ids on every event that carries both ids.
        _read { yield links.values[index] }
    }

    /// Notes that the link at `index` resolved an event at `atMillis`.
    @inline(__always)
    public func touch(_ index: Index, atMillis: Int64) {
        if links.values[index].lastUsedMillis < atMillis { links.values[index].lastUsedMillis = atMillis }
    }

    /// Sets the link of its anonymous id, replacing any; returns the link replaced (also one of another id
    /// with the same 64-bit hash). A routing link beyond the capacity drops the oldest, handed to `forget`.
    @discardableResult
    public func set(_ link: IdentityLink, forget: (IdentityLink) -> Void) -> IdentityLink? {
        let hash = link.withIds { anonymous, _ in nudgeHash64(anonymous) }
        var link = link
        places += 1
        link.place = places
        let replaced = links.updateValue(link, forKey: hash)
        if replaced?.routes == true { routing -= 1 }
        order.append((hash, places))  // resolving links too: they expire as well
        if link.routes {
            routing += 1
            while routing > capacity, let oldest = popOldest() {
                dropped += 1
                forget(oldest)
            }
        }
        return replaced
    }

    /// Removes the link of anonymous id `id` if it is link `generation` to user `user` and only resolves here
    /// (the routing shard forgot it); true if removed.
    @discardableResult
    public func removeResolving(anonymous id: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, generation: UInt64) -> Bool {
        let hash = nudgeHash64(id)
        guard let link = links[hash], !link.routes, link.generation == generation, link.isAnonymous(id), link.isUser(user) else {
            return false
        }
        links[hash] = nil
        return true
    }

    /// Removes the link at `index` (found expired when it was to resolve an event) and returns it.
    @discardableResult
    public func remove(at index: Index) -> IdentityLink {
        let link = links.values[index]
        links.remove(at: index)
        if link.routes {
            routing -= 1
            expired += 1
        }
        return link
    }

    /// Drops links unused since before `cutoff` (event time), examining at most `limit` of the oldest; each
    /// routing one goes to `forget`. A link still in use goes to the back of the line. Memory only: call it with a
    /// cutoff no event can still be older than (the watermark minus the TTL), so that the links it drops are
    /// ones ``IdentityLink/isExpired(atMillis:ttlMillis:)`` would refuse anyway.
    public func expire(before cutoff: Int64, limit: Int, forget: (IdentityLink) -> Void) {
        var examined = 0
        while examined < limit, orderHead < order.count {
            examined += 1
            let (hash, place) = order[orderHead]
            orderHead += 1
            guard let link = links[hash], link.place == place else { continue }
            if link.lastUsedMillis < cutoff {
                links[hash] = nil
                // A resolving link goes quietly: its routing shard forgets it by the same rule (or lost it
                // in a restart, which is why resolving links expire at all).
                guard link.routes else { continue }
                routing -= 1
                expired += 1
                forget(link)
            } else {
                places += 1
                links[hash]?.place = places
                order.append((hash, places))
            }
        }
        compactOrder()
    }

    /// The oldest routing link, removed.
    private func popOldest() -> IdentityLink? {
        while orderHead < order.count {
            let (hash, place) = order[orderHead]
            orderHead += 1
            guard let link = links[hash], link.routes, link.place == place else { continue }
            links[hash] = nil
            routing -= 1
            compactOrder()
            return link
        }
        return nil
    }

    /// Keeps the order queue from growing without bound: stale and consumed entries go once they are half.
    private func compactOrder() {
        guard orderHead > 1024, orderHead * 2 > order.count else { return }
        order.removeFirst(orderHead)
        orderHead = 0
        if order.count > 4 * max(links.count, 256) {
            // Re-made links leave stale entries behind; keep the live one of each routing link.
            order = order.filter { entry in links[entry.hash].map { $0.place == entry.place } ?? false }
        }
    }
}
