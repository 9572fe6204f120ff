import NudgeEvents

/// Durations and instants as people type them on a command line: `7d`, `30d`, `12h`, `90m`, `45s`,
/// `250ms`; `2026-11-01` or `2026-11-01T12:00:00Z`.
public enum DurationText {
    /// Milliseconds of a duration such as `7d`; nil when the text is not a positive whole number followed
    /// by one of `ms`, `s`, `m`, `h`, `d`, `w`, or when it overflows.
    public static func parseMillis(_ text: String) -> Int64? {
        let units: [(suffix: String, millis: Int64)] = [
            ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
        ]
        // "ms" before "s" and "m": the longest suffix that matches wins.
        for unit in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where text.hasSuffix(unit.suffix) {
            guard let count = Int64(text.dropLast(unit.suffix.count)), count > 0 else { return nil }
            let (millis, overflow) = count.multipliedReportingOverflow(by: unit.millis)
            return overflow ? nil : millis
        }
        return nil
    }

    /// Milliseconds of an instant: a date (`2026-11-01`, midnight UTC) or an ISO-8601 timestamp with an
    /// offset or `Z`; nil otherwise.
    public static func parseInstant(_ text: String) -> Int64? {
        let full = text.count == 10 ? text + "T00:00:00Z" : text
        var utf8 = Array(full.utf8)
        return utf8.withUnsafeMutableBytes { ISO8601Time.parseMillis(UnsafeRawBufferPointer($0)) }
    }

    /// `2026-11-23T10:15:02.120Z`.
    public static func format(millis: Int64) -> String { ISO8601Time.format(millis: millis) }

    /// A duration for people: `7d`, `36h`, `90m`, `45s` or `250ms`, the largest unit that divides it.
    public static func describe(millis: Int64) -> String {
        for (size, suffix) in [(Int64(86_400_000), "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")]
        where millis != 0 && millis % size == 0 {
            return "\(millis / size)\(suffix)"
        }
        return "\(millis)ms"
    }
}
