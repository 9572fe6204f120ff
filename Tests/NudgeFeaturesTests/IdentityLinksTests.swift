import NudgeEvents
@testable import NudgeFeatures
import NudgeTraffic
import Testing

/// The bounds of a shard's identity links: capacity, expiry, and lines kept straight when links are re-made.
@Suite struct IdentityLinksTests {
    static func link(_ anonymous: String, _ user: String, at millis: Int64, routes: Bool = true, generation: UInt64 = 1) -> IdentityLink {
        Array(anonymous.utf8).withUnsafeBytes { a in
            Array(user.utf8).withUnsafeBytes { u in IdentityLink(anonymous: a, user: u, routes: routes, atMillis: millis, generation: generation) }
        }
    }

    static func user(of anonymous: String, in links: IdentityLinks) -> String? {
        Array(anonymous.utf8).withUnsafeBytes { a in
            links.link(of: a, hash: nudgeHash64(a)).map { link in
                links.withIds(at: link) { _, user in String(decoding: user, as: UTF8.self) }
            }
        }
    }

    @Test func capacityDropsTheFirstInLineAndNeverTheLinkJustMade() {
        let links = IdentityLinks(capacity: 2)
        var forgotten: [String] = []
        let forget = { (link: IdentityLink) in forgotten.append(String(decoding: link.anonymous, as: UTF8.self)) }
        links.set("a-1", "u-1", at: 1, forget: forget)
        links.set("a-2", "u-2", at: 2, forget: forget)
        // a-1 re-made (to another customer): its first entry is stale, and the new link must survive.
        links.set("a-1", "u-3", at: 3, forget: forget)
        links.set("a-3", "u-4", at: 4, forget: forget)
        #expect(forgotten == ["a-2"])
        #expect(Self.user(of: "a-1", in: links) == "u-3")
        #expect(Self.user(of: "a-3", in: links) == "u-4")
        #expect(links.routing == 2 && links.dropped == 1)
    }

    /// An anonymous id re-linked back and forth (a shared device; or an attacker) re-makes one link over and
    /// over; with no expiry pass and no cap reached, nothing else consumes the line.
    @Test func reMadeLinksKeepTheLineBounded() {
        for routes in [true, false] {
            let links = IdentityLinks(capacity: 4)
            let forget = { (_: IdentityLink) in }
            var longest = 0
            for round in 0..<100_000 {
                links.set("a-1", round % 2 == 0 ? "u-1" : "u-2", at: 10, routes: routes, generation: UInt64(round), forget: forget)
                longest = max(longest, links.queuedEntries)
            }
            #expect(links.count == 1)
            #expect(longest <= 4 * 256 + 1, "the line reached \(longest) entries for one link (routes: \(routes))")
            #expect(Self.user(of: "a-1", in: links) == "u-2")
        }
    }

    /// Links made faster than 64 a minute (the fixed pass it had) still all go within a day of event time after
    /// their TTL: a pass a minute, 1,440 of them.
    @Test func aDayOfPassesForgetsEveryExpiredLink() {
        let links = IdentityLinks(capacity: 262_144)
        var forgotten = 0
        let forget = { (_: IdentityLink) in forgotten += 1 }
        for n in 0..<150_000 {
            links.set("a-\(n)", "u-\(n % 1_000)", at: 10, routes: n % 2 == 0, forget: forget)
        }
        for _ in 0..<1_440 { links.sweep(before: 1_000, forget: forget) }
        #expect(links.count == 0, "\(links.count) expired links left after a day of passes")
        #expect(forgotten == 75_000, "every routing link is handed to forget")
    }

    @Test func aResolvingLinkPassedByTheCapacityStillExpires() {
        let links = IdentityLinks(capacity: 1)
        let forget = { (_: IdentityLink) in }
        links.set("r-1", "u-1", at: 10, routes: false, forget: forget)  // resolving: another instance routes it
        links.set("a-1", "u-2", at: 10, forget: forget)
        links.set("a-2", "u-3", at: 10, forget: forget)  // past the capacity: a-1 goes, r-1 is passed on the way
        #expect(Self.user(of: "a-1", in: links) == nil)
        #expect(Self.user(of: "r-1", in: links) == "u-1", "passing a resolving link does not drop it")
        links.expire(before: 1_000_000, limit: 100, forget: forget)
        #expect(Self.user(of: "r-1", in: links) == nil, "a resolving link left the line and never expired")
        #expect(links.count == 0)
    }

    @Test func expiryDropsLinksUnusedSinceTheCutoffAndKeepsUsedOnes() {
        let links = IdentityLinks(capacity: 100)
        var forgotten: [String] = []
        let forget = { (link: IdentityLink) in forgotten.append(String(decoding: link.anonymous, as: UTF8.self)) }
        links.set("a-1", "u-1", at: 10, forget: forget)
        links.set("a-2", "u-2", at: 10, forget: forget)
        links.set("r-1", "u-3", at: 10, routes: false, forget: forget)
        Array("a-1".utf8).withUnsafeBytes { a in
            if let index = links.link(of: a, hash: nudgeHash64(a)) { links.touch(index, atMillis: 100) }
        }
        links.expire(before: 50, limit: 10, forget: forget)
        #expect(forgotten == ["a-2"], "a resolving link goes quietly")
        #expect(Self.user(of: "a-1", in: links) == "u-1")
        #expect(Self.user(of: "a-2", in: links) == nil && Self.user(of: "r-1", in: links) == nil)
        #expect(links.expired == 1 && links.routing == 1)
        // The used link went to the back of the line and expires in its turn.
        links.expire(before: 200, limit: 10, forget: forget)
        #expect(forgotten == ["a-2", "a-1"] && links.isEmpty)
    }

    @Test func aLinkExpiresByTheEventsOwnTime() {
        let link = Self.link("a-1", "u-1", at: 1_000)
        #expect(!link.isExpired(atMillis: 1_000 + 500, ttlMillis: 500))
        #expect(link.isExpired(atMillis: 1_000 + 501, ttlMillis: 500))
    }

    /// Random sets (routing and resolving, re-made links), touches, removals and expiry passes on a set of
    /// capacity 8, step by step against ``ReferenceLinks``: lookups and every field of the links found, the
    /// counters, and the links forgotten, in order. Enough churn to grow the index several times and to rebuild
    /// the arena many times over.
    @Test("Links match a dictionary and a line", arguments: 1...4)
    func linksMatchReference(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed) &* 7_919)
        let links = IdentityLinks(capacity: 8)
        var reference = ReferenceLinks(capacity: 8)
        // Ids of many lengths, so that arena regions differ; users reused, so re-made links may keep theirs.
        let anonymousIds = (0..<300).map {
            "anon-\($0)-" + String(repeating: "a", count: Int.random(in: 0...40, using: &random))
        }
        let users = (0..<60).map { "user-\($0)" + String(repeating: "u", count: Int.random(in: 0...20, using: &random)) }
        var now: Int64 = 1_000
        var generation: UInt64 = 0
        var idBytesWritten = 0
        var peakCount = 0
        for step in 0..<20_000 {
            now += Int64.random(in: 0...3, using: &random)
            let anonymous = anonymousIds[Int.random(in: 0..<anonymousIds.count, using: &random)]
            let found = Self.index(of: anonymous, in: links)
            // Every other 2,500 steps, mostly resolving links (not bounded by the capacity) and expiry far
            // behind: the links gather, and the index grows; then they churn away again.
            let gathering = step % 5_000 >= 2_500
            var forgotten: [ReferenceLinks.Link] = []
            var expected: [ReferenceLinks.Link] = []
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<40:
                let routes = Double.random(in: 0..<1, using: &random) < (gathering ? 0.15 : 0.6)
                generation += 1
                let link = ReferenceLinks.Link(anonymous: anonymous, user: users[Int.random(in: 0..<users.count, using: &random)],
                                               routes: routes, lastUsedMillis: now, generation: generation)
                let replaced = links.set(link.anonymous, link.user, at: now, routes: routes, generation: generation) {
                    forgotten.append(ReferenceLinks.Link($0))
                }
                let made = reference.set(link)
                expected = made.forgotten
                idBytesWritten += link.anonymous.utf8.count + link.user.utf8.count
                guard replaced.map(ReferenceLinks.Link.init) == made.replaced else {
                    Issue.record("step \(step): set \(anonymous) replaced \(String(describing: replaced))")
                    return
                }
            case 40..<62:
                if let found { links.touch(found, atMillis: now) }
                reference.touch(anonymous, atMillis: now)
            case 62..<67:
                let removed = found.map { ReferenceLinks.Link(links.remove(at: $0)) }
                guard removed == reference.remove(anonymous) else {
                    Issue.record("step \(step): remove(at:) of \(anonymous) gave \(String(describing: removed))")
                    return
                }
            case 67..<80:
                // The right user and generation half the time, else one of them off.
                let held = reference.links[anonymous]?.link
                let user = held.map { Bool.random(using: &random) ? $0.user : users[0] } ?? users[1]
                let number = held.map { Bool.random(using: &random) ? $0.generation : $0.generation + 1 } ?? generation
                let removed = Array(anonymous.utf8).withUnsafeBytes { a in
                    Array(user.utf8).withUnsafeBytes { u in links.removeResolving(anonymous: a, user: u, generation: number) }
                }
                guard removed == reference.removeResolving(anonymous, user: user, generation: number) else {
                    Issue.record("step \(step): removeResolving(\(anonymous), \(user), \(number)) gave \(removed)")
                    return
                }
            default:
                let cutoff = now - Int64.random(in: 0...(gathering ? 5_000 : 60), using: &random)
                let limit = Int.random(in: 1...12, using: &random)
                links.expire(before: cutoff, limit: limit) { forgotten.append(ReferenceLinks.Link($0)) }
                expected = reference.expire(before: cutoff, limit: limit)
            }
            peakCount = max(peakCount, links.count)
            guard forgotten == expected else {
                Issue.record("step \(step): forgot \(forgotten.map(\.anonymous)), expected \(expected.map(\.anonymous))")
                return
            }
            let counters = (links.count, links.routing, links.dropped, links.expired)
            let expectedCounters = (reference.links.count, reference.routing, reference.dropped, reference.expired)
            guard counters == expectedCounters, links.isEmpty == reference.links.isEmpty else {
                Issue.record("step \(step): counters (count, routing, dropped, expired) \(counters), expected \(expectedCounters)")
                return
            }
            // The id this step was about at every step, and every id now and then.
            for id in step % 500 == 0 ? anonymousIds : [anonymous] {
                let found = Self.index(of: id, in: links)
                let (held, wanted) = (found.map { Self.read($0, in: links) }, reference.links[id]?.link)
                guard held == wanted, found.map({ Self.accessorsAgree(at: $0, in: links, now: now) }) ?? true else {
                    Issue.record("step \(step): \(id) reads \(String(describing: held)), expected \(String(describing: wanted))")
                    return
                }
            }
        }
        let parts = links.footprint
        #expect(peakCount > 150 && parts.index >= 256 * 8, "the index grew from 32 positions (peak \(peakCount) links)")
        #expect(idBytesWritten > 8 * parts.ids, "the arena dropped dead ids (\(idBytesWritten) written, \(parts.ids) held)")
    }

    static func index(of anonymous: String, in links: IdentityLinks) -> IdentityLinks.Index? {
        Array(anonymous.utf8).withUnsafeBytes { a in links.link(of: a, hash: nudgeHash64(a)) }
    }

    /// The link at `index`, as the tests compare them.
    static func read(_ index: IdentityLinks.Index, in links: IdentityLinks) -> ReferenceLinks.Link {
        let (anonymous, user) = links.withIds(at: index) { a, u in
            (String(decoding: a, as: UTF8.self), String(decoding: u, as: UTF8.self))
        }
        return ReferenceLinks.Link(anonymous: anonymous, user: user, routes: links.routes(at: index),
                                   lastUsedMillis: links.lastUsedMillis(at: index), generation: links.generation(at: index))
    }

    /// Whether the accessors that check or derive from the link at `index` agree with its ids and time.
    static func accessorsAgree(at index: IdentityLinks.Index, in links: IdentityLinks, now: Int64) -> Bool {
        let user = links.withIds(at: index) { _, user in Array(user) }
        let lastUsed = links.lastUsedMillis(at: index)
        return user.withUnsafeBytes { links.isUser(at: index, $0) } && !(user + [0]).withUnsafeBytes { links.isUser(at: index, $0) }
            && links.userHash(at: index) == user.withUnsafeBytes { nudgeHash64($0) }
            && links.isExpired(at: index, atMillis: now, ttlMillis: now - lastUsed - 1)
            && !links.isExpired(at: index, atMillis: now, ttlMillis: now - lastUsed)
    }
}

/// ``IdentityLinks`` as a dictionary by anonymous id and its line as a list of (id, place), stale entries and
/// all: the same rules, without hashes, slots or arenas.
struct ReferenceLinks {
    /// A link as the tests compare them.
    struct Link: Equatable {
        var anonymous: String
        var user: String
        var routes: Bool
        var lastUsedMillis: Int64
        var generation: UInt64
    }

    let capacity: Int
    /// Links held by anonymous id, with their places in line.
    var links: [String: (link: Link, place: UInt64)] = [:]
    var line: [(anonymous: String, place: UInt64)] = []
    var head = 0
    var places: UInt64 = 0
    var routing = 0
    var dropped = 0
    var expired = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func set(_ link: Link) -> (replaced: Link?, forgotten: [Link]) {
        places += 1
        let replaced = links.updateValue((link, places), forKey: link.anonymous)?.link
        if replaced?.routes == true { routing -= 1 }
        line.append((link.anonymous, places))
        var forgotten: [Link] = []
        if link.routes {
            routing += 1
            while routing > capacity, let oldest = popOldest() {
                dropped += 1
                forgotten.append(oldest)
            }
        }
        return (replaced, forgotten)
    }

    mutating func touch(_ anonymous: String, atMillis: Int64) {
        if let held = links[anonymous], held.link.lastUsedMillis < atMillis { links[anonymous]?.link.lastUsedMillis = atMillis }
    }

    mutating func remove(_ anonymous: String) -> Link? {
        guard let held = links.removeValue(forKey: anonymous)?.link else { return nil }
        if held.routes {
            routing -= 1
            expired += 1
        }
        return held
    }

    mutating func removeResolving(_ anonymous: String, user: String, generation: UInt64) -> Bool {
        guard let held = links[anonymous]?.link, !held.routes, held.user == user, held.generation == generation else { return false }
        links[anonymous] = nil
        return true
    }

    mutating func expire(before cutoff: Int64, limit: Int) -> [Link] {
        var forgotten: [Link] = []
        var examined = 0
        while examined < limit, head < line.count {
            examined += 1
            let (anonymous, place) = line[head]
            head += 1
            guard let (held, current) = links[anonymous], current == place else { continue }
            if held.lastUsedMillis < cutoff {
                links[anonymous] = nil
                guard held.routes else { continue }
                routing -= 1
                expired += 1
                forgotten.append(held)
            } else {
                places += 1
                links[anonymous]?.place = places
                line.append((anonymous, places))
            }
        }
        compactLine()
        return forgotten
    }

    private mutating func popOldest() -> Link? {
        let end = line.count
        while head < end {
            let (anonymous, place) = line[head]
            head += 1
            guard let (held, current) = links[anonymous], current == place else { continue }
            guard held.routes else {
                // A resolving link passed goes to the back of the line, where expiry finds it.
                places += 1
                links[anonymous] = (held, places)
                line.append((anonymous, places))
                continue
            }
            links[anonymous] = nil
            routing -= 1
            compactLine()
            return held
        }
        return nil
    }

    /// The same thresholds as the set's: they decide which stale entries an expiry pass still counts.
    private mutating func compactLine() {
        guard head > 1024, head * 2 > line.count else { return }
        line.removeFirst(head)
        head = 0
        if line.count > 4 * max(links.count, 256) { line = line.filter { links[$0.anonymous]?.place == $0.place } }
    }
}

extension ReferenceLinks.Link {
    init(_ link: IdentityLink) {
        self.init(anonymous: String(decoding: link.anonymous, as: UTF8.self), user: String(decoding: link.user, as: UTF8.self),
                  routes: link.routes, lastUsedMillis: link.lastUsedMillis, generation: link.generation)
    }
}

extension IdentityLinks {
    /// ``set(anonymous:hash:user:routes:atMillis:generation:forget:)`` for ids given as strings.
    @discardableResult
    func set(_ anonymous: String, _ user: String, at millis: Int64, routes: Bool = true, generation: UInt64 = 1,
             forget: (IdentityLink) -> Void) -> IdentityLink? {
        Array(anonymous.utf8).withUnsafeBytes { a in
            Array(user.utf8).withUnsafeBytes { u in
                set(anonymous: a, hash: nudgeHash64(a), user: u, routes: routes, atMillis: millis, generation: generation, forget: forget)
            }
        }
    }
}
