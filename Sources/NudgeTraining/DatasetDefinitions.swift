import Foundation
import NudgeFeatures
import NudgeJSON

/// What each feature column of a dataset computed: the file `nudge dataset` writes beside each CSV
/// (`<csv>.definitions.json`), so that whoever trains on the CSV (`nudge train`, the Python package) can
/// record in the model what its features were, and a feature file that now computes one of them otherwise
/// is caught before training rather than when the model is served.
///
/// ```json
/// {"written_by": "nudge dataset", "feature_file": "models/features.json",
///  "feature_definitions": {"views_24h": "count of [Product Viewed] over 1d@...", ...}}
/// ```
///
/// `feature_definitions` holds ``FeatureDefinition/signature``s, the same text a model's
/// `trained.feature_definitions` holds and the service compares.
public struct DatasetDefinitions: Sendable, Equatable {
    /// The feature file the dataset was built with (as the command was given it), or
    /// ``builtInSet`` for the built-in standard set: for messages.
    public var featureFile: String
    /// Each feature column's signature, by name.
    public var signatures: [String: String]

    /// What ``featureFile`` says when the built-in standard set was used.
    public static let builtInSet = "the built-in standard set"

    /// Definitions from their parts.
    public init(featureFile: String, signatures: [String: String]) {
        self.featureFile = featureFile
        self.signatures = signatures
    }

    /// The definitions of `features`, loaded from `featureFile`.
    public init(features: FeatureSet, featureFile: String) {
        self.init(featureFile: featureFile,
                  signatures: Dictionary(zip(features.names, features.signatures), uniquingKeysWith: { first, _ in first }))
    }

    /// The file beside the dataset at `dataset`.
    public static func path(beside dataset: String) -> String { dataset + ".definitions.json" }

    /// The file's JSON text, keys sorted (stable for diffs).
    public var json: String {
        let quoted = JSONValue.stringLiteral
        let entries = signatures.keys.sorted().map { "    \(quoted($0)): \(quoted(signatures[$0] ?? ""))" }
        return """
            {
              "written_by": "nudge dataset",
              "feature_file": \(quoted(featureFile)),
              "feature_definitions": {
            \(entries.joined(separator: ",\n"))
              }
            }

            """
    }

    /// Writes ``json`` beside the dataset at `dataset`.
    public func write(beside dataset: String) throws(TrainingError) {
        try DatasetCSV.write(json, to: Self.path(beside: dataset))
    }

    /// The definitions beside the dataset at `dataset`, or nil when there are none (a dataset from elsewhere,
    /// or from an older `nudge dataset`).
    /// - Throws: ``TrainingError/file(path:problem:)`` naming the field when the file is there but malformed.
    public static func read(beside dataset: String) throws(TrainingError) -> DatasetDefinitions? {
        let path = path(beside: dataset)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .file(path: path, problem: "not readable as JSON (\(error.localizedDescription)); rebuild it with `nudge dataset` or delete it")
        }
        guard let root = object as? [String: Any] else {
            throw .file(path: path, problem: "not a JSON object; rebuild it with `nudge dataset` or delete it")
        }
        guard let file = root["feature_file"] as? String else {
            throw .file(path: path, problem: "feature_file: missing or not a string; rebuild it with `nudge dataset` or delete it")
        }
        guard let entries = root["feature_definitions"] as? [String: Any] else {
            throw .file(path: path, problem: "feature_definitions: missing or not an object; rebuild it with `nudge dataset` or delete it")
        }
        var signatures: [String: String] = [:]
        for (name, value) in entries {
            guard let signature = value as? String else {
                throw .file(path: path, problem: "feature_definitions.\(name): not a string; rebuild it with `nudge dataset` or delete it")
            }
            signatures[name] = signature
        }
        return DatasetDefinitions(featureFile: file, signatures: signatures)
    }

    /// Refuses the first of `names` (the dataset's feature columns) that `features`, loaded from
    /// `featureFile`, defines otherwise than the dataset computed it: a model trained on the column would
    /// be served a different number under the same name.
    public func check(_ names: [String], against features: FeatureSet, featureFile: String, dataset: String) throws(TrainingError) {
        let defined = DatasetDefinitions(features: features, featureFile: featureFile).signatures
        guard let (name, computed, other) = firstDifference(names, from: defined) else { return }
        throw .file(path: dataset, problem: """
            feature \(name) was computed as `\(computed)` (\(Self.path(beside: dataset)), from \(self.featureFile)\(featureFile == self.featureFile ? " as it was then" : "")) \
            but \(featureFile) defines it as `\(other)`: train with the feature file the dataset was built with \
            (--feature-file), or rebuild the dataset with `nudge dataset` and this one
            """)
    }

    /// Refuses a model whose `trained.feature_definitions` (`recorded`) say it was trained on one of the
    /// dataset's features computed otherwise: its figures on this dataset would not be the ones it is
    /// served with.
    public func check(model recorded: [String: String], modelPath: String, dataset: String) throws(TrainingError) {
        guard let (name, computed, trained) = firstDifference(recorded.keys.sorted(), from: recorded) else { return }
        throw .file(path: modelPath, problem: """
            feature \(name) was trained as `\(trained)` but \(dataset) computed it as `\(computed)` \
            (\(Self.path(beside: dataset))): evaluate on a dataset built with the feature file the model was trained with
            """)
    }

    /// The first of `names` whose signature here differs from the one in `other` (names either lacks are
    /// skipped): the name, this signature, the other.
    private func firstDifference(_ names: [String], from other: [String: String]) -> (String, String, String)? {
        for name in names {
            if let mine = signatures[name], let theirs = other[name], mine != theirs { return (name, mine, theirs) }
        }
        return nil
    }
}
