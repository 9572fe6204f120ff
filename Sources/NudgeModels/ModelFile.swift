import Foundation
import NudgeJSON

/// Reads and validates model files (contract "Model files"). Loading is off the hot path;
/// everything that scoring relies on is checked here, once, and a refused file leaves the
/// running model in place (the caller simply keeps the old value).
///
/// Both kinds share the header (`format`, `name`, `version`, `task`), `features` and
/// `standardize` {`mean`, `scale`}. A churn file (`"task":"binary"`) has `intercept` and
/// `weights`; an NBA file (`"task":"actions"`) has `actions`, each
/// `{id, intercept, weights, value, channels, eligibility}`. `trained` is optional in both, and an action
/// may carry `fitted` and `trained`: those hold whatever metadata a trainer adds. Any other unknown key
/// is refused by name, as a misspelt one would silently drop what it meant.
public enum ModelFile {
    /// The only format this service reads.
    public static let format = "nba-logistic/1"

    /// Channel names an action may list: the contract's touchpoints (`other` is not one).
    public static let channelNames = ["web", "app", "store", "call_center", "email", "sms", "push", "social", "partner"]

    /// Most actions an NBA model may hold: contact history stores an action index in a byte.
    public static let maxActions = 255

    /// Loads a churn model (`"task":"binary"`) and binds it to `schema`.
    public static func loadChurn(_ data: Data, file: String, schema: FeatureSchema) throws(ModelFileError) -> ChurnModel {
        let root = try document(data, file: file)
        let identity = try header(root, task: "binary", other: "actions", otherName: "an NBA model")
        try root.refuseUnknownKeys(["format", "name", "version", "task", "features", "standardize", "intercept", "weights", "trained"],
                                   metadata: Self.metadataHint)
        let features = try SharedFeatures(root, schema: schema)
        let scorer = try features.scorer(root)
        return ChurnModel(identity: identity, scorer: scorer, trained: try trainingSummary(root))
    }

    /// Loads an NBA model (`"task":"actions"`) and binds it to `schema`.
    public static func loadNBA(_ data: Data, file: String, schema: FeatureSchema) throws(ModelFileError) -> NBAModel {
        let root = try document(data, file: file)
        let identity = try header(root, task: "actions", other: "binary", otherName: "a churn (binary) model")
        try root.refuseUnknownKeys(["format", "name", "version", "task", "features", "standardize", "actions", "trained"],
                                   metadata: Self.metadataHint)
        let features = try SharedFeatures(root, schema: schema)
        let actionsNode = try root.required("actions", "list the actions, each {id, intercept, weights, value, channels, eligibility}")
        let nodes = try actionsNode.array()
        guard !nodes.isEmpty else { throw actionsNode.refuse("is empty; list at least one action") }
        guard nodes.count <= maxActions else {
            throw actionsNode.refuse("has \(nodes.count) actions; at most \(maxActions) are supported")
        }
        var actions: [ActionModel] = []
        var firstUse: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            let action = try self.action(node, features: features, schema: schema)
            if let earlier = firstUse[action.id] {
                throw ModelFileError(file: file, field: "\(node.path).id",
                                     problem: "'\(action.id)' is already the id of actions[\(earlier)]; action ids must be unique")
            }
            firstUse[action.id] = i
            actions.append(action)
        }
        return NBAModel(identity: identity, actions: actions, trained: try trainingSummary(root))
    }

    // MARK: - Parts

    /// Where a trainer's own keys go.
    private static let metadataHint = "a trainer's own metadata goes under \"trained\""

    /// The document's root object. The parser keeps repeated keys and non-finite numbers so that the
    /// validation below refuses them by path; only syntax is refused here, by line and column.
    private static func document(_ data: Data, file: String) throws(ModelFileError) -> JSONObjectNode {
        let document: JSONDocument
        do {
            document = try JSONDocument(parsing: [UInt8](data))
        } catch {
            throw ModelFileError(file: file, field: "", problem: "is not valid JSON: \(error)")
        }
        return try JSONNode(value: document.root, path: "", file: file).object()
    }

    private static func header(_ root: JSONObjectNode, task: String, other: String, otherName: String) throws(ModelFileError) -> ModelIdentity {
        let formatNode = try root.required("format", "add \"format\":\"\(format)\"")
        let found = try formatNode.string()
        guard found == format else {
            throw formatNode.refuse("is '\(found)'; this service reads '\(format)' (export the model in that format)")
        }
        let nameNode = try root.required("name", "name the model, e.g. \"churn\"")
        let name = try nameNode.string()
        guard !name.isEmpty, !name.contains("@") else {
            throw nameNode.refuse("is '\(name)'; give a non-empty name without '@' (identities read name@version)")
        }
        let versionNode = try root.required("version", "give the model a version, e.g. \"2026-11-20.1\"")
        let version = try versionNode.string()
        guard !version.isEmpty else { throw versionNode.refuse("is empty; give the model a version, e.g. \"2026-11-20.1\"") }
        let taskNode = try root.required("task", "add \"task\":\"\(task)\"")
        let foundTask = try taskNode.string()
        guard foundTask == task else {
            let hint = foundTask == other ? "this is \(otherName) file; load it as that model" : "set it to '\(task)'"
            throw taskNode.refuse("is '\(foundTask)' but '\(task)' is expected here; \(hint)")
        }
        return ModelIdentity(name: name, version: version)
    }

    private static func trainingSummary(_ root: JSONObjectNode) throws(ModelFileError) -> TrainingSummary? {
        guard let node = root.optional("trained") else { return nil }
        let object = try node.object()
        return TrainingSummary(at: try object.optional("at")?.string(),
                               rows: try object.optional("rows")?.integer(),
                               auc: try object.optional("auc")?.number(),
                               logloss: try object.optional("logloss")?.number())
    }

    /// `features` and `standardize`, validated and bound to the schema.
    private struct SharedFeatures {
        let names: [String]
        let indices: [Int]
        let mean: [Double]
        let scale: [Double]

        init(_ root: JSONObjectNode, schema: FeatureSchema) throws(ModelFileError) {
            let featuresNode = try root.required("features", "list the model's feature names, in weight order")
            var names: [String] = []
            var indices: [Int] = []
            for node in try featuresNode.array() {
                let name = try node.string()
                if let earlier = names.firstIndex(of: name) {
                    throw node.refuse("'\(name)' is listed twice (also \(featuresNode.path)[\(earlier)]); list each feature once")
                }
                guard let index = schema.index(of: name) else {
                    throw node.refuse(ModelFile.unknownFeature(name, schema))
                }
                names.append(name)
                indices.append(index)
            }
            guard !names.isEmpty else { throw featuresNode.refuse("is empty; list at least one feature") }
            // What each feature computed when the model was trained, if the trainer recorded it: served under
            // the same name with another definition, the model would score values it never learnt.
            if let recorded = try root.optional("trained")?.object().optional("feature_definitions")?.object() {
                for name in names {
                    guard let node = recorded.optional(name), let served = schema.definition(of: name) else { continue }
                    let trained = try node.string()
                    guard trained == served else {
                        throw node.refuse("""
                            '\(name)' was trained as "\(trained)" but the feature file defines it as "\(served)": \
                            retrain on a dataset built with this feature file, or serve with the one the model was trained on
                            """)
                    }
                }
            }

            let standardize = try root.required("standardize", "add {\"mean\":[...],\"scale\":[...]}, one entry per feature").object()
            try standardize.refuseUnknownKeys(["mean", "scale"], metadata: ModelFile.metadataHint)
            let meanNode = try standardize.required("mean", "give one mean per feature")
            let scaleNode = try standardize.required("scale", "give one scale per feature")
            mean = try ModelFile.vector(meanNode, count: names.count, of: "mean")
            scale = try ModelFile.vector(scaleNode, count: names.count, of: "scale")
            for (i, s) in scale.enumerated() where s <= 0 {
                throw ModelFileError(file: root.file, field: "\(scaleNode.path)[\(i)]",
                                     problem: "is \(s); a scale must be positive (use 1 for a feature that was not standardized)")
            }
            self.names = names
            self.indices = indices
        }

        /// The scorer described by `intercept` and `weights` of `object`.
        func scorer(_ object: JSONObjectNode) throws(ModelFileError) -> LogisticScorer {
            let intercept = try object.required("intercept", "give the fitted intercept").number()
            let weights = try ModelFile.vector(object.required("weights", "give one weight per feature"),
                                               count: names.count, of: "weight")
            return LogisticScorer(featureNames: names, featureIndices: indices, mean: mean, scale: scale,
                                  intercept: intercept, weights: weights)
        }
    }

    /// An array of finite numbers with exactly one entry per feature.
    private static func vector(_ node: JSONNode, count: Int, of what: String) throws(ModelFileError) -> [Double] {
        let values = try node.numbers()
        guard values.count == count else {
            throw node.refuse("has \(values.count) values but features has \(count); give one \(what) per feature, in the order of features")
        }
        return values
    }

    static func unknownFeature(_ name: String, _ schema: FeatureSchema) -> String {
        "feature '\(name)' is not defined in the feature schema; defined: \(schema.names.joined(separator: ", "))"
    }

    private static func action(_ node: JSONNode, features: SharedFeatures, schema: FeatureSchema) throws(ModelFileError) -> ActionModel {
        let object = try node.object()
        try object.refuseUnknownKeys(["id", "intercept", "weights", "value", "channels", "eligibility", "fitted", "trained"],
                                     metadata: "an action's metadata goes under \"trained\" or \"fitted\"")
        let idNode = try object.required("id", "give the action a stable id, e.g. \"retention_offer\"")
        let id = try idNode.string()
        guard !id.isEmpty else { throw idNode.refuse("is empty; give the action a stable id, e.g. \"retention_offer\"") }
        guard id != "none" else { throw idNode.refuse("'none' is reserved for the decision to stay silent; choose another id") }
        let scorer = try features.scorer(object)
        let valueNode = try object.required("value", "give the business value of a take-up (a number >= 0)")
        let value = try valueNode.number()
        guard value >= 0 else { throw valueNode.refuse("is \(value); a value must be >= 0") }

        let channelsNode = try object.required("channels", "list the channels it can be delivered on, e.g. [\"email\"]")
        var channels: [String] = []
        for channelNode in try channelsNode.array() {
            let channel = try channelNode.string()
            guard channelNames.contains(channel) else {
                throw channelNode.refuse("'\(channel)' is not a channel; use one of \(channelNames.joined(separator: ", "))")
            }
            guard !channels.contains(channel) else { throw channelNode.refuse("'\(channel)' is listed twice; list each channel once") }
            channels.append(channel)
        }
        guard !channels.isEmpty else { throw channelsNode.refuse("is empty; list at least one channel") }

        var rules: [EligibilityRule] = []
        if let eligibilityNode = try object.optionalNonNull("eligibility", "list the rules that must all hold, or [] for none") {
            for ruleNode in try eligibilityNode.array() {
                rules.append(try rule(ruleNode, schema: schema))
            }
        }
        return ActionModel(id: id, scorer: scorer, value: value, channels: channels, eligibility: rules)
    }

    private static func rule(_ node: JSONNode, schema: FeatureSchema) throws(ModelFileError) -> EligibilityRule {
        let object = try node.object()
        guard let anyNode = try object.optionalNonNull("any", "list the conditions of which one must hold") else {
            return EligibilityRule(anyOf: [try condition(object, schema: schema)])
        }
        // A condition beside "any" would be dropped: say which the rule means.
        try object.refuseUnknownKeys(["any"], metadata: "a rule is {\"any\":[...]} or one condition {feature, op, value}, not both")
        var conditions: [EligibilityCondition] = []
        for conditionNode in try anyNode.array() {
            conditions.append(try condition(conditionNode.object(), schema: schema))
        }
        guard !conditions.isEmpty else { throw anyNode.refuse("is empty; list at least one condition") }
        return EligibilityRule(anyOf: conditions)
    }

    private static func condition(_ object: JSONObjectNode, schema: FeatureSchema) throws(ModelFileError) -> EligibilityCondition {
        try object.refuseUnknownKeys(["feature", "op", "value"], metadata: "a condition is {feature, op, value}")
        let featureNode = try object.required("feature", "name the feature the rule reads (or \"churn_probability\")")
        let feature = try featureNode.string()
        let subject: EligibilityCondition.Subject
        if feature == EligibilityCondition.churnProbabilityName {
            subject = .churnProbability
        } else if let index = schema.index(of: feature) {
            subject = .feature(index: index)
        } else {
            throw featureNode.refuse(unknownFeature(feature, schema) + ", and churn_probability")
        }
        let opNode = try object.required("op", "give a comparison: < <= > >= == !=")
        let opText = try opNode.string()
        guard let op = ComparisonOperator(rawValue: opText) else {
            throw opNode.refuse("'\(opText)' is not a comparison; use one of < <= > >= == !=")
        }
        let value = try object.required("value", "give the number to compare with").number()
        return EligibilityCondition(feature: feature, subject: subject, op: op, value: value)
    }
}
