import NudgeEvents

/// One customer as the owning shard saw them between two events: plain values, safe to keep and to send
/// to any thread or over the wire (`GET /customers/{id}`, `nudge inspect`).
///
/// The shard builds it on its own thread, so it is consistent: every feature reflects the same set of
/// applied events, and no event is half applied.
public struct CustomerSnapshot: Sendable, Equatable {
    /// The customer id (userId, else anonymousId), as the store keys it.
    public var customerId: String
    /// The id the snapshot was asked for when that is an anonymous id linked to this customer (its history
    /// folded into theirs, its later events theirs too); nil when asked for by ``customerId``.
    public var linkedFrom: String?
    /// The shard that owns the customer.
    public var shard: Int
    /// Event time the features were evaluated at, Unix milliseconds: the time asked for, else the shard's
    /// newest event time (``shardEventTimeMillis``), but never before ``lastEventMillis`` (earlier, the
    /// windows have already slid past buckets the answer would need, so it could not be exact).
    public var evaluatedAtMillis: Int64
    /// Newest event time applied to the customer, Unix milliseconds.
    public var lastEventMillis: Int64
    /// Channel of that newest event (contract name); nil if unknown.
    public var lastChannel: String?
    /// The newest event time the shard had seen when the snapshot was taken: its event-time "now".
    public var shardEventTimeMillis: Int64
    /// The shard's event-time watermark when the snapshot was taken (see the README's event time: the
    /// slowest active partition's newest event time minus the allowed lateness); nil before it has one.
    public var shardWatermarkMillis: Int64?
    /// Feature values at ``evaluatedAtMillis``, in feature-definition order.
    public var features: [FeatureValue]
    /// The recommendations the contact policy remembers for the customer (at most
    /// `ContactHistory.capacity`, oldest first).
    public var contacts: [ContactRecord]

    /// A snapshot from its parts.
    public init(customerId: String, shard: Int, evaluatedAtMillis: Int64, lastEventMillis: Int64, lastChannel: String?,
                shardEventTimeMillis: Int64, shardWatermarkMillis: Int64?, features: [FeatureValue], contacts: [ContactRecord]) {
        self.customerId = customerId
        self.shard = shard
        self.evaluatedAtMillis = evaluatedAtMillis
        self.lastEventMillis = lastEventMillis
        self.lastChannel = lastChannel
        self.shardEventTimeMillis = shardEventTimeMillis
        self.shardWatermarkMillis = shardWatermarkMillis
        self.features = features
        self.contacts = contacts
        linkedFrom = nil
    }

    /// The value of the feature called `name`, if there is one.
    public subscript(feature name: String) -> Double? { features.first { $0.name == name }?.value }
}

/// One feature's name and value.
public struct FeatureValue: Sendable, Equatable, Codable {
    /// The feature name from the feature definitions.
    public var name: String
    /// Its value (the definition's missing value when the customer has none).
    public var value: Double

    /// A named value.
    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
}

/// A recommendation the contact policy remembers having sent.
public struct ContactRecord: Sendable, Equatable {
    /// Event time of the decision, Unix milliseconds.
    public var atMillis: Int64
    /// The channel it went out on (contract name).
    public var channel: String
    /// The action id in the NBA model now in force; nil when that model no longer has the action index
    /// the contact was recorded with.
    public var action: String?

    /// A contact from its parts.
    public init(atMillis: Int64, channel: String, action: String?) {
        self.atMillis = atMillis
        self.channel = channel
        self.action = action
    }
}

// MARK: JSON

// The wire shape follows the contract's style: snake_case keys, times as ISO-8601 text.

extension CustomerSnapshot: Codable {
    private enum CodingKeys: String, CodingKey {
        case customerId = "customer_id", linkedFrom = "linked_from", shard, evaluatedAt = "evaluated_at", lastEventAt = "last_event_at"
        case lastChannel = "last_channel", shardEventTime = "shard_event_time", shardWatermark = "shard_watermark", features, contacts
    }

    /// Encodes the contract-style JSON object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(customerId, forKey: .customerId)
        try container.encodeIfPresent(linkedFrom, forKey: .linkedFrom)
        try container.encode(shard, forKey: .shard)
        try container.encode(ISO8601Time.format(millis: evaluatedAtMillis), forKey: .evaluatedAt)
        try container.encode(ISO8601Time.format(millis: lastEventMillis), forKey: .lastEventAt)
        try container.encodeIfPresent(lastChannel, forKey: .lastChannel)
        try container.encode(ISO8601Time.format(millis: shardEventTimeMillis), forKey: .shardEventTime)
        // Null before the shard has a watermark.
        try container.encode(shardWatermarkMillis.map { ISO8601Time.format(millis: $0) }, forKey: .shardWatermark)
        try container.encode(features, forKey: .features)
        try container.encode(contacts, forKey: .contacts)
    }

    /// Decodes what ``encode(to:)`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        customerId = try container.decode(String.self, forKey: .customerId)
        linkedFrom = try container.decodeIfPresent(String.self, forKey: .linkedFrom)
        shard = try container.decode(Int.self, forKey: .shard)
        evaluatedAtMillis = try decodeTime(container, .evaluatedAt)
        lastEventMillis = try decodeTime(container, .lastEventAt)
        lastChannel = try container.decodeIfPresent(String.self, forKey: .lastChannel)
        shardEventTimeMillis = try decodeTime(container, .shardEventTime)
        let noWatermark = (try? container.decodeNil(forKey: .shardWatermark)) ?? true  // absent or null
        shardWatermarkMillis = noWatermark ? nil : try decodeTime(container, .shardWatermark)
        features = try container.decode([FeatureValue].self, forKey: .features)
        contacts = try container.decode([ContactRecord].self, forKey: .contacts)
    }
}

extension ContactRecord: Codable {
    private enum CodingKeys: String, CodingKey { case at, channel, action }

    /// Encodes `{"at": ISO time, "channel": ..., "action": ...}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ISO8601Time.format(millis: atMillis), forKey: .at)
        try container.encode(channel, forKey: .channel)
        try container.encodeIfPresent(action, forKey: .action)
    }

    /// Decodes what ``encode(to:)`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        atMillis = try decodeTime(container, .at)
        channel = try container.decode(String.self, forKey: .channel)
        action = try container.decodeIfPresent(String.self, forKey: .action)
    }
}

/// An ISO-8601 time field as Unix milliseconds.
private func decodeTime<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> Int64 {
    let text = try container.decode(String.self, forKey: key)
    guard let millis = Array(text.utf8).withUnsafeBytes({ ISO8601Time.parseMillis($0) }) else {
        throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an ISO-8601 time: \(text)")
    }
    return millis
}
