import NudgeEvents

/// An owned copy of a decoded event, so assertions can run after the message buffer is gone.
struct DecodedEvent: Equatable {
    var type: SegmentType
    var kind: EventKind
    var channel: Channel
    var timestampMillis: Int64
    var messageId: String
    var userId: String
    var anonymousId: String
    var customerId: String
    var eventName: String
    var amount: Double
    var currency: String
    var score: Double?
    var category: String
    var productId: String
    var recommendationId: String
    var action: String
    /// The properties read by name, in slot order: name, text, number (nil for NaN).
    var properties: [Property]

    struct Property: Equatable {
        var name: String
        var text: String
        var number: Double?
    }

    init(_ e: SegmentEvent) {
        type = e.type
        kind = e.kind
        channel = e.channel
        timestampMillis = e.timestampMillis
        messageId = e.messageId.string
        userId = e.userId.string
        anonymousId = e.anonymousId.string
        customerId = e.customerId.string
        eventName = e.eventName.string
        amount = e.amount
        currency = e.currency.string
        score = e.score.isNaN ? nil : e.score
        category = e.category.string
        productId = e.productId.string
        recommendationId = e.recommendationId.string
        action = e.action.string
        properties = e.properties.values.map {
            Property(name: $0.name.string, text: $0.text.string, number: $0.number.isNaN ? nil : $0.number)
        }
    }
}

/// Decodes `bytes` with `decoder` and copies the result out while the buffer is alive.
/// The message is copied into an allocation of exactly its size, so a read past the end is caught by
/// AddressSanitizer (`swift test --sanitize=address`), which an Array's spare capacity would hide.
func decode(bytes: [UInt8], with decoder: SegmentDecoder = SegmentDecoder()) -> Result<DecodedEvent, DecodeError> {
    let exact = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { exact.deallocate() }
    exact.copyBytes(from: bytes)
    do throws(DecodeError) {
        return .success(DecodedEvent(try decoder.decode(UnsafeRawBufferPointer(exact))))
    } catch {
        return .failure(error)
    }
}

/// Decodes the UTF-8 of `json`.
func decode(_ json: String, with decoder: SegmentDecoder = SegmentDecoder()) -> Result<DecodedEvent, DecodeError> {
    decode(bytes: Array(json.utf8), with: decoder)
}

/// The decoded event, or nil when decoding failed.
func event(_ json: String) -> DecodedEvent? {
    try? decode(json).get()
}

/// The failure, or nil when decoding succeeded.
func failure(_ json: String, with decoder: SegmentDecoder = SegmentDecoder()) -> DecodeError? {
    if case .failure(let error) = decode(json, with: decoder) { return error }
    return nil
}

/// The dead-letter code of a failure, or nil when decoding succeeded.
func code(bytes: [UInt8], with decoder: SegmentDecoder = SegmentDecoder()) -> DeadLetterCode? {
    if case .failure(let error) = decode(bytes: bytes, with: decoder) { return error.code }
    return nil
}

/// The dead-letter code of a failure, or nil when decoding succeeded.
func code(_ json: String, with decoder: SegmentDecoder = SegmentDecoder()) -> DeadLetterCode? {
    code(bytes: Array(json.utf8), with: decoder)
}

/// A valid track event with the given extra/overriding top-level members appended (duplicates: last wins).
/// `properties` replaces the default properties object's content.
func track(_ event: String = "Product Added", properties: String = #"{"product_id":"p-311","price":59.90,"quantity":1}"#,
           extra: String = "") -> String {
    #"{"type":"track","event":"\#(event)","messageId":"m-1","userId":"c-1042","timestamp":"2026-11-23T10:15:02.120Z","channel":"web","properties":\#(properties)\#(extra)}"#
}

/// The contract's example event (2026-11-23T10:15:02.120Z = 1795428902120 ms).
let contractExample = #"""
{"type":"track","event":"Product Added","messageId":"4f1c-9a","userId":"c-1042","anonymousId":"a-77e1","timestamp":"2026-11-23T10:15:02.120Z","channel":"web","properties":{"product_id":"p-311","category":"outdoor","price":59.90,"quantity":1}}
"""#
