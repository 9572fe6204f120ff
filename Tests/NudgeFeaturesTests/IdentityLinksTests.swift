import NudgeEvents
import NudgeFeatures
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
            links.link(of: a, hash: nudgeHash64(a)).map { String(decoding: links[$0].user, as: UTF8.self) }
        }
    }

    @Test func capacityDropsTheFirstInLineAndNeverTheLinkJustMade() {
        let links = IdentityLinks(capacity: 2)
        var forgotten: [String] = []
        let forget = { (link: IdentityLink) in forgotten.append(String(decoding: link.anonymous, as: UTF8.self)) }
        links.set(Self.link("a-1", "u-1", at: 1), forget: forget)
        links.set(Self.link("a-2", "u-2", at: 2), forget: forget)
        // a-1 re-made (to another customer): its first entry is stale, and the new link must survive.
        links.set(Self.link("a-1", "u-3", at: 3), forget: forget)
        links.set(Self.link("a-3", "u-4", at: 4), forget: forget)
        #expect(forgotten == ["a-2"])
        #expect(Self.user(of: "a-1", in: links) == "u-3")
        #expect(Self.user(of: "a-3", in: links) == "u-4")
        #expect(links.routing == 2 && links.dropped == 1)
    }

    @Test func expiryDropsLinksUnusedSinceTheCutoffAndKeepsUsedOnes() {
        let links = IdentityLinks(capacity: 100)
        var forgotten: [String] = []
        let forget = { (link: IdentityLink) in forgotten.append(String(decoding: link.anonymous, as: UTF8.self)) }
        links.set(Self.link("a-1", "u-1", at: 10), forget: forget)
        links.set(Self.link("a-2", "u-2", at: 10), forget: forget)
        links.set(Self.link("r-1", "u-3", at: 10, routes: false), forget: forget)
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
}
