/// One decoded event: the fields Nudge needs, flat. A plain value, but its `RawText` fields borrow memory
/// (the message bytes and the decoder's scratch), see `RawText` for how long they stay valid.
public struct SegmentEvent {
    /// The Segment message type.
    public var type: SegmentType
    /// What happened, normalised from `type` and `event`.
    public var kind: EventKind
    /// The touchpoint; `.other` when absent or unknown.
    public var channel: Channel
    /// Event time (`timestamp`), UTC, milliseconds since the Unix epoch.
    public var timestampMillis: Int64
    /// `messageId`, used to drop duplicates.
    public var messageId: RawText
    /// `userId`; empty when absent or null.
    public var userId: RawText
    /// `anonymousId`; empty when absent or null.
    public var anonymousId: RawText
    /// The raw `event` name of a track message; empty for other types.
    public var eventName: RawText
    /// Money: orders take `properties.revenue`, else `properties.total`; single-product events take
    /// `price × quantity` (quantity defaults to 1). NaN when the event carries no such field, or is another
    /// kind, as ``score`` is: aggregations skip it (sums add nothing) and no condition holds for it.
    public var amount: Double
    /// `properties.currency` (ISO 4217); empty means the caller should assume USD.
    public var currency: RawText
    /// `properties.score` of a `Survey Answered` event (0...10, NPS); NaN when absent or another kind.
    public var score: Double
    /// `properties.category`.
    public var category: RawText
    /// `properties.product_id` (a numeric id is kept as its digits).
    public var productId: RawText
    /// `properties.recommendation_id` (outcome events).
    public var recommendationId: RawText
    /// `properties.action` (outcome events).
    public var action: RawText
    /// The properties a feature file reads by name, in the order the decoder was given them; none unless asked.
    public var properties: EventProperties

    /// The Kafka key and store key: `userId` when present, else `anonymousId`.
    @inline(__always)
    public var customerId: RawText { userId.isEmpty ? anonymousId : userId }

    /// Everything empty, zero or NaN (`score`); type `.track`, kind `.otherActivity`, channel `.other`.
    public init() {
        type = .track
        kind = .otherActivity
        channel = .other
        timestampMillis = 0
        messageId = .empty
        userId = .empty
        anonymousId = .empty
        eventName = .empty
        amount = .nan
        currency = .empty
        score = .nan
        category = .empty
        productId = .empty
        recommendationId = .empty
        action = .empty
        properties = .none
    }
}
