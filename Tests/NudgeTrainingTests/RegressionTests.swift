import NudgeTraffic
import Testing
@testable import NudgeTraining

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Logistic regression (Newton/IRLS)")
struct RegressionTests {
    /// One binary feature, no penalty: the maximum-likelihood fit reproduces each group's rate, which gives
    /// the coefficients in closed form. Group x=0: 10 of 40 positive (logit −ln 3); x=1: 45 of 60 (logit ln 3).
    /// Standardized with mean m = 0.6 and population sd s = √(0.6·0.4): w = s·2·ln 3, b = −ln 3 + w·m/s = 0.2·ln 3.
    @Test func maximumLikelihoodOnABinaryFeatureMatchesTheClosedForm() throws {
        var x: [Double] = []
        var y: [Double] = []
        for i in 0..<40 { x.append(0); y.append(i < 10 ? 1 : 0) }
        for i in 0..<60 { x.append(1); y.append(i < 45 ? 1 : 0) }
        let standardization = Standardization(fitting: x, width: 1)
        #expect(abs(standardization.mean[0] - 0.6) < 1e-15)
        #expect(abs(standardization.scale[0] - 0.24.squareRoot()) < 1e-15)
        let z = standardization.apply(x, width: 1, rows: Array(0..<100))
        let fit = try LogisticRegression.fit(x: z, labels: y, width: 1, options: .init(l2: 0))
        #expect(fit.converged)
        #expect(abs(fit.weights[0] - 0.24.squareRoot() * 2 * log(3.0)) < 1e-9)
        #expect(abs(fit.intercept - 0.2 * log(3.0)) < 1e-9)
    }

    /// With a penalty, the fit is where the gradient of Σ log-loss + λ/2‖w‖² vanishes (intercept unpenalized).
    @Test func penalizedFitSatisfiesTheOptimalityConditions() throws {
        var random = SplitMix64(seed: 3)
        let n = 2_000, width = 4
        var x: [Double] = []
        var y: [Double] = []
        for _ in 0..<n {
            let row = (0..<width).map { _ in random.normal() }
            x.append(contentsOf: row)
            let z = 0.3 + 1.2 * row[0] - 0.7 * row[1] + 0.1 * row[3]
            y.append(Double.random(in: 0..<1, using: &random) < 1 / (1 + exp(-z)) ? 1 : 0)
        }
        let lambda = 25.0
        let fit = try LogisticRegression.fit(x: x, labels: y, width: width, options: .init(l2: lambda))
        #expect(fit.converged)
        var gradient = [Double](repeating: 0, count: width + 1)
        for i in 0..<n {
            var z = fit.intercept
            for j in 0..<width { z += fit.weights[j] * x[i * width + j] }
            let residual = 1 / (1 + exp(-z)) - y[i]
            gradient[0] += residual
            for j in 0..<width { gradient[j + 1] += residual * x[i * width + j] }
        }
        #expect(abs(gradient[0]) < 1e-8)
        for j in 0..<width { #expect(abs(gradient[j + 1] + lambda * fit.weights[j]) < 1e-8) }
        // And the penalty shrinks: every weight is smaller than without it.
        let free = try LogisticRegression.fit(x: x, labels: y, width: width, options: .init(l2: 0))
        for j in 0..<width { #expect(abs(fit.weights[j]) < abs(free.weights[j])) }
    }

    /// Data generated from known weights (no separation): the fit recovers them within sampling error.
    @Test func recoversKnownGeneratingWeights() throws {
        var random = SplitMix64(seed: 11)
        let truth = (intercept: -0.5, weights: [1.0, -2.0, 0.5])
        let n = 40_000
        var x: [Double] = []
        var y: [Double] = []
        for _ in 0..<n {
            let row = (0..<3).map { _ in random.normal() }
            x.append(contentsOf: row)
            var z = truth.intercept
            for j in 0..<3 { z += truth.weights[j] * row[j] }
            y.append(Double.random(in: 0..<1, using: &random) < 1 / (1 + exp(-z)) ? 1 : 0)
        }
        let fit = try LogisticRegression.fit(x: x, labels: y, width: 3, options: .init(l2: 0))
        // Standard errors here are about 0.015-0.025; 0.08 is over three of them.
        #expect(abs(fit.intercept - truth.intercept) < 0.08)
        for j in 0..<3 { #expect(abs(fit.weights[j] - truth.weights[j]) < 0.08) }
        #expect(fit.iterations < 15)
    }

    @Test func aHeavyPenaltyLeavesTheBaseRate() throws {
        let x: [Double] = [-1, 1, -1, 1, 0, 0, 2, -2]
        let y: [Double] = [0, 1, 0, 1, 0, 0, 0, 0]
        let fit = try LogisticRegression.fit(x: x, labels: y, width: 1, options: .init(l2: 1e9))
        #expect(abs(fit.weights[0]) < 1e-6)
        #expect(abs(fit.intercept - log(2.0 / 6.0)) < 1e-6)
    }

    @Test func refusesDataItCannotFit() {
        #expect(throws: TrainingError.data(problem: "no rows to fit; check the dataset and the holdout split")) {
            try LogisticRegression.fit(x: [], labels: [], width: 1)
        }
        #expect(throws: TrainingError.option(name: "l2", value: "-1.0", expected: "a finite number >= 0")) {
            try LogisticRegression.fit(x: [1], labels: [1], width: 1, options: .init(l2: -1))
        }
    }

    @Test func choleskySolvesByHandAndRefusesIndefiniteMatrices() throws {
        // [[4, 2], [2, 3]] · [0.5, 0] = [2, 1].
        let solution = try #require(Cholesky.solve([4, 2, 2, 3], [2, 1], size: 2))
        #expect(abs(solution[0] - 0.5) < 1e-15 && abs(solution[1]) < 1e-15)
        // [[2, 1, 0], [1, 2, 1], [0, 1, 2]] · [1, 1, 1] = [3, 4, 3].
        let three = try #require(Cholesky.solve([2, 1, 0, 1, 2, 1, 0, 1, 2], [3, 4, 3], size: 3))
        for v in three { #expect(abs(v - 1) < 1e-14) }
        #expect(Cholesky.solve([1, 2, 2, 1], [1, 1], size: 2) == nil)
    }

    @Test func constantFeaturesGetScaleOneAndWeightZero() throws {
        let x: [Double] = [5, 0, 5, 1, 5, 0, 5, 1, 5, 1]
        let standardization = Standardization(fitting: x, width: 2)
        #expect(standardization.mean == [5, 0.6])
        #expect(standardization.scale[0] == 1)
        let y: [Double] = [0, 1, 0, 1, 1]
        let z = standardization.apply(x, width: 2, rows: Array(0..<5))
        let fit = try LogisticRegression.fit(x: z, labels: y, width: 2, options: .init(l2: 1))
        #expect(fit.weights[0] == 0)
    }
}

@Suite("Evaluation figures")
struct EvaluationTests {
    /// Positive-negative pairs: 0.35 beats 0.1 but not 0.4; 0.8 beats both: 3 of 4.
    @Test func aucByHand() {
        #expect(BinaryEvaluation.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]) == 0.75)
        // A tie between a positive and a negative counts one half: (0.5 + 1) / 2.
        #expect(BinaryEvaluation.auc(scores: [0.5, 0.5, 0.9], labels: [0, 1, 1]) == 0.75)
        #expect(BinaryEvaluation.auc(scores: [0.2, 0.1], labels: [1, 0]) == 1)
        #expect(BinaryEvaluation.auc(scores: [0.2, 0.1], labels: [0, 1]) == 0)
        #expect(BinaryEvaluation.auc(scores: [0.2, 0.1], labels: [1, 1]) == nil)
    }

    @Test func logLossBrierCalibrationAndDeciles() throws {
        let e = BinaryEvaluation(probabilities: [0.8, 0.4], labels: [1, 0])
        #expect(abs(e.logLoss - (-(log(0.8) + log(0.6)) / 2)) < 1e-15)
        #expect(abs(e.brier - (0.04 + 0.16) / 2) < 1e-15)
        #expect(e.baseRate == 0.5)

        let c = BinaryEvaluation(probabilities: [0.05, 0.15, 0.12, 1.0], labels: [0, 1, 0, 1])
        #expect(c.calibration.count == 3)
        #expect(c.calibration[0].count == 1 && c.calibration[0].predicted == 0.05 && c.calibration[0].observed == 0)
        #expect(c.calibration[1].count == 2 && abs(c.calibration[1].predicted - 0.135) < 1e-15 && c.calibration[1].observed == 0.5)
        #expect(c.calibration[2].lower == 0.9 && c.calibration[2].count == 1)  // p = 1 falls in the last bin

        // Ten rows, the three positives ranked 1st, 2nd and 5th.
        let p = (0..<10).map { 1 - Double($0) / 10 }
        let y: [Double] = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
        let g = BinaryEvaluation(probabilities: p, labels: y)
        #expect(g.deciles.map(\.count) == Array(repeating: 1, count: 10))
        #expect(abs(g.deciles[1].cumulativeGain - 2.0 / 3) < 1e-15)
        #expect(g.deciles[4].cumulativeGain == 1)
        #expect(abs(g.deciles[0].lift - 1 / 0.3) < 1e-12)
        #expect(g.roc.first?.fpr == 0 && g.roc.last?.tpr == 1 && g.roc.last?.fpr == 1)
    }

    @Test func holdoutSplitsByTime() {
        let day = Time.day
        let times = [0, 0, day, day, 2 * day, 2 * day, 3 * day, 3 * day, 4 * day, 4 * day].map { Time.t0 + $0 }
        // Default: the row at position ⌊10 × 0.8⌋ = 8 in time order starts the holdout (the last cutoff).
        let byShare = HoldoutSplit.make(times: times, after: nil, share: 0.2)
        #expect(byShare.holdout == [8, 9])
        #expect(byShare.holdoutFromMillis == Time.t0 + 4 * day)
        let explicit = HoldoutSplit.make(times: times, after: Time.t0 + 2 * day, share: 0.2)
        #expect(explicit.train == [0, 1, 2, 3, 4, 5])
        #expect(explicit.holdout == [6, 7, 8, 9])
        // A single cutoff cannot be split by time: everything trains.
        let single = HoldoutSplit.make(times: [Time.t0, Time.t0], after: nil, share: 0.2)
        #expect(single.holdout.isEmpty && single.train == [0, 1])
    }
}
