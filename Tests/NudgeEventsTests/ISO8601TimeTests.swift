import NudgeEvents
import NudgeTraffic
import Testing

/// Parses the UTF-8 of `text`.
private func parse(_ text: String) -> Int64? {
    Array(text.utf8).withUnsafeBytes { ISO8601Time.parseMillis($0) }
}

@Suite("ISO-8601 time")
struct ISO8601TimeTests {
    // Expected values computed by hand: days since 1970-01-01 × 86 400 000 + time of day − offset.
    // 2026-11-23 is day 20 780 (56 years: 14 leap days → 20 454 days to 2026-01-01, + 326 days).
    @Test("valid timestamps and their epoch milliseconds", arguments: [
        ("2026-11-23T10:15:02.120Z", 1_795_428_902_120 as Int64),
        ("2026-11-23T10:15:02Z", 1_795_428_902_000),
        ("2026-11-23t10:15:02z", 1_795_428_902_000),
        ("2026-11-23T10:15:02.1+01:00", 1_795_425_302_100),
        ("2026-11-23T10:15:02-0530", 1_795_448_702_000),
        ("2026-11-23T10:15:02-05:30", 1_795_448_702_000),
        ("2026-11-23T10:15:02+00", 1_795_428_902_000),
        ("2026-11-23T10:15:02.12Z", 1_795_428_902_120),
        ("2026-11-23T10:15:02.1209999999Z", 1_795_428_902_120),  // truncated, not rounded
        ("2026-11-23T10:15:02.000000001Z", 1_795_428_902_000),
        ("2026-01-01T00:30:00+14:00", 1_767_177_000_000),  // the day before in UTC
        ("2026-12-31T23:59:59Z", 1_798_761_599_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),  // leap day
        ("2000-02-29T23:59:59.999Z", 951_868_799_999),  // divisible by 400: leap
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00+00:00", 0),
        ("1970-01-01T00:00:00.000-00:00", 0),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1900-03-01T00:00:00Z", -2_203_891_200_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),  // leap second = next minute's first second
        ("2016-12-31T15:59:60-08:00", 1_483_228_800_000),  // the same leap second in local time
        ("2017-01-01T00:59:60+01:00", 1_483_228_800_000),
    ])
    func valid(text: String, millis: Int64) {
        #expect(parse(text) == millis, "\(text)")
    }

    @Test("invalid timestamps", arguments: [
        "", "yesterday", "2026-11-23", "2026-11-23T10:15:02", "2026-11-23 10:15:02Z", "2026-11-23T10:15Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z",
        "2026-11-23T23:60:00Z", "2026-11-23T23:59:61Z", "2026-11-23T10:15:02.Z", "2026-11-23T10:15:02.120",
        "2026-11-23T10:15:02+1", "2026-11-23T10:15:02+01:0", "2026-11-23T10:15:02+24:00", "2026-11-23T10:15:02+01:60",
        "2026-11-23T10:15:02Z ", " 2026-11-23T10:15:02Z", "2026-11-23T10:15:02ZZ", "2026/11/23T10:15:02Z",
        "2026-11-23T10:15:02+01:00Z", "+2026-11-23T10:15:02Z", "20261123T101502Z", "2026-1-23T10:15:02Z",
        "2026-11-23T10:15:02.12a4Z", "2026-11-23T10:15:02GMT", "２026-11-23T10:15:02Z",
        "2026-11-23T10:15:60Z", "2016-12-31T23:58:60Z", "2016-12-31T23:59:60+01:00",  // leap second not at 23:59 UTC
    ])
    func invalid(text: String) {
        #expect(parse(text) == nil, "\(text)")
    }

    @Test("format writes the 24-byte UTC form", arguments: [
        (1_795_428_902_120 as Int64, "2026-11-23T10:15:02.120Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (951_868_799_999, "2000-02-29T23:59:59.999Z"),
        (1_709_164_800_007, "2024-02-29T00:00:00.007Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (Int64.max, "9999-12-31T23:59:59.999Z"),  // clamped
        (Int64.min, "0000-01-01T00:00:00.000Z"),  // clamped
    ])
    func format(millis: Int64, text: String) {
        #expect(ISO8601Time.format(millis: millis) == text)
    }

    @Test("write returns 24 and round-trips through parse for many instants")
    func roundTrip() {
        var rng = SplitMix64(seed: 42)
        var buffer = [UInt8](repeating: 0, count: 32)
        for _ in 0..<2_000 {
            let span = UInt64(ISO8601Time.maxMillis - ISO8601Time.minMillis + 1)
            let millis = ISO8601Time.minMillis + Int64(rng.next() % span)
            let written = buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { ISO8601Time.write(millis: millis, into: $0) } ?? 0
            }
            #expect(written == 24)
            let parsed = buffer[..<written].withUnsafeBytes { ISO8601Time.parseMillis($0) }
            #expect(parsed == millis)
        }
    }
}
