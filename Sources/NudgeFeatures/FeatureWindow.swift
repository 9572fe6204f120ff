/// Where a window's edges fall.
///
/// Windows slide at bucket granularity: an event at time `e` counts in the window evaluated at time `t`
/// iff `floor(e/r)` is in `(floor(t/r) - B, floor(t/r)]`, where `r` is ``resolutionMillis`` and
/// `B = durationMillis / resolutionMillis` is ``buckets``. So a window covers between `duration - r` and
/// `duration` of history; the resolution trades that ragged edge against per-customer memory (one 8- or
/// 16-bit counter, or one Float32, per bucket: see ``Aggregation``). Values are exact under this rule when
/// evaluated at or after the customer's newest event, which is how the service evaluates.
///
/// Default resolutions (``defaultResolutionMillis(forDurationMillis:)``) split a window into 10 to 15 buckets
/// where its length allows (every window of a round length does), so the ragged edge stays within 1/10 to
/// 1/15 of it and a windowed count costs 10 to 30 bytes: 5m@20s, 1h@5m, 24h@2h, 7d@12h, 30d@3d, 90d@6d.
/// Lengths with few divisors get 5 to 9 buckets, or more than 15 (up to 512). Give a resolution explicitly
/// for a sharper edge (e.g. `.days(30, resolutionMillis: FeatureWindow.dayMillis)`).
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

    /// The default bucket width for a window of `durationMillis`: a ladder step (1m, 5m, 15m, 1h, 2h, 6h, 12h,
    /// 1d, 3d, 6d, 7d: round bucket edges) that divides it into 10 to 15 buckets; else whole seconds dividing
    /// it into as many buckets as possible up to 15 (at least 5: 4h@16m, 37h@148m, 45s@3s, 28d in 15 buckets
    /// of 44.8 h, 5s in 5), else into as few as possible above 15, up to ``FeatureSet/maxBucketsPerWindow``
    /// (17s in 17). Nil when none does (a prime number of seconds above 512, say): the definition must then
    /// give a resolution. The windows the standard set uses come
    /// out 1h@5m, 24h@2h, 7d@12h, 30d@3d, 90d@6d (and 5m@20s).
    public static func defaultResolutionMillis(forDurationMillis duration: Int64) -> Int64? {
        guard duration > 0 else { return 0 }
        let ladder: [Int64] = [minuteMillis, 5 * minuteMillis, 15 * minuteMillis, hourMillis, 2 * hourMillis,
                               6 * hourMillis, 12 * hourMillis, dayMillis, 3 * dayMillis, 6 * dayMillis, 7 * dayMillis]
        if let step = ladder.first(where: { duration % $0 == 0 && (10...defaultMaxBuckets).contains(duration / $0) }) { return step }
        let second: Int64 = 1_000
        guard duration % second == 0 else { return nil }
        for buckets in stride(from: defaultMaxBuckets, through: 5, by: -1) where duration % (buckets * second) == 0 {
            return duration / buckets
        }
        let most = min(FeatureSet.maxBucketsPerWindow, duration / second)
        guard most > defaultMaxBuckets else { return nil }
        for buckets in (defaultMaxBuckets + 1)...most where duration % (buckets * second) == 0 { return duration / buckets }
        return nil
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
                             resolutionMillis: resolutionMillis ?? defaultResolutionMillis(forDurationMillis: total) ?? total)
    }

    private static func format(_ millis: Int64) -> String {
        let units: [(Int64, String)] = [(dayMillis, "d"), (hourMillis, "h"), (minuteMillis, "m"), (1000, "s")]
        for (size, suffix) in units where millis != 0 && millis % size == 0 {
            return "\(millis / size)\(suffix)"
        }
        return "\(millis)ms"
    }
}
