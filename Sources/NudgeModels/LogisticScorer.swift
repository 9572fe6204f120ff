import Foundation

/// One feature's share of a logistic score: `weight × standardized value`.
public struct Contribution: Sendable, Equatable {
    /// Index into the scorer's `featureNames`.
    public var feature: Int
    /// `w_i * (x - mean_i) / scale_i`, in logit units.
    public var value: Double

    /// Creates a contribution of `value` from feature `feature`.
    public init(feature: Int, value: Double) {
        self.feature = feature
        self.value = value
    }
}

/// A fitted logistic regression bound to a feature schema:
/// `p = sigmoid(intercept + Σ w_i * (x[idx_i] - mean_i) / scale_i)`.
///
/// Built only by `ModelFile`, which guarantees equal lengths, valid indices, finite
/// numbers and positive scales, so scoring needs no checks beyond the vector's length.
/// Scoring is on the hot path: it reads the buffer and never allocates.
///
/// A feature value that is NaN or infinite, or a position beyond the vector's end,
/// contributes nothing (it is treated as the training mean): one broken feature must
/// not turn every score into NaN.
public struct LogisticScorer: Sendable {
    /// Names of the model's features, in weight order.
    public let featureNames: [String]
    /// Position of each feature in the schema's vector.
    public let featureIndices: [Int]
    /// Training means, one per feature.
    public let mean: [Double]
    /// Training scales (standard deviations), one per feature; all positive.
    public let scale: [Double]
    /// The logit when every feature sits at its mean.
    public let intercept: Double
    /// Coefficients on standardized features, one per feature.
    public let weights: [Double]

    init(featureNames: [String], featureIndices: [Int], mean: [Double], scale: [Double],
         intercept: Double, weights: [Double]) {
        self.featureNames = featureNames
        self.featureIndices = featureIndices
        self.mean = mean
        self.scale = scale
        self.intercept = intercept
        self.weights = weights
    }

    /// `w_i * standardized x_i`, or 0 when the value is missing or not finite.
    @inline(__always)
    private func contribution(_ i: Int, _ x: UnsafeBufferPointer<Double>) -> Double {
        Self.term(x, position: featureIndices[i], mean: mean[i], scale: scale[i], weight: weights[i])
    }

    /// One feature's term of the logit: its weight times its standardized value, 0 when the feature is
    /// missing or not finite. Shared with ``ActionTable`` so that both score alike, bit for bit.
    @inline(__always)
    static func term(_ x: UnsafeBufferPointer<Double>, position: Int, mean: Double, scale: Double, weight: Double) -> Double {
        guard position < x.count else { return 0 }
        let v = x[position]
        guard v.isFinite else { return 0 }
        return weight * (v - mean) / scale
    }

    /// The linear score `intercept + Σ contributions`.
    public func logit(_ x: UnsafeBufferPointer<Double>) -> Double {
        var z = intercept
        for i in 0..<weights.count { z += contribution(i, x) }
        return z
    }

    /// The probability of the outcome, in [0, 1]. Computed in the numerically stable form
    /// (no overflow for large |logit|); an undefined logit (only possible if contributions
    /// overflow to opposite infinities) yields 0 rather than NaN.
    public func probability(_ x: UnsafeBufferPointer<Double>) -> Double {
        Self.sigmoid(logit(x))
    }

    /// The logistic function, stable for large magnitudes; NaN maps to 0.
    public static func sigmoid(_ z: Double) -> Double {
        guard !z.isNaN else { return 0 }
        if z >= 0 { return 1 / (1 + exp(-z)) }
        let e = exp(z)
        return e / (1 + e)
    }

    /// Writes the `k` largest contributions into `into`, most positive first (the features
    /// that push hardest toward the outcome lead; contributions that push against it come
    /// last and only when fewer than `k` push toward it). Ties keep feature order.
    /// Returns how many were written: `min(k, into.count, featureNames.count)`, 0 for k <= 0.
    /// No allocation: an insertion into the caller's buffer, O(features × k).
    public func topContributions(_ x: UnsafeBufferPointer<Double>, k: Int,
                                 into: UnsafeMutableBufferPointer<Contribution>) -> Int {
        let limit = min(k, into.count, weights.count)
        guard limit > 0 else { return 0 }
        var count = 0
        for i in 0..<weights.count {
            let c = contribution(i, x)
            // Strictly greater to move ahead, so an equal later feature stays behind.
            var slot = count
            while slot > 0 && c > into[slot - 1].value { slot -= 1 }
            guard slot < limit else { continue }
            var j = min(count, limit - 1)
            while j > slot { into[j] = into[j - 1]; j -= 1 }
            into[slot] = Contribution(feature: i, value: c)
            if count < limit { count += 1 }
        }
        return count
    }
}
