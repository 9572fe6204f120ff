import NudgeEvents

/// Simulated offers and their outcomes on `nba.outcomes`: `Offer Delivered`, then maybe
/// `Offer Viewed`, then `Offer Accepted` or `Offer Dismissed`.
///
/// The offers come from a logging policy that explores (half of the offers pick an action at
/// random) and otherwise follows the customer's situation, so acceptance models trained on this
/// history see every action in every context. Acceptance depends on the latent type, the action
/// and the context, and accepting has effects: a retention gesture postpones churn, a cart
/// reminder, cross-sell or promotion brings the customer back to buy.
extension TrafficEngine {
    private static let day = 86_400_000.0

    mutating func startOffer(_ customer: Int, at time: Int64) {
        let action = chooseAction(for: customer, at: time)
        var journey = Journey(stage: .offerDelivered, customer: customer,
                              channel: decorate(action.deliveryChannel(using: &world)))
        recommendations += 1
        journey.reference = recommendations
        journey.subject = Int(action.rawValue)
        let accept = acceptance(of: action, by: customer, at: time)
        if !world.chance(viewRate(journey.channel)) {
            journey.outcome = 0
        } else if world.chance(accept) {
            journey.outcome = 1
        } else {
            journey.outcome = world.chance(0.6) ? 2 : 3
        }
        queue.add(journey, at: time)
    }

    /// The logging policy: explore half of the time, otherwise follow the customer's situation.
    private mutating func chooseAction(for customer: Int, at time: Int64) -> OfferAction {
        if world.chance(0.5) {
            return OfferAction(rawValue: UInt8(world.below(OfferAction.allCases.count))) ?? .promoDiscount
        }
        let state = customers[customer]
        if daysSince(state.lastTroubleAt, time) < 14 { return .serviceRecoveryCall }
        if daysSince(state.lastAbandonedCartAt, time) < 3 { return .cartReminder }
        if daysSince(state.lastOrderAt, time) < 7 { return .crossSellAccessory }
        if daysSince(state.lastOrderAt, time) > 21 { return .retentionOffer }
        return .promoDiscount
    }

    /// Days from `instant` to `time`; infinite when the instant never happened.
    private func daysSince(_ instant: Int64, _ time: Int64) -> Double {
        instant == .min ? .infinity : Double(time - instant) / Self.day
    }

    /// Probability that the customer accepts once they have seen the offer.
    private func acceptance(of action: OfferAction, by customer: Int, at time: Int64) -> Double {
        let state = customers[customer]
        var rate = profile(of: customer).acceptance[Int(action.rawValue)]
        switch action {
        case .cartReminder:
            rate *= daysSince(state.lastAbandonedCartAt, time) < 3 ? 2.2 : 0.4
        case .serviceRecoveryCall:
            rate *= daysSince(state.lastTroubleAt, time) < 14 ? 1.8 : 0.5
        case .retentionOffer:
            rate *= daysSince(state.lastOrderAt, time) > 21 ? 1.5 : 0.6
        case .crossSellAccessory:
            rate *= daysSince(state.lastOrderAt, time) < 7 ? 1.8 : 0.6
        case .promoDiscount:
            break
        }
        if action != .retentionOffer {
            // Disengaged customers ignore commercial offers; a retention offer is aimed at them.
            rate *= 0.5 + 0.5 * customers.lifecycle(customer, at: time)
        }
        return min(rate, 0.95)
    }

    private func viewRate(_ channel: TrafficChannel) -> Double {
        switch channel.decoded {
        case .callCenter: 0.8
        case .app: 0.7
        case .web: 0.65
        case .sms: 0.6
        case .push: 0.45
        default: 0.5
        }
    }

    mutating func stepOffer(_ journey: inout Journey, at time: Int64) -> Int64? {
        let action = OfferAction(rawValue: UInt8(journey.subject)) ?? .promoDiscount
        switch journey.stage {
        case .offerDelivered:
            writeOutcome(.offerDelivered, journey, action, at: time)
            guard journey.outcome != 0 else { return nil }
            journey.stage = .offerViewed
            return time + world.delay(minimum: 60_000, mean: 40 * 60_000)
        case .offerViewed:
            writeOutcome(.offerViewed, journey, action, at: time)
            switch journey.outcome {
            case 1:
                journey.stage = .offerAccepted
                return time + world.delay(minimum: 5_000, mean: 20 * 60_000)
            case 2:
                journey.stage = .offerDismissed
                return time + world.delay(minimum: 2_000, mean: 2 * 60_000)
            default:
                return nil
            }
        case .offerAccepted:
            writeOutcome(.offerAccepted, journey, action, at: time)
            switch action {
            case .retentionOffer, .serviceRecoveryCall:
                customers.retain(journey.customer, at: time)
            case .cartReminder, .crossSellAccessory, .promoDiscount:
                startSession(journey.customer, at: time + world.delay(minimum: 60_000, mean: 20 * 60_000), intent: true)
            }
            return nil
        default:
            writeOutcome(.offerDismissed, journey, action, at: time)
            return nil
        }
    }

    private mutating func writeOutcome(_ kind: EventKind, _ journey: Journey, _ action: OfferAction,
                                       at time: Int64) {
        beginEvent(kind, for: journey, at: time)
        recommendationId(journey.reference)
        string("action", action.literal)
        endEvent()
    }
}
