/// The touchpoint written in an event's `"channel"`: the contract's nine names, three strings
/// the contract does not know (the service must count them as `other`), and no field at all.
enum TrafficChannel: UInt8 {
    case web, app, store, callCenter, email, sms, push, social, partner
    case kiosk, smartTV, voiceAssistant
    case missing

    /// Channels of online sessions, in the order of `TypeProfile.onlineChannels`.
    static let onlineChannels: [TrafficChannel] = [.web, .app, .social, .partner, .email, .push]

    /// Unknown channel strings, drawn for a small share of journeys.
    static let unknownChannels: [TrafficChannel] = [.kiosk, .smartTV, .voiceAssistant]

    /// Share of journeys whose channel is an unknown string, and share with no channel field.
    static let unknownShare = 0.02
    static let missingShare = 0.01

    var literal: StaticString {
        switch self {
        case .web: "web"
        case .app: "app"
        case .store: "store"
        case .callCenter: "call_center"
        case .email: "email"
        case .sms: "sms"
        case .push: "push"
        case .social: "social"
        case .partner: "partner"
        case .kiosk: "kiosk"
        case .smartTV: "smart_tv"
        case .voiceAssistant: "voice_assistant"
        case .missing: ""
        }
    }

    /// App sessions (including those opened from a push) send `screen`, the others `page`.
    var sendsScreens: Bool {
        self == .app || self == .push
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
    func deliveryChannel(using random: inout Xoshiro256StarStar) -> TrafficChannel {
        switch self {
        case .retentionOffer: random.chance(0.7) ? .email : .sms
        case .serviceRecoveryCall: .callCenter
        case .cartReminder: random.chance(0.5) ? .push : (random.chance(0.6) ? .email : .sms)
        case .crossSellAccessory: random.chance(0.5) ? .email : (random.chance(0.6) ? .app : .web)
        case .promoDiscount: random.chance(0.5) ? .email : (random.chance(0.5) ? .sms : .push)
        }
    }
}
