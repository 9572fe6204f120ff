import NudgeEvents

/// The `"channel"` a journey's events carry: one of the contract's channels (NudgeEvents'
/// `Channel`), a string the contract does not know, or no field at all. The decoder reads
/// the last two as `Channel.other`.
enum TrafficChannel {
    /// A contract channel, written as its `wireName` (never `.other`: `decorate` draws the
    /// off-contract spellings below instead).
    case known(Channel)
    /// A channel string the service must count as `other`.
    case unknown(UnknownChannel)
    /// No `"channel"` field.
    case missing

    /// Channels of online sessions, in the order of `TypeProfile.onlineChannels`.
    static let onlineChannels: [Channel] = [.web, .app, .social, .partner, .email, .push]

    /// Share of journeys whose channel is an unknown string, and share with no channel field.
    static let unknownShare = 0.02
    static let missingShare = 0.01

    /// The channel the decoder reads from this field.
    var decoded: Channel {
        if case .known(let channel) = self { channel } else { .other }
    }

    /// App sessions (including those opened from a push) send `screen`, the others `page`.
    var sendsScreens: Bool {
        decoded == .app || decoded == .push
    }
}

/// Channel strings outside the contract, drawn for a small share of journeys.
enum UnknownChannel: UInt8, CaseIterable {
    case kiosk, smartTV, voiceAssistant

    /// Counted once: `allCases` builds an array on every use.
    private static let count = allCases.count

    /// One of the spellings, uniformly.
    static func draw(using random: inout Xoshiro256StarStar) -> UnknownChannel {
        UnknownChannel(rawValue: UInt8(random.below(count))) ?? .kiosk
    }

    var literal: StaticString {
        switch self {
        case .kiosk: "kiosk"
        case .smartTV: "smart_tv"
        case .voiceAssistant: "voice_assistant"
        }
    }
}

/// The actions a next-best-action engine chooses between; offers in the simulated outcome
/// history carry one of these in `properties.action`.
public enum OfferAction: UInt8, Sendable, CaseIterable {
    /// A discount to keep a customer who is drifting away.
    case retentionOffer
    /// A call from the service team after trouble.
    case serviceRecoveryCall
    /// A reminder of an abandoned cart.
    case cartReminder
    /// An accessory for a recent purchase.
    case crossSellAccessory
    /// A general promotion.
    case promoDiscount

    /// The id on the wire (`retention_offer`, ...).
    public var id: String {
        String(describing: literal)
    }

    var literal: StaticString {
        switch self {
        case .retentionOffer: "retention_offer"
        case .serviceRecoveryCall: "service_recovery_call"
        case .cartReminder: "cart_reminder"
        case .crossSellAccessory: "cross_sell_accessory"
        case .promoDiscount: "promo_discount"
        }
    }

    /// The channel an offer of this action is delivered on (a switch, not an array, so the
    /// choice allocates nothing).
    func deliveryChannel(using random: inout Xoshiro256StarStar) -> Channel {
        switch self {
        case .retentionOffer: random.chance(0.7) ? .email : .sms
        case .serviceRecoveryCall: .callCenter
        case .cartReminder: random.chance(0.5) ? .push : (random.chance(0.6) ? .email : .sms)
        case .crossSellAccessory: random.chance(0.5) ? .email : (random.chance(0.6) ? .app : .web)
        case .promoDiscount: random.chance(0.5) ? .email : (random.chance(0.5) ? .sms : .push)
        }
    }
}
