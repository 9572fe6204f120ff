/// Which model produced a score: `churn@2026-11-20.1`.
public struct ModelIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The model's name, e.g. `churn`.
    public let name: String
    /// The model's version, e.g. `2026-11-20.1`.
    public let version: String

    /// Creates an identity.
    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }

    /// `name@version`, as recommendations and metrics report it.
    public var description: String { "\(name)@\(version)" }
}

/// What the trainer recorded about a fit. Informational; unknown keys are ignored.
public struct TrainingSummary: Sendable, Codable, Equatable {
    /// When the model was trained (ISO-8601, as written by the trainer).
    public var at: String?
    /// Number of training rows.
    public var rows: Int?
    /// Area under the ROC curve on held-out data.
    public var auc: Double?
    /// Log loss on held-out data.
    public var logloss: Double?

    /// Creates a summary; every field is optional.
    public init(at: String? = nil, rows: Int? = nil, auc: Double? = nil, logloss: Double? = nil) {
        self.at = at
        self.rows = rows
        self.auc = auc
        self.logloss = logloss
    }
}

/// The churn model (`"task":"binary"`): the probability that a customer leaves.
public struct ChurnModel: Sendable {
    /// Name and version.
    public let identity: ModelIdentity
    /// The fitted regression.
    public let scorer: LogisticScorer
    /// The trainer's summary, when the file has one.
    public let trained: TrainingSummary?
}

/// One action an NBA model can recommend.
public struct ActionModel: Sendable {
    /// Stable action id, e.g. `retention_offer`; unique in its model, never `none`.
    public let id: String
    /// Propensity model: the probability that the customer takes up the action.
    public let scorer: LogisticScorer
    /// Business value of a take-up; priority is `propensity × value`.
    public let value: Double
    /// Contract channel names the action can be delivered on, in order of preference.
    public let channels: [String]
    /// Rules that must all hold for the action to be considered.
    public let eligibility: [EligibilityRule]

    /// Whether every eligibility rule holds. No allocation.
    public func isEligible(_ x: UnsafeBufferPointer<Double>, churnProbability: Double) -> Bool {
        for rule in eligibility where !rule.holds(x, churnProbability: churnProbability) {
            return false
        }
        return true
    }
}

/// The next-best-action model (`"task":"actions"`): one propensity model per action, all on
/// the same features and standardization.
public struct NBAModel: Sendable {
    /// Name and version.
    public let identity: ModelIdentity
    /// The actions, in file order; recommendations refer to them by index.
    public let actions: [ActionModel]
    /// The trainer's summary, when the file has one.
    public let trained: TrainingSummary?

    /// The index of the action with id `id`, or nil.
    public func index(ofAction id: String) -> Int? { actions.firstIndex { $0.id == id } }
}
