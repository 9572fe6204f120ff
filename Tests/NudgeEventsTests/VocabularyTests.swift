@testable import NudgeEvents
import Testing

@Suite("RawText and hashing")
struct RawTextTests {
    /// Hashes the UTF-8 of `text`.
    private func hash(_ text: String) -> UInt64 {
        Array(text.utf8).withUnsafeBytes { nudgeHash64($0) }
    }

    // Pinned values come from the C reference wyhash (final 4.2, seed 0, default secrets) compiled
    // separately; they must never change, since other modules and stored state depend on them.
    @Test("hash64 is wyhash final 4.2 with seed 0 (pinned values, every length class)", arguments: [
        ("", 0x9322_8a4d_e0ee_c5a2 as UInt64),
        ("a", 0xaced_1252_7fe5_bff8),
        ("ab", 0xe9c2_8c29_6825_8c7d),
        ("abc", 0x989b_4a20_9c10_11c9),
        ("c-1042", 0xebec_ebfc_1b75_1ed6),
        ("0123456789abcdef", 0x88de_385a_856c_fb95),
        ("0123456789abcdef0", 0x6d35_345a_7d95_9e03),
        ("customer-000000001", 0xd0d2_60b5_f547_1269),
        ("The quick brown fox jumps over the lazy dog, again and again, 100 bytes long or so; padding padding!!",
         0x048c_820d_52fb_1dd1),
    ])
    func pinnedHashes(text: String, expected: UInt64) {
        #expect(hash(text) == expected)
    }

    @Test("equal bytes hash equally wherever they live; RawText.hash64 is nudgeHash64")
    func equalBytesEqualHash() throws {
        let decoder = SegmentDecoder()
        // userId unescaped into scratch, anonymousId straight from the input: same bytes.
        let json = #"{"type":"page","messageId":"m","userId":"c-\u0031042","anonymousId":"c-1042","timestamp":"2026-11-23T10:15:02Z"}"#
        let bytes = Array(json.utf8)
        try bytes.withUnsafeBytes { buffer in
            let e = try decoder.decode(buffer)
            #expect(e.userId == e.anonymousId)
            #expect(e.userId.bytes.baseAddress != e.anonymousId.bytes.baseAddress)
            #expect(e.userId.hash64 == e.anonymousId.hash64)
            #expect(e.userId.hash64 == 0xebec_ebfc_1b75_1ed6)
            #expect(e.userId == RawText("c-1042"))
            #expect(e.userId != RawText("c-1043"))
            #expect(e.userId.description == "c-1042")
        }
    }

    @Test("empty RawText")
    func emptyText() {
        #expect(RawText.empty.isEmpty)
        #expect(RawText.empty.string == "")
        #expect(RawText.empty == RawText(""))
        #expect(RawText.empty.hash64 == 0x9322_8a4d_e0ee_c5a2)
        #expect(RawText.empty != RawText("a"))
    }

    @Test("hash spreads nearby keys (no collisions among 100 000 sequential ids)")
    func noCollisions() {
        var seen = Set<UInt64>()
        for i in 0..<100_000 { seen.insert(hash("customer-\(i)")) }
        #expect(seen.count == 100_000)
    }
}

@Suite("Vocabulary")
struct VocabularyTests {
    @Test("wire names and their byte-matching twins agree")
    func wireLiterals() {
        for kind in EventKind.allCases { #expect(kind.wireName == kind.wireLiteral.description) }
        for channel in Channel.allCases { #expect(channel.wireName == channel.wireLiteral.description) }
        for type in SegmentType.allCases { #expect(type.wireName == type.wireLiteral.description) }
    }

    @Test("channel wire names round-trip; unknown names are nil")
    func channelNames() {
        for channel in Channel.allCases { #expect(Channel(wireName: channel.wireName) == channel) }
        #expect(Channel.callCenter.wireName == "call_center")
        #expect(Channel(wireName: "callCenter") == nil)
        #expect(Channel(wireName: "") == nil)
    }

    @Test("event kind wire names")
    func eventKindNames() {
        #expect(EventKind.productAddedToWishlist.wireName == "Product Added to Wishlist")
        #expect(EventKind.page.wireName == "page")
        #expect(EventKind.otherActivity.wireName == "other")
        #expect(EventKind.allCases.count == 24)
        #expect(Set(EventKind.allCases.map(\.wireName)).count == 24)
    }
}
