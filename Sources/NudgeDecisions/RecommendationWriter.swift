import NudgeEvents
import NudgeModels

/// Writes a decision as the contract's recommendation JSON (`nba.recommendations`), into a
/// reusable buffer: after warm-up no allocation, and no Foundation.
///
/// Fields, in the contract's order: `recommendation_id` (see `RecommendationID`),
/// `customer_id`, `action`, `channel`, `score`, `propensity`, `value`, `churn_probability`,
/// `reasons`, `alternatives`, `trigger` {`kind`, `event`, `message_id`: null for a timer}, `models`
/// {`nba`, `churn`} (`name@version`), `event_time` (a timer's deadline), `decided_at` (ISO-8601 UTC, ms).
///
/// For a "none" decision: `"action":"none"`, `"channel":null`, `score`, `propensity` and
/// `value` 0, and `reasons` lists why, each as `{"feature":"policy.<reason>","contribution":0}`
/// with `<reason>` one of `cooldown`, `channel_cap`, `weekly_cap`, `no_eligible_action`,
/// `below_threshold`, `no_channel` (the primary reason first). `alternatives` then lists
/// the best eligible actions, including one the policy held back.
///
/// Numbers carry at most 6 significant digits; a non-finite number (never produced by the
/// decider) is written as `0` so that the field keeps its number type. Strings are escaped
/// per RFC 8259; ill-formed UTF-8 in ids becomes U+FFFD.
///
/// Copies share nothing observable: the buffer is copied on the first write after a copy.
public struct RecommendationWriter {
    private var out: JSONBytes

    /// A writer whose buffer starts at `initialCapacity` bytes and grows as needed.
    public init(initialCapacity: Int = 1024) {
        out = JSONBytes(capacity: initialCapacity)
    }

    /// Writes the recommendation `decider` made and returns its bytes, valid until the next `write` on
    /// this writer (or its end). `customerId` and `trigger.messageId` are decoded UTF-8.
    ///
    /// Takes the decider rather than its two models: handing the model structs over copied them (and
    /// retained every array inside) on each decision.
    public mutating func write(decision: Decision, customerId: UnsafeRawBufferPointer,
                               decider: Decider, trigger: Trigger,
                               eventTimeMillis: Int64, decidedAtMillis: Int64) -> UnsafeRawBufferPointer {
        if !isKnownUniquelyReferenced(&out) { out = out.copy() }
        let out = self.out
        out.reset()
        let actions = decider.nba.actions
        let text = decider.text
        // An index the model does not have (a caller mixing models) is written as "none".
        var action: Int?
        if let index = decision.actionIndex, actions.indices.contains(index) { action = index }

        out.raw("{\"recommendation_id\":\"")
        out.advance(RecommendationID.write(trigger: trigger, into: out.tail(reserving: RecommendationID.length)))
        out.raw("\",\"customer_id\":")
        out.string(bytes: customerId)
        out.raw(",\"action\":")
        if let action { out.raw(text.action(action)) } else { out.raw("\"none\"") }
        out.raw(",\"channel\":")
        if action != nil, let channel = decision.channel { out.string(channel.wireName) } else { out.raw("null") }
        out.raw(",\"score\":")
        out.number(action == nil ? 0 : decision.score)
        out.raw(",\"propensity\":")
        out.number(action == nil ? 0 : decision.propensity)
        out.raw(",\"value\":")
        out.number(action == nil ? 0 : decision.value)
        out.raw(",\"churn_probability\":")
        out.number(decision.churnProbability)

        out.raw(",\"reasons\":[")
        var first = true
        for reason in decision.reasons {
            switch reason {
            case .contribution(let feature, let value):
                guard let action, actions[action].scorer.featureNames.indices.contains(feature) else { continue }
                if !first { out.byte(UInt8(ascii: ",")) }
                out.raw(text.reason(action: action, feature: feature))
                out.number(value)
            case .suppression(let why):
                if !first { out.byte(UInt8(ascii: ",")) }
                out.raw("{\"feature\":\"policy.")
                for b in why.rawValue.utf8 { out.byte(b) }
                out.raw("\",\"contribution\":0")
            }
            out.byte(UInt8(ascii: "}"))
            first = false
        }

        out.raw("],\"alternatives\":[")
        first = true
        for alternative in decision.alternatives where actions.indices.contains(alternative.actionIndex) {
            if !first { out.byte(UInt8(ascii: ",")) }
            out.raw("{\"action\":")
            out.raw(text.action(alternative.actionIndex))
            out.raw(",\"score\":")
            out.number(alternative.score)
            out.byte(UInt8(ascii: "}"))
            first = false
        }

        out.raw("],\"trigger\":{\"kind\":")
        out.string(trigger.kind.wireName)
        out.raw(",\"event\":")
        out.string(trigger.name)
        out.raw(",\"message_id\":")
        switch trigger.kind {
        case .event: out.string(bytes: trigger.messageId)
        case .timer: out.raw("null")
        }
        out.raw("},\"models\":")
        out.raw(text.models)
        out.raw(",\"event_time\":")
        out.time(eventTimeMillis)
        out.raw(",\"decided_at\":")
        out.time(decidedAtMillis)
        out.byte(UInt8(ascii: "}"))
        return out.bytes
    }
}
