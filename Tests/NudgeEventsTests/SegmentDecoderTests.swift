import NudgeEvents
import Testing

@Suite("Decoding valid events")
struct SegmentDecoderTests {
    @Test("the contract's example decodes field by field")
    func contractExampleDecodes() throws {
        let e = try decode(contractExample).get()
        #expect(e.type == .track)
        #expect(e.kind == .productAdded)
        #expect(e.channel == .web)
        #expect(e.timestampMillis == 1_795_428_902_120)
        #expect(e.messageId == "4f1c-9a")
        #expect(e.userId == "c-1042")
        #expect(e.anonymousId == "a-77e1")
        #expect(e.customerId == "c-1042")
        #expect(e.eventName == "Product Added")
        #expect(e.amount == 59.90)
        #expect(e.currency == "")
        #expect(e.score == nil)
        #expect(e.category == "outdoor")
        #expect(e.productId == "p-311")
        #expect(e.recommendationId == "")
        #expect(e.action == "")
    }

    @Test("page, screen and identify decode without an event name", arguments: [
        ("page", SegmentType.page, EventKind.page),
        ("screen", .screen, .screen),
        ("identify", .identify, .identify),
    ])
    func nonTrackTypes(wire: String, type: SegmentType, kind: EventKind) throws {
        let json = #"{"type":"\#(wire)","messageId":"m","anonymousId":"a-1","timestamp":"2026-11-23T10:15:02Z","name":"Home","traits":{"email":"x@y.z"},"properties":{"url":"https://x.y/"}}"#
        let e = try decode(json).get()
        #expect(e.type == type)
        #expect(e.kind == kind)
        #expect(e.eventName == "")
        #expect(e.customerId == "a-1")
        #expect(e.channel == .other)
        #expect(e.amount.isNaN)
    }

    @Test("ids up to the limit are kept whole")
    func idsAtTheLimit() throws {
        let long = String(repeating: "u", count: SegmentDecoder.maxIdBytes)
        let e = try decode(#"{"type":"page","userId":"\#(long)","anonymousId":"\#(long)","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#).get()
        #expect(e.userId == long && e.anonymousId == long)
        // Counted after unescaping: 768 bytes as written, 256 once each \u00e9 is é.
        let escaped = String(repeating: "\\u00e9", count: 128)
        let u = try decode(#"{"type":"page","userId":"\#(escaped)","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#).get()
        #expect(u.userId == String(repeating: "é", count: 128))
    }

    @Test("an identify with both ids keeps both; customerId is the userId")
    func identifyLinksIds() throws {
        let e = try decode(#"{"type":"identify","messageId":"m","userId":"c-9","anonymousId":"a-9","timestamp":"2026-11-23T10:15:02Z"}"#).get()
        #expect(e.userId == "c-9")
        #expect(e.anonymousId == "a-9")
        #expect(e.customerId == "c-9")
    }

    @Test("every named track event maps to its kind", arguments: EventKind.allCases.filter {
        ![.page, .screen, .identify, .otherActivity].contains($0)
    })
    func namedTrackEvents(kind: EventKind) throws {
        let e = try decode(track(kind.wireName, properties: "{}")).get()
        #expect(e.kind == kind)
        #expect(e.eventName == kind.wireName)
    }

    @Test("other track names are generic activity, not errors", arguments: [
        "Video Played", "product added", "Product Added ", "Order Completed!", "X", "Product Added to Wishlistt",
    ])
    func unknownTrackNames(name: String) throws {
        let e = try decode(track(name)).get()
        #expect(e.kind == .otherActivity)
        #expect(e.eventName == name)
    }

    @Test("channels map by wire name; unknown and absent are other", arguments: [
        ("web", Channel.web), ("app", .app), ("store", .store), ("call_center", .callCenter), ("email", .email),
        ("sms", .sms), ("push", .push), ("social", .social), ("partner", .partner), ("other", .other),
        ("kiosk", .other), ("Web", .other), ("callCenter", .other), ("", .other),
    ])
    func channels(wire: String, channel: Channel) throws {
        let json = #"{"type":"page","messageId":"m","userId":"u","timestamp":"2026-11-23T10:15:02Z","channel":"\#(wire)"}"#
        #expect(try decode(json).get().channel == channel)
    }

    @Test("a null or absent channel is other")
    func nullChannel() throws {
        #expect(try decode(#"{"type":"page","messageId":"m","userId":"u","timestamp":"2026-11-23T10:15:02Z","channel":null}"#).get().channel == .other)
    }

    @Test("keys may come in any order")
    func keyOrder() throws {
        let reordered = #"{"properties":{"quantity":2,"price":10,"product_id":"p-1"},"channel":"app","timestamp":"2026-11-23T10:15:02.120Z","userId":"c-1","messageId":"m-1","event":"Product Added","type":"track"}"#
        let e = try decode(reordered).get()
        #expect(e.kind == .productAdded)
        #expect(e.channel == .app)
        #expect(e.amount == 20)
        #expect(e.productId == "p-1")
        #expect(e.timestampMillis == 1_795_428_902_120)
    }

    @Test("null optional fields count as absent")
    func nullFields() throws {
        let json = #"{"type":"track","event":"Order Completed","messageId":"m","userId":null,"anonymousId":"a-5","timestamp":"2026-11-23T10:15:02Z","channel":null,"properties":{"revenue":null,"total":12.5,"currency":null,"category":null,"product_id":null,"recommendation_id":null,"action":null}}"#
        let e = try decode(json).get()
        #expect(e.userId == "")
        #expect(e.customerId == "a-5")
        #expect(e.amount == 12.5)  // revenue null → falls back to total
        #expect(e.currency == "")
        #expect(e.productId == "")
        #expect(try decode(track(properties: "null")).get().amount.isNaN)
    }

    @Test("duplicate keys: the last one wins, including a whole properties object")
    func duplicatesLastWins() throws {
        let e = try decode(track(extra: #","userId":"c-2","channel":"sms","properties":{"price":3,"quantity":3}"#)).get()
        #expect(e.userId == "c-2")
        #expect(e.channel == .sms)
        #expect(e.amount == 9)
        #expect(e.productId == "")  // from the first properties object, which was replaced
        let inner = try decode(track(properties: #"{"price":1,"price":4,"quantity":2}"#)).get()
        #expect(inner.amount == 8)
    }

    @Test("whitespace anywhere JSON allows it")
    func whitespace() throws {
        let json = " \n\t{ \"type\" : \"track\" ,\r\n \"event\":\"Cart Viewed\", \"messageId\" :\"m\",\"userId\":\"u\" , \"timestamp\":\"2026-11-23T10:15:02Z\" , \"properties\" : { \"a\" : [ 1 , 2 , { } , [ ] ] } } \n\r\t "
        let e = try decode(json).get()
        #expect(e.kind == .cartViewed)
    }

    @Test("unknown fields of every JSON type are skipped")
    func skipsEverythingElse() throws {
        let extra = #","context":{"ip":"1.2.3.4","library":{"name":"analytics.js","version":"2.11.1"},"page":{"path":"/a"},"nested":[[[{"x":[true,false,null,-0.5e-3,1E+2]}]]]},"integrations":{"All":true,"Mixpanel":false},"sentAt":"2026-11-23T10:15:03Z","n":0,"f":-12.5e10,"t":true,"z":null,"e":{},"a":[]"#
        let e = try decode(track(extra: extra)).get()
        #expect(e.kind == .productAdded)
        #expect(e.amount == 59.9)
    }

    @Test("escapes are unescaped: \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\u")
    func escapes() throws {
        let json = #"{"type":"track","event":"Product \u0041dded","messageId":"a\"b\\c\/d\be\ff\ng\rh\ti","userId":"caf\u00e9 \u20ac \ud83d\ude00","timestamp":"2026-11-23T10:15:02Z","properties":{"category":"\u00C9t\u00e9","currency":"\u0045UR"}}"#
        let e = try decode(json).get()
        #expect(e.kind == .productAdded)
        #expect(e.eventName == "Product Added")
        #expect(e.messageId == "a\"b\\c/d\u{08}e\u{0C}f\ng\rh\ti")
        #expect(e.userId == "café € 😀")
        #expect(e.category == "Été")
        #expect(e.currency == "EUR")
    }

    @Test("escaped keys are matched after unescaping")
    func escapedKeys() throws {
        let json = #"{"\u0074ype":"track","ev\u0065nt":"Order Completed","messageId":"m","userId":"u","timestamp":"2026-11-23T10:15:02Z","properties":{"re\u0076enue":42.5}}"#
        let e = try decode(json).get()
        #expect(e.kind == .orderCompleted)
        #expect(e.amount == 42.5)
    }

    /// Keys the decoder recognises in place (without scanning them) must decode as when scanned: as their
    /// escaped spelling (which is unescaped first), and a near miss (one byte more, one less, another case)
    /// as any unknown key.
    @Test("keys recognised in place decode as their escaped spellings; near misses are unknown keys")
    func keysRecognisedInPlace() throws {
        let message = #"""
            {"type":"track","event":"Order Completed","messageId":"m-1","userId":"u-1","anonymousId":"a-1",\#
            "timestamp":"2026-11-23T10:15:02.120Z","channel":"web","name":"N","properties":{"category":"shoes",\#
            "currency":"EUR","cart_id":"c","product_id":"p-1","price":12.5,"path":"/","list_id":"l","quantity":2,\#
            "query":"q","revenue":42.5,"total":40,"action":"promo","score":7}}
            """#
        let keys = ["type", "event", "messageId", "userId", "anonymousId", "timestamp", "channel", "name", "properties",
                    "category", "currency", "cart_id", "product_id", "price", "path", "list_id", "quantity", "query",
                    "revenue", "total", "action", "score"]
        func respelled(_ key: String, as spelling: String) -> String {
            message.replacing("\"\(key)\":", with: "\"\(spelling)\":")
        }
        func outcome(_ json: String) -> String {
            switch decode(json) {
            case .success(let event): "\(event)"
            case .failure(let error): "error \(error.code)"
            }
        }
        let plain = try decode(message).get()
        #expect(plain.kind == .orderCompleted && plain.amount == 42.5 && plain.channel == .web && plain.anonymousId == "a-1")
        for key in keys {
            let first = String(key.unicodeScalars.first?.value ?? 0, radix: 16)  // every key starts with a letter
            let escaped = "\\u00" + first + key.dropFirst()
            #expect(outcome(respelled(key, as: escaped)) == outcome(message), "\(key) escaped")
            let unknown = outcome(respelled(key, as: "zz" + key))
            for nearMiss in [key + "x", String(key.dropLast()), key.prefix(1).uppercased() + key.dropFirst()] {
                #expect(outcome(respelled(key, as: nearMiss)) == unknown, "\(key) as \(nearMiss)")
            }
        }
        // Cut off inside or right after a key: refused, never read past the end.
        for cut in ["{\"type", "{\"type\"", "{\"properties\":{\"price", "{\"timestam"] {
            #expect(failure(cut) != nil, "\(cut)")
        }
    }

    @Test("raw UTF-8 passes through unchanged")
    func rawUnicode() throws {
        let e = try decode(#"{"type":"page","messageId":"m","userId":"Zoë-日本-😀","timestamp":"2026-11-23T10:15:02Z"}"#).get()
        #expect(e.userId == "Zoë-日本-😀")
    }

    @Test("strings longer than the 8-byte fast scan and with special bytes at every offset")
    func longStrings() throws {
        for length in 0..<40 {
            let base = String(repeating: "x", count: length)
            let e = try decode(#"{"type":"page","messageId":"\#(base)é\#(base)","userId":"\#(base)\n\#(base)","timestamp":"2026-11-23T10:15:02Z"}"#).get()
            #expect(e.messageId == base + "é" + base)
            #expect(e.userId == base + "\n" + base)
        }
    }

    @Test("outcome events carry recommendation id and action")
    func outcomeEvents() throws {
        let e = try decode(track("Offer Accepted", properties: #"{"recommendation_id":"r-9c2e","action":"retention_offer"}"#)).get()
        #expect(e.kind == .offerAccepted)
        #expect(e.kind.isOutcome)
        #expect(e.recommendationId == "r-9c2e")
        #expect(e.action == "retention_offer")
    }

    @Test("a numeric product_id is kept as its digits")
    func numericProductId() throws {
        #expect(try decode(track(properties: #"{"product_id":311,"price":2}"#)).get().productId == "311")
        #expect(try decode(track(properties: #"{"product_id":-3.5e2}"#)).get().productId == "-3.5e2")
    }

    @Test("one decoder decodes many messages; each result is independent of the previous")
    func decoderReuse() throws {
        let decoder = SegmentDecoder()
        for i in 0..<100 {
            let json = #"{"type":"page","messageId":"m\u0031-\#(i)","userId":"u-\#(i)","timestamp":"2026-11-23T10:15:02Z"}"#
            let e = try decode(json, with: decoder).get()
            #expect(e.messageId == "m1-\(i)")
            #expect(e.userId == "u-\(i)")
        }
    }

    @Test("a message exactly at the size limit, full of escapes, decodes (scratch is large enough)")
    func scratchBound() throws {
        // In messageId: ids that are stored (userId, anonymousId) are bounded far below the message size.
        let head = #"{"type":"page","userId":"u","timestamp":"2026-11-23T10:15:02Z","messageId":""#
        let tail = #""}"#
        let limit = 4096
        let escapes = (limit - head.utf8.count - tail.utf8.count) / 6
        let padding = limit - head.utf8.count - tail.utf8.count - escapes * 6
        let json = head + String(repeating: "a", count: padding) + String(repeating: "\\u00e9", count: escapes) + tail
        #expect(json.utf8.count == limit)
        let e = try decode(json, with: SegmentDecoder(maxMessageBytes: limit)).get()
        #expect(e.messageId == String(repeating: "a", count: padding) + String(repeating: "é", count: escapes))
    }

    @Test("SegmentEvent() is empty")
    func emptyEvent() {
        let e = SegmentEvent()
        #expect(e.messageId.isEmpty && e.userId.isEmpty && e.customerId.isEmpty && e.currency.isEmpty)
        #expect(e.amount.isNaN && e.timestampMillis == 0 && e.score.isNaN)
    }
}

@Suite("Money and score")
struct AmountTests {
    @Test("orders use revenue, else total, else none (NaN)", arguments: [
        ("Order Completed", #"{"revenue":100.5,"total":120}"#, 100.5),
        ("Order Completed", #"{"total":120}"#, 120.0),
        ("Order Completed", #"{"price":5,"quantity":3}"#, Double.nan),
        ("Order Refunded", #"{"revenue":30,"total":35}"#, 30.0),
        ("Order Cancelled", #"{"total":35}"#, 35.0),
        ("Order Completed", "{}", Double.nan),
    ])
    func orders(name: String, properties: String, expected: Double) throws {
        let amount = try decode(track(name, properties: properties)).get().amount
        #expect(amount == expected || (amount.isNaN && expected.isNaN), "\(amount)")
    }

    @Test("products use price × quantity, quantity defaulting to 1", arguments: [
        ("Product Added", #"{"price":59.90,"quantity":2}"#, 119.8),
        ("Product Added", #"{"price":59.90}"#, 59.9),
        ("Product Removed", #"{"price":10,"quantity":3,"revenue":999}"#, 30.0),
        ("Product Viewed", #"{"price":2.5,"quantity":null}"#, 2.5),
        ("Product Added to Wishlist", #"{"price":4,"quantity":0}"#, 0.0),
        ("Product Added", #"{"quantity":4}"#, Double.nan),
    ])
    func products(name: String, properties: String, expected: Double) throws {
        let amount = try decode(track(name, properties: properties)).get().amount
        #expect(amount == expected || (amount.isNaN && expected.isNaN), "\(amount)")
    }

    @Test("other events have no amount even with money fields")
    func others() throws {
        #expect(try decode(track("Checkout Started", properties: #"{"revenue":10,"price":3}"#)).get().amount.isNaN)
        #expect(try decode(track("Video Played", properties: #"{"revenue":10,"price":3}"#)).get().amount.isNaN)
    }

    @Test("numbers convert exactly for typical decimals and correctly for long ones", arguments: [
        ("59.90", 59.90), ("0.1", 0.1), ("-12.75", -12.75), ("1e2", 100.0), ("1E-2", 0.01), ("0", 0.0),
        // Long mantissas, scaled into the range amounts may take (±1e15).
        ("123456789012345678901234e-10", 123456789012345678901234e-10), ("0.000000000000000000000000123", 1.23e-25),
        ("3.141592653589793238462643383", 3.141592653589793), ("9007199254740993e-2", 9007199254740993e-2),
        ("1.7976931348623157e14", 1.7976931348623157e14), ("5e-324", Double.leastNonzeroMagnitude), ("0.00001", 0.00001),
        ("-0.0", 0.0), ("1234567890123456789e-5", 1234567890123456789e-5), ("1e15", 1e15), ("-1e15", -1e15),
    ])
    func numberConversion(text: String, expected: Double) throws {
        #expect(try decode(track("Order Completed", properties: #"{"revenue":\#(text)}"#)).get().amount == expected)
    }

    @Test("currency is passed through; empty when absent")
    func currency() throws {
        #expect(try decode(track(properties: #"{"currency":"EUR"}"#)).get().currency == "EUR")
        #expect(try decode(track(properties: "{}")).get().currency == "")
    }

    @Test("survey score 0...10 is read for Survey Answered; NaN when absent or another event", arguments: [
        (#"{"score":9}"#, 9.0 as Double?), (#"{"score":0}"#, 0.0), (#"{"score":10}"#, 10.0), (#"{"score":7.0}"#, 7.0),
        (#"{"score":8e0}"#, 8.0),
        ("{}", nil), (#"{"score":null}"#, nil),
    ])
    func surveyScore(properties: String, expected: Double?) throws {
        #expect(try decode(track("Survey Answered", properties: properties)).get().score == expected)
    }

    @Test("score on another event is ignored (but still type-checked)")
    func scoreOtherEvent() throws {
        #expect(try decode(track("Ticket Closed", properties: #"{"score":99}"#)).get().score == nil)
        #expect(code(track("Ticket Closed", properties: #"{"score":"high"}"#)) == .wrongType)
    }
}
