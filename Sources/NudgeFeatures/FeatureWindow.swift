/// Where a window's edges fall.
///
/// Windows slide at bucket granularity: an event at time `e` counts in the window evaluated at time `t`
/// iff `floor(e/r)` is in `(floor(t/r) - B, floor(t/r)]`, where `r` is ``resolutionMillis`` and
/// `B = durationMillis / resolutionMillis` is ``buckets``. So a window covers between `duration - r` and
/// `duration` of history; the resolution trades that ragged edge against per-customer memory (one 8- or
/// 16-bit counter, or one Float32, per bucket: see ``Aggregation``). Values are exact under this rule when
/// evaluated at or after the customer's newest event, which is how the service evaluates.
///
/// Default resolutions (``defaultResolutionMillis(forDurationMillis:)``) take the finest step of the ladder
/// 1m, 5m, 15m, 1h, 2h, 6h, 12h, 1d, 3d, 6d, 7d that divides the duration into at most
/// ``defaultMaxBuckets`` (15) buckets, so the ragged edge stays within 1/10 to 1/15 of windows from 1h up
/// (1/5 of a 5m window) and a windowed count costs 10 to 30 bytes: 5m@1m, 1h@5m, 24h@2h, 7d@12h, 30d@3d, 90d@6d. Give a
/// resolution explicitly for a sharper edge (e.g. `.days(30, resolutionMillis: FeatureWindow.dayMillis)`).
public struct FeatureWindow: Sendable, Equatable, CustomStringConvertible {
    /// Window length in milliseconds; 0 for ``lifetime``.
    public let durationMillis: Int64
    /// Bucket width in milliseconds; 0 for ``lifetime``.
    public let resolutionMillis: Int64

    /// A window of `durationMillis` made of buckets `resolutionMillis` wide. Not validated here:
    /// ``FeatureSet/init(_:)`` rejects bad windows with an error naming the feature.
    public init(durationMillis: Int64, resolutionMillis: Int64) {
        self.durationMillis = durationMillis
        self.resolutionMillis = resolutionMillis
    }

    /// Everything ever seen: no buckets, no edge.
    public static let lifetime = FeatureWindow(durationMillis: 0, resolutionMillis: 0)

    /// The bucket count most default resolutions stay within.
    public static let defaultMaxBuckets: Int64 = 15

    /// One minute in milliseconds.
    public static let minuteMillis: Int64 = 60_000
    /// One hour in milliseconds.
    public static let hourMillis: Int64 = 3_600_000
    /// One day in milliseconds.
    public static let dayMillis: Int64 = 86_400_000

    /// True for ``lifetime``.
    public var isLifetime: Bool { durationMillis == 0 && resolutionMillis == 0 }

    /// Buckets in the ring (`duration / resolution`); 0 for ``lifetime`` or an invalid resolution.
    public var buckets: Int64 { resolutionMillis > 0 ? durationMillis / resolutionMillis : 0 }

    /// A window of `n` minutes; `resolutionMillis` nil picks the documented default.
    public static func minutes(_ n: Int64, resolutionMillis: Int64? = nil) -> FeatureWindow {
        of(n, unit: minuteMillis, resolutionMillis: resolutionMillis)
    }

    /// A window of `n` hours; `resolutionMillis` nil picks the documented default.
    public static func hours(_ n: Int64, resolutionMillis: Int64? = nil) -> FeatureWindow {
        of(n, unit: hourMillis, resolutionMillis: resolutionMillis)
    }

    /// A window of `n` days; `resolutionMillis` nil picks the documented default.
    public static func days(_ n: Int64, resolutionMillis: Int64? = nil) -> FeatureWindow {
        of(n, unit: dayMillis, resolutionMillis: resolutionMillis)
    }

    /// The default bucket width for a window of `durationMillis`: the finest ladder step (1m, 5m, 15m, 1h,
    /// 2h, 6h, 12h, 1d, 3d, 6d, 7d) dividing it into at most 15 buckets; else the coarsest dividing step (fewest
    /// buckets, e.g. 37h@1h) if within ``FeatureSet/maxBucketsPerWindow``; else the whole duration (one
    /// tumbling bucket).
    public static func defaultResolutionMillis(forDurationMillis duration: Int64) -> Int64 {
        guard duration > 0 else { return 0 }
        let ladder: [Int64] = [minuteMillis, 5 * minuteMillis, 15 * minuteMillis, hourMillis, 2 * hourMillis,
                               6 * hourMillis, 12 * hourMillis, dayMillis, 3 * dayMillis, 6 * dayMillis, 7 * dayMillis]
        let dividing = ladder.filter { $0 <= duration && duration % $0 == 0 }
        if let fine = dividing.first(where: { duration / $0 <= defaultMaxBuckets }) { return fine }
        if let coarse = dividing.last, duration / coarse <= FeatureSet.maxBucketsPerWindow { return coarse }
        return duration
    }

    /// "lifetime", or duration@resolution in the largest whole unit, e.g. "7d@6h".
    public var description: String {
        if isLifetime { return "lifetime" }
        return "\(Self.format(durationMillis))@\(Self.format(resolutionMillis))"
    }

    private static func of(_ n: Int64, unit: Int64, resolutionMillis: Int64?) -> FeatureWindow {
        // Saturate rather than trap: an absurd count becomes a window FeatureSet rejects by name.
        let (duration, overflow) = n.multipliedReportingOverflow(by: unit)
        let total = overflow ? Int64.max : duration
        return FeatureWindow(durationMillis: total,
                             resolutionMillis: resolutionMillis ?? defaultResolutionMillis(forDurationMillis: total))
    }

    private static func format(_ millis: Int64) -> String {
        let units: [(Int64, String)] = [(dayMillis, "d"), (hourMillis, "h"), (minuteMillis, "m"), (1000, "s")]
        for (size, suffix) in units where millis != 0 && millis % size == 0 {
            return "\(millis / size)\(suffix)"
        }
        return "\(millis)ms"
    }
}
