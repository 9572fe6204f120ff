/// Why a feature file was refused: the file, the 1-based line of the offending object or field, and the
/// problem. `description` reads `features.json:12: feature 'x': ...` and says what to change.
public struct FeatureFileError: Error, Equatable, CustomStringConvertible {
    /// The path given to ``FeatureSet/load(file:)`` (or the name given to ``FeatureSet/parse(_:file:)``).
    public let file: String
    /// 1-based line; 0 when the file could not be read at all.
    public let line: Int
    /// What is wrong.
    public let problem: Problem

    /// A feature file error at `line` of `file`.
    public init(file: String, line: Int, problem: Problem) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    /// What can be wrong with a feature file. `feature` is the feature's name when it has one.
    public enum Problem: Equatable, Sendable, CustomStringConvertible {
        /// The file could not be opened or read.
        case unreadable(reason: String)
        /// The text is not JSON.
        case notJSON(reason: String)
        /// `format` is missing or not ``FeatureSet/fileFormat``.
        case wrongFormat(found: String?)
        /// A required field is absent.
        case missingField(feature: String?, field: String)
        /// A field has the wrong JSON type.
        case wrongType(feature: String?, field: String, expected: String, found: String)
        /// A field this format does not know (often a typo).
        case unknownField(feature: String?, field: String, allowed: [String])
        /// A known field that means nothing for this feature's aggregation.
        case notApplicable(feature: String, field: String, aggregation: String)
        /// An event name that is not a Segment e-commerce name, `page`, `screen`, `identify`, `other` or `*`.
        case unknownEvent(feature: String, name: String)
        /// A channel name that is not in the wire contract.
        case unknownChannel(feature: String, name: String)
        /// An aggregation this format does not have.
        case unknownAggregation(feature: String, name: String)
        /// A property or value field (`where` key, `of`) that events do not carry.
        case unknownProperty(feature: String, name: String, allowed: [String])
        /// `properties.<key>` names a key Nudge cannot read (empty, nested or too long); `problem` says which.
        case badProperty(feature: String, name: String, problem: String)
        /// A window or resolution that is not `lifetime` or a whole number with a unit (`5m`, `24h`, `90d`).
        case badDuration(feature: String, field: String, text: String)
        /// A window no default bucket width divides into 5 to 512 whole-second buckets: it needs a `resolution`.
        case noDefaultResolution(feature: String, window: String)
        /// A `where` condition that cannot be read.
        case badCondition(feature: String, reason: String)
        /// An expression that does not parse.
        case badExpression(feature: String, error: ExpressionError)
        /// The definitions parsed but do not compile (bad window, duplicate name, unknown reference, ...).
        case invalid(FeatureSetError)

        /// What is wrong and what to do.
        public var description: String {
            switch self {
            case .unreadable(let reason):
                "cannot read the file (\(reason)): check the path and permissions"
            case .notJSON(let reason):
                "not valid JSON: \(reason)"
            case .wrongFormat(let found):
                "\"format\" is \(found.map { "\"\($0)\"" } ?? "missing"): the file must start with \"format\": \"\(FeatureSet.fileFormat)\""
            case .missingField(let feature, let field):
                "\(Self.subject(feature))\"\(field)\" is required: add it"
            case .wrongType(let feature, let field, let expected, let found):
                "\(Self.subject(feature))\"\(field)\" must be \(expected), not \(found)"
            case .unknownField(let feature, let field, let allowed):
                "\(Self.subject(feature))unknown field \"\(field)\": use one of \(allowed.joined(separator: ", "))"
            case .notApplicable(let feature, let field, let aggregation):
                "feature '\(feature)': \"\(field)\" does not apply to \(aggregation): remove it"
            case .unknownEvent(let feature, let name):
                "feature '\(feature)': unknown event \"\(name)\": use a Segment e-commerce name such as \"Product Viewed\", or page, screen, identify, other, or \"*\" for every event"
            case .unknownChannel(let feature, let name):
                "feature '\(feature)': unknown channel \"\(name)\": use web, app, store, call_center, email, sms, push, social, partner or other"
            case .unknownAggregation(let feature, let name):
                "feature '\(feature)': unknown aggregation \"\(name)\": use count, sum, min, max, avg, last, time_since_last, distinct_count, open_count or net_count"
            case .unknownProperty(let feature, let name, let allowed):
                "feature '\(feature)': unknown property \"\(name)\": use \(allowed.joined(separator: ", "))"
            case .badProperty(let feature, let name, let problem):
                "feature '\(feature)': \"\(name)\" \(problem)"
            case .badDuration(let feature, let field, let text):
                "feature '\(feature)': \"\(field)\" is \"\(text)\": write a whole number and a unit (s, m, h, d, w) such as \"24h\" or \"90d\"\(field == "window" ? ", or \"lifetime\"" : "")"
            case .noDefaultResolution(let feature, let window):
                "feature '\(feature)': \"window\" is \"\(window)\", which no default bucket width splits into 5 to 512 whole seconds: give a \"resolution\" that divides it, or choose a rounder window"
            case .badCondition(let feature, let reason):
                "feature '\(feature)': \"where\": \(reason)"
            case .badExpression(let feature, let error):
                "feature '\(feature)': \"expression\" \(error)"
            case .invalid(let error):
                error.description
            }
        }

        private static func subject(_ feature: String?) -> String { feature.map { "feature '\($0)': " } ?? "" }
    }

    /// `file:line: problem`.
    public var description: String { "\(file):\(line): \(problem)" }
}
