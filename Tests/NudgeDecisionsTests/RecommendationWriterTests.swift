import Foundation
@testable import NudgeDecisions
import NudgeEvents
import NudgeModels
import Testing

@Suite("Recommendation JSON")
struct RecommendationWriterTests {
    static let keys = ["recommendation_id", "customer_id", "action", "channel", "score", "propensity", "value",
                       "churn_probability", "reasons", "alternatives", "trigger", "models", "event_time", "decided_at"]

    /// Writes `decision` for customer `customer` triggered by `messageId`, and returns the text.
    static func write(_ decision: Decision, decider: Decider, customer: String = "c-1042",
                      messageId: String = "4f1c-msg", trigger: EventKind = .ticketOpened,
                      writer: inout RecommendationWriter) -> String {
        let customerBytes = Array(customer.utf8)
        let messageBytes = Array(messageId.utf8)
        return customerBytes.withUnsafeBytes { c in
            messageBytes.withUnsafeBytes { m in
                let out = writer.write(decision: decision, customerId: c, decider: decider,
                                       trigger: .event(trigger, messageId: m),
                                       eventTimeMillis: Fixture.now, decidedAtMillis: Fixture.now + 11)
                return String(decoding: out, as: UTF8.self)
            }
        }
    }

    static func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func everyContractFieldInOrderWithTypesAndValues() throws {
        let decider = try Fixture.decider()
        let decision = decider.decide(DeciderTests.brokenOrder, last: .sms)
        var writer = RecommendationWriter()
        let text = Self.write(decision, decider: decider, writer: &writer)
        let json = try Self.parse(text)

        #expect(Set(json.keys) == Set(Self.keys))
        // In the contract's order.
        let positions = Self.keys.map { text.range(of: "\"\($0)\":")?.lowerBound }
        #expect(!positions.contains(nil))
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())

        #expect(json["recommendation_id"] as? String == RecommendationID.string(messageId: "4f1c-msg", kind: .event, name: "Ticket Opened"))
        #expect(json["customer_id"] as? String == "c-1042")
        #expect(json["action"] as? String == "retention_offer")
        #expect(json["channel"] as? String == "sms")
        #expect(json["score"] as? Double == 5)
        #expect(json["propensity"] as? Double == 0.5)
        #expect(json["value"] as? Double == 10)
        #expect(json["churn_probability"] as? Double == 0.731059)  // sigmoid(1) to 6 significant digits

        let reasons = try #require(json["reasons"] as? [[String: Any]])
        #expect(reasons.count == 1)
        #expect(reasons[0]["feature"] as? String == "tickets_open")
        #expect(reasons[0]["contribution"] as? Double == 0.5)

        let alternatives = try #require(json["alternatives"] as? [[String: Any]])
        #expect(alternatives.count == 1)
        #expect(alternatives[0]["action"] as? String == "service_recovery_call")
        #expect(alternatives[0]["score"] as? Double == 4)

        let trigger = try #require(json["trigger"] as? [String: Any])
        #expect(trigger["kind"] as? String == "event")
        #expect(trigger["event"] as? String == "Ticket Opened")
        #expect(trigger["message_id"] as? String == "4f1c-msg")
        #expect(Array(trigger.keys).sorted() == ["event", "kind", "message_id"])

        let models = try #require(json["models"] as? [String: Any])
        #expect(models["nba"] as? String == "nba@t.2")
        #expect(models["churn"] as? String == "churn@t.1")

        #expect(json["event_time"] as? String == "2026-11-23T10:15:02.120Z")
        #expect(json["decided_at"] as? String == "2026-11-23T10:15:02.131Z")
    }

    @Test func noneCarriesPolicyReasonsAndNullChannel() throws {
        let decider = try Fixture.decider()
        var history = ContactHistory()
        history.record(atMillis: Fixture.now - Fixture.minute, channel: .email, action: 2)
        history.record(atMillis: Fixture.now - Fixture.day, channel: .email, action: 2)
        history.record(atMillis: Fixture.now - 2 * Fixture.day, channel: .email, action: 2)
        let decision = decider.decide(DeciderTests.shopper, history: history)
        var writer = RecommendationWriter()
        let json = try Self.parse(Self.write(decision, decider: decider, trigger: .productAdded, writer: &writer))

        #expect(Set(json.keys) == Set(Self.keys))
        #expect(json["action"] as? String == "none")
        #expect(json["channel"] is NSNull)
        #expect(json["score"] as? Double == 0)
        #expect(json["propensity"] as? Double == 0)
        #expect(json["value"] as? Double == 0)
        #expect(json["churn_probability"] as? Double == 0.5)
        let reasons = try #require(json["reasons"] as? [[String: Any]])
        #expect(reasons.map { $0["feature"] as? String } == ["policy.cooldown", "policy.weekly_cap"])
        #expect(reasons.map { $0["contribution"] as? Double } == [0, 0])
        let alternatives = try #require(json["alternatives"] as? [[String: Any]])
        #expect(alternatives.map { $0["action"] as? String } == ["promo_discount", "cart_reminder"])
        #expect((json["trigger"] as? [String: Any])?["event"] as? String == "Product Added")
    }

    @Test func everySuppressionReasonHasItsPolicyName() {
        #expect(SuppressionReason.allCases.map(\.rawValue) ==
                ["cooldown", "channel_cap", "weekly_cap", "no_eligible_action", "below_threshold", "no_channel"])
    }

    @Test func idsAreEscapedAndAlwaysValidJSON() throws {
        let decider = try Fixture.decider()
        let decision = decider.decide(DeciderTests.shopper)
        var writer = RecommendationWriter()
        let tricky = "c-\"quoted\" back\\slash\nnew\tline \u{01}ctl é 😀"
        let text = Self.write(decision, decider: decider, customer: tricky, messageId: "m\"1\u{1F}", writer: &writer)
        #expect(text.contains(#"c-\"quoted\" back\\slash\nnew\tline \u0001ctl é 😀"#))
        let json = try Self.parse(text)
        #expect(json["customer_id"] as? String == tricky)
        #expect((json["trigger"] as? [String: Any])?["message_id"] as? String == "m\"1\u{1F}")

        // Ill-formed UTF-8 (a lone 0xFF, a truncated 3-byte sequence, an encoded surrogate)
        // becomes U+FFFD rather than invalid JSON.
        let bad: [UInt8] = [0x63, 0xFF, 0x2D, 0xE2, 0x82, 0x2D, 0xED, 0xA0, 0x80, 0x21]
        let out = bad.withUnsafeBytes { c in
            String(decoding: writer.write(decision: decision, customerId: c, decider: decider,
                                          trigger: .timer("Cart Abandoned", customerId: c, deadlineMillis: 0),
                                          eventTimeMillis: 0, decidedAtMillis: 0), as: UTF8.self)
        }
        let parsed = try Self.parse(out)
        #expect(parsed["customer_id"] as? String == "c\u{FFFD}-\u{FFFD}\u{FFFD}-\u{FFFD}\u{FFFD}\u{FFFD}!")
        #expect((parsed["trigger"] as? [String: Any])?["kind"] as? String == "timer")
        #expect((parsed["trigger"] as? [String: Any])?["event"] as? String == "Cart Abandoned")
        #expect(parsed["event_time"] as? String == "1970-01-01T00:00:00.000Z")
    }

    /// Action ids and model names and versions are written from text made once per model load: escaped
    /// there, they must come out of every recommendation as the model file has them.
    @Test func modelTextIsEscapedOnceAndReadsBackExactly() throws {
        var document = try #require(try JSONSerialization.jsonObject(with: Fixture.starter("nba.json")) as? [String: Any])
        var actions = try #require(document["actions"] as? [[String: Any]])
        let odd = ["say \"hi\" \\ now", "tab\there", "café ☕ 😀", "new\nline"]
        for i in actions.indices { actions[i]["id"] = odd[i % odd.count] + " \(i)" }
        document["actions"] = actions
        document["name"] = "nba \"x\""
        document["version"] = "v\\1"
        let nba = String(decoding: try JSONSerialization.data(withJSONObject: document), as: UTF8.self)
        let decider = try Fixture.starterDecider(nbaJSON: nba)
        var writer = RecommendationWriter()
        var decided = 0
        var vectors = [DeciderTests.shopper, DeciderTests.brokenOrder]
        for i in 0..<40 {
            let values: [String: Double] = ["cart_items": Double(i % 3), "orders_30d": Double(i % 5), "tickets_open": Double(i % 2)]
            vectors.append(Fixture.vector(values))
        }
        for vector in vectors {
            let decision = decider.decide(vector)
            let json = try Self.parse(Self.write(decision, decider: decider, writer: &writer))
            let expected = decision.actionIndex.map { decider.nba.actions[$0].id } ?? "none"
            #expect(json["action"] as? String == expected)
            #expect((json["models"] as? [String: String])?["nba"] == "nba \"x\"@v\\1")
            for alternative in json["alternatives"] as? [[String: Any]] ?? [] {
                #expect(decider.nba.actions.contains { $0.id == alternative["action"] as? String })
            }
            if let index = decision.actionIndex {
                decided += 1
                let names = Set(decider.nba.actions[index].scorer.featureNames)
                for reason in json["reasons"] as? [[String: Any]] ?? [] {
                    #expect(names.contains(reason["feature"] as? String ?? ""))
                }
            }
        }
        #expect(decided > 0, "some vector should win an action")
    }

    @Test func nonFiniteNumbersAreWrittenAsZero() throws {
        let decider = try Fixture.decider()
        var decision = decider.decide(DeciderTests.shopper)
        decision.score = .nan
        decision.propensity = .infinity
        decision.churnProbability = -.infinity
        decision.alternatives = FixedAlternatives()
        decision.alternatives.append(Alternative(actionIndex: 1, score: .nan))
        var writer = RecommendationWriter()
        let text = Self.write(decision, decider: decider, writer: &writer)
        #expect(!text.lowercased().contains("nan"))
        #expect(!text.lowercased().contains("inf"))
        let json = try Self.parse(text)
        #expect(json["score"] as? Double == 0)
        #expect(json["propensity"] as? Double == 0)
        #expect(json["churn_probability"] as? Double == 0)
        #expect((json["alternatives"] as? [[String: Any]])?.first?["score"] as? Double == 0)
    }

    @Test func bufferIsReusedAndCopiesDoNotShare() throws {
        let decider = try Fixture.decider()
        let decision = decider.decide(DeciderTests.shopper)
        var writer = RecommendationWriter(initialCapacity: 16)  // forces growth on the first write
        let long = Self.write(decision, decider: decider, customer: String(repeating: "x", count: 3000), writer: &writer)
        let short = Self.write(decision, decider: decider, customer: "c-1", writer: &writer)
        #expect(try Self.parse(long)["customer_id"] as? String == String(repeating: "x", count: 3000))
        #expect(try Self.parse(short)["customer_id"] as? String == "c-1")
        #expect(short.count < long.count)

        var copy = writer
        let fromCopy = Self.write(decision, decider: decider, customer: "c-copy", writer: &copy)
        let fromOriginal = Self.write(decision, decider: decider, customer: "c-orig", writer: &writer)
        #expect(try Self.parse(fromCopy)["customer_id"] as? String == "c-copy")
        #expect(try Self.parse(fromOriginal)["customer_id"] as? String == "c-orig")
    }

    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (0.318, "0.318"), (15, "15"), (15.5, "15.5"), (-2.5, "-2.5"),
        (0.21234567, "0.212346"), (123.456789, "123.457"), (0.1 + 0.2, "0.3"), (100, "100"),
        (1_234_567, "1234570"), (999_999.7, "1000000"), (0.999_999_9, "1"), (0.000_012_345_6, "0.0000123456"),
        (1.5e-8, "1.5e-8"), (1e21, "1e21"), (-3.25e-12, "-3.25e-12"), (1e20, "100000000000000000000"),
        (1.7976931348623157e308, "1.79769e308"), (1e-301, "0"), (.nan, "0"), (.infinity, "0"), (-.infinity, "0"),
    ])
    func numbersHaveAtMostSixSignificantDigits(value: Double, text: String) {
        let out = JSONBytes(capacity: 64)
        out.number(value)
        #expect(String(decoding: out.bytes, as: UTF8.self) == text)
    }

    /// Over random magnitudes from 1e-300 to 1e300, both signs: the text parses back to the value C's `%.6g`
    /// rounds to, has at most six significant digits, and is valid JSON number syntax.
    @Test func numbersEqualPrintfSixSignificantDigits() throws {
        var random = SystemRandomNumberGenerator()  // failures list their values
        let out = JSONBytes(capacity: 16)  // grows on the way
        let syntax = try NSRegularExpression(pattern: #"^-?(0|[1-9][0-9]*)(\.[0-9]+)?(e-?[1-9][0-9]*)?$"#)
        var mismatches: [String] = []
        for _ in 0..<20_000 {
            let value = Double(sign: Bool.random(using: &random) ? .plus : .minus,
                               exponent: Int.random(in: -995...995, using: &random),
                               significand: Double.random(in: 1..<2, using: &random))
            out.reset()
            out.number(value)
            let text = String(decoding: out.bytes, as: UTF8.self)
            let expected = Double(String(format: "%.6g", value)) ?? .nan
            let significant = text.split(separator: "e")[0].filter(\.isNumber).drop { $0 == "0" }.reversed().drop { $0 == "0" }
            let range = NSRange(text.startIndex..., in: text)
            if Double(text) != expected || significant.count > 6 || syntax.firstMatch(in: text, range: range) == nil {
                mismatches.append("\(value): \(text), printf \(expected)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
    }
}

@Suite("Recommendation ids")
struct RecommendationIDTests {
    @Test func murmur3MatchesPublishedVectors() {
        func digest(_ text: String, seed: UInt64) -> String {
            var hasher = Murmur3x64_128(seed: seed)
            for b in text.utf8 { hasher.add(b) }
            let (h1, h2) = hasher.finish()
            return [h1, h2].map { h in (0..<8).map { String(format: "%02x", (h >> (8 * UInt64($0))) & 0xFF) }.joined() }.joined()
        }
        #expect(digest("Hello world", seed: 0) == "09c01ad2296d65bdb32ceb54cdb5b54a")
        #expect(digest("", seed: 0x9747_b28c) == "b3bbaa1d8a202b397a9502e38f60b093")
        #expect(digest("The quick brown fox jumps over the lazy dog", seed: 0x9747_b28c) == "213163d23b7f8a73e516c07e727345f9")
    }

    @Test func deterministicAndDistinct() {
        let a = RecommendationID.string(messageId: "4f1c-aaaa", kind: .event, name: "Ticket Opened")
        #expect(a == RecommendationID.string(messageId: "4f1c-aaaa", kind: .event, name: "Ticket Opened"))
        // Pinned: the id must not change between releases, or replays would re-send under new ids.
        #expect(a == "r-7167a1244dcf9b0605c46922f76d3e4f")
        #expect(a.count == RecommendationID.length)
        #expect(a.hasPrefix("r-"))
        #expect(a.dropFirst(2).allSatisfy { "0123456789abcdef".contains($0) })
        #expect(a != RecommendationID.string(messageId: "4f1c-aaab", kind: .event, name: "Ticket Opened"))
        #expect(a != RecommendationID.string(messageId: "4f1c-aaaa", kind: .timer, name: "Ticket Opened"))
        #expect(a != RecommendationID.string(messageId: "4f1c-aaaa", kind: .event, name: "Product Added"))
        var seen = Set<String>()
        for i in 0..<10_000 { seen.insert(RecommendationID.string(messageId: "m-\(i)", kind: .event, name: "Product Added")) }
        #expect(seen.count == 10_000)
    }

    @Test func timerTriggerHasNoMessageIdAndAnIdFromCustomerTimerAndDeadline() throws {
        let decider = try Fixture.decider()
        let decision = decider.decide(DeciderTests.shopper)
        var writer = RecommendationWriter()
        let deadline: Int64 = 1_790_001_800_000
        let text = Array("c-77".utf8).withUnsafeBytes { c in
            String(decoding: writer.write(decision: decision, customerId: c, decider: decider,
                                          trigger: .timer("Cart Abandoned", customerId: c, deadlineMillis: deadline),
                                          eventTimeMillis: deadline, decidedAtMillis: deadline + 5), as: UTF8.self)
        }
        #expect(text.contains(#""trigger":{"kind":"timer","event":"Cart Abandoned","message_id":null}"#))
        let json = try RecommendationWriterTests.parse(text)
        let id = RecommendationID.string(customerId: "c-77", timer: "Cart Abandoned", deadlineMillis: deadline)
        #expect(json["recommendation_id"] as? String == id)
        // Pinned, as the event form is: a replay must fire the timer under the same id. And the documented
        // layout: customer ‖ 0 ‖ kind ‖ timer name ‖ 0 ‖ deadline (8 bytes, little-endian), MurmurHash3 x64.
        #expect(id == "r-26edef642705ee89b52f75f527ddca8c")
        var layout: [UInt8] = Array("c-77".utf8)
        layout += [0, TriggerKind.timer.rawValue]
        layout += Array("Cart Abandoned".utf8)
        layout += [0]
        for byte in 0..<8 { layout.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: deadline) >> (8 * UInt64(byte)))) }
        var hasher = Murmur3x64_128(seed: 0)
        for byte in layout { hasher.add(byte) }
        let (h1, h2) = hasher.finish()
        let hex: [String] = [h1, h2].map { h in (0..<8).map { String(format: "%02x", (h >> (8 * UInt64($0))) & 0xFF) }.joined() }
        #expect(id == "r-" + hex.joined())
        #expect(json["event_time"] as? String == "2026-09-21T14:43:20.000Z")
        // Another deadline, customer or timer is another firing, with another id.
        #expect(id != RecommendationID.string(customerId: "c-77", timer: "Cart Abandoned", deadlineMillis: deadline + 1))
        #expect(id != RecommendationID.string(customerId: "c-78", timer: "Cart Abandoned", deadlineMillis: deadline))
        #expect(id != RecommendationID.string(customerId: "c-77", timer: "Customer Silent", deadlineMillis: deadline))
        #expect(id != RecommendationID.string(messageId: "c-77", kind: .timer, name: "Cart Abandoned"))
    }
}
