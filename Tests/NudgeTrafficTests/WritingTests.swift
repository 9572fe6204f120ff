import Foundation
import NudgeEvents
import Testing
@testable import NudgeTraffic

/// The building blocks: PRNG, byte writer (numbers, timestamps, wire names), cart and journey queue.
struct WritingTests {
    private func written(_ body: (inout ByteWriter) -> Void) -> String {
        var writer = ByteWriter(capacity: 4)
        defer { writer.release() }
        body(&writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func splitMix64MatchesTheReferenceOutputs() {
        // Published outputs of Vigna's splitmix64.c for seed 1234567.
        var mixer = SplitMix64(seed: 1_234_567)
        #expect(mixer.next() == 6_457_827_717_110_365_317)
        #expect(mixer.next() == 3_203_168_211_198_807_973)
        #expect(mixer.next() == 9_817_491_932_198_370_423)
    }

    @Test func xoshiroMatchesAnIndependentImplementation() {
        // Values from a Python transcription of xoshiro256** seeded by SplitMix64(42).
        var random = Xoshiro256StarStar(seed: 42)
        #expect(random.next() == 1_546_998_764_402_558_742)
        #expect(random.next() == 6_990_951_692_964_543_102)
        #expect(random.next() == 12_544_586_762_248_559_009)
    }

    @Test func randomHelpersStayInRange() {
        var random = Xoshiro256StarStar(seed: 7)
        var sum = 0.0
        for _ in 0..<10_000 {
            let unit = random.unit()
            #expect(unit >= 0 && unit < 1)
            let below = random.below(7)
            #expect(below >= 0 && below < 7)
            let between = random.between(-5, 5)
            #expect(between >= -5 && between < 5)
            sum += random.exponential(mean: 10)
        }
        #expect(random.below(0) == 0)
        #expect(random.between(3, 3) == 3)
        #expect(abs(sum / 10_000 - 10) < 0.6)
        #expect(random.pick(cumulative: [0, 0, 1]) == 2)
    }

    @Test func timestampsMatchHandComputedDates() {
        let cases: [(Int64, String)] = [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_790_000_000_000, "2026-09-21T14:13:20.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_709_164_799_999, "2024-02-28T23:59:59.999Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        ]
        for (millis, expected) in cases {
            #expect(written { $0.appendTimestamp(millis) } == expected)
        }
        // Clamped to the four-digit years the format allows.
        #expect(written { $0.appendTimestamp(.max) } == "9999-12-31T23:59:59.999Z")
        #expect(written { $0.appendTimestamp(.min) } == "0000-01-01T00:00:00.000Z")
    }

    @Test func timestampsAgreeWithFoundationAcrossCenturies() {
        var random = Xoshiro256StarStar(seed: 3)
        for _ in 0..<2_000 {
            // 1900 ... 2200.
            let millis = random.between(-2_208_988_800_000, 7_258_118_400_000)
            let text = written { $0.appendTimestamp(millis) }
            #expect(parseTimestamp(text) == millis, "\(millis) -> \(text)")
        }
    }

    @Test func hourOfDayIsUTC() {
        #expect(DailyRhythm.hour(of: 0) == 0)
        #expect(DailyRhythm.hour(of: 1_790_000_000_000) == 14)
        #expect(DailyRhythm.hour(of: -1) == 23)
        #expect(DailyRhythm.hour(of: -86_400_000) == 0)
        #expect(DailyRhythm.hour(of: 86_400_000 - 1) == 23)
    }

    @Test func numbersAreWrittenAsJSON() {
        #expect(written { $0.appendDecimal(UInt64(0)) } == "0")
        #expect(written { $0.appendDecimal(UInt64.max) } == "18446744073709551615")
        #expect(written { $0.appendDecimal(Int64(-42)) } == "-42")
        #expect(written { $0.appendCents(5_990) } == "59.90")
        #expect(written { $0.appendCents(7) } == "0.07")
        #expect(written { $0.appendCents(-1_205) } == "-12.05")
        #expect(written { $0.appendHex(0) } == "0")
        #expect(written { $0.appendHex(42) } == "2a")
        #expect(written { $0.appendHex(0xABC, digits: 6) } == "000abc")
        #expect(written { $0.appendHex(0x12345, digits: 3) } == "345")
        #expect(written { $0.appendDecimal(UInt64(9)) } == "9")
        #expect(written { $0.appendDecimal(UInt64(10)) } == "10")
        #expect(written { $0.appendCents(100) } == "1.00")
    }

    @Test func wireNamesAreNudgeEventsOwn() {
        // The table is indexed by raw value: every name must come back as the enum spells it.
        let names = WireNames()
        defer { names.release() }
        func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
        for kind in EventKind.allCases { #expect(text(names.name(of: kind)) == kind.wireName) }
        for type in SegmentType.allCases { #expect(text(names.name(of: type)) == type.wireName) }
        for channel in Channel.allCases { #expect(text(names.name(of: channel)) == channel.wireName) }
        #expect(text(names.name(of: .productAddedToWishlist)) == "Product Added to Wishlist")
        #expect(text(names.name(of: .callCenter)) == "call_center")
        #expect(text(names.name(of: EventKind.page)) == "page")
    }

    @Test func writerGrowsAndKeepsItsBytes() {
        let text = written { writer in
            for _ in 0..<1_000 { writer.append("0123456789") }
            writer.truncate(to: 15)
        }
        #expect(text == "012345678901234")
    }

    @Test func cartAddsMergesAndRemovesLines() {
        var cart = Cart()
        cart.add(product: 12, quantity: 1)
        cart.add(product: 300, quantity: 2)
        cart.add(product: 12, quantity: 1)
        #expect(cart.count == 2)
        #expect(cart.item(0).product == 12 && cart.item(0).quantity == 2)
        #expect(cart.item(1).product == 300 && cart.item(1).quantity == 2)
        cart.add(product: 1, quantity: 1)
        cart.add(product: 2, quantity: 1)
        cart.add(product: 3, quantity: 3)
        // Full: the fifth product raises the last line's quantity.
        #expect(cart.count == 4)
        #expect(cart.item(3).product == 2 && cart.item(3).quantity == 4)
        let removed = cart.removeLast()
        #expect(removed?.product == 2 && removed?.quantity == 4)
        #expect(cart.count == 3)
        cart.add(product: 319, quantity: 1)
        #expect(cart.item(3).product == 319 && cart.item(3).quantity == 1)
        var empty = Cart()
        #expect(empty.removeLast() == nil)
    }

    @Test func queuePopsInTimeOrderAndBreaksTiesByInsertion() {
        var queue = JourneyQueue(capacity: 2)
        for (customer, time) in [(0, 50), (1, 10), (2, 30), (3, 10), (4, 40)] {
            queue.add(Journey(stage: .landing, customer: customer, channel: .known(.web)), at: Int64(time))
        }
        var order: [Int] = []
        while let (_, slot) = queue.popEarliest() {
            order.append(queue.journey(at: slot).customer)
            queue.finish(slot: slot)
        }
        #expect(order == [1, 3, 2, 4, 0])
        #expect(queue.nextTime == .max)
    }

    @Test func productIdsAndPricesAreStable() {
        let catalog = Catalog()
        #expect(Catalog.productNumber(0) == 101)
        #expect(Catalog.productNumber(39) == 140)
        #expect(Catalog.productNumber(Catalog.productCount - 1) == 840)
        #expect(catalog.usdCents.allSatisfy { $0 >= 100 && $0 < 130_000 })
        let usd = catalog.price(of: 5, in: .usd)
        #expect(catalog.price(of: 5, in: .eur) == usd * 92 / 100)
    }
}
