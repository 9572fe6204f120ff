import Foundation
import NudgeTraining

/// A Markdown report with SVG plots beside it: `<name>.report.md` and `<name>.report/*.svg`.
struct ModelReport {
    private(set) var markdown = ""
    private(set) var charts: [(file: String, svg: String)] = []
    /// Directory name of the charts, relative to the report.
    private var chartDirectory = ""

    /// Writes the report and its charts (the directory is the report path without `.md`).
    func write(to path: String) throws(TrainingError) {
        let directory = path.hasSuffix(".md") ? String(path.dropLast(3)) : path + ".charts"
        let relative = (directory as NSString).lastPathComponent
        let text = markdown.replacingOccurrences(of: "{{charts}}", with: relative)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for chart in charts {
                try Data(chart.svg.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(chart.file)))
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw .file(path: path, problem: "cannot write the report (\(error.localizedDescription))")
        }
    }

    private mutating func line(_ text: String = "") { markdown += text + "\n" }

    private mutating func chart(_ file: String, _ alt: String, _ svg: String) {
        charts.append((file, svg))
        line("![\(alt)]({{charts}}/\(file))")
        line()
    }

    // MARK: Training reports

    static func training(churn result: ChurnTrainingResult, options: TrainingOptions, dataset: String, modelPath: String) -> ModelReport {
        var report = ModelReport()
        report.header(title: "\(options.name)@\(options.version): training report", options: options, dataset: dataset,
                      modelPath: modelPath, split: result.split, iterations: "\(result.fit.iterations) (\(result.fit.converged ? "converged" : "NOT converged"))")
        report.figures(train: result.trainEvaluation, holdout: result.holdoutEvaluation)
        report.curves(main: result.holdoutEvaluation ?? result.trainEvaluation,
                      mainLabel: result.holdoutEvaluation == nil ? "training" : "holdout",
                      extra: result.holdoutEvaluation == nil ? [] : [("training", result.trainEvaluation)])
        report.coefficients(names: result.featureNames, standardization: result.standardization,
                            models: [(action: "", intercept: result.fit.intercept, weights: result.fit.weights)])
        report.drift(result.drift, reference: "training", compared: "holdout")
        return report
    }

    static func training(nba result: NBATrainingResult, options: TrainingOptions, dataset: String, modelPath: String) -> ModelReport {
        var report = ModelReport()
        let iterations = result.actions.compactMap { $0.fit?.iterations }.max() ?? 0
        report.header(title: "\(options.name)@\(options.version): training report", options: options, dataset: dataset,
                      modelPath: modelPath, split: result.split, iterations: "at most \(iterations) per action")
        report.line("All offers together, each scored by its own action's model:")
        report.line()
        report.figures(train: result.trainEvaluation, holdout: result.holdoutEvaluation)
        report.line("## Actions")
        report.line()
        report.line("| action | fitted | training rows | training acceptance | holdout rows | holdout acceptance | holdout AUC | holdout log-loss |")
        report.line("|---|---|---:|---:|---:|---:|---:|---:|")
        for a in result.actions {
            let h = a.holdoutEvaluation
            report.line("| \(a.id) | \(a.fitted ? "yes" : "no (base rate)") | \(a.trainRows) | \(percent(a.trainEvaluation?.baseRate)) | \(h?.count ?? 0) | \(percent(h?.baseRate)) | \(fixed(h?.auc)) | \(fixed(h?.logLoss)) |")
        }
        report.line()
        let perAction = result.actions.compactMap { a in a.holdoutEvaluation.map { (a.id, $0) } }
        report.curves(main: result.holdoutEvaluation ?? result.trainEvaluation,
                      mainLabel: result.holdoutEvaluation == nil ? "all actions, training" : "all actions, holdout",
                      extra: perAction)
        report.coefficients(names: result.featureNames, standardization: result.standardization,
                            models: result.actions.map { (action: $0.id, intercept: $0.intercept, weights: $0.weights) })
        report.drift(result.drift, reference: "training", compared: "holdout")
        return report
    }

    static func evaluation(_ result: ModelEvaluator.Result, modelPath: String, dataset: String, after: String?) -> ModelReport {
        var report = ModelReport()
        report.line("# \(result.identity): evaluation report")
        report.line()
        report.line("Model `\(modelPath)` scored through the service's loader and scorer on `\(dataset)`"
                    + (after.map { ", rows later than \($0)" } ?? ", all rows") + ".")
        report.line()
        report.figures(train: nil, holdout: result.evaluation, holdoutName: "evaluated")
        if !result.byAction.isEmpty {
            report.line("| action | rows | acceptance | AUC | log-loss |")
            report.line("|---|---:|---:|---:|---:|")
            for (id, e) in result.byAction {
                report.line("| \(id) | \(e.count) | \(percent(e.baseRate)) | \(fixed(e.auc)) | \(fixed(e.logLoss)) |")
            }
            report.line()
        }
        report.curves(main: result.evaluation, mainLabel: result.task == "actions" ? "all actions" : "evaluated",
                      extra: result.byAction.map { ($0.id, $0.evaluation) })
        if !result.drift.isEmpty {
            report.coefficients(names: result.featureNames,
                                standardization: Standardization(mean: result.drift.map(\.referenceMean), scale: result.drift.map(\.referenceScale)),
                                models: result.weights)
        }
        report.line("Training figures below are the model's own `standardize` (mean and scale of its training rows); "
                    + "serving figures are this data's.")
        report.line()
        report.drift(result.drift, reference: "training", compared: "serving")
        return report
    }

    /// One line for stdout.
    static func summary(name: String, trainRows: Int, train: BinaryEvaluation, holdout: BinaryEvaluation?,
                        iterations: Int, converged: Bool) -> String {
        var text = "\(name): \(trainRows) training rows, \(iterations) Newton iterations\(converged ? "" : " (NOT converged)"); training AUC \(fixed(train.auc)), log-loss \(fixed(train.logLoss))"
        if let holdout {
            text += "; holdout \(holdout.count) rows: AUC \(fixed(holdout.auc)), log-loss \(fixed(holdout.logLoss)), base rate \(fixed(holdout.baseRate))"
        } else {
            text += "; no holdout (a single period): figures are on the training rows"
        }
        return text
    }

    // MARK: Sections

    private mutating func header(title: String, options: TrainingOptions, dataset: String, modelPath: String,
                                 split: HoldoutSplit, iterations: String) {
        line("# \(title)")
        line()
        line("Trained \(options.trainedAt) on `\(dataset)`, written to `\(modelPath)`.")
        line()
        let holdout = split.holdoutFromMillis.map { "rows from \(DurationText.format(millis: $0)) on (\(split.holdout.count) rows; `--after` and `--holdout-after` take rows strictly after their time)" }
            ?? "none (a single period): the figures below are on the training rows"
        line("- Holdout: \(holdout)")
        line("- L2-regularized logistic regression, λ = \(options.l2) on the summed log-loss (scikit-learn `C` = \(options.l2 > 0 ? String(1 / options.l2) : "inf")), intercept not penalized, standardized features")
        line("- Newton/IRLS iterations: \(iterations)")
        line()
    }

    private mutating func figures(train: BinaryEvaluation?, holdout: BinaryEvaluation?, holdoutName: String = "holdout") {
        var columns: [(String, BinaryEvaluation)] = []
        if let train { columns.append(("training", train)) }
        if let holdout { columns.append((holdoutName, holdout)) }
        line("| | " + columns.map(\.0).joined(separator: " | ") + " |")
        line("|---|" + columns.map { _ in "---:|" }.joined())
        line("| rows | " + columns.map { "\($0.1.count)" }.joined(separator: " | ") + " |")
        line("| positive rate | " + columns.map { Self.percent($0.1.baseRate) }.joined(separator: " | ") + " |")
        line("| AUC | " + columns.map { Self.fixed($0.1.auc) }.joined(separator: " | ") + " |")
        line("| log-loss | " + columns.map { Self.fixed($0.1.logLoss) }.joined(separator: " | ") + " |")
        line("| Brier | " + columns.map { Self.fixed($0.1.brier) }.joined(separator: " | ") + " |")
        line()
    }

    private mutating func curves(main: BinaryEvaluation, mainLabel: String, extra: [(String, BinaryEvaluation)]) {
        line("## ROC curve")
        line()
        let rocSeries = [SVGChart.Series(label: "\(mainLabel) (AUC \(Self.fixed(main.auc)))", points: main.roc.map { ($0.fpr, $0.tpr) })]
            + extra.map { SVGChart.Series(label: "\($0.0) (AUC \(Self.fixed($0.1.auc)))", points: $0.1.roc.map { ($0.fpr, $0.tpr) }) }
        chart("roc.svg", "ROC curve", SVGChart.unitLines(title: "ROC curve", xLabel: "false positive rate", yLabel: "true positive rate", rocSeries))

        line("## Calibration (\(mainLabel))")
        line()
        chart("calibration.svg", "Calibration curve",
              SVGChart.unitLines(title: "Calibration: observed vs predicted", xLabel: "mean predicted probability",
                                 yLabel: "observed rate",
                                 [SVGChart.Series(label: mainLabel, points: main.calibration.map { ($0.predicted, $0.observed) })]))
        line("| predicted in | rows | mean predicted | observed |")
        line("|---|---:|---:|---:|")
        for bin in main.calibration {
            line(String(format: "| [%.1f, %.1f) | %d | %.4f | %.4f |", bin.lower, bin.upper, bin.count, bin.predicted, bin.observed))
        }
        line()

        line("## Gains and lift by decile (\(mainLabel))")
        line()
        let gains = [(x: 0.0, y: 0.0)] + main.deciles.map { (x: Double($0.decile) / Double(main.deciles.count), y: $0.cumulativeGain) }
        chart("gains.svg", "Cumulative gains",
              SVGChart.unitLines(title: "Cumulative gains", xLabel: "share of rows, highest scores first",
                                 yLabel: "share of positives found", [SVGChart.Series(label: mainLabel, points: gains)]))
        chart("lift.svg", "Lift by decile",
              SVGChart.bars(title: "Lift by decile (positive rate / overall rate)", unit: "×",
                            main.deciles.map { (label: "decile \($0.decile)", value: $0.lift) }))
        line("| decile | rows | positive rate | cumulative gain | lift |")
        line("|---:|---:|---:|---:|---:|")
        for d in main.deciles {
            line(String(format: "| %d | %d | %.4f | %.4f | %.2f |", d.decile, d.count, d.rate, d.cumulativeGain, d.lift))
        }
        line()
    }

    private mutating func coefficients(names: [String], standardization: Standardization,
                                       models: [(action: String, intercept: Double, weights: [Double])]) {
        line("## Coefficients")
        line()
        line("Weights apply to standardized features, `(x − mean) / scale`, so their sizes compare directly; "
             + "`weight / scale` is the change in log-odds per unit of the raw feature.")
        line()
        for model in models {
            let title = model.action.isEmpty ? "Top coefficients" : "Top coefficients: \(model.action)"
            let ranked = zip(names, model.weights).sorted { abs($0.1) > abs($1.1) }.prefix(12)
            let file = model.action.isEmpty ? "coefficients.svg" : "coefficients-\(model.action).svg"
            chart(file, title, SVGChart.signedBars(title: title, ranked.map { (label: $0.0, value: $0.1) }))
        }
        if models.count == 1, let model = models.first {
            line("| feature | weight | mean | scale | weight / scale |")
            line("|---|---:|---:|---:|---:|")
            line(String(format: "| (intercept) | %.5f | | | |", model.intercept))
            for (j, name) in names.enumerated() {
                line(String(format: "| %@ | %.5f | %.4g | %.4g | %.5g |", name, model.weights[j], standardization.mean[j],
                            standardization.scale[j], model.weights[j] / standardization.scale[j]))
            }
        } else {
            line("| feature | mean | scale | " + models.map(\.action).joined(separator: " | ") + " |")
            line("|---|---:|---:|" + models.map { _ in "---:|" }.joined())
            line("| (intercept) | | | " + models.map { String(format: "%.4f", $0.intercept) }.joined(separator: " | ") + " |")
            for (j, name) in names.enumerated() {
                line(String(format: "| %@ | %.4g | %.4g | ", name, standardization.mean[j], standardization.scale[j])
                     + models.map { String(format: "%.4f", $0.weights[j]) }.joined(separator: " | ") + " |")
            }
        }
        line()
    }

    private mutating func drift(_ drift: [FeatureDrift], reference: String, compared: String) {
        guard !drift.isEmpty else { return }
        line("## Feature distributions: \(reference) vs \(compared)")
        line()
        line("A shift is the difference of means in units of the \(reference) standard deviation; beyond ±0.25 the "
             + "model sees a population it was not fitted on.")
        line()
        chart("drift.svg", "Feature shift",
              SVGChart.signedBars(title: "Mean shift, \(compared) vs \(reference) (standard deviations)",
                                  drift.map { (label: $0.feature, value: $0.standardizedShift) }))
        line("| feature | \(reference) mean | \(reference) sd | \(compared) mean | \(compared) sd | shift (sd) |")
        line("|---|---:|---:|---:|---:|---:|")
        for d in drift {
            line(String(format: "| %@ | %.4g | %.4g | %.4g | %.4g | %+.3f%@ |", d.feature, d.referenceMean, d.referenceScale,
                        d.mean, d.scale, d.standardizedShift, abs(d.standardizedShift) > 0.25 ? " ⚠" : ""))
        }
        line()
    }

    static func fixed(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }
    static func percent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
}
