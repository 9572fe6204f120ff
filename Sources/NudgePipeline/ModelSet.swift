import Foundation
import NudgeDecisions
import NudgeFeatures
import NudgeModels

/// The models and policy that decide, loaded and validated together against the feature schema.
public struct ModelSet: Sendable {
    /// Churn model.
    public let churn: ChurnModel
    /// Next-best-action model.
    public let nba: NBAModel
    /// Contact caps and cooldowns.
    public let policy: ContactPolicy

    /// Wraps already-loaded models.
    public init(churn: ChurnModel, nba: NBAModel, policy: ContactPolicy = .default) {
        self.churn = churn
        self.nba = nba
        self.policy = policy
    }

    /// Loads `churn.json` and `nba.json` from a directory, validated against the features' names.
    public static func load(directory: String, features: FeatureSet, policy: ContactPolicy = .default) throws -> ModelSet {
        let schema = FeatureSchema(names: features.names)
        func read(_ name: String) throws -> Data {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ModelFileError(file: path, field: "(file)", problem: "cannot read the file; is --models pointing at the models/ directory?")
            }
            return data
        }
        let churnPath = (directory as NSString).appendingPathComponent("churn.json")
        let nbaPath = (directory as NSString).appendingPathComponent("nba.json")
        let churn = try ModelFile.loadChurn(read("churn.json"), file: churnPath, schema: schema)
        let nba = try ModelFile.loadNBA(read("nba.json"), file: nbaPath, schema: schema)
        return ModelSet(churn: churn, nba: nba, policy: policy)
    }

    /// A decider with its own scratch memory (one per shard thread).
    func makeDecider() -> Decider { Decider(churn: churn, nba: nba, policy: policy) }

    /// Loaded versions, as published in metrics (`name@version`).
    public var versions: [String: String] { ["churn": churn.identity.description, "nba": nba.identity.description] }
}
