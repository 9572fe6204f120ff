import ArgumentParser
import Foundation
import NudgeFeatures
import NudgeTraining

extension Nudge {
    /// `nudge train`: fits a churn or NBA model on a dataset and writes its model file and report.
    struct Train: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a churn or next-best-action model (L2 logistic regression, Newton/IRLS) and write its model file.",
            discussion: """
            Features are standardized on the training rows; the last period (--holdout-after, else the last 20% \
            of rows by time, whole cutoffs together) is held out and gives the AUC, log-loss and calibration \
            written in the file's `trained` block. The objective is the summed log-loss + l2/2·‖w‖² (intercept \
            not penalized): scikit-learn's LogisticRegression with C = 1/l2. Writes <out>.report.md with SVG plots.

            Examples:
              nudge train --task churn --dataset dataset.csv --out models/churn.json
              nudge train --task nba --offers offers.csv --actions models/actions.json --out models/nba.json
            """)

        enum Task: String, ExpressibleByArgument, CaseIterable { case churn, nba }

        @Option(help: "churn (dataset.csv) or nba (offers.csv, one propensity model per action).") var task: Task
        @Option(help: "Churn dataset (nudge dataset --out).") var dataset: String?
        @Option(help: "Offers dataset (nudge dataset --offers-out), for --task nba.") var offers: String?
        @Option(help: "Action catalog (id, value, channels, eligibility), for --task nba.") var actions = "models/actions.json"
        @Option(help: "Model file to write.") var out: String
        @Option(help: "L2 penalty λ on the summed log-loss (scikit-learn C = 1/λ).") var l2 = 1.0
        @Option(help: "Hold out rows later than this date or time (default: the last 20% by time).") var holdoutAfter: String?
        @Option(help: "Comma-separated features to use (default: every feature column).") var features: String?
        @Option(help: "Model name (default: churn or nba).") var name: String?
        @Option(help: "Model version (default: today's UTC date with .1, e.g. 2026-11-23.1).") var version: String?
        @Option(help: "Models directory, where features.json is looked for.") var models = "models"
        @OptionGroup var featureFile: FeatureFileOption
        @Option(help: "Report to write (default: <out>.report.md, plots in <out>.report/).") var report: String?

        func validate() throws {
            switch task {
            case .churn: if dataset == nil { throw ValidationError("--task churn needs --dataset dataset.csv") }
            case .nba: if offers == nil && dataset == nil { throw ValidationError("--task nba needs --offers offers.csv") }
            }
            if !(l2 >= 0 && l2.isFinite) { throw ValidationError("--l2 must be a finite number >= 0") }
        }

        /// Before training: every feature of the dataset is one the feature file defines, and defines as the
        /// dataset computed it (its definitions file, when `nudge dataset` wrote one), or the model would be
        /// served something else under the same name, or could never be served.
        private func requireDefined(_ names: [String], in dataset: String, by features: FeatureSet) throws(TrainingError) {
            let file = featureFile.source(modelsDirectory: models)
            let missing = names.filter { features.index(of: $0) == nil }
            guard missing.isEmpty else {
                throw .file(path: dataset, problem: """
                    has features that \(file) does not define: \(missing.joined(separator: ", ")); \
                    pass the --feature-file the dataset was built with
                    """)
            }
            try DatasetDefinitions.read(beside: dataset)?.check(names, against: features, featureFile: file, dataset: dataset)
        }

        func run() async throws {
            let started = ContinuousClock.now
            let now = Date()
            var options = TrainingOptions(name: name ?? task.rawValue,
                                          version: version ?? "\(DurationText.format(millis: Int64(now.timeIntervalSince1970 * 1000)).prefix(10)).1",
                                          trainedAt: DurationText.format(millis: Int64(now.timeIntervalSince1970 * 1000)))
            options.l2 = l2
            options.serviceFeatures = try featureFile.load(modelsDirectory: models)
            if let holdoutAfter {
                guard let millis = DurationText.parseInstant(holdoutAfter) else {
                    throw ValidationError(TrainingError.option(name: "holdout-after", value: holdoutAfter,
                                                               expected: "a date such as 2026-11-01 or an ISO-8601 time").description)
                }
                options.holdoutAfterMillis = millis
            }
            let chosen = features?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let reportPath = report ?? out + ".report.md"
            var bar = ProgressBar(total: 3, label: "train")
            do {
                switch task {
                case .churn:
                    let path = dataset ?? ""
                    let table = try LabeledTable.read(path: path, kind: .churn, features: chosen)
                    try requireDefined(table.featureNames, in: path, by: options.serviceFeatures)
                    bar.update(1)
                    let result = try ChurnTrainer.train(table, options: options)
                    bar.update(2)
                    try write(result.json, to: out)
                    try ModelReport.training(churn: result, options: options, dataset: path, modelPath: out).write(to: reportPath)
                    bar.finish(3)
                    print(ModelReport.summary(name: "\(options.name)@\(options.version)", trainRows: result.split.train.count,
                                              train: result.trainEvaluation, holdout: result.holdoutEvaluation,
                                              iterations: result.fit.iterations, converged: result.fit.converged))
                case .nba:
                    let path = offers ?? dataset ?? ""
                    let catalog = try ActionCatalog.load(path: actions)
                    let table = try LabeledTable.read(path: path, kind: .offers, features: chosen)
                    try requireDefined(table.featureNames, in: path, by: options.serviceFeatures)
                    bar.update(1)
                    let result = try NBATrainer.train(table, catalog: catalog, options: options)
                    bar.update(2)
                    try write(result.json, to: out)
                    try ModelReport.training(nba: result, options: options, dataset: path, modelPath: out).write(to: reportPath)
                    bar.finish(3)
                    print(ModelReport.summary(name: "\(options.name)@\(options.version)", trainRows: result.split.train.count,
                                              train: result.trainEvaluation, holdout: result.holdoutEvaluation,
                                              iterations: result.actions.compactMap { $0.fit?.iterations }.max() ?? 0,
                                              converged: result.actions.allSatisfy { $0.fit?.converged ?? true }))
                    for action in result.actions {
                        let auc = (action.holdoutEvaluation?.auc).map { String(format: "%.4f", $0) } ?? "-"
                        print("  \(action.id): \(action.trainRows) training rows, holdout AUC \(auc)\(action.fitted ? "" : " (not fitted: one outcome only; base rate)")")
                    }
                    if !result.ignoredActions.isEmpty {
                        print("  ignored offer rows of actions not in the catalog: \(result.ignoredActions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
                    }
                }
            } catch {
                throw CommandFailure(error.description)
            }
            print(String(format: "wrote %@ and %@ in %.2f s", out, reportPath, seconds(ContinuousClock.now - started)))
        }

        private func write(_ text: String, to path: String) throws(TrainingError) {
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw .file(path: path, problem: "cannot write the model (\(error.localizedDescription))")
            }
        }
    }

    /// `nudge evaluate`: scores a dataset with a model file through the service's scorer; writes a report.
    struct Evaluate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a model file on a dataset (AUC, log-loss, calibration, gains) and write a report.",
            discussion: """
            A churn model (task binary) is evaluated on a churn dataset, an NBA model (task actions) on an offers \
            dataset, each row by the model of its action. Scoring goes through the service's own model loader \
            and scorer, so the figures are the service's. A model whose features were trained as the dataset \
            did not compute them (its trained.feature_definitions against the dataset's .definitions.json) is \
            refused.

            Example:
              nudge evaluate --model models/churn.json --dataset dataset.csv --after 2026-11-01
            """)

        @Option(help: "Model file.") var model: String
        @Option(help: "Dataset CSV: dataset.csv for churn, offers.csv for nba.") var dataset: String
        @Option(help: "Only rows later than this date or time (e.g. the holdout period).") var after: String?
        @Option(help: "Report to write (default: <dataset>.<model name>.report.md).") var report: String?
        @Option(help: "Also write each scored row's probability here (CSV: customer_id,time,label,probability).") var scoresOut: String?

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: model) else {
                throw CommandFailure("\(model): cannot read the model file")
            }
            var afterMillis: Int64?
            if let after {
                guard let millis = DurationText.parseInstant(after) else {
                    throw ValidationError(TrainingError.option(name: "after", value: after, expected: "a date such as 2026-11-01").description)
                }
                afterMillis = millis
            }
            let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            let isNBA = root?["task"] as? String == "actions"
            do {
                let table = try LabeledTable.read(path: dataset, kind: isNBA ? .offers : .churn)
                // The model's features as trained against the dataset's as computed, when both are recorded.
                if let recorded = (root?["trained"] as? [String: Any])?["feature_definitions"] as? [String: String] {
                    try DatasetDefinitions.read(beside: dataset)?.check(model: recorded, modelPath: model, dataset: dataset)
                }
                let result = try ModelEvaluator.evaluate(model: data, file: model, table: table, after: afterMillis)
                let base = (model as NSString).lastPathComponent.replacingOccurrences(of: ".json", with: "")
                let reportPath = report ?? "\(dataset).\(base).report.md"
                try ModelReport.evaluation(result, modelPath: model, dataset: dataset, after: after).write(to: reportPath)
                if let scoresOut {
                    var csv = "customer_id,time,label,probability\n"
                    for (k, i) in result.rows.enumerated() {
                        csv += "\(table.ids[i]),\(DurationText.format(millis: table.times[i])),\(Int(table.labels[i])),\(result.probabilities[k])\n"
                    }
                    try DatasetCSV.write(csv, to: scoresOut)
                }
                let e = result.evaluation
                print("\(result.identity) on \(dataset): \(e.count) rows, base rate \(String(format: "%.4f", e.baseRate)), AUC \(e.auc.map { String(format: "%.6f", $0) } ?? "-"), log-loss \(String(format: "%.6f", e.logLoss))")
                for (id, evaluation) in result.byAction {
                    print("  \(id): \(evaluation.count) rows, AUC \(evaluation.auc.map { String(format: "%.4f", $0) } ?? "-"), log-loss \(String(format: "%.4f", evaluation.logLoss))")
                }
                print("wrote \(reportPath)")
            } catch {
                throw CommandFailure(error.description)
            }
        }
    }
}
