import Foundation
import NudgeDecisions
import NudgeEvents
import NudgeModels

/// Models and vectors shared by the decision tests.
enum Fixture {
    /// The service's feature schema: the names in models/features.json, in its order (the starter models
    /// are trained on that file).
    static let schema: FeatureSchema = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("models").appendingPathComponent("features.json")
        let document = (try? Data(contentsOf: file)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let names = (document?["features"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        return FeatureSchema(names: names)
    }()

    /// A feature vector: the named values, 0 elsewhere.
    static func vector(_ values: [String: Double]) -> [Double] {
        var x = [Double](repeating: 0, count: schema.count)
        for (name, value) in values {
            if let i = schema.index(of: name) { x[i] = value }
        }
        return x
    }

    /// churn: p = sigmoid(tickets_open), so 0.5 without a ticket and 0.731059 with one.
    static let churnJSON = """
    {"format":"nba-logistic/1","name":"churn","version":"t.1","task":"binary",
     "features":["tickets_open"],"standardize":{"mean":[0],"scale":[1]},"intercept":0,"weights":[1]}
    """

    /// Four actions on standardized features [tickets_open, cart_items] (mean 0, scale 1):
    /// - 0 retention_offer: logit -0.5 + 0.5·tickets, value 10, needs churn_probability >= 0.6
    /// - 1 cart_reminder:   logit cart, value 5, needs cart_items >= 1 and tickets_open == 0
    /// - 2 promo_discount:  logit -tickets + 0.5·cart, value 20, needs tickets_open == 0 and complaints_30d == 0
    /// - 3 service_recovery_call: logit -1 + tickets, value 8, needs tickets_open >= 1 or complaints_30d >= 1
    static let nbaJSON = """
    {"format":"nba-logistic/1","name":"nba","version":"t.2","task":"actions",
     "features":["tickets_open","cart_items"],"standardize":{"mean":[0,0],"scale":[1,1]},
     "actions":[
      {"id":"retention_offer","intercept":-0.5,"weights":[0.5,0],"value":10,"channels":["email","sms","call_center"],
       "eligibility":[{"feature":"churn_probability","op":">=","value":0.6}]},
      {"id":"cart_reminder","intercept":0,"weights":[0,1],"value":5,"channels":["push","email","app"],
       "eligibility":[{"feature":"cart_items","op":">=","value":1},{"feature":"tickets_open","op":"==","value":0}]},
      {"id":"promo_discount","intercept":0,"weights":[-1,0.5],"value":20,"channels":["email","push"],
       "eligibility":[{"feature":"tickets_open","op":"==","value":0},{"feature":"complaints_30d","op":"==","value":0}]},
      {"id":"service_recovery_call","intercept":-1,"weights":[1,0],"value":8,"channels":["call_center"],
       "eligibility":[{"any":[{"feature":"tickets_open","op":">=","value":1},{"feature":"complaints_30d","op":">=","value":1}]}]}
     ]}
    """

    static func churn(_ json: String = churnJSON) throws -> ChurnModel {
        try ModelFile.loadChurn(Data(json.utf8), file: "churn.json", schema: schema)
    }

    static func nba(_ json: String = nbaJSON) throws -> NBAModel {
        try ModelFile.loadNBA(Data(json.utf8), file: "nba.json", schema: schema)
    }

    static func decider(minScore: Double = 0.01, policy: ContactPolicy = .default) throws -> Decider {
        Decider(churn: try churn(), nba: try nba(), policy: policy, minScore: minScore)
    }

    /// The repository's models/ directory (this file is Tests/NudgeDecisionsTests/Fixtures.swift).
    static func starter(_ name: String) throws -> Data {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return try Data(contentsOf: root.appendingPathComponent("models").appendingPathComponent(name))
    }

    static func starterDecider(nbaJSON: String? = nil) throws -> Decider {
        let churn = try ModelFile.loadChurn(starter("churn.json"), file: "churn.json", schema: schema)
        let nbaData = try nbaJSON.map { Data($0.utf8) } ?? starter("nba.json")
        let nba = try ModelFile.loadNBA(nbaData, file: "nba.json", schema: schema)
        return Decider(churn: churn, nba: nba, policy: .default)
    }

    /// 2026-11-23T10:15:02.120Z
    static let now: Int64 = 1_795_428_902_120
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000

    static let sigmoid1 = 0.7310585786300049
    static let sigmoid2 = 0.8807970779778823
}

extension Decider {
    /// `decide` on an array.
    func decide(_ x: [Double], last: Channel? = nil, history: ContactHistory = ContactHistory(),
                at: Int64 = Fixture.now) -> Decision {
        x.withUnsafeBufferPointer { decide(features: $0, lastChannel: last, history: history, atMillis: at) }
    }

    /// The id of the decided action, or "none".
    func actionID(_ decision: Decision) -> String {
        decision.actionIndex.map { nba.actions[$0].id } ?? "none"
    }
}
