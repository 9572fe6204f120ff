/// Writes Unix milliseconds as ISO-8601 UTC with milliseconds and `Z`
/// (`2026-11-23T10:15:02.120Z`) without Foundation's formatters, which allocate per call.
///
/// The calendar date comes from Howard Hinnant's `civil_from_days` (proleptic Gregorian, exact
/// for any day); it is cached because consecutive events almost always fall on the same day.
struct TimestampWriter {
    private var cachedDay = Int64.min
    private var cachedYear = 0
    private var cachedMonth = 0
    private var cachedDayOfMonth = 0

    static let millisPerDay: Int64 = 86_400_000

    /// Year, month (1-12) and day (1-31) of a day count since 1970-01-01.
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Writes `value` as exactly `width` decimal digits (zero-padded) at `destination`.
    @inline(__always)
    private static func digits(_ value: Int, _ width: Int, at destination: UnsafeMutablePointer<UInt8>) {
        var rest = value
        var index = width - 1
        while index >= 0 {
            destination[index] = UInt8(truncatingIfNeeded: rest % 10) &+ 0x30
            rest /= 10
            index -= 1
        }
    }

    /// Hour of the day (0-23, UTC) of a Unix millisecond instant.
    static func hourOfDay(_ millis: Int64) -> Int {
        let inDay = millis - floorDiv(millis, millisPerDay) * millisPerDay
        return Int(inDay / 3_600_000)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    /// Appends the 24-byte timestamp. Instants before year 0 or after 9999 are clamped to that
    /// range: the wire format has exactly four year digits.
    mutating func write(_ millis: Int64, into out: inout ByteWriter) {
        // -62167219200000 is 0000-01-01T00:00:00.000Z, 253402300799999 is 9999-12-31T23:59:59.999Z.
        let clamped = min(max(millis, -62_167_219_200_000), 253_402_300_799_999)
        let day = Self.floorDiv(clamped, Self.millisPerDay)
        if day != cachedDay {
            let date = Self.civil(fromDays: day)
            cachedDay = day
            cachedYear = Int(date.year)
            cachedMonth = Int(date.month)
            cachedDayOfMonth = Int(date.day)
        }
        let inDay = Int(clamped - day * Self.millisPerDay)
        // One capacity check for all 24 bytes, then plain stores.
        let text = out.claim(24)
        Self.digits(cachedYear, 4, at: text)
        text[4] = UInt8(ascii: "-")
        Self.digits(cachedMonth, 2, at: text + 5)
        text[7] = UInt8(ascii: "-")
        Self.digits(cachedDayOfMonth, 2, at: text + 8)
        text[10] = UInt8(ascii: "T")
        Self.digits(inDay / 3_600_000, 2, at: text + 11)
        text[13] = UInt8(ascii: ":")
        Self.digits(inDay / 60_000 % 60, 2, at: text + 14)
        text[16] = UInt8(ascii: ":")
        Self.digits(inDay / 1_000 % 60, 2, at: text + 17)
        text[19] = UInt8(ascii: ".")
        Self.digits(inDay % 1_000, 3, at: text + 20)
        text[23] = UInt8(ascii: "Z")
    }
}
