import Foundation
import NudgeFeatures
import NudgeModels
import NudgeTraffic
import Testing
@testable import NudgeTraining

@Suite("Written model files")
struct WrittenModelTests {
    /// The service's schema: models/features.json, which the starter models are trained on (and whose
    /// definitions they record).
    static var schema: FeatureSchema {
        get throws {
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("models/features.json").path
            let features = try FeatureSet.load(file: path)
            return FeatureSchema(names: features.names, definitions: features.signatures)
        }
    }

    /// The repository's models/ directory (this file is Tests/NudgeTrainingTests/ModelFileTests.swift).
    static func repositoryFile(_ name: String) throws -> Data {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try Data(contentsOf: root.appendingPathComponent("models").appendingPathComponent(name))
    }

    /// A synthetic table over the standard features: the label depends on two of them; cutoffs a week apart.
    static func table(rows: Int = 3_000, groups: [String] = [""], seed: UInt64 = 5) -> LabeledTable {
        var random = SplitMix64(seed: seed)
        let names = FeatureSet.standard.names
        var values: [Double] = []
        var labels: [Double] = []
        var times: [Int64] = []
        var rowGroups: [String] = []
        for i in 0..<rows {
            let row = names.indices.map { j in j == 9 ? 0 : abs(random.normal()) * Double(j + 1) }  // refunds_90d constant
            values.append(contentsOf: row)
            let z = -1 + 0.4 * row[6] / 7 - 0.3 * row[4] / 5 + (i % 2 == 0 ? 0.5 : -0.5) * row[11] / 12
            labels.append(Double.random(in: 0..<1, using: &random) < 1 / (1 + exp(-z)) ? 1 : 0)
            times.append(Time.t0 + Int64(i % 5) * 7 * Time.day)
            rowGroups.append(groups[i % groups.count])
        }
        return LabeledTable(featureNames: names, values: values, labels: labels, times: times, groups: rowGroups,
                            ids: (0..<rows).map { "c-\($0)" })
    }

    @Test func churnFileLoadsAndScoresAsTheTrainerDoes() throws {
        let table = Self.table()
        var options = TrainingOptions(name: "churn", version: "2026-11-23.1", trainedAt: "2026-11-23T12:00:00.000Z")
        options.l2 = 1
        let result = try ChurnTrainer.train(table, options: options)
        let model = try ModelFile.loadChurn(Data(result.json.utf8), file: "churn.json", schema: try Self.schema)
        #expect(model.identity.description == "churn@2026-11-23.1")
        #expect(model.trained?.rows == result.split.train.count)
        #expect(model.trained?.rows == 2_400)  // the last of five weekly cutoffs is held out
        #expect(model.trained?.at == "2026-11-23T12:00:00.000Z")
        let auc = try #require(model.trained?.auc)
        #expect(abs(auc - (result.holdoutEvaluation?.auc ?? 0)) < 1e-6)
        #expect(model.scorer.weights == result.fit.weights)
        #expect(model.scorer.mean == result.standardization.mean)
        #expect(model.scorer.weights[9] == 0)  // the constant feature
        // The service's scorer gives the trainer's probabilities, bit for bit.
        table.values.withUnsafeBufferPointer { all in
            for i in [0, 17, 2_999] {
                let row = UnsafeBufferPointer(rebasing: all[(i * 14)..<((i + 1) * 14)])
                let expected = ModelScoring.probability(table.row(i), standardization: result.standardization,
                                                        intercept: result.fit.intercept, weights: result.fit.weights)
                #expect(model.scorer.probability(row) == expected)
            }
        }
    }

    @Test func nbaFileKeepsTheCatalogAndLoads() throws {
        let catalog = try ActionCatalog.parse(Self.repositoryFile("actions.json"), path: "models/actions.json")
        let ids = catalog.actions.map(\.id)
        #expect(ids == ["retention_offer", "service_recovery_call", "cart_reminder", "cross_sell_accessory", "promo_discount"])
        // Offers of every action plus one unknown action; promo_discount gets only negatives.
        var table = Self.table(rows: 6_000, groups: ids + ["legacy_offer"])
        for i in 0..<table.count where table.groups[i] == "promo_discount" { table.labels[i] = 0 }
        let options = TrainingOptions(name: "nba", version: "2026-11-23.1", trainedAt: "2026-11-23T12:00:00.000Z")
        let result = try NBATrainer.train(table, catalog: catalog, options: options)
        #expect(result.ignoredActions == ["legacy_offer": 1_000])
        #expect(result.actions.map(\.fitted) == [true, true, true, true, false])
        let promo = try #require(result.actions.last)
        #expect(promo.weights.allSatisfy { $0 == 0 })
        #expect(abs(promo.intercept - log(0.5 / (Double(promo.trainRows) + 0.5))) < 1e-12)

        let model = try ModelFile.loadNBA(Data(result.json.utf8), file: "nba.json", schema: try Self.schema)
        #expect(model.identity.description == "nba@2026-11-23.1")
        #expect(model.actions.map(\.id) == ids)
        #expect(model.actions.map(\.value) == [15, 20, 5, 8, 6])
        #expect(model.actions.map(\.channels) == [["email", "sms", "call_center"], ["call_center"], ["push", "email", "app"],
                                                  ["web", "app", "email"], ["email", "push", "sms"]])
        #expect(model.actions.map { $0.eligibility.map(\.description) } == [
            ["churn_probability >= 0.35"],
            ["tickets_open >= 1 or complaints_30d >= 1"],
            ["cart_items >= 1", "tickets_open == 0"],
            ["orders_30d >= 1", "tickets_open == 0", "complaints_30d == 0"],
            ["tickets_open == 0", "complaints_30d == 0"],
        ])
        for (action, fitted) in zip(model.actions, result.actions) {
            #expect(action.scorer.weights == fitted.weights)
            #expect(action.scorer.mean == result.standardization.mean)
        }
        #expect(model.trained?.rows == result.split.train.count)
    }

    @Test func evaluatorScoresThroughTheServiceLoader() throws {
        let table = Self.table()
        let options = TrainingOptions(name: "churn", version: "t.1", trainedAt: "2026-11-23T12:00:00.000Z")
        let result = try ChurnTrainer.train(table, options: options)
        let after = try #require(result.split.holdoutFromMillis) - 1
        let evaluated = try ModelEvaluator.evaluate(model: Data(result.json.utf8), file: "churn.json", table: table, after: after)
        #expect(evaluated.rows == result.split.holdout)
        #expect(evaluated.evaluation == result.holdoutEvaluation)
        #expect(evaluated.identity == "churn@t.1")
    }

    @Test func catalogErrorsNameTheField() {
        func parse(_ text: String) throws(TrainingError) -> ActionCatalog {
            try ActionCatalog.parse(Data(text.utf8), path: "actions.json")
        }
        let duplicate = #"{"actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[]},{"id":"a","value":1,"channels":["web"],"eligibility":[]}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[1].id", problem: "'a' is listed twice; ids must be unique")) {
            try parse(duplicate)
        }
        let channel = #"{"actions":[{"id":"a","value":1,"channels":["fax"],"eligibility":[]}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[0].channels",
                                              problem: "'fax' is not a channel; use web, app, store, call_center, email, sms, push, social, partner")) {
            try parse(channel)
        }
        let op = #"{"actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[{"any":[{"feature":"x","op":"=~","value":1}]}]}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[0].eligibility[0]",
                                              problem: "operator '=~' is not one of < <= > >= == !=")) {
            try parse(op)
        }
        // Keys the format does not name: decoding would drop them, and what they meant with them.
        let beside = #"{"actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[{"any":[{"feature":"x","op":">","value":1}],"feature":"y"}]}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[0].eligibility[0].feature",
                                              problem: "is not a key here; a rule is {\"any\":[...]} or one condition {feature, op, value}, not both")) {
            try parse(beside)
        }
        let extra = #"{"actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[{"feature":"x","op":">","value":1,"unless":"vip"}]}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[0].eligibility[0].unless",
                                              problem: "is not a key here; a condition is {feature, op, value}")) {
            try parse(extra)
        }
        let action = #"{"actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[],"prority":2}]}"#
        #expect(throws: TrainingError.catalog(path: "actions.json", field: "actions[0].prority",
                                              problem: "is not a key here; an action is {id, value, channels, eligibility}")) {
            try parse(action)
        }
        #expect(throws: Never.self) { try parse(#"{"notes":"why","actions":[{"id":"a","value":1,"channels":["web"],"eligibility":[]}]}"#) }
    }

    /// The trainer records what each feature computed; the service refuses the file when its feature file
    /// computes one otherwise under the same name (a window changed, say), which names alone would let by.
    @Test func aWrittenModelRecordsWhatItsFeaturesComputed() throws {
        let result = try ChurnTrainer.train(Self.table(), options: TrainingOptions(name: "churn", version: "v1", trainedAt: "2026-12-01T00:00:00Z"))
        let json = try JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any]
        let recorded = (json?["trained"] as? [String: Any])?["feature_definitions"] as? [String: String]
        #expect(recorded == Dictionary(uniqueKeysWithValues: zip(FeatureSet.standard.names, FeatureSet.standard.signatures)))
        let redefined = try FeatureSet(FeatureSet.standard.definitions.map { d in
            d.name != "views_24h" ? d : FeatureDefinition(name: d.name, filter: d.filter, aggregation: d.aggregation, window: .days(7),
                                                         missingValue: d.missingValue, cap: d.cap)
        })
        do {
            _ = try ModelFile.loadChurn(Data(result.json.utf8), file: "churn.json",
                                        schema: FeatureSchema(names: redefined.names, definitions: redefined.signatures))
            Issue.record("a model trained on views_24h over a day was served views over a week")
        } catch {
            #expect(error.field == "trained.feature_definitions.views_24h")
        }
    }

    /// `nudge dataset`'s definitions file round-trips; a feature file computing a column otherwise is refused
    /// before training, naming the feature and both definitions; a model trained on other definitions is
    /// refused for evaluation on the dataset; a malformed file names its field.
    @Test func aDatasetsDefinitionsCatchARedefinedFeature() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-definitions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataset = directory.appendingPathComponent("dataset.csv").path
        let built = DatasetDefinitions(features: .standard, featureFile: "models/features.json")
        #expect(try DatasetDefinitions.read(beside: dataset) == nil, "no file: nothing to check")
        try built.write(beside: dataset)
        #expect(FileManager.default.fileExists(atPath: dataset + ".definitions.json"))
        let read = try #require(try DatasetDefinitions.read(beside: dataset))
        #expect(read == built)
        #expect(read.signatures["views_24h"] == FeatureSet.standard.signatures[try #require(FeatureSet.standard.index(of: "views_24h"))])

        // The same file passes; one with views_24h over a week is refused.
        try read.check(FeatureSet.standard.names, against: .standard, featureFile: "models/features.json", dataset: dataset)
        let redefined = try FeatureSet(FeatureSet.standard.definitions.map { d in
            d.name != "views_24h" ? d : FeatureDefinition(name: d.name, filter: d.filter, aggregation: d.aggregation, window: .days(7),
                                                         missingValue: d.missingValue, cap: d.cap)
        })
        do {
            try read.check(FeatureSet.standard.names, against: redefined, featureFile: "edited.json", dataset: dataset)
            Issue.record("a dataset of views over a day trained a model served views over a week")
        } catch {
            let message = error.description
            #expect(message.hasPrefix("\(dataset): feature views_24h was computed as `"), "\(message)")
            #expect(message.contains("over 7d") && message.contains("edited.json defines it as"), "\(message)")
        }
        // Columns the check is not asked about are not judged.
        try read.check(["orders_30d"], against: redefined, featureFile: "edited.json", dataset: dataset)

        // Evaluation: a model recording the dataset's definitions passes; one trained on the week does not.
        try read.check(model: built.signatures, modelPath: "churn.json", dataset: dataset)
        let weekModel = DatasetDefinitions(features: redefined, featureFile: "edited.json").signatures
        #expect(throws: TrainingError.self) { try read.check(model: weekModel, modelPath: "churn.json", dataset: dataset) }

        try Data(#"{"feature_file": "f.json", "feature_definitions": {"views_24h": 3}}"#.utf8)
            .write(to: URL(fileURLWithPath: dataset + ".definitions.json"))
        #expect(throws: TrainingError.file(path: dataset + ".definitions.json",
                                           problem: "feature_definitions.views_24h: not a string; rebuild it with `nudge dataset` or delete it")) {
            try DatasetDefinitions.read(beside: dataset)
        }
    }

    @Test func theShippedStarterModelsLoad() throws {
        let churn = try ModelFile.loadChurn(Self.repositoryFile("churn.json"), file: "churn.json", schema: try Self.schema)
        let nba = try ModelFile.loadNBA(Self.repositoryFile("nba.json"), file: "nba.json", schema: try Self.schema)
        #expect(churn.identity.name == "churn")
        #expect(nba.actions.count == 5)
    }
}
