import NudgeDecisions
import NudgeEvents
@testable import NudgeFeatures
@testable import NudgePipeline
import Testing

/// The identity topic's messages: what one instance writes, another reads back; hostile bytes are refused
/// or clamped, never trusted into the store.
@Suite struct IdentityWireTests {
    static let fingerprint = IdentityWire.fingerprint(of: .standard)

    /// A real detached record: a visitor's views, lifted out of a table.
    static func record() throws -> DetachedCustomer {
        let table = CustomerTable(features: .standard, expectedCustomers: 16)
        var event = SegmentEvent()
        event.kind = .productViewed
        event.timestampMillis = 1_790_000_000_000
        let id: [UInt8] = Array("a-1".utf8)
        return try id.withUnsafeBytes { raw in
            event.anonymousId = RawText(raw)
            table.apply(event, to: table.slot(for: event.customerId))
            return try #require(table.detach(RawText(raw))?.customer)
        }
    }

    @Test func theFingerprintCoversEveryDefinitionWhole() throws {
        func set(_ aggregation: String, window: String = "7d") throws -> FeatureSet {
            try FeatureSet.parse(#"{"format": "nudge-features/1", "features": [{"name": "big_order", "events": ["Order Completed"], "#
                                 + #""aggregation": "\#(aggregation)", "of": "amount", "window": "\#(window)"}]}"#, file: "f.json")
        }
        let max7d = try set("max")
        #expect(IdentityWire.fingerprint(of: max7d) == IdentityWire.fingerprint(of: try set("max")), "the same file, the same fingerprint")
        // The same name and record size, another meaning: records must not travel.
        let min7d = try set("min")
        #expect(min7d.bytesPerCustomer == max7d.bytesPerCustomer)
        #expect(IdentityWire.fingerprint(of: min7d) != IdentityWire.fingerprint(of: max7d))
        // Sets (kinds, channels, condition values) list in an order that differs between two equal sets: the
        // fingerprint must not.
        let many = #"{"format": "nudge-features/1", "features": [{"name": "touches", "events": ["page", "screen", "Product Viewed", "#
            + #""Products Searched", "Product Added", "Order Completed", "Ticket Opened"], "channels": ["web", "app", "store", "#
            + #""call_center", "email"], "where": {"category": ["a", "b", "c", "d", "e", "f", "g", "h"]}, "aggregation": "count", "window": "7d"}]}"#
        let prints = try (0..<8).map { _ in IdentityWire.fingerprint(of: try FeatureSet.parse(many, file: "f.json")) }
        #expect(Set(prints).count == 1, "\(Set(prints).count) fingerprints for one file")
        let max14d = try set("max", window: "14d")
        #expect(max14d.bytesPerCustomer == max7d.bytesPerCustomer)
        #expect(IdentityWire.fingerprint(of: max14d) != IdentityWire.fingerprint(of: max7d))
        // Two features over one condition pair share their state (a ring and a seen bit) whatever order each
        // lists the conditions in: the layout, and so the fingerprint, is the same. (In file order, one file
        // shared the state and the other did not, records of one size that the fingerprint did not tell apart.)
        func pair(_ second: String) throws -> FeatureSet {
            try FeatureSet.parse(#"{"format": "nudge-features/1", "features": ["#
                                 + #"{"name": "mid_2h", "events": ["Order Completed"], "where": {"amount": {">=": 10, "<": 100}}, "aggregation": "count", "window": "2h", "resolution": "1h"}, "#
                                 + #"{"name": "mid_3h", "events": ["Order Completed"], "where": {"amount": \#(second)}, "aggregation": "count", "window": "3h", "resolution": "1h"}]}"#, file: "f.json")
        }
        let sameOrder = try pair(#"{">=": 10, "<": 100}"#)
        let reversed = try pair(#"{"<": 100, ">=": 10}"#)
        #expect(reversed.recordFormat == sameOrder.recordFormat)
        // The same in every process: nothing printed with an address (a private type, a pointer).
        for format in [FeatureSet.standard.recordFormat, sameOrder.recordFormat] {
            #expect(!format.contains("unknown context") && !format.contains("0x"), "\(format.prefix(400))")
            // Fields and all: a build without reflection metadata would print the layout without them.
            #expect(format.hasPrefix("v\(FeatureSet.recordEncodingVersion) ") && format.contains("template:") && format.contains("offset:"))
        }
        #expect(IdentityWire.fingerprint(of: reversed) == IdentityWire.fingerprint(of: sameOrder))
    }

    @Test func everyKindRoundTrips() throws {
        var contacts = ContactHistory()
        contacts.record(atMillis: 1_790_000_000_000, channel: .email, action: 2)
        let merge = IdentityChange(.merge(features: try Self.record(), cart: CartState(items: 2, lastAdd: 5, settled: .min), contacts: contacts),
                                   anonymous: Array("a-1".utf8), user: Array("u-1".utf8), atMillis: 42, generation: 7)
        let decoded = try IdentityWire.encode(merge, fingerprint: Self.fingerprint).withUnsafeBytes {
            try IdentityWire.decode($0, fingerprint: Self.fingerprint)
        }
        #expect(decoded.anonymous == merge.anonymous && decoded.user == merge.user)
        #expect(decoded.atMillis == 42 && decoded.generation == 7 && decoded.key == Array("u-1".utf8))
        guard case .merge(let features, let cart, let handed) = decoded.kind else { Issue.record("not a merge"); return }
        #expect(features?.record == (try Self.record()).record)
        #expect(cart?.items == 2 && cart?.lastAdd == 5 && cart?.settled == .min)
        #expect(handed == contacts)

        for kind: IdentityChange.Kind in [.link, .unlink, .event(Array(#"{"type":"page"}"#.utf8), time: .onTime)] {
            let change = IdentityChange(kind, anonymous: Array("a-1".utf8), user: Array("u-1".utf8), atMillis: 1, generation: 2)
            let back = try IdentityWire.encode(change, fingerprint: Self.fingerprint).withUnsafeBytes {
                try IdentityWire.decode($0, fingerprint: Self.fingerprint)
            }
            #expect(back.key == change.key)
            if case .event(let bytes, _) = kind, case .event(let got, _) = back.kind { #expect(got == bytes) }
        }
    }

    /// A relayed event's judged time travels as a header: what one version writes, the next reads.
    @Test("x-event-time round-trips; unknown values read as no judgement", arguments: [
        ("on_time", RelayedEventTime.onTime as RelayedEventTime?), ("late:1795168800000", .late(atMillis: 1_795_168_800_000)),
        ("future:-5", .future(atMillis: -5)), ("late:", nil), ("late:1.5", nil), ("early:1", nil), ("", nil), ("on_time:1", nil),
    ])
    func relayedEventTimeHeader(value: String, time: RelayedEventTime?) {
        #expect(RelayedEventTime(headerValue: value) == time)
        if let time { #expect(time.headerValue == value) }
    }

    @Test func truncatedOrForeignBytesAreRefused() throws {
        let link = IdentityWire.encode(IdentityChange(.link, anonymous: Array("a-1".utf8), user: Array("u-1".utf8), atMillis: 1, generation: 1),
                                       fingerprint: Self.fingerprint)
        for cut in 0..<link.count {
            #expect(throws: IdentityWire.Malformed.self) {
                try Array(link[..<cut]).withUnsafeBytes { _ = try IdentityWire.decode($0, fingerprint: Self.fingerprint) }
            }
        }
        #expect(throws: IdentityWire.Malformed.self) {
            try Array(#"{"type":"track"}"#.utf8).withUnsafeBytes { _ = try IdentityWire.decode($0, fingerprint: Self.fingerprint) }
        }
    }

    @Test func hostileFieldsAreClampedOrDropped() throws {
        var record = try Self.record().record
        record[20] = 0xFE  // the free-slot marker as a channel
        let cart = CartState(items: Int32.min, lastAdd: .max, settled: .min + 1)
        let bytes = IdentityWire.encode(IdentityChange(.merge(features: DetachedCustomer(record: record), cart: cart, contacts: ContactHistory()),
                                                       anonymous: [], user: Array("u-1".utf8), atMillis: 0, generation: 0),
                                        fingerprint: Self.fingerprint)
        let back = try bytes.withUnsafeBytes { try IdentityWire.decode($0, fingerprint: Self.fingerprint) }
        guard case .merge(let features, let got, _) = back.kind else { Issue.record("not a merge"); return }
        #expect(features == nil, "a record whose channel byte is no channel is not merged")
        #expect(got?.items == 0 && got?.lastAdd == 1 << 53 && got?.settled == -(1 << 53))
        // Another feature layout: the features do not merge, the rest does.
        let other = try IdentityWire.encode(IdentityChange(.merge(features: try Self.record(), cart: nil, contacts: ContactHistory()),
                                                           anonymous: [], user: Array("u-1".utf8), atMillis: 0, generation: 0),
                                            fingerprint: Self.fingerprint &+ 1).withUnsafeBytes { try IdentityWire.decode($0, fingerprint: Self.fingerprint) }
        guard case .merge(let dropped, _, _) = other.kind else { Issue.record("not a merge"); return }
        #expect(dropped == nil)
    }
}
