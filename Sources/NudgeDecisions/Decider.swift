import NudgeEvents
import NudgeModels

/// Chooses the next best action for one customer at one instant.
///
/// 1. Churn probability from the churn model.
/// 2. Every action whose eligibility rules all hold (rules may read `churn_probability`)
///    is scored: `score = propensity × value`.
/// 3. The winner is the highest score (ties: the earlier action) if it reaches `minScore`.
/// 4. The contact policy may silence the customer (cooldown, customer cap); otherwise the
///    channel is the customer's last channel if the winner lists it and it is not capped,
///    else the first uncapped channel of the winner in the model's order.
/// 5. Otherwise the decision is "none" with the reason. The decider does not fall back to a
///    lower-scoring action when the winner's channels are capped: the winner is what the
///    model prefers, and swapping it for a weaker offer on a free channel is a business
///    choice the policy should make explicitly (room for it in `ContactPolicy`).
///
/// Immutable after init, hence `Sendable`: one decider serves every worker; a model swap
/// builds a new decider. `decide` allocates nothing (reasons go through a stack buffer).
public final class Decider: Sendable {
    /// The churn model.
    public let churn: ChurnModel
    /// The next-best-action model.
    public let nba: NBAModel
    /// Caps and cooldown.
    public let policy: ContactPolicy
    /// The lowest score worth a recommendation.
    public let minScore: Double
    /// Each action's channels, resolved once from the model's names.
    private let actionChannels: [[Channel]]
    /// The actions flat, for screening and scoring them all on every decision.
    private let actionTable: ActionTable
    /// The models' names, ids and features as JSON, for the recommendation writer.
    let text: RecommendationText

    /// Creates a decider. A `minScore` that is not a finite number >= 0 falls back to 0.01.
    public init(churn: ChurnModel, nba: NBAModel, policy: ContactPolicy, minScore: Double = 0.01) {
        self.churn = churn
        self.nba = nba
        self.policy = policy
        self.minScore = minScore.isFinite && minScore >= 0 ? minScore : 0.01
        // Model files only admit contract channel names, all of which Channel knows.
        actionChannels = nba.actions.map { $0.channels.compactMap { Channel(wireName: $0) } }
        actionTable = ActionTable(nba)
        text = RecommendationText(nba: nba, churn: churn)
    }

    /// An eligible action and its score, ranked best first.
    fileprivate struct Ranked: Sendable, Equatable {
        var index: Int
        var score: Double
        var propensity: Double
    }

    /// Decides for the feature vector `features` (laid out by the schema the models were
    /// loaded with) at event time `atMillis`, given the customer's last channel and contact history.
    public func decide(features x: UnsafeBufferPointer<Double>, lastChannel: Channel?,
                       history: ContactHistory, atMillis: Int64) -> Decision {
        var decision = Decision()
        let churnProbability = churn.scorer.probability(x)
        decision.churnProbability = churnProbability

        // The winner plus as many alternatives as a decision carries.
        let keep = FixedAlternatives.capacity + 1
        var ranking = InlineSlots(filler: Ranked(index: 0, score: 0, propensity: 0))
        let actions = actionTable
        for i in 0..<actions.count where actions.isEligible(i, x, churnProbability: churnProbability) {
            let propensity = actions.probability(i, x)
            let score = propensity * actions.value(i)
            var slot = ranking.count
            while slot > 0 && score > ranking[slot - 1].score { slot -= 1 }
            ranking.insert(Ranked(index: i, score: score, propensity: propensity), at: slot, limit: keep)
        }

        guard ranking.count > 0 else {
            decision.suppress(.noEligibleAction)
            return decision
        }
        let best = ranking[0]
        guard best.score >= minScore else {
            decision.suppress(.belowThreshold)
            decision.listAlternatives(ranking, from: 0)
            return decision
        }
        let cooldown = policy.inCooldown(atMillis: atMillis, history: history)
        let capped = policy.customerCapReached(atMillis: atMillis, history: history)
        if cooldown || capped {
            if cooldown { decision.suppress(.cooldown) }
            if capped { decision.suppress(.weeklyCap) }
            decision.listAlternatives(ranking, from: 0)
            return decision
        }
        guard let channel = channel(for: best.index, lastChannel: lastChannel, history: history, atMillis: atMillis) else {
            decision.suppress(.noChannel)
            decision.suppress(.channelCap)
            decision.listAlternatives(ranking, from: 0)
            return decision
        }

        decision.actionIndex = best.index
        decision.channel = channel
        decision.score = best.score
        decision.propensity = best.propensity
        let winner = nba.actions[best.index]
        decision.value = winner.value
        decision.listAlternatives(ranking, from: 1)
        withUnsafeTemporaryAllocation(of: Contribution.self, capacity: FixedReasons.capacity) { buffer in
            let n = winner.scorer.topContributions(x, k: FixedReasons.capacity, into: buffer)
            // Only what pushed toward the action explains choosing it.
            for j in 0..<n where buffer[j].value > 0 {
                decision.reasons.append(.contribution(feature: buffer[j].feature, value: buffer[j].value))
            }
        }
        return decision
    }

    /// The last channel if the action lists it and it is free, else the action's first free channel.
    private func channel(for action: Int, lastChannel: Channel?, history: ContactHistory, atMillis: Int64) -> Channel? {
        let channels = actionChannels[action]
        if let lastChannel, channels.contains(lastChannel),
           !policy.channelCapReached(lastChannel, atMillis: atMillis, history: history) {
            return lastChannel
        }
        for channel in channels where !policy.channelCapReached(channel, atMillis: atMillis, history: history) {
            return channel
        }
        return nil
    }
}

extension Decision {
    /// Makes this a "none" decision for `reason` (the first reason given becomes `suppression`).
    fileprivate mutating func suppress(_ reason: SuppressionReason) {
        if suppression == nil { suppression = reason }
        reasons.append(.suppression(reason))
    }

    /// Copies ranked actions from position `start` on into `alternatives`.
    fileprivate mutating func listAlternatives(_ ranking: InlineSlots<Decider.Ranked>, from start: Int) {
        var i = start
        while i < ranking.count {
            alternatives.append(Alternative(actionIndex: ranking[i].index, score: ranking[i].score))
            i += 1
        }
    }
}
