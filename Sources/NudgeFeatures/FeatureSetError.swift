/// Why a list of feature definitions cannot be compiled. Each case names the feature and says what to change.
public enum FeatureSetError: Error, Equatable, CustomStringConvertible {
    /// The definition at `position` (0-based) has an empty name.
    case emptyName(position: Int)
    /// Two definitions share `name`.
    case duplicateName(String)
    /// `name` cannot name a feature: not an identifier, too long, or a column the training datasets use.
    case badName(String, problem: String)
    /// The feature's filter lists no event kinds, so it could never match.
    case noKinds(feature: String)
    /// The feature's filter lists an empty channel set, so it could never match.
    case noChannels(feature: String)
    /// Duration or resolution is zero or negative (and the window is not lifetime).
    case nonPositiveWindow(feature: String, window: FeatureWindow)
    /// The resolution does not divide the duration into whole buckets.
    case resolutionDoesNotDivide(feature: String, window: FeatureWindow)
    /// The window needs more buckets than ``FeatureSet/maxBucketsPerWindow``.
    case tooManyBuckets(feature: String, window: FeatureWindow, buckets: Int64, limit: Int64)
    /// A gauge (`openCount`, `netCount`) was given a window; gauges are lifetime levels.
    case gaugeNeedsLifetimeWindow(feature: String, aggregation: String)
    /// The same event kinds both add to a gauge and close, remove or reset it.
    case conflictingKinds(feature: String, kinds: [String])
    /// `missingValue`, `cap` or a condition's constant is NaN or infinite; models refuse non-finite inputs.
    case nonFiniteValue(feature: String, field: String)
    /// A derived feature was given a window; it reads other features, which have their own.
    case derivedTakesNoWindow(feature: String)
    /// A derived feature's expression names `reference`, which is neither an event feature of the set nor a
    /// derived feature defined before it.
    case unknownReference(feature: String, reference: String)
    /// A text condition lists no values, so it could never match (or always would).
    case emptyCondition(feature: String, condition: String)
    /// A property read by name (`property`) names a key that cannot be read: empty, nested or too long.
    case badProperty(feature: String, name: String, problem: String)
    /// The feature reads `property` by name (in `field`: `where` or `of`) beyond the first
    /// ``FeatureSet/maxReadProperties`` keys of the set.
    case tooManyProperties(feature: String, field: String, property: String, limit: Int)

    /// What went wrong, naming the feature, and what to do about it.
    public var description: String {
        switch self {
        case .emptyName(let position):
            "feature definition #\(position) has an empty name: give every feature a unique name"
        case .duplicateName(let name):
            "feature '\(name)' is defined twice: feature names must be unique, rename or remove one"
        case .badName(let name, let problem):
            // Escaped past printable ASCII: a trailing zero-width space would not show.
            "feature name '\(name.unicodeScalars.map { (0x20...0x7E).contains($0.value) ? String($0) : $0.escaped(asASCII: true) }.joined())' \(problem): rename it"
        case .noKinds(let name):
            "feature '\(name)': events lists none, so it never matches: list at least one event"
        case .noChannels(let name):
            "feature '\(name)': channels lists none, so it never matches: list channels, or leave channels out for any"
        case .nonPositiveWindow(let name, let window):
            "feature '\(name)': window \(window) needs a positive duration and resolution (or use lifetime)"
        case .resolutionDoesNotDivide(let name, let window):
            "feature '\(name)': window \(window): the resolution must divide the duration into whole buckets"
        case .tooManyBuckets(let name, let window, let buckets, let limit):
            "feature '\(name)': window \(window) needs \(buckets) buckets, more than \(limit): use a coarser resolution"
        case .gaugeNeedsLifetimeWindow(let name, let aggregation):
            "feature '\(name)': \(aggregation) is a running level and takes no window: use the lifetime window"
        case .conflictingKinds(let name, let kinds):
            "feature '\(name)': kinds \(kinds.joined(separator: ", ")) both add to the gauge and take away from it: list each kind once"
        case .nonFiniteValue(let name, let field):
            "feature '\(name)': \(field) must be a finite number"
        case .derivedTakesNoWindow(let name):
            "feature '\(name)': a derived feature takes no window: put windows on the features it uses"
        case .unknownReference(let name, let reference):
            "feature '\(name)': the expression uses '\(reference)', which is not an event feature of the set nor a derived feature defined above it: define it or fix the name"
        case .emptyCondition(let name, let condition):
            "feature '\(name)': condition '\(condition)' lists no values: list at least one or remove the condition"
        case .badProperty(let name, let property, let problem):
            "feature '\(name)': \"\(FeatureProperty.prefix)\(property)\" \(problem)"
        case .tooManyProperties(let name, _, let property, let limit):
            "feature '\(name)': \"\(FeatureProperty.prefix)\(property)\" would be the set's \(limit + 1)th property read by name, over the limit of \(limit) (each is looked up in every event): reuse the properties other features read, or drop one"
        }
    }
}
