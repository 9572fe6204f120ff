/// A customer's latent type, drawn once and never written on the wire: it drives how the
/// customer behaves, so models can learn it back from behaviour. Exposed for evaluation
/// (``TrafficGenerator/latentType(customerNumber:)``).
public enum CustomerType: UInt8, Sendable, CaseIterable {
    /// Buys often, app and store heavy, rarely has problems, answers surveys 8-10.
    case loyal
    /// Waits for coupons and promotions; high acceptance of `promo_discount`.
    case bargainHunter
    /// Visits a lot, wishlists, rarely buys.
    case browser
    /// Active at first, then activity decays and orders stop (the main churners).
    case atRisk
    /// Orders go wrong: tickets, complaints, refunds, low NPS; often churns after a complaint.
    case serviceTroubled
    /// Joins at some point during the simulation; a share never comes back.
    case newcomer

    /// Snake-case name (`bargain_hunter`, `new` for `newcomer`).
    public var name: String {
        switch self {
        case .loyal: "loyal"
        case .bargainHunter: "bargain_hunter"
        case .browser: "browser"
        case .atRisk: "at_risk"
        case .serviceTroubled: "service_troubled"
        case .newcomer: "new"
        }
    }
}

/// How one latent type behaves. Rates are per journey or per step; see the journey code for use.
struct TypeProfile {
    /// Share of the population.
    var share: Double
    /// Relative rate of starting journeys (customer selection weight).
    var activity: Double
    /// Multiplier on add-to-cart, checkout and purchase probabilities, and on store purchases.
    var conversion: Double
    /// Typical days between orders: purchase propensity is low right after an order and rises
    /// as the next one comes due (a replenishment cycle), so engaged customers order regularly.
    var orderCycleDays: Double
    /// Share of non-offer journeys that are store purchases.
    var storeShare: Double
    /// Share of non-offer journeys that are spontaneous service contacts.
    var serviceShare: Double
    /// Probability of applying a coupon at the cart.
    var couponRate: Double
    /// Probability of wishlisting a viewed product.
    var wishlistRate: Double
    /// Probability that an order goes wrong and leads to a ticket days later.
    var troubleRate: Double
    /// Probability that an order is cancelled within the hour.
    var cancelRate: Double
    /// Probability that an order is refunded days later.
    var refundRate: Double
    /// Probability that a ticket escalates to a complaint.
    var complaintRate: Double
    /// Probability that a ticket is closed unresolved.
    var unresolvedRate: Double
    /// Mean survey score (0-10) before adjustments.
    var surveyMean: Double
    /// Probability that a complaint or a low survey score makes the customer start churning.
    var churnAfterTrouble: Double
    /// Probability of a churn onset independent of service, and its mean delay in days.
    var spontaneousChurn: Double
    var spontaneousChurnMeanDays: Double
    /// Cumulative weights of online session channels, in `TrafficChannel.onlineChannels` order.
    var onlineChannels: [Double]
    /// Acceptance probability once viewed, per `OfferAction` (before context multipliers).
    var acceptance: [Double]

    /// Profiles indexed by `CustomerType.rawValue`.
    static let table: [TypeProfile] = [
        // loyal
        TypeProfile(share: 0.22, activity: 1.5, conversion: 1.3, orderCycleDays: 10, storeShare: 0.09, serviceShare: 0.008,
                    couponRate: 0.08, wishlistRate: 0.05, troubleRate: 0.02, cancelRate: 0.02,
                    refundRate: 0.03, complaintRate: 0.08, unresolvedRate: 0.05, surveyMean: 8.8,
                    churnAfterTrouble: 0.05, spontaneousChurn: 0.03, spontaneousChurnMeanDays: 120,
                    onlineChannels: cumulativeWeights([0.35, 0.50, 0.04, 0.03, 0.05, 0.03]),
                    acceptance: [0.10, 0.10, 0.25, 0.30, 0.15]),
        // bargain_hunter
        TypeProfile(share: 0.20, activity: 1.3, conversion: 1.1, orderCycleDays: 16, storeShare: 0.06, serviceShare: 0.01,
                    couponRate: 0.55, wishlistRate: 0.10, troubleRate: 0.04, cancelRate: 0.04,
                    refundRate: 0.06, complaintRate: 0.12, unresolvedRate: 0.10, surveyMean: 7.2,
                    churnAfterTrouble: 0.10, spontaneousChurn: 0.08, spontaneousChurnMeanDays: 60,
                    onlineChannels: cumulativeWeights([0.45, 0.25, 0.10, 0.10, 0.07, 0.03]),
                    acceptance: [0.30, 0.05, 0.20, 0.10, 0.55]),
        // browser
        TypeProfile(share: 0.20, activity: 1.3, conversion: 0.15, orderCycleDays: 60, storeShare: 0.02, serviceShare: 0.006,
                    couponRate: 0.05, wishlistRate: 0.22, troubleRate: 0.03, cancelRate: 0.05,
                    refundRate: 0.05, complaintRate: 0.08, unresolvedRate: 0.08, surveyMean: 7.0,
                    churnAfterTrouble: 0.10, spontaneousChurn: 0.05, spontaneousChurnMeanDays: 90,
                    onlineChannels: cumulativeWeights([0.50, 0.25, 0.17, 0.05, 0.02, 0.01]),
                    acceptance: [0.05, 0.03, 0.10, 0.08, 0.15]),
        // at_risk
        TypeProfile(share: 0.15, activity: 1.0, conversion: 1.0, orderCycleDays: 14, storeShare: 0.07, serviceShare: 0.02,
                    couponRate: 0.12, wishlistRate: 0.06, troubleRate: 0.05, cancelRate: 0.04,
                    refundRate: 0.06, complaintRate: 0.15, unresolvedRate: 0.12, surveyMean: 6.2,
                    churnAfterTrouble: 0.30, spontaneousChurn: 1.0, spontaneousChurnMeanDays: 25,
                    onlineChannels: cumulativeWeights([0.55, 0.30, 0.05, 0.04, 0.04, 0.02]),
                    acceptance: [0.35, 0.10, 0.10, 0.05, 0.25]),
        // service_troubled
        TypeProfile(share: 0.10, activity: 1.0, conversion: 0.9, orderCycleDays: 14, storeShare: 0.06, serviceShare: 0.05,
                    couponRate: 0.10, wishlistRate: 0.05, troubleRate: 0.45, cancelRate: 0.12,
                    refundRate: 0.10, complaintRate: 0.50, unresolvedRate: 0.35, surveyMean: 4.0,
                    churnAfterTrouble: 0.70, spontaneousChurn: 0.40, spontaneousChurnMeanDays: 45,
                    onlineChannels: cumulativeWeights([0.50, 0.35, 0.05, 0.05, 0.03, 0.02]),
                    acceptance: [0.15, 0.45, 0.05, 0.03, 0.10]),
        // new
        TypeProfile(share: 0.13, activity: 0.9, conversion: 0.7, orderCycleDays: 20, storeShare: 0.04, serviceShare: 0.01,
                    couponRate: 0.25, wishlistRate: 0.10, troubleRate: 0.04, cancelRate: 0.05,
                    refundRate: 0.05, complaintRate: 0.10, unresolvedRate: 0.10, surveyMean: 7.5,
                    churnAfterTrouble: 0.20, spontaneousChurn: 0.12, spontaneousChurnMeanDays: 20,
                    onlineChannels: cumulativeWeights([0.55, 0.20, 0.15, 0.06, 0.03, 0.01]),
                    acceptance: [0.10, 0.05, 0.20, 0.15, 0.30]),
    ]

    /// Cumulative type shares for drawing a customer's type.
    static let cumulativeShares = cumulativeWeights(table.map(\.share))

    /// The largest `activity`, the bound for rejection sampling of customers.
    static let maxActivity = table.map(\.activity).max() ?? 1
}
