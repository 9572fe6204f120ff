import Foundation
import NudgeJSON
import NudgeModels

/// What the trainer records in a model file's `trained` block. The service reads `at`, `rows`, `auc` and
/// `logloss`; the rest is for people and ignored by the loader.
public struct TrainedBlock: Sendable {
    /// When the model was trained, ISO-8601.
    public var at: String
    /// Training rows.
    public var rows: Int
    /// Evaluation rows (the holdout, or the training rows when there is no holdout).
    public var evaluatedRows: Int
    /// `holdout` or `train`: where `auc` and `logloss` come from.
    public var evaluatedOn: String
    /// First time (cutoff or delivery) in the holdout, when there is one.
    public var holdoutFrom: String?
    /// The evaluation.
    public var evaluation: BinaryEvaluation
    /// AUC on the training rows.
    public var trainAUC: Double?
    /// λ.
    public var l2: Double
    /// Newton iterations (the largest over actions for an NBA model).
    public var iterations: Int
    /// Whether every fit converged.
    public var converged: Bool
    /// What each of the model's features computed (``FeatureDefinition/signature``), in the model's order:
    /// written under `feature_definitions`, which the service compares with its feature file.
    public var featureDefinitions: [(name: String, definition: String)] = []

    /// Creates a block.
    public init(at: String, rows: Int, evaluatedRows: Int, evaluatedOn: String, holdoutFrom: String?, evaluation: BinaryEvaluation,
                trainAUC: Double?, l2: Double, iterations: Int, converged: Bool) {
        self.at = at
        self.rows = rows
        self.evaluatedRows = evaluatedRows
        self.evaluatedOn = evaluatedOn
        self.holdoutFrom = holdoutFrom
        self.evaluation = evaluation
        self.trainAUC = trainAUC
        self.l2 = l2
        self.iterations = iterations
        self.converged = converged
    }
}

/// One fitted action of an NBA model file.
public struct FittedAction: Sendable {
    /// The catalog entry (value, channels, eligibility).
    public var catalog: CatalogAction
    /// Intercept on standardized features.
    public var intercept: Double
    /// Weights on standardized features.
    public var weights: [Double]
    /// Per-action figures, written under the action's own `trained` key (ignored by the loader).
    public var trained: TrainedBlock?
    /// False when the action had too little data and got a base-rate model (zero weights).
    public var fitted: Bool
}

/// Writes model files in the contract format (`nba-logistic/1`), readable by people (one key per line,
/// vectors on one line) and by `ModelFile`. Numbers use Swift's shortest round-trip form, so the file holds
/// exactly the fitted doubles.
public enum ModelFileWriter {
    /// A churn (`binary`) model file.
    public static func binary(name: String, version: String, features: [String], standardization: Standardization,
                              intercept: Double, weights: [Double], trained: TrainedBlock) throws(TrainingError) -> String {
        try checkFinite([intercept] + weights + standardization.mean + standardization.scale, what: name)
        var out = "{\n"
        out += header(name: name, version: version, task: "binary", features: features, standardization: standardization)
        out += "  \"intercept\": \(number(intercept)),\n"
        out += "  \"weights\": \(vector(weights)),\n"
        out += "  \"trained\": \(trainedObject(trained, indent: "  "))\n"
        out += "}\n"
        return out
    }

    /// An NBA (`actions`) model file: one shared standardization, one propensity model per action.
    public static func actions(name: String, version: String, features: [String], standardization: Standardization,
                               actions: [FittedAction], trained: TrainedBlock) throws(TrainingError) -> String {
        try checkFinite(standardization.mean + standardization.scale, what: name)
        var out = "{\n"
        out += header(name: name, version: version, task: "actions", features: features, standardization: standardization)
        out += "  \"actions\": [\n"
        for (i, action) in actions.enumerated() {
            try checkFinite([action.intercept] + action.weights, what: action.catalog.id)
            out += "    {\n"
            out += "      \"id\": \(string(action.catalog.id)),\n"
            out += "      \"intercept\": \(number(action.intercept)),\n"
            out += "      \"weights\": \(vector(action.weights)),\n"
            out += "      \"value\": \(decimal(action.catalog.value)),\n"
            out += "      \"channels\": [\(action.catalog.channels.map(string).joined(separator: ", "))],\n"
            out += "      \"eligibility\": [\(action.catalog.eligibility.map(rule).joined(separator: ", "))]"
            if let trained = action.trained {
                out += ",\n      \"fitted\": \(action.fitted),\n"
                out += "      \"trained\": \(trainedObject(trained, indent: "      "))\n"
            } else {
                out += "\n"
            }
            out += i == actions.count - 1 ? "    }\n" : "    },\n"
        }
        out += "  ],\n"
        out += "  \"trained\": \(trainedObject(trained, indent: "  "))\n"
        out += "}\n"
        return out
    }

    private static func header(name: String, version: String, task: String, features: [String],
                               standardization: Standardization) -> String {
        var out = "  \"format\": \(string(ModelFile.format)),\n"
        out += "  \"name\": \(string(name)),\n"
        out += "  \"version\": \(string(version)),\n"
        out += "  \"task\": \(string(task)),\n"
        out += "  \"features\": [\(features.map(string).joined(separator: ", "))],\n"
        out += "  \"standardize\": {\n"
        out += "    \"mean\": \(vector(standardization.mean)),\n"
        out += "    \"scale\": \(vector(standardization.scale))\n"
        out += "  },\n"
        return out
    }

    private static func trainedObject(_ t: TrainedBlock, indent: String) -> String {
        let inner = indent + "  "
        var lines: [String] = [
            "\"at\": \(string(t.at))",
            "\"rows\": \(t.rows)",
            "\"evaluated_on\": \(string(t.evaluatedOn))",
            "\"evaluated_rows\": \(t.evaluatedRows)",
        ]
        if let from = t.holdoutFrom { lines.append("\"holdout_from\": \(string(from))") }
        if let auc = t.evaluation.auc { lines.append("\"auc\": \(number(rounded(auc)))") }
        lines.append("\"logloss\": \(number(rounded(t.evaluation.logLoss)))")
        lines.append("\"brier\": \(number(rounded(t.evaluation.brier)))")
        lines.append("\"base_rate\": \(number(rounded(t.evaluation.baseRate)))")
        if let trainAUC = t.trainAUC { lines.append("\"train_auc\": \(number(rounded(trainAUC)))") }
        lines.append("\"l2\": \(number(t.l2))")
        lines.append("\"iterations\": \(t.iterations)")
        lines.append("\"converged\": \(t.converged)")
        lines.append("\"trainer\": \"nudge train (Newton/IRLS)\"")
        if !t.featureDefinitions.isEmpty {
            let entries = t.featureDefinitions.map { "\(string($0.name)): \(string($0.definition))" }
            lines.append("\"feature_definitions\": {\n\(inner)  " + entries.joined(separator: ",\n\(inner)  ") + "\n\(inner)}")
        }
        let bins = t.evaluation.calibration.map { bin in
            "{\"lower\": \(number(bin.lower)), \"upper\": \(number(bin.upper)), \"count\": \(bin.count), "
                + "\"predicted\": \(number(rounded(bin.predicted))), \"observed\": \(number(rounded(bin.observed)))}"
        }
        lines.append("\"calibration\": [\n\(inner)  " + bins.joined(separator: ",\n\(inner)  ") + "\n\(inner)]")
        return "{\n" + lines.map { inner + $0 }.joined(separator: ",\n") + "\n\(indent)}"
    }

    private static func rule(_ rule: EligibilityRuleSpec) -> String {
        switch rule {
        case .condition(let c): condition(c)
        case .any(let list): "{\"any\": [\(list.map(condition).joined(separator: ", "))]}"
        }
    }

    private static func condition(_ c: EligibilityConditionSpec) -> String {
        "{\"feature\": \(string(c.feature)), \"op\": \(string(c.op)), \"value\": \(DatasetCSV.number(c.value))}"
    }

    private static func checkFinite(_ values: [Double], what: String) throws(TrainingError) {
        guard values.allSatisfy(\.isFinite) else {
            throw .data(problem: "the fit of \(what) produced a non-finite coefficient; add L2 (--l2) or check the features")
        }
    }

    /// Summary figures keep 6 significant digits: they are for reading, not for scoring.
    private static func rounded(_ value: Double) -> Double {
        guard value != 0, value.isFinite else { return value }
        return Double(String(format: "%.6g", value)) ?? value
    }

    /// Shortest round-trip decimal (valid JSON: Swift prints `1e-05`, never `inf` here).
    static func number(_ value: Double) -> String { "\(value)" }

    /// A value people read as money: `15.0`.
    private static func decimal(_ value: Double) -> String { "\(value)" }

    static func vector(_ values: [Double]) -> String { "[" + values.map(number).joined(separator: ", ") + "]" }

    /// A JSON string literal.
    static func string(_ text: String) -> String { JSONValue.stringLiteral(text) }
}
