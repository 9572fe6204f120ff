import Foundation
import NudgeModels

/// A condition of an eligibility rule, as the model file writes it: `{"feature":"tickets_open","op":"==","value":0}`.
public struct EligibilityConditionSpec: Sendable, Equatable, Codable {
    /// A feature name, or `churn_probability`.
    public var feature: String
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    public var op: String
    /// The constant compared with.
    public var value: Double

    /// Creates a condition.
    public init(feature: String, op: String, value: Double) {
        self.feature = feature
        self.op = op
        self.value = value
    }
}

/// An eligibility rule: one condition, or `{"any":[…]}` when one of several is enough.
public enum EligibilityRuleSpec: Sendable, Equatable, Codable {
    /// One condition.
    case condition(EligibilityConditionSpec)
    /// Any of these conditions.
    case any([EligibilityConditionSpec])

    private enum Keys: String, CodingKey { case any }

    /// Reads either shape.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        if container.contains(.any) {
            self = .any(try container.decode([EligibilityConditionSpec].self, forKey: .any))
        } else {
            self = .condition(try EligibilityConditionSpec(from: decoder))
        }
    }

    /// Writes the shape it is.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .condition(let condition): try condition.encode(to: encoder)
        case .any(let conditions):
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(conditions, forKey: .any)
        }
    }
}

/// One action the NBA model may recommend, with its business side: value, channels and eligibility.
public struct CatalogAction: Sendable, Equatable, Codable {
    /// Stable action id, the `properties.action` of outcome events.
    public var id: String
    /// Business value of a take-up (priority = propensity × value).
    public var value: Double
    /// Channels, in order of preference.
    public var channels: [String]
    /// Rules that must all hold.
    public var eligibility: [EligibilityRuleSpec]

    /// Creates an action.
    public init(id: String, value: Double, channels: [String], eligibility: [EligibilityRuleSpec]) {
        self.id = id
        self.value = value
        self.channels = channels
        self.eligibility = eligibility
    }
}

/// The action catalog (`models/actions.json`): what the business offers, separate from what the data says
/// about take-up. `nudge train --task nba` fits a propensity model per catalog action and copies the rest.
///
/// ```json
/// {"actions":[{"id":"cart_reminder","value":5.0,"channels":["push","email","app"],
///              "eligibility":[{"feature":"cart_items","op":">=","value":1}]}]}
/// ```
public struct ActionCatalog: Sendable, Equatable, Codable {
    /// The actions, in the order the model file lists them.
    public var actions: [CatalogAction]

    /// Creates a catalog.
    public init(actions: [CatalogAction]) { self.actions = actions }

    /// Reads and checks a catalog file: ids unique and not `none`, values ≥ 0, channels and operators known.
    /// Feature names are checked when the model file is validated against the schema.
    public static func load(path: String) throws(TrainingError) -> ActionCatalog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .file(path: path, problem: "cannot read the action catalog (a relative path is from the current directory, "
                        + "\(FileManager.default.currentDirectoryPath)); pass --actions with the path of the repository's models/actions.json or your own")
        }
        return try parse(data, path: path)
    }

    /// Parses and checks catalog JSON (see ``load(path:)``).
    public static func parse(_ data: Data, path: String) throws(TrainingError) -> ActionCatalog {
        let catalog: ActionCatalog
        do {
            catalog = try JSONDecoder().decode(ActionCatalog.self, from: data)
        } catch {
            throw .catalog(path: path, field: "", problem: "is not a catalog ({\"actions\":[{id, value, channels, eligibility}]}): \(error)")
        }
        try refuseUnknownKeys(data, path: path)
        guard !catalog.actions.isEmpty else { throw .catalog(path: path, field: "actions", problem: "is empty; list at least one action") }
        var seen: Set<String> = []
        let operators = Set(ComparisonOperator.allCases.map(\.rawValue))
        for (i, action) in catalog.actions.enumerated() {
            let field = "actions[\(i)]"
            guard !action.id.isEmpty, action.id != "none" else {
                throw .catalog(path: path, field: "\(field).id", problem: "'\(action.id)' is not allowed; give a non-empty id other than 'none'")
            }
            guard seen.insert(action.id).inserted else {
                throw .catalog(path: path, field: "\(field).id", problem: "'\(action.id)' is listed twice; ids must be unique")
            }
            guard action.value >= 0, action.value.isFinite else {
                throw .catalog(path: path, field: "\(field).value", problem: "is \(action.value); give a finite value >= 0")
            }
            guard !action.channels.isEmpty else {
                throw .catalog(path: path, field: "\(field).channels", problem: "is empty; list at least one channel")
            }
            for channel in action.channels where !ModelFile.channelNames.contains(channel) {
                throw .catalog(path: path, field: "\(field).channels",
                               problem: "'\(channel)' is not a channel; use \(ModelFile.channelNames.joined(separator: ", "))")
            }
            for (r, rule) in action.eligibility.enumerated() {
                let conditions: [EligibilityConditionSpec]
                switch rule {
                case .condition(let c): conditions = [c]
                case .any(let list): conditions = list
                }
                guard !conditions.isEmpty else {
                    throw .catalog(path: path, field: "\(field).eligibility[\(r)].any", problem: "is empty; list at least one condition")
                }
                for c in conditions where !operators.contains(c.op) {
                    throw .catalog(path: path, field: "\(field).eligibility[\(r)]", problem: "operator '\(c.op)' is not one of < <= > >= == !=")
                }
            }
        }
        return catalog
    }

    /// Refuses a key the catalog format does not name, by path: decoding would drop it, and a misspelt one
    /// with it what it meant (a condition written beside `any`, its rule's check).
    private static func refuseUnknownKeys(_ data: Data, path: String) throws(TrainingError) {
        func check(_ value: Any?, _ keys: Set<String>, _ field: String, _ shape: String) throws(TrainingError) {
            guard let object = value as? [String: Any] else { return }  // a wrong type fails decoding already
            for key in object.keys.sorted() where !keys.contains(key) {
                throw .catalog(path: path, field: field.isEmpty ? key : "\(field).\(key)", problem: "is not a key here; \(shape)")
            }
        }
        let root = try? JSONSerialization.jsonObject(with: data)
        try check(root, ["actions", "notes"], "", "a catalog is {\"actions\":[...]} (and \"notes\")")
        let actions = ((root as? [String: Any])?["actions"] as? [Any]) ?? []
        for (i, action) in actions.enumerated() {
            try check(action, ["id", "value", "channels", "eligibility"], "actions[\(i)]", "an action is {id, value, channels, eligibility}")
            let rules = ((action as? [String: Any])?["eligibility"] as? [Any]) ?? []
            for (r, rule) in rules.enumerated() {
                let field = "actions[\(i)].eligibility[\(r)]"
                let condition = "a condition is {feature, op, value}"
                guard let any = (rule as? [String: Any])?["any"] else {
                    try check(rule, ["feature", "op", "value"], field, condition)
                    continue
                }
                try check(rule, ["any"], field, "a rule is {\"any\":[...]} or one condition {feature, op, value}, not both")
                for (c, inner) in ((any as? [Any]) ?? []).enumerated() { try check(inner, ["feature", "op", "value"], "\(field).any[\(c)]", condition) }
            }
        }
    }
}
