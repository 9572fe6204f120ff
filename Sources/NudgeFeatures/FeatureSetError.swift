/// Why a list of feature definitions cannot be compiled. Each case names the feature and says what to change.
public enum FeatureSetError: Error, Equatable, CustomStringConvertible {
    /// The definition at `position` (0-based) has an empty name.
    case emptyName(position: Int)
    /// Two definitions share `name`.
    case duplicateName(String)
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
    /// `missingValue` or `cap` is NaN or infinite; models refuse non-finite inputs.
    case nonFiniteValue(feature: String, field: String)

    /// What went wrong, naming the feature, and what to do about it.
    public var description: String {
        switch self {
        case .emptyName(let position):
            "feature definition #\(position) has an empty name: give every feature a unique name"
        case .duplicateName(let name):
            "feature '\(name)' is defined twice: feature names must be unique, rename or remove one"
        case .noKinds(let name):
            "feature '\(name)': filter.kinds is empty, so it never matches: list at least one event kind"
        case .noChannels(let name):
            "feature '\(name)': filter.channels is an empty set, so it never matches: list channels or use nil for any"
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
        }
    }
}
