import NudgeEvents

/// Why a decision stayed silent (or could not use a channel).
public enum SuppressionReason: String, Sendable, CaseIterable {
    /// A recommendation was made less than the policy's cooldown ago.
    case cooldown
    /// The channel already had its allowance in the channel window (default 1 per 24 h).
    case channelCap = "channel_cap"
    /// The customer already had their allowance in the customer window (default 3 per 7 days).
    case weeklyCap = "weekly_cap"
    /// No action's eligibility rules all hold.
    case noEligibleAction = "no_eligible_action"
    /// The best eligible action scored below the decider's minimum score.
    case belowThreshold = "below_threshold"
    /// Every channel of the winning action is capped.
    case noChannel = "no_channel"
}

/// One entry of a decision's `reasons`.
public enum Reason: Sendable, Equatable {
    /// A feature's contribution to the winning action's logit: `feature` indexes the winning
    /// action scorer's `featureNames`.
    case contribution(feature: Int, value: Double)
    /// Why the decision is "none".
    case suppression(SuppressionReason)
}

/// Up to five reasons, inline (no array): top contributions of a winning action, or
/// suppression reasons of a "none" decision.
public struct FixedReasons: Sendable, Equatable, RandomAccessCollection {
    /// The most reasons a decision carries.
    public static let capacity = 5

    private var slots = InlineSlots<Reason>(filler: .suppression(.noEligibleAction))

    /// No reasons.
    public init() {}

    /// Appends when there is room; returns whether it did.
    @discardableResult
    public mutating func append(_ reason: Reason) -> Bool { slots.append(reason, limit: Self.capacity) }

    /// 0.
    public var startIndex: Int { 0 }
    /// The number of reasons.
    public var endIndex: Int { slots.count }
    /// Reason `i`, for `0 <= i < count`.
    public subscript(i: Int) -> Reason { slots[i] }

    /// Equal when they hold the same reasons in the same order.
    public static func == (lhs: FixedReasons, rhs: FixedReasons) -> Bool { lhs.slots.sameElements(as: rhs.slots) }
}

/// An eligible action that did not win, with its score.
public struct Alternative: Sendable, Equatable {
    /// Index into the NBA model's `actions`.
    public var actionIndex: Int
    /// Its `propensity × value`.
    public var score: Double

    /// Creates an alternative.
    public init(actionIndex: Int, score: Double) {
        self.actionIndex = actionIndex
        self.score = score
    }
}

/// Up to three alternatives, inline (no array), best first.
public struct FixedAlternatives: Sendable, Equatable, RandomAccessCollection {
    /// The most alternatives a decision carries.
    public static let capacity = 3

    private var slots = InlineSlots<Alternative>(filler: Alternative(actionIndex: 0, score: 0))

    /// No alternatives.
    public init() {}

    /// Appends when there is room; returns whether it did.
    @discardableResult
    public mutating func append(_ alternative: Alternative) -> Bool { slots.append(alternative, limit: Self.capacity) }

    /// 0.
    public var startIndex: Int { 0 }
    /// The number of alternatives.
    public var endIndex: Int { slots.count }
    /// Alternative `i`, for `0 <= i < count`.
    public subscript(i: Int) -> Alternative { slots[i] }

    /// Equal when they hold the same alternatives in the same order.
    public static func == (lhs: FixedAlternatives, rhs: FixedAlternatives) -> Bool { lhs.slots.sameElements(as: rhs.slots) }
}

/// The decision for one customer at one instant: an action on a channel, or "none".
/// A plain value (no references), so producing one never allocates.
///
/// A "none" decision has `actionIndex` and `channel` nil, `score`, `propensity` and `value`
/// 0, `suppression` set, and `reasons` holding only `.suppression` entries (the primary
/// reason first). Its `alternatives` are the best eligible actions, including the one the
/// policy blocked, so that operators can see what was held back.
public struct Decision: Sendable, Equatable {
    /// Index into the NBA model's `actions`; nil for "none".
    public var actionIndex: Int?
    /// The channel to deliver on; nil for "none".
    public var channel: Channel?
    /// Priority: `propensity × value`; 0 for "none".
    public var score: Double
    /// The winning action's take-up probability; 0 for "none".
    public var propensity: Double
    /// The winning action's business value; 0 for "none".
    public var value: Double
    /// The churn model's probability for this customer now (also set for "none").
    public var churnProbability: Double
    /// Top positive contributions of the winner, or suppression reasons for "none".
    public var reasons: FixedReasons
    /// The next best eligible actions by score.
    public var alternatives: FixedAlternatives
    /// Why the decision is "none"; nil when an action was chosen.
    public var suppression: SuppressionReason?

    /// A "none" decision with nothing filled in.
    public init() {
        actionIndex = nil
        channel = nil
        score = 0
        propensity = 0
        value = 0
        churnProbability = 0
        reasons = FixedReasons()
        alternatives = FixedAlternatives()
        suppression = nil
    }

    /// Whether the decision is to stay silent.
    public var isNone: Bool { actionIndex == nil }
}

/// Which incoming events ask for a decision.
public enum DecisionTriggers {
    /// True for Product Added, Checkout Started, Order Completed, Ticket Opened and
    /// Complaint Filed: the moments where a customer's situation changes enough to act.
    public static func asksForDecision(_ kind: EventKind) -> Bool {
        switch kind {
        case .productAdded, .checkoutStarted, .orderCompleted, .ticketOpened, .complaintFiled: true
        default: false
        }
    }
}
