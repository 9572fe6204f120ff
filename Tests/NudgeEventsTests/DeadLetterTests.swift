import NudgeEvents
import NudgeTraffic
import Testing

@Suite("Dead-letter classification")
struct DeadLetterTests {
    @Test("invalid JSON", arguments: [
        "", " ", "nope", "[]", #"[{"type":"track"}]"#, #""track""#, "42", "null", "{", "}", "{}}", "{} {}",
        #"{"type":"page",}"#, #"{"type" "page"}"#, #"{"type":"page""userId":"u"}"#, #"{type:"page"}"#,
        #"{'type':'page'}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":-}"#, #"{"a":+1}"#, #"{"a":1e}"#,
        #"{"a":1e+}"#, #"{"a":NaN}"#, #"{"a":Infinity}"#, #"{"a":0x10}"#, #"{"a":tru}"#, #"{"a":nul}"#,
        #"{"a":True}"#, #"{"a":[1,]}"#, #"{"a":[,1]}"#, #"{"a":[1 2]}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#,
        #"{"a":"\u12G4"}"#, #"{"a":"\ud83d"}"#, #"{"a":"\ude00"}"#, #"{"a":"\ud83d\u0041"}"#, #"{"a":"\ud83dx"}"#,
        #"{"a":"unterminated}"#, "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", "{\"a\":\"nul\u{0}\"}",
        "{\"a\":1}\u{0}", "\u{FEFF}{\"a\":1}", "{\"a\":1} // comment", "{/* c */\"a\":1}", "{\"a\":1}x",
        "{\"a\":\u{0B}1}",
    ])
    func invalidJSON(json: String) {
        #expect(code(json) == .invalidJSON, "\(json)")
    }

    @Test("invalid UTF-8 inside strings is invalid JSON", arguments: [
        [0xFF], [0xC0, 0xAF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xE0, 0x80, 0xAF], [0x80], [0xF0, 0x9F, 0x98],
    ] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) {
        let message = Array(#"{"type":"page","messageId":"m","timestamp":"2026-11-23T10:15:02Z","userId":"ab"#.utf8)
            + bytes + Array(#"cd"}"#.utf8)
        #expect(code(bytes: message) == .invalidJSON)
    }

    @Test("the commonest mistakes are named, with what to do", arguments: [
        ("\u{FEFF}{\"a\":1}", "the message starts with a UTF-8 byte order mark (EF BB BF), which JSON messages must not: send it without at byte 0"),
        (#"{"type":"page",}"#, "trailing comma before '}' (remove it) at byte 15"),
        (#"{"a":{"b":1,}}"#, "trailing comma before '}' (remove it) at byte 12"),
        (#"{"a":[1,2,]}"#, "trailing comma before ']' (remove it) at byte 10"),
        (#"{"a":01}"#, "number with a leading zero (JSON writes 7, not 07) at byte 6"),
        (#"{"a":-0.5,"b":-007}"#, "number with a leading zero (JSON writes 7, not 07) at byte 16"),
        (#"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02"}"#,
         #"timestamp "2026-11-23T10:15:02" has no UTC offset: end it with Z (UTC) or an offset such as +01:00"#),
        (#"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02.5"}"#,
         #"timestamp "2026-11-23T10:15:02.5" has no UTC offset: end it with Z (UTC) or an offset such as +01:00"#),
        (#"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-13-23T10:15:02Z"}"#,
         #"timestamp "2026-13-23T10:15:02Z" is not ISO-8601 with a valid date, time and offset"#),
        // No offset, but adding one would not help: the generic message.
        (#"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-11-23T25:15:02"}"#,
         #"timestamp "2026-11-23T25:15:02" is not ISO-8601 with a valid date, time and offset"#),
    ])
    func namedMistakes(json: String, detail: String) {
        #expect(failure(json)?.detail == detail, "\(json)")
    }

    @Test("JSON errors win over every semantic error, anywhere in the document")
    func validityFirst() {
        #expect(code(#"{"type":"alias","context":{"a":[1,2,}}"#) == .invalidJSON)
        #expect(code(#"{"userId":123} x"#) == .invalidJSON)
        #expect(failure(#"{"type":"page","x":[1,2,}"#)?.detail == "expected a value at byte 24")
        #expect(failure(#"{"type":"page""#)?.detail == "unexpected end of message at byte 14")
    }

    @Test("missing id", arguments: [
        #"{"type":"page","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"page","messageId":"m","userId":"","anonymousId":"","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"page","messageId":"m","userId":null,"anonymousId":null,"timestamp":"2026-11-23T10:15:02Z"}"#,
    ])
    func missingId(json: String) {
        #expect(code(json) == .missingId)
    }

    @Test("missing messageId", arguments: [
        #"{"type":"page","userId":"u","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"page","userId":"u","messageId":"","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"page","userId":"u","messageId":null,"timestamp":"2026-11-23T10:15:02Z"}"#,
    ])
    func missingMessageId(json: String) {
        #expect(code(json) == .missingMessageId)
    }

    @Test("bad timestamp", arguments: [
        #"{"type":"page","userId":"u","messageId":"m"}"#,
        #"{"type":"page","userId":"u","messageId":"m","timestamp":null}"#,
        #"{"type":"page","userId":"u","messageId":"m","timestamp":"yesterday"}"#,
        #"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-02-30T10:15:02Z"}"#,
        #"{"type":"page","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02"}"#,
        #"{"type":"page","userId":"u","messageId":"m","timestamp":""}"#,
    ])
    func badTimestamp(json: String) {
        #expect(code(json) == .badTimestamp)
    }

    @Test("bad timestamp detail quotes the value")
    func badTimestampDetail() {
        let error = failure(#"{"type":"page","userId":"u","messageId":"m","timestamp":"yesterday"}"#)
        #expect(error?.detail.hasPrefix("timestamp \"yesterday\" is not ISO-8601") == true)
    }

    @Test("wrong type", arguments: [
        (#"{"type":"page","userId":123,"messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#, "userId must be a string"),
        (#"{"type":"page","userId":"u","anonymousId":["a"],"messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#, "anonymousId must be a string"),
        (#"{"type":"page","userId":"u","messageId":7,"timestamp":"2026-11-23T10:15:02Z"}"#, "messageId must be a string"),
        (#"{"type":"page","userId":"u","messageId":"m","timestamp":1795428902120}"#, "timestamp must be an ISO-8601 string"),
        (#"{"type":true,"userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#, "type must be a string"),
        (#"{"type":"track","event":{"name":"x"},"userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#, "event must be a string"),
        (track(extra: #","channel":1"#), "channel must be a string"),
        (track(properties: "[1,2]"), "properties must be an object"),
        (track(properties: #""none""#), "properties must be an object"),
        (track(properties: #"{"price":"abc"}"#), "properties.price must be a number"),
        (track(properties: #"{"quantity":"2"}"#), "properties.quantity must be a number"),
        (track(properties: #"{"revenue":{}}"#), "properties.revenue must be a number"),
        (track(properties: #"{"total":true}"#), "properties.total must be a number"),
        (track(properties: #"{"score":[]}"#), "properties.score must be a number"),
        (track(properties: #"{"currency":978}"#), "properties.currency must be a string"),
        (track(properties: #"{"category":["a"]}"#), "properties.category must be a string"),
        (track(properties: #"{"product_id":{}}"#), "properties.product_id must be a string or a number"),
        (track(properties: #"{"recommendation_id":1}"#), "properties.recommendation_id must be a string"),
        (track(properties: #"{"action":false}"#), "properties.action must be a string"),
        (track("Survey Answered", properties: #"{"score":11}"#), "properties.score must be a whole number 0-10"),
        (track("Survey Answered", properties: #"{"score":-1}"#), "properties.score must be a whole number 0-10"),
        (track("Survey Answered", properties: #"{"score":7.5}"#), "properties.score must be a whole number 0-10"),
        (track(properties: #"{"price":1e400}"#), "properties.price is out of range (at most ±1e15)"),
        (track(properties: #"{"quantity":-2e15}"#), "properties.quantity is out of range (at most ±1e15)"),
        (track("Order Completed", properties: #"{"revenue":1e39}"#), "properties.revenue is out of range (at most ±1e15)"),
        (#"{"type":"page","userId":"\#(String(repeating: "u", count: 257))","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
         "userId is 257 bytes, over the limit of 256: send a shorter id (a hash of it, for instance)"),
        // Counted in bytes, after unescaping: 129 × "é" (2 bytes each) written as \u00e9.
        (#"{"type":"page","anonymousId":"\#(String(repeating: "\\u00e9", count: 129))","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
         "anonymousId is 258 bytes, over the limit of 256: send a shorter id (a hash of it, for instance)"),
    ])
    func wrongType(json: String, detail: String) {
        let error = failure(json)
        #expect(error?.code == .wrongType, "\(json)")
        #expect(error?.detail == detail)
    }

    @Test("unknown type", arguments: [
        #"{"userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":null,"userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"alias","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"Track","event":"x","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
    ])
    func unknownType(json: String) {
        #expect(code(json) == .unknownType)
    }

    @Test("missing event on track", arguments: [
        #"{"type":"track","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"track","event":"","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
        #"{"type":"track","event":null,"userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z"}"#,
    ])
    func missingEvent(json: String) {
        #expect(code(json) == .missingEvent)
    }

    @Test("too large: checked before parsing, at the configured limit")
    func tooLarge() {
        let decoder = SegmentDecoder(maxMessageBytes: 100)
        let big = track(properties: "{}")
        #expect(big.utf8.count > 100)
        #expect(code(big, with: decoder) == .tooLarge)
        // Not even JSON: size still comes first.
        #expect(code(bytes: [UInt8](repeating: 0x7B, count: 101), with: decoder) == .tooLarge)
        let fits = #"{"type":"page","messageId":"m","userId":"u","timestamp":"2026-11-23T10:15:02Z"}"#
        #expect(fits.utf8.count <= 100)
        #expect((try? decode(fits, with: decoder).get()) != nil)
        #expect(code(bytes: [UInt8](repeating: 0x20, count: SegmentDecoder.defaultMaxMessageBytes + 1)) == .tooLarge)
    }

    @Test("too deep: nesting beyond the bound, in objects and arrays")
    func tooDeep() {
        let depth = SegmentDecoder.maxNestingDepth
        // The top-level object is level 1, so `depth - 1` nested containers inside it are fine.
        let okArrays = String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)
        #expect((try? decode(track(extra: #","x":\#(okArrays)"#)).get()) != nil)
        let deepArrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(code(track(extra: #","x":\#(deepArrays)"#)) == .tooDeep)
        let deepObjects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(code(track(extra: #","context":\#(deepObjects)"#)) == .tooDeep)
        // Hostile input: a long run of brackets never recurses past the bound.
        #expect(code(#"{"a":"# + String(repeating: "[", count: 60_000)) == .tooDeep)
        let inProperties = String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)
        #expect(code(track(properties: #"{"x":\#(inProperties)}"#)) == .tooDeep)
    }

    @Test("check order: type, ids, messageId, event, timestamp, field types")
    func checkOrder() {
        #expect(code(#"{"type":"alias","userId":1,"timestamp":"x"}"#) == .unknownType)
        #expect(code(#"{"type":"track","timestamp":"x"}"#) == .missingId)
        #expect(code(#"{"type":"track","userId":"u","timestamp":"x"}"#) == .missingMessageId)
        #expect(code(#"{"type":"track","userId":"u","messageId":"m","timestamp":"x"}"#) == .missingEvent)
        #expect(code(#"{"type":"track","event":"e","userId":"u","messageId":"m","timestamp":"x","properties":[]}"#) == .badTimestamp)
        #expect(code(#"{"type":"track","event":"e","userId":"u","messageId":"m","timestamp":"2026-11-23T10:15:02Z","properties":[]}"#) == .wrongType)
    }

    @Test("every code has a distinct machine name")
    func codeNames() {
        #expect(DeadLetterCode.allCases.map(\.rawValue) == [
            "invalid_json", "missing_id", "missing_message_id", "bad_timestamp", "wrong_type", "unknown_type",
            "missing_event", "too_large", "too_deep", "late", "future",
        ])
        #expect(DecodeError(.wrongType, "userId must be a string").description == "wrong_type: userId must be a string")
    }
}

@Suite("Robustness")
struct RobustnessTests {
    @Test("every truncation of a valid event is invalid JSON, never a crash")
    func truncations() {
        let full = Array(track(properties: #"{"product_id":"p-\u00e9","price":59.90,"quantity":1,"tags":["a",{"b":null}]}"#,
                               extra: #","context":{"x":[true,false,-1.5e3]}"#).utf8)
        #expect((try? decode(bytes: full).get()) != nil)
        let decoder = SegmentDecoder()
        for length in 0..<full.count {
            let prefix = Array(full[..<length])
            #expect(code(bytes: prefix, with: decoder) == .invalidJSON, "prefix \(length)")
        }
    }

    @Test("seeded random mutations never crash, and what decodes is sane")
    func mutationFuzz() {
        let seeds = [
            contractExample,
            track(properties: #"{"product_id":123,"price":1e2,"quantity":2,"currency":"\u0045UR"}"#, extra: #","context":{"a":[1,{"b":"\ud83d\ude00"}]}"#),
            #"{"type":"identify","messageId":"m","userId":"u","anonymousId":"a","timestamp":"2024-02-29T23:59:59.999-05:30","traits":{"email":"x@y"}}"#,
        ].map { Array($0.utf8) }
        var rng = SplitMix64(seed: 0x5EED_2026)
        let decoder = SegmentDecoder(maxMessageBytes: 1024)
        let interesting: [UInt8] = Array(#"{}[]":,\"0123456789-+.eEtfnu "#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xFF]
        var decoded = 0
        for _ in 0..<5_000 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + rng.next() % 4) {
                let at = Int(rng.next() % UInt64(bytes.count))
                let value = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))]
                                                : UInt8(truncatingIfNeeded: rng.next())
                switch rng.next() % 4 {
                case 0: bytes[at] = value
                case 1: bytes.insert(value, at: at)
                case 2: if bytes.count > 1 { bytes.remove(at: at) }
                default: bytes.swapAt(at, Int(rng.next() % UInt64(bytes.count)))
                }
            }
            if case .success(let e) = decode(bytes: bytes, with: decoder) {
                decoded += 1
                #expect(!e.messageId.isEmpty && !e.customerId.isEmpty)
                #expect(e.amount.isNaN || e.amount.magnitude <= 1e30, "absent, or price × quantity within ±1e15 each")
            }
        }
        // Some mutations (inside skipped strings, say) keep the event valid: the loop exercises both paths.
        #expect(decoded > 0)
    }
}
