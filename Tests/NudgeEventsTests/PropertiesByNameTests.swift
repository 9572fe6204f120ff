import NudgeEvents
import Testing

/// A feature file's `properties.<key>`: the decoder reads the keys it is given, as their JSON type allows.
@Suite("Reading properties by name")
struct PropertiesByNameTests {
    typealias Property = DecodedEvent.Property

    static let names = ["payment_method", "items", "is_gift", "shipping", "tier", "revenue", "päck", "absent"]
    static let order = #"{"type":"track","event":"Order Completed","messageId":"m-1","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","#
        + #""properties":{"order_id":"o-9","payment_method":"gift\u005fcard","items":3,"is_gift":true,"shipping":{"method":"express"},"#
        + #""tier":null,"revenue":120.5,"p\u00e4ck":"x","products":[{"sku":"s-1"}]}}"#

    @Test func eachTypeReadsAsDocumented() throws {
        let e = try decode(Self.order, with: SegmentDecoder(properties: Self.names)).get()
        #expect(e.properties == [
            Property(name: "payment_method", text: "gift_card", number: nil),   // unescaped
            Property(name: "items", text: "3", number: 3),                       // a number keeps its digits too
            Property(name: "is_gift", text: "true", number: nil),
            Property(name: "shipping", text: "", number: nil),                   // objects and arrays read as absent
            Property(name: "tier", text: "", number: nil),                       // null too
            Property(name: "revenue", text: "120.5", number: 120.5),
            Property(name: "päck", text: "x", number: nil),                      // an escaped key matches its name
            Property(name: "absent", text: "", number: nil),
        ])
        // The fields Nudge reads on its own are unchanged by reading a key of theirs by name.
        #expect(e.amount == 120.5)
        #expect(e.kind == .orderCompleted)
    }

    @Test func withoutNamesEventsCarryNoProperties() throws {
        let plain = try decode(Self.order).get()
        #expect(plain.properties.isEmpty)
        #expect(plain.amount == 120.5)
        var named = try decode(Self.order, with: SegmentDecoder(properties: Self.names)).get()
        named.properties = []
        #expect(named == plain)
    }

    @Test func eachMessageStartsEmptyAndARepeatedPropertiesObjectReplacesTheFirst() throws {
        let decoder = SegmentDecoder(properties: ["items", "tier"])
        _ = try decode(Self.order, with: decoder).get()
        let next = #"{"type":"track","event":"Order Completed","messageId":"m-2","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","properties":{"tier":"gold"}}"#
        #expect(try decode(next, with: decoder).get().properties == [
            Property(name: "items", text: "", number: nil), Property(name: "tier", text: "gold", number: nil),
        ])
        let twice = #"{"type":"track","event":"Order Completed","messageId":"m-3","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","#
            + #""properties":{"items":2,"tier":"gold"},"properties":{"items":5}}"#
        #expect(try decode(twice, with: decoder).get().properties == [
            Property(name: "items", text: "5", number: 5), Property(name: "tier", text: "", number: nil),
        ])
    }

    @Test func anOutOfRangeNumberReadsAsTextOnlyAndTheEventIsKept() throws {
        let json = #"{"type":"track","event":"Order Completed","messageId":"m","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","#
            + #""properties":{"items":2e300,"total":10}}"#
        let e = try decode(json, with: SegmentDecoder(properties: ["items"])).get()
        #expect(e.properties == [Property(name: "items", text: "2e300", number: nil)])
        #expect(e.amount == 10)
    }

    @Test func aKeyNudgeReadsItselfKeepsTheContractsType() {
        let json = #"{"type":"track","event":"Product Added","messageId":"m","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","#
            + #""properties":{"quantity":"two"}}"#
        let error = failure(json, with: SegmentDecoder(properties: ["quantity"]))
        #expect(error?.code == .wrongType)
        #expect(error?.detail == "properties.quantity must be a number")
    }

    @Test func aBrokenValueIsStillRefusedAsJSON() {
        let json = #"{"type":"track","event":"Order Completed","messageId":"m","userId":"c-1","timestamp":"2026-11-23T10:15:02Z","#
            + #""properties":{"items":[1,}}"#
        #expect(throws: DecodeError.self) { try decode(json, with: SegmentDecoder(properties: ["items"])).get() }
        #expect(throws: DecodeError.self) { try decode(json).get() }
    }
}
