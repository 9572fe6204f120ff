import Foundation
import NudgeModels

/// Shared inputs for model tests: a small schema and valid model documents that each test
/// mutates into the case it needs.
enum Fixture {
    /// Positions: days_since_last_order 0, views_24h 1, orders_90d 2, tickets_open 3,
    /// complaints_30d 4, cart_items 5.
    static let schema = FeatureSchema(names: ["days_since_last_order", "views_24h", "orders_90d",
                                              "tickets_open", "complaints_30d", "cart_items"])

    /// The contract's churn example.
    static func churn() -> [String: Any] {
        ["format": "nba-logistic/1", "name": "churn", "version": "2026-11-20.1", "task": "binary",
         "features": ["orders_90d", "days_since_last_order"],
         "standardize": ["mean": [1.2, 14.0], "scale": [1.1, 12.5]],
         "intercept": -1.31, "weights": [-0.8, 1.12],
         "trained": ["at": "2026-11-20T04:00:00Z", "rows": 182311, "auc": 0.83, "logloss": 0.41, "trainer": "sklearn"]]
    }

    static func nba() -> [String: Any] {
        ["format": "nba-logistic/1", "name": "nba", "version": "2026-11-20.1", "task": "actions",
         "features": ["orders_90d", "days_since_last_order"],
         "standardize": ["mean": [1.2, 14.0], "scale": [1.1, 12.5]],
         "actions": [
            ["id": "retention_offer", "intercept": -1.0, "weights": [0.5, 0.5], "value": 15.0,
             "channels": ["email", "sms"],
             "eligibility": [["feature": "churn_probability", "op": ">=", "value": 0.4]]],
            ["id": "promo_discount", "intercept": -2.0, "weights": [0.1, 0.2], "value": 6.0,
             "channels": ["push"],
             "eligibility": [["feature": "tickets_open", "op": "==", "value": 0]]],
            ["id": "service_recovery_call", "intercept": -1.5, "weights": [0.0, 0.3], "value": 20.0,
             "channels": ["call_center"],
             "eligibility": [["any": [["feature": "tickets_open", "op": ">=", "value": 1],
                                      ["feature": "complaints_30d", "op": ">=", "value": 1]]]]],
         ]]
    }

    /// Serializes `document`; a string value `"RAW:text"` becomes the bare token `text`, so
    /// that tests can write what JSONSerialization would not (`1e999`, `NaN`, duplicate keys).
    static func data(_ document: Any) -> Data {
        let json = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data()
        let text = String(decoding: json, as: UTF8.self)
            .replacingOccurrences(of: "\"RAW:(.*?)\"", with: "$1", options: .regularExpression)
        return Data(text.utf8)
    }

    static func loadChurn(_ document: [String: Any]) throws(ModelFileError) -> ChurnModel {
        try ModelFile.loadChurn(data(document), file: "churn.json", schema: schema)
    }

    static func loadNBA(_ document: [String: Any]) throws(ModelFileError) -> NBAModel {
        try ModelFile.loadNBA(data(document), file: "nba.json", schema: schema)
    }

    /// Edits action `i` of an NBA document in place.
    static func editAction(_ document: inout [String: Any], _ i: Int, _ edit: (inout [String: Any]) -> Void) {
        var actions = document["actions"] as? [[String: Any]] ?? []
        guard i < actions.count else { return }
        edit(&actions[i])
        document["actions"] = actions
    }

    /// Edits `standardize` of a document in place.
    static func editStandardize(_ document: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var standardize = document["standardize"] as? [String: Any] ?? [:]
        edit(&standardize)
        document["standardize"] = standardize
    }

    /// The repository's models/ directory (this file is Tests/NudgeModelsTests/Fixtures.swift).
    static func starterModel(_ name: String) throws -> Data {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return try Data(contentsOf: root.appendingPathComponent("models").appendingPathComponent(name))
    }

    /// The service's feature schema: the names in models/features.json, in its order (the starter models
    /// are trained on that file).
    static let serviceSchema: FeatureSchema = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("models").appendingPathComponent("features.json")
        let document = (try? Data(contentsOf: file)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let names = (document?["features"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        return FeatureSchema(names: names)
    }()
}
