import Foundation
import NudgeFeatures
import NudgeModels

/// Which rows train and which are held out, by time: the model is judged on a later period than it saw.
public struct HoldoutSplit: Sendable, Equatable {
    /// Training row indices.
    public var train: [Int]
    /// Held-out row indices.
    public var holdout: [Int]
    /// Earliest time in the holdout, when there is one.
    public var holdoutFromMillis: Int64?

    /// Splits rows by `times`. With `after`, the holdout is every row whose time is later than it. Without,
    /// the holdout starts at the time of the row at position ⌊n × (1 − share)⌋ in time order and takes every
    /// row at or after that time: whole cutoffs stay together. When that would hold out every row (a single
    /// cutoff), there is no holdout.
    public static func make(times: [Int64], after: Int64?, share: Double) -> HoldoutSplit {
        let n = times.count
        let boundary: Int64?
        if let after {
            boundary = after == .max ? nil : after + 1
        } else if n > 0 {
            let sorted = times.sorted()
            let position = min(max(Int(Double(n) * (1.0 - share)), 0), n - 1)
            boundary = sorted[position] > sorted[0] ? sorted[position] : nil
        } else {
            boundary = nil
        }
        guard let boundary else { return HoldoutSplit(train: Array(0..<n), holdout: [], holdoutFromMillis: nil) }
        var train: [Int] = []
        var holdout: [Int] = []
        for i in 0..<n {
            if times[i] >= boundary { holdout.append(i) } else { train.append(i) }
        }
        let from = holdout.map { times[$0] }.min()
        return HoldoutSplit(train: train, holdout: holdout, holdoutFromMillis: from)
    }
}

/// Options shared by the churn and NBA trainers.
public struct TrainingOptions: Sendable {
    /// Model name (`churn`, `nba`).
    public var name: String
    /// Model version written to the file (e.g. `2026-11-23.1`).
    public var version: String
    /// When trained, ISO-8601 (written to `trained.at`).
    public var trainedAt: String
    /// λ: L2 penalty on the summed log-loss (scikit-learn's 1/C).
    public var l2: Double = 1
    /// Hold out rows later than this; nil for the default share.
    public var holdoutAfterMillis: Int64?
    /// Share of rows (by time) held out when `holdoutAfterMillis` is nil.
    public var holdoutShare = 0.2
    /// Newton iterations at most, per fit.
    public var maxIterations = 100
    /// The service's feature set: the written file records what each of its features computes
    /// (`trained.feature_definitions`) and is validated against the set, as the service would.
    public var serviceFeatures: FeatureSet = .standard

    /// The schema the service would load a model with.
    var serviceSchema: FeatureSchema { FeatureSchema(names: serviceFeatures.names, definitions: serviceFeatures.signatures) }

    /// What each of `names` computes in the service's set, for the model file.
    func definitions(of names: [String]) -> [(name: String, definition: String)] {
        let signatures = serviceFeatures.signatures
        return names.compactMap { name in serviceFeatures.index(of: name).map { (name, signatures[$0]) } }
    }

    /// Options with the defaults above.
    public init(name: String, version: String, trainedAt: String) {
        self.name = name
        self.version = version
        self.trainedAt = trainedAt
    }

    var regression: LogisticRegression.Options {
        var options = LogisticRegression.Options(l2: l2)
        options.maxIterations = maxIterations
        return options
    }
}

/// Scores rows exactly as the service's `LogisticScorer` does: `sigmoid(intercept + Σ wᵢ·(xᵢ − meanᵢ)/scaleᵢ)`,
/// summed in feature order, a non-finite value contributing nothing.
public enum ModelScoring {
    /// The probability for one row.
    public static func probability(_ row: ArraySlice<Double>, standardization: Standardization,
                                   intercept: Double, weights: [Double]) -> Double {
        var z = intercept
        var j = 0
        for v in row {
            if v.isFinite { z += weights[j] * (v - standardization.mean[j]) / standardization.scale[j] }
            j += 1
        }
        return LogisticScorer.sigmoid(z)
    }

    /// Probabilities for the rows `rows` of `table`.
    public static func probabilities(_ table: LabeledTable, rows: [Int], standardization: Standardization,
                                     intercept: Double, weights: [Double]) -> [Double] {
        rows.map { probability(table.row($0), standardization: standardization, intercept: intercept, weights: weights) }
    }
}

/// The outcome of training the churn model.
public struct ChurnTrainingResult: Sendable {
    /// The model file text.
    public var json: String
    /// Features, in weight order.
    public var featureNames: [String]
    /// Means and scales of the training rows.
    public var standardization: Standardization
    /// The fit.
    public var fit: LogisticFit
    /// The time split.
    public var split: HoldoutSplit
    /// Figures on the training rows.
    public var trainEvaluation: BinaryEvaluation
    /// Figures on the holdout, when there is one.
    public var holdoutEvaluation: BinaryEvaluation?
    /// Training vs holdout feature distributions.
    public var drift: [FeatureDrift]
}

/// Fits the churn model on a churn dataset and writes its model file.
public enum ChurnTrainer {
    /// Standardizes on the training rows, fits by Newton/IRLS, evaluates on the holdout, writes and
    /// validates the model file.
    public static func train(_ table: LabeledTable, options: TrainingOptions) throws(TrainingError) -> ChurnTrainingResult {
        let width = table.featureNames.count
        let split = HoldoutSplit.make(times: table.times, after: options.holdoutAfterMillis, share: options.holdoutShare)
        guard !split.train.isEmpty else {
            throw .data(problem: "no training rows before the holdout; move --holdout-after later or make a longer dataset")
        }
        let standardization = Standardization(fitting: table.values, width: width, rows: split.train)
        let x = standardization.apply(table.values, width: width, rows: split.train)
        let labels = split.train.map { table.labels[$0] }
        try requireBothClasses(labels, what: "churn")
        let fit = try LogisticRegression.fit(x: x, labels: labels, width: width, options: options.regression)

        let trainEvaluation = BinaryEvaluation(
            probabilities: ModelScoring.probabilities(table, rows: split.train, standardization: standardization,
                                                      intercept: fit.intercept, weights: fit.weights),
            labels: labels)
        var holdoutEvaluation: BinaryEvaluation?
        var drift: [FeatureDrift] = []
        if !split.holdout.isEmpty {
            holdoutEvaluation = BinaryEvaluation(
                probabilities: ModelScoring.probabilities(table, rows: split.holdout, standardization: standardization,
                                                          intercept: fit.intercept, weights: fit.weights),
                labels: split.holdout.map { table.labels[$0] })
            drift = FeatureDrift.compare(names: table.featureNames, reference: standardization,
                                         values: table.subset(split.holdout).values)
        }
        let evaluation = holdoutEvaluation ?? trainEvaluation
        var trained = TrainedBlock(at: options.trainedAt, rows: split.train.count, evaluatedRows: evaluation.count,
                                   evaluatedOn: holdoutEvaluation == nil ? "train" : "holdout",
                                   holdoutFrom: split.holdoutFromMillis.map(DurationText.format(millis:)),
                                   evaluation: evaluation, trainAUC: trainEvaluation.auc, l2: options.l2,
                                   iterations: fit.iterations, converged: fit.converged)
        trained.featureDefinitions = options.definitions(of: table.featureNames)
        let json = try ModelFileWriter.binary(name: options.name, version: options.version, features: table.featureNames,
                                              standardization: standardization, intercept: fit.intercept,
                                              weights: fit.weights, trained: trained)
        do {
            _ = try ModelFile.loadChurn(Data(json.utf8), file: options.name, schema: options.serviceSchema)
        } catch {
            throw .model(error)
        }
        return ChurnTrainingResult(json: json, featureNames: table.featureNames, standardization: standardization, fit: fit,
                                   split: split, trainEvaluation: trainEvaluation, holdoutEvaluation: holdoutEvaluation,
                                   drift: drift)
    }

    static func requireBothClasses(_ labels: [Double], what: String) throws(TrainingError) {
        let positives = labels.reduce(0, +)
        guard positives > 0, positives < Double(labels.count) else {
            throw .data(problem: "every training row of \(what) has label \(positives > 0 ? 1 : 0); a model needs both outcomes")
        }
    }
}

/// One action's part of an NBA training.
public struct ActionTrainingResult: Sendable {
    /// Action id.
    public var id: String
    /// False when the action had rows of only one outcome (or none) and got a base-rate model.
    public var fitted: Bool
    /// Intercept on standardized features.
    public var intercept: Double
    /// Weights on standardized features.
    public var weights: [Double]
    /// The Newton fit, when fitted.
    public var fit: LogisticFit?
    /// Training rows of this action.
    public var trainRows: Int
    /// Figures on this action's training rows (nil without rows).
    public var trainEvaluation: BinaryEvaluation?
    /// Figures on this action's holdout rows (nil without rows).
    public var holdoutEvaluation: BinaryEvaluation?
}

/// The outcome of training the NBA model.
public struct NBATrainingResult: Sendable {
    /// The model file text.
    public var json: String
    /// Features, in weight order.
    public var featureNames: [String]
    /// The shared standardization (all actions' training rows).
    public var standardization: Standardization
    /// The time split over all offer rows.
    public var split: HoldoutSplit
    /// One result per catalog action, in catalog order.
    public var actions: [ActionTrainingResult]
    /// All training rows, each scored by its own action's model.
    public var trainEvaluation: BinaryEvaluation
    /// All holdout rows, each scored by its own action's model.
    public var holdoutEvaluation: BinaryEvaluation?
    /// Training vs holdout feature distributions.
    public var drift: [FeatureDrift]
    /// Offer rows whose action is not in the catalog (ignored), by action.
    public var ignoredActions: [String: Int]
}

/// Fits one propensity model per catalog action on an offers dataset and writes the NBA model file.
public enum NBATrainer {
    /// Standardizes on all training offer rows (one `standardize` for the file), fits each action on its own
    /// rows, evaluates on the holdout, copies value/channels/eligibility from the catalog, writes and
    /// validates the file.
    public static func train(_ table: LabeledTable, catalog: ActionCatalog, options: TrainingOptions) throws(TrainingError) -> NBATrainingResult {
        let width = table.featureNames.count
        let known = Set(catalog.actions.map(\.id))
        var ignored: [String: Int] = [:]
        var usable: [Int] = []
        for i in 0..<table.count {
            if known.contains(table.groups[i]) { usable.append(i) } else { ignored[table.groups[i], default: 0] += 1 }
        }
        let rows = table.subset(usable)
        let split = HoldoutSplit.make(times: rows.times, after: options.holdoutAfterMillis, share: options.holdoutShare)
        guard !split.train.isEmpty else {
            throw .data(problem: "no offer rows of catalog actions before the holdout; check --actions and --holdout-after")
        }
        let standardization = Standardization(fitting: rows.values, width: width, rows: split.train)
        let overall = split.train.reduce(0.0) { $0 + rows.labels[$1] } / Double(split.train.count)

        var results: [ActionTrainingResult] = []
        var fitted: [FittedAction] = []
        var scores = [Double](repeating: 0, count: rows.count)
        for action in catalog.actions {
            let trainRows = split.train.filter { rows.groups[$0] == action.id }
            let holdoutRows = split.holdout.filter { rows.groups[$0] == action.id }
            let labels = trainRows.map { rows.labels[$0] }
            let positives = labels.reduce(0, +)
            var result = ActionTrainingResult(id: action.id, fitted: false, intercept: 0, weights: Array(repeating: 0, count: width),
                                              fit: nil, trainRows: trainRows.count, trainEvaluation: nil, holdoutEvaluation: nil)
            if positives > 0 && positives < Double(labels.count) {
                let x = standardization.apply(rows.values, width: width, rows: trainRows)
                let fit = try LogisticRegression.fit(x: x, labels: labels, width: width, options: options.regression)
                result.fitted = true
                result.fit = fit
                result.intercept = fit.intercept
                result.weights = fit.weights
            } else {
                // Too little signal to fit: the smoothed base rate of the action (or of all offers).
                let rate = labels.isEmpty ? overall : (positives + 0.5) / (Double(labels.count) + 1)
                let clamped = min(max(rate, 1e-4), 1 - 1e-4)
                result.intercept = log(clamped / (1 - clamped))
            }
            func score(_ indices: [Int]) -> [Double] {
                ModelScoring.probabilities(rows, rows: indices, standardization: standardization,
                                           intercept: result.intercept, weights: result.weights)
            }
            if !trainRows.isEmpty {
                let fittedScores = score(trainRows)
                for (k, i) in trainRows.enumerated() { scores[i] = fittedScores[k] }
                result.trainEvaluation = BinaryEvaluation(probabilities: fittedScores, labels: labels)
            }
            if !holdoutRows.isEmpty {
                let heldScores = score(holdoutRows)
                for (k, i) in holdoutRows.enumerated() { scores[i] = heldScores[k] }
                result.holdoutEvaluation = BinaryEvaluation(probabilities: heldScores, labels: holdoutRows.map { rows.labels[$0] })
            }
            let evaluation = result.holdoutEvaluation ?? result.trainEvaluation
            let block = evaluation.map {
                TrainedBlock(at: options.trainedAt, rows: trainRows.count, evaluatedRows: $0.count,
                             evaluatedOn: result.holdoutEvaluation == nil ? "train" : "holdout",
                             holdoutFrom: nil, evaluation: $0, trainAUC: result.trainEvaluation?.auc,
                             l2: options.l2, iterations: result.fit?.iterations ?? 0, converged: result.fit?.converged ?? false)
            }
            fitted.append(FittedAction(catalog: action, intercept: result.intercept, weights: result.weights,
                                       trained: block, fitted: result.fitted))
            results.append(result)
        }

        let trainEvaluation = BinaryEvaluation(probabilities: split.train.map { scores[$0] },
                                               labels: split.train.map { rows.labels[$0] })
        var holdoutEvaluation: BinaryEvaluation?
        var drift: [FeatureDrift] = []
        if !split.holdout.isEmpty {
            holdoutEvaluation = BinaryEvaluation(probabilities: split.holdout.map { scores[$0] },
                                                 labels: split.holdout.map { rows.labels[$0] })
            drift = FeatureDrift.compare(names: rows.featureNames, reference: standardization,
                                         values: rows.subset(split.holdout).values)
        }
        let evaluation = holdoutEvaluation ?? trainEvaluation
        var trained = TrainedBlock(at: options.trainedAt, rows: split.train.count, evaluatedRows: evaluation.count,
                                   evaluatedOn: holdoutEvaluation == nil ? "train" : "holdout",
                                   holdoutFrom: split.holdoutFromMillis.map(DurationText.format(millis:)),
                                   evaluation: evaluation, trainAUC: trainEvaluation.auc, l2: options.l2,
                                   iterations: results.compactMap { $0.fit?.iterations }.max() ?? 0,
                                   converged: results.allSatisfy { $0.fit?.converged ?? true })
        trained.featureDefinitions = options.definitions(of: rows.featureNames)
        let json = try ModelFileWriter.actions(name: options.name, version: options.version, features: rows.featureNames,
                                               standardization: standardization, actions: fitted, trained: trained)
        do {
            _ = try ModelFile.loadNBA(Data(json.utf8), file: options.name, schema: options.serviceSchema)
        } catch {
            throw .model(error)
        }
        return NBATrainingResult(json: json, featureNames: rows.featureNames, standardization: standardization, split: split,
                                 actions: results, trainEvaluation: trainEvaluation, holdoutEvaluation: holdoutEvaluation,
                                 drift: drift, ignoredActions: ignored)
    }
}

/// Scores a dataset with a model file through the service's own loader and scorer (`nudge evaluate`).
public enum ModelEvaluator {
    /// What evaluating a model on a dataset gives.
    public struct Result: Sendable {
        /// `name@version`.
        public var identity: String
        /// `binary` or `actions`.
        public var task: String
        /// Rows scored.
        public var rows: [Int]
        /// Probabilities, one per scored row.
        public var probabilities: [Double]
        /// All scored rows together.
        public var evaluation: BinaryEvaluation
        /// Per action (NBA), in model order.
        public var byAction: [(id: String, evaluation: BinaryEvaluation)]
        /// The model's standardization vs the data's feature distribution.
        public var drift: [FeatureDrift]
        /// Features, in model order.
        public var featureNames: [String]
        /// (feature, weight) per action id ("" for churn), in model order.
        public var weights: [(action: String, intercept: Double, weights: [Double])]
    }

    /// Reads the model's `task` and scores every row of `table` later than `after` (all rows when nil).
    /// Offer rows whose action the model does not know are skipped.
    public static func evaluate(model data: Data, file: String, table: LabeledTable, after: Int64?) throws(TrainingError) -> Result {
        let schema = FeatureSchema(names: table.featureNames)
        let candidates = (0..<table.count).filter { after == nil || table.times[$0] > (after ?? .min) }
        let isNBA = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["task"] as? String == "actions"
        return try table.values.withUnsafeBufferPointer { (all) throws(TrainingError) -> Result in
            let width = table.featureNames.count
            func vector(_ i: Int) -> UnsafeBufferPointer<Double> {
                UnsafeBufferPointer(rebasing: all[(i * width)..<((i + 1) * width)])
            }
            if isNBA {
                let model: NBAModel
                do throws(ModelFileError) { model = try ModelFile.loadNBA(data, file: file, schema: schema) } catch { throw .model(error) }
                var rows: [Int] = []
                var probabilities: [Double] = []
                var perAction: [[(Double, Double)]] = Array(repeating: [], count: model.actions.count)
                for i in candidates {
                    guard let a = model.index(ofAction: table.groups[i]) else { continue }
                    let p = model.actions[a].scorer.probability(vector(i))
                    rows.append(i)
                    probabilities.append(p)
                    perAction[a].append((p, table.labels[i]))
                }
                guard !rows.isEmpty else { throw .data(problem: "no rows to evaluate: none later than the cutoff with an action of the model") }
                let first = model.actions[0].scorer
                let reference = Standardization(mean: first.mean, scale: first.scale)
                let used = table.subset(rows)
                let modelColumns = first.featureIndices
                let projected = (0..<used.count).flatMap { r in modelColumns.map { used.values[r * width + $0] } }
                return Result(identity: model.identity.description, task: "actions", rows: rows, probabilities: probabilities,
                              evaluation: BinaryEvaluation(probabilities: probabilities, labels: rows.map { table.labels[$0] }),
                              byAction: zip(model.actions, perAction).compactMap { action, pairs in
                                  pairs.isEmpty ? nil : (action.id, BinaryEvaluation(probabilities: pairs.map(\.0), labels: pairs.map(\.1)))
                              },
                              drift: FeatureDrift.compare(names: first.featureNames, reference: reference, values: projected),
                              featureNames: first.featureNames,
                              weights: model.actions.map { ($0.id, $0.scorer.intercept, $0.scorer.weights) })
            }
            let model: ChurnModel
            do throws(ModelFileError) { model = try ModelFile.loadChurn(data, file: file, schema: schema) } catch { throw .model(error) }
            guard !candidates.isEmpty else { throw .data(problem: "no rows to evaluate later than the cutoff") }
            let probabilities = candidates.map { model.scorer.probability(vector($0)) }
            let scorer = model.scorer
            let used = table.subset(candidates)
            let projected = (0..<used.count).flatMap { r in scorer.featureIndices.map { used.values[r * width + $0] } }
            return Result(identity: model.identity.description, task: "binary", rows: candidates, probabilities: probabilities,
                          evaluation: BinaryEvaluation(probabilities: probabilities, labels: candidates.map { table.labels[$0] }),
                          byAction: [],
                          drift: FeatureDrift.compare(names: scorer.featureNames,
                                                      reference: Standardization(mean: scorer.mean, scale: scorer.scale),
                                                      values: projected),
                          featureNames: scorer.featureNames, weights: [("", scorer.intercept, scorer.weights)])
        }
    }
}
