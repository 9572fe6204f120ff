import Foundation

/// One bin of a calibration curve: predictions in [lower, upper).
public struct CalibrationBin: Sendable, Equatable {
    /// Lower edge of the bin (predicted probability).
    public var lower: Double
    /// Upper edge of the bin.
    public var upper: Double
    /// Rows whose prediction falls in the bin.
    public var count: Int
    /// Mean predicted probability in the bin.
    public var predicted: Double
    /// Observed positive rate in the bin.
    public var observed: Double
}

/// One decile of a gains table: rows ranked by predicted probability, highest first.
public struct GainsDecile: Sendable, Equatable {
    /// 1 for the top 10 %, 10 for the bottom.
    public var decile: Int
    /// Rows in the decile.
    public var count: Int
    /// Positive rate in the decile.
    public var rate: Double
    /// Share of all positives found in deciles 1…this one.
    public var cumulativeGain: Double
    /// `rate` / overall positive rate.
    public var lift: Double
}

/// How well probabilities rank and fit 0/1 outcomes: AUC, log-loss, Brier score, a 10-bin calibration
/// curve, a ROC curve and a gains table.
public struct BinaryEvaluation: Sendable, Equatable {
    /// Rows evaluated.
    public var count: Int
    /// Positive rows.
    public var positives: Int
    /// Area under the ROC curve (ties count one half); nil when only one class is present.
    public var auc: Double?
    /// Mean log-loss, probabilities clipped to [1e-15, 1 − 1e-15].
    public var logLoss: Double
    /// Mean squared error of the probabilities.
    public var brier: Double
    /// Ten equal-width bins of predicted probability; empty bins are left out.
    public var calibration: [CalibrationBin]
    /// ROC curve points (false positive rate, true positive rate), from (0,0) to (1,1), at most ~200.
    public var roc: [(fpr: Double, tpr: Double)]
    /// Gains by decile (fewer when there are fewer than 10 rows).
    public var deciles: [GainsDecile]

    /// Positive rate.
    public var baseRate: Double { count == 0 ? 0 : Double(positives) / Double(count) }

    /// Evaluates `probabilities` against `labels` (0 or 1).
    public init(probabilities: [Double], labels: [Double]) {
        let n = min(probabilities.count, labels.count)
        count = n
        positives = labels.prefix(n).reduce(0) { $0 + ($1 > 0.5 ? 1 : 0) }
        auc = Self.auc(scores: Array(probabilities.prefix(n)), labels: Array(labels.prefix(n)))
        var loss = 0.0
        var squares = 0.0
        for i in 0..<n {
            let p = min(max(probabilities[i], 1e-15), 1 - 1e-15)
            loss -= labels[i] > 0.5 ? log(p) : log(1 - p)
            squares += (probabilities[i] - labels[i]) * (probabilities[i] - labels[i])
        }
        logLoss = n == 0 ? 0 : loss / Double(n)
        brier = n == 0 ? 0 : squares / Double(n)
        calibration = Self.calibration(probabilities.prefix(n), labels.prefix(n), bins: 10)
        let order = (0..<n).sorted { probabilities[$0] > probabilities[$1] }
        roc = Self.roc(order: order, probabilities: probabilities, labels: labels, positives: positives)
        deciles = Self.deciles(order: order, labels: labels, positives: positives)
    }

    /// Equality on the figures (the ROC curve is derived from the same inputs).
    public static func == (a: BinaryEvaluation, b: BinaryEvaluation) -> Bool {
        a.count == b.count && a.positives == b.positives && a.auc == b.auc && a.logLoss == b.logLoss
            && a.brier == b.brier && a.calibration == b.calibration && a.deciles == b.deciles
    }

    /// AUC by the rank-sum (Mann-Whitney) statistic with average ranks for ties: the probability that a random
    /// positive scores above a random negative, ties counting one half. Nil with no positives or no negatives.
    public static func auc(scores: [Double], labels: [Double]) -> Double? {
        let n = min(scores.count, labels.count)
        let order = (0..<n).sorted { scores[$0] < scores[$1] }
        var positives = 0.0
        var rankSum = 0.0
        var start = 0
        while start < n {
            var end = start
            while end + 1 < n && scores[order[end + 1]] == scores[order[start]] { end += 1 }
            let averageRank = Double(start + end) / 2 + 1
            for k in start...end where labels[order[k]] > 0.5 {
                positives += 1
                rankSum += averageRank
            }
            start = end + 1
        }
        let negatives = Double(n) - positives
        guard positives > 0, negatives > 0 else { return nil }
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }

    private static func calibration(_ probabilities: ArraySlice<Double>, _ labels: ArraySlice<Double>, bins: Int) -> [CalibrationBin] {
        var counts = [Int](repeating: 0, count: bins)
        var predicted = [Double](repeating: 0, count: bins)
        var observed = [Double](repeating: 0, count: bins)
        for (p, y) in zip(probabilities, labels) {
            let bin = min(max(Int(p * Double(bins)), 0), bins - 1)
            counts[bin] += 1
            predicted[bin] += p
            observed[bin] += y
        }
        return (0..<bins).compactMap { bin in
            guard counts[bin] > 0 else { return nil }
            let c = Double(counts[bin])
            return CalibrationBin(lower: Double(bin) / Double(bins), upper: Double(bin + 1) / Double(bins),
                                  count: counts[bin], predicted: predicted[bin] / c, observed: observed[bin] / c)
        }
    }

    private static func roc(order: [Int], probabilities: [Double], labels: [Double], positives: Int) -> [(fpr: Double, tpr: Double)] {
        let negatives = order.count - positives
        guard positives > 0, negatives > 0 else { return [(0, 0), (1, 1)] }
        var points: [(fpr: Double, tpr: Double)] = [(0, 0)]
        let step = max(1, order.count / 200)
        var truePositives = 0
        var falsePositives = 0
        var sinceLast = 0
        var k = 0
        while k < order.count {
            // A group of tied scores moves the curve in one straight segment.
            let score = probabilities[order[k]]
            while k < order.count && probabilities[order[k]] == score {
                if labels[order[k]] > 0.5 { truePositives += 1 } else { falsePositives += 1 }
                k += 1
                sinceLast += 1
            }
            if sinceLast >= step || k == order.count {
                points.append((Double(falsePositives) / Double(negatives), Double(truePositives) / Double(positives)))
                sinceLast = 0
            }
        }
        return points
    }

    private static func deciles(order: [Int], labels: [Double], positives: Int) -> [GainsDecile] {
        let n = order.count
        guard n > 0 else { return [] }
        let groups = min(10, n)
        let overall = Double(positives) / Double(n)
        var result: [GainsDecile] = []
        var found = 0.0
        for g in 0..<groups {
            let lower = g * n / groups
            let upper = (g + 1) * n / groups
            let hits = (lower..<upper).reduce(0.0) { $0 + (labels[order[$1]] > 0.5 ? 1 : 0) }
            found += hits
            let rate = hits / Double(max(upper - lower, 1))
            result.append(GainsDecile(decile: g + 1, count: upper - lower, rate: rate,
                                      cumulativeGain: positives == 0 ? 0 : found / Double(positives),
                                      lift: overall > 0 ? rate / overall : 0))
        }
        return result
    }
}

/// How one feature's distribution differs between training data and the data a model is applied to.
public struct FeatureDrift: Sendable, Equatable {
    /// Feature name.
    public var feature: String
    /// Mean on the reference (training) data.
    public var referenceMean: Double
    /// Standard deviation on the reference data.
    public var referenceScale: Double
    /// Mean on the compared (holdout or serving) data.
    public var mean: Double
    /// Standard deviation on the compared data.
    public var scale: Double
    /// (mean − reference mean) / reference scale: the shift in the units the model sees.
    public var standardizedShift: Double

    /// Compares each column of `values` (row-major, `names.count` wide) with a reference standardization.
    public static func compare(names: [String], reference: Standardization, values: [Double]) -> [FeatureDrift] {
        let current = Standardization(fitting: values, width: names.count)
        return names.indices.map { j in
            let scale = reference.scale[j]
            return FeatureDrift(feature: names[j], referenceMean: reference.mean[j], referenceScale: scale,
                                mean: current.mean[j], scale: current.scale[j],
                                standardizedShift: (current.mean[j] - reference.mean[j]) / scale)
        }
    }
}
