/// The actions of an ``NBAModel`` laid out for the per-decision loop: each action's value, scorer
/// parameters and eligibility conditions in flat buffers this table owns, so that screening and scoring
/// every action touches no reference-counted value.
///
/// Iterating ``NBAModel/actions`` copies each ``ActionModel``, retaining and releasing its id, its scorer's
/// arrays, its channels and its rules: about 6 % of the in-process time. Scoring here uses the same
/// term (``LogisticScorer``) and condition test (``EligibilityCondition``) as the models, so results are
/// bit-identical. Immutable after init.
public final class ActionTable: @unchecked Sendable {
    /// Number of actions, in the model's order.
    public let count: Int
    private let values: UnsafeMutablePointer<Double>
    private let intercepts: UnsafeMutablePointer<Double>
    /// Action `a`'s terms are `termStart[a] ..< termStart[a + 1]` of `positions`, `means`, `scales`, `weights`.
    private let termStart: UnsafeMutablePointer<Int>
    private let positions: UnsafeMutablePointer<Int>
    private let means: UnsafeMutablePointer<Double>
    private let scales: UnsafeMutablePointer<Double>
    private let weights: UnsafeMutablePointer<Double>
    /// Action `a`'s rules are `ruleStart[a] ..< ruleStart[a + 1]`; rule `r`'s conditions are
    /// `conditionStart[r] ..< conditionStart[r + 1]`, any of which lets the rule hold.
    private let ruleStart: UnsafeMutablePointer<Int>
    private let conditionStart: UnsafeMutablePointer<Int>
    private let conditionFeatures: UnsafeMutablePointer<Int>
    private let conditionOps: UnsafeMutablePointer<ComparisonOperator>
    private let conditionValues: UnsafeMutablePointer<Double>

    /// The table of `model`'s actions.
    public init(_ model: NBAModel) {
        let actions = model.actions
        count = actions.count
        func buffer<T>(_ elements: [T]) -> UnsafeMutablePointer<T> {
            let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(elements.count, 1))
            for (i, element) in elements.enumerated() { (pointer + i).initialize(to: element) }
            return pointer
        }
        var termStarts = [0], rules = [0], conditionStarts = [0]
        var terms: (positions: [Int], means: [Double], scales: [Double], weights: [Double]) = ([], [], [], [])
        var conditions: (features: [Int], ops: [ComparisonOperator], values: [Double]) = ([], [], [])
        for action in actions {
            let scorer = action.scorer
            terms.positions += scorer.featureIndices
            terms.means += scorer.mean
            terms.scales += scorer.scale
            terms.weights += scorer.weights
            termStarts.append(terms.weights.count)
            for rule in action.eligibility {
                for condition in rule.anyOf {
                    conditions.features.append(condition.featureIndex)
                    conditions.ops.append(condition.op)
                    conditions.values.append(condition.value)
                }
                conditionStarts.append(conditions.features.count)
            }
            rules.append(conditionStarts.count - 1)
        }
        values = buffer(actions.map(\.value))
        intercepts = buffer(actions.map(\.scorer.intercept))
        termStart = buffer(termStarts)
        positions = buffer(terms.positions)
        means = buffer(terms.means)
        scales = buffer(terms.scales)
        weights = buffer(terms.weights)
        ruleStart = buffer(rules)
        conditionStart = buffer(conditionStarts)
        conditionFeatures = buffer(conditions.features)
        conditionOps = buffer(conditions.ops)
        conditionValues = buffer(conditions.values)
    }

    deinit {
        // Every element type here is trivial: nothing to deinitialize.
        values.deallocate(); intercepts.deallocate(); termStart.deallocate(); positions.deallocate()
        means.deallocate(); scales.deallocate(); weights.deallocate(); ruleStart.deallocate()
        conditionStart.deallocate(); conditionFeatures.deallocate(); conditionOps.deallocate(); conditionValues.deallocate()
    }

    /// Action `action`'s business value.
    @inline(__always)
    public func value(_ action: Int) -> Double { values[action] }

    /// Whether every eligibility rule of `action` holds (``ActionModel/isEligible(_:churnProbability:)``).
    @inline(__always)
    public func isEligible(_ action: Int, _ x: UnsafeBufferPointer<Double>, churnProbability: Double) -> Bool {
        for rule in ruleStart[action]..<ruleStart[action + 1] {
            var holds = false
            for c in conditionStart[rule]..<conditionStart[rule + 1]
            where EligibilityCondition.holds(featureIndex: conditionFeatures[c], op: conditionOps[c], value: conditionValues[c],
                                             x, churnProbability: churnProbability) {
                holds = true
                break
            }
            if !holds { return false }
        }
        return true
    }

    /// Action `action`'s propensity (``LogisticScorer/probability(_:)``).
    @inline(__always)
    public func probability(_ action: Int, _ x: UnsafeBufferPointer<Double>) -> Double {
        var z = intercepts[action]
        for t in termStart[action]..<termStart[action + 1] {
            z += LogisticScorer.term(x, position: positions[t], mean: means[t], scale: scales[t], weight: weights[t])
        }
        return LogisticScorer.sigmoid(z)
    }
}
