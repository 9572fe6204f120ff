/// ISO-8601 / RFC 3339 timestamps as milliseconds since the Unix epoch, without Foundation or allocation.
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of any length (truncated to milliseconds), then
/// `Z`, `±HH:MM`, `±HHMM` or `±HH`. Lowercase `t` and `z` are accepted. Ranges are checked: month 1-12, day
/// within the month (leap years included), hour < 24, minute < 60, second < 60, offset hour < 24 and minute
/// < 60. Second 60 (a leap second, counted as the next minute's first second) only in the last minute of a
/// UTC day, the only place one is ever inserted (RFC 3339 5.7): elsewhere it is a sender's clock bug.
public enum ISO8601Time {
    /// Milliseconds of `0000-01-01T00:00:00.000Z`, the earliest instant `write` can print.
    public static let minMillis: Int64 = -62_167_219_200_000
    /// Milliseconds of `9999-12-31T23:59:59.999Z`, the latest instant `write` can print.
    public static let maxMillis: Int64 = 253_402_300_799_999
    /// Length of the output of `write` and `format`.
    public static let formattedLength = 24

    /// Whether `bytes` are a valid date and time that only lacks its UTC offset (`2026-11-23T10:15:02`): they
    /// parse once `Z` is added. For the error message, which names the most common mistake.
    static func lacksOffset(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var withZone = Array(bytes)
        withZone.append(UInt8(ascii: "Z"))
        return withZone.withUnsafeBytes { parseMillis($0) } != nil
    }

    /// Parses a timestamp (the bytes of the JSON string, without quotes); nil when it is not valid.
    public static func parseMillis(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let n = bytes.count
        guard n >= 20, let p = bytes.baseAddress else { return nil }
        @inline(__always) func at(_ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
        // Two ASCII digits at i, or -1 (keeps the checks branch-light and never traps).
        @inline(__always) func two(_ i: Int) -> Int {
            let hi = at(i) &- 0x30
            let lo = at(i + 1) &- 0x30
            return hi <= 9 && lo <= 9 ? Int(hi) * 10 + Int(lo) : -1
        }
        let century = two(0)
        let yearInCentury = two(2)
        let month = two(5)
        let day = two(8)
        let hour = two(11)
        let minute = two(14)
        let second = two(17)
        guard century >= 0, yearInCentury >= 0, at(4) == 0x2D, at(7) == 0x2D,
              at(10) | 0x20 == 0x74, at(13) == 0x3A, at(16) == 0x3A else { return nil }
        let year = century * 100 + yearInCentury
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }

        var i = 19
        var fractionMillis = 0
        if at(i) == 0x2E {  // '.'
            i += 1
            var digits = 0
            while i < n, case let d = at(i) &- 0x30, d <= 9 {
                if digits < 3 { fractionMillis = fractionMillis * 10 + Int(d) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            while digits < 3 {
                fractionMillis *= 10
                digits += 1
            }
        }
        guard i < n else { return nil }
        var offsetMinutes = 0
        let zone = at(i)
        if zone | 0x20 == 0x7A {  // 'Z' or 'z'
            i += 1
        } else if zone == 0x2B || zone == 0x2D {  // '+' or '-'
            guard i + 3 <= n, case let offsetHour = two(i + 1), (0...23).contains(offsetHour) else { return nil }
            i += 3
            var offsetMinute = 0
            if i < n {
                if at(i) == 0x3A { i += 1 }
                guard i + 2 <= n, case let m = two(i), (0...59).contains(m) else { return nil }
                offsetMinute = m
                i += 2
            }
            offsetMinutes = (offsetHour * 60 + offsetMinute) * (zone == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        guard i == n else { return nil }
        let utcMinuteOfDay = hour * 60 + minute - offsetMinutes
        guard second < 60 || (utcMinuteOfDay + 1_440) % 1_440 == 1_439 else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let secondsOfDay = utcMinuteOfDay * 60 + second
        return (Int64(days) * 86_400 + Int64(secondsOfDay)) * 1_000 + Int64(fractionMillis)
    }

    /// `2026-11-23T10:15:02.120Z`. Allocates; for tests, logs and tools (the encoder uses `write`).
    public static func format(millis: Int64) -> String {
        String(unsafeUninitializedCapacity: formattedLength) { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            return write(millis: millis, into: UnsafeMutableRawPointer(base))
        }
    }

    /// Writes the 24-byte form (`2026-11-23T10:15:02.120Z`) at `into` and returns 24. No allocation.
    /// Instants outside years 0000-9999 are clamped to `minMillis`/`maxMillis` so the width never changes.
    @discardableResult
    public static func write(millis: Int64, into out: UnsafeMutableRawPointer) -> Int {
        let clamped = min(max(millis, minMillis), maxMillis)
        let (dayNumber, millisOfDay) = floorDivMod(clamped, 86_400_000)
        let (year, month, day) = civilFromDays(Int(dayNumber))
        let ms = Int(millisOfDay)
        let secondsOfDay = ms / 1_000
        @inline(__always) func put(_ value: Int, _ width: Int, at offset: Int) {
            var v = value
            var k = offset + width - 1
            while k >= offset {
                out.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: k, as: UInt8.self)
                v /= 10
                k -= 1
            }
        }
        @inline(__always) func char(_ c: UInt8, at offset: Int) {
            out.storeBytes(of: c, toByteOffset: offset, as: UInt8.self)
        }
        put(year, 4, at: 0)
        char(0x2D, at: 4)
        put(month, 2, at: 5)
        char(0x2D, at: 7)
        put(day, 2, at: 8)
        char(0x54, at: 10)
        put(secondsOfDay / 3_600, 2, at: 11)
        char(0x3A, at: 13)
        put(secondsOfDay / 60 % 60, 2, at: 14)
        char(0x3A, at: 16)
        put(secondsOfDay % 60, 2, at: 17)
        char(0x2E, at: 19)
        put(ms % 1_000, 3, at: 20)
        char(0x5A, at: 23)
        return formattedLength
    }

    /// Days in a month of the proleptic Gregorian calendar.
    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Gregorian leap year rule.
    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm; exact for any year).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Civil date of a day number since 1970-01-01 (inverse of `daysFromCivil`).
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Floor division and the matching non-negative remainder.
    private static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b
        let r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
