import NudgeEvents

/// Why a contact policy was refused: the field and what to do.
public struct ContactPolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The JSON field at fault, e.g. `channel_cap`.
    public var field: String
    /// What is wrong and what to do.
    public var problem: String

    /// Creates an error for `field`.
    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    /// `field: problem`.
    public var description: String { "\(field): \(problem)" }
}

/// Contact caps and a cooldown, measured on event time so that replays and backfills
/// decide as live traffic did.
///
/// JSON (every field optional; missing ones keep the default; unknown ones are refused,
/// since a misspelt cap silently ignored would spam customers):
/// `{"channel_cap":1,"channel_window_hours":24,"customer_cap":3,"customer_window_days":7,"cooldown_minutes":30}`.
/// Caps range over 1...`ContactHistory.capacity` because that is all the history the store keeps.
public struct ContactPolicy: Sendable, Equatable, Codable {
    /// Most recommendations per channel within `channelWindowMillis`.
    public let channelCap: Int
    /// The per-channel window.
    public let channelWindowMillis: Int64
    /// Most recommendations per customer within `customerWindowMillis` (suppression reason `weekly_cap`).
    public let customerCap: Int
    /// The per-customer window.
    public let customerWindowMillis: Int64
    /// Silence after any recommendation.
    public let cooldownMillis: Int64
    /// How far back a customer's contacts can matter: the longest window or cooldown.
    public var lookBackMillis: Int64 { max(channelWindowMillis, customerWindowMillis, cooldownMillis) }

    private static let hour: Int64 = 3_600_000
    private static let day: Int64 = 86_400_000
    private static let minute: Int64 = 60_000
    /// Longest window or cooldown accepted: a year.
    private static let longest: Int64 = 366 * day

    /// At most 1 recommendation per channel per 24 h, 3 per customer per 7 days, and a
    /// 30-minute cooldown after any recommendation.
    public static let `default` = ContactPolicy(unchecked: 1, hour * 24, 3, day * 7, minute * 30)

    /// Creates a validated policy.
    public init(channelCap: Int = 1, channelWindowMillis: Int64 = 86_400_000,
                customerCap: Int = 3, customerWindowMillis: Int64 = 604_800_000,
                cooldownMillis: Int64 = 1_800_000) throws(ContactPolicyError) {
        try Self.checkCap(channelCap, field: "channel_cap")
        try Self.checkCap(customerCap, field: "customer_cap")
        try Self.checkSpan(channelWindowMillis, field: "channel_window_hours", allowZero: false)
        try Self.checkSpan(customerWindowMillis, field: "customer_window_days", allowZero: false)
        try Self.checkSpan(cooldownMillis, field: "cooldown_minutes", allowZero: true)
        // A full history drops its oldest contact. Inside the customer window that is safe: the kept, newer
        // ones then fill the customer cap. A contact older than that but inside a longer channel window
        // could be dropped while it still counts, letting a channel cap through (one email a month, two
        // contacts a day: a second email once six other contacts came since).
        guard channelWindowMillis <= customerWindowMillis else {
            throw ContactPolicyError(field: "channel_window_hours",
                                     problem: "is \(Double(channelWindowMillis) / Double(Self.hour)) h, longer than customer_window_days "
                                        + "(\(Double(customerWindowMillis) / Double(Self.day)) d): the \(ContactHistory.capacity) contacts kept "
                                        + "per customer enforce a channel cap only within the customer window; use at most "
                                        + "\(Double(customerWindowMillis) / Double(Self.hour)) h, or lengthen customer_window_days")
        }
        self.init(unchecked: channelCap, channelWindowMillis, customerCap, customerWindowMillis, cooldownMillis)
    }

    private init(unchecked channelCap: Int, _ channelWindow: Int64, _ customerCap: Int, _ customerWindow: Int64, _ cooldown: Int64) {
        self.channelCap = channelCap
        self.channelWindowMillis = channelWindow
        self.customerCap = customerCap
        self.customerWindowMillis = customerWindow
        self.cooldownMillis = cooldown
    }

    private static func checkCap(_ cap: Int, field: String) throws(ContactPolicyError) {
        guard (1...ContactHistory.capacity).contains(cap) else {
            throw ContactPolicyError(field: field, problem: "is \(cap); use a whole number from 1 to \(ContactHistory.capacity) (the contacts kept per customer)")
        }
    }

    private static func checkSpan(_ millis: Int64, field: String, allowZero: Bool) throws(ContactPolicyError) {
        guard millis <= longest, allowZero ? millis >= 0 : millis > 0 else {
            throw ContactPolicyError(field: field, problem: "is out of range; use a duration \(allowZero ? "from 0" : "above 0") up to 366 days")
        }
    }

    // MARK: - Rules

    /// Whether a recommendation was made within the cooldown before `atMillis` (or later).
    public func inCooldown(atMillis: Int64, history: ContactHistory) -> Bool {
        cooldownMillis > 0 && history.contacts(after: Self.cutoff(atMillis, cooldownMillis)) > 0
    }

    /// Whether the customer has had `customerCap` recommendations within the customer window.
    public func customerCapReached(atMillis: Int64, history: ContactHistory) -> Bool {
        history.contacts(after: Self.cutoff(atMillis, customerWindowMillis)) >= customerCap
    }

    /// Whether `channel` has had `channelCap` recommendations within the channel window.
    public func channelCapReached(_ channel: Channel, atMillis: Int64, history: ContactHistory) -> Bool {
        history.contacts(after: Self.cutoff(atMillis, channelWindowMillis), on: channel) >= channelCap
    }

    /// Why a recommendation on `channel` at `atMillis` is not allowed, or nil when it is.
    /// Customer-wide reasons come first (cooldown, then the customer cap), then the channel cap.
    public func blockedReason(channel: Channel, atMillis: Int64, history: ContactHistory) -> SuppressionReason? {
        if inCooldown(atMillis: atMillis, history: history) { return .cooldown }
        if customerCapReached(atMillis: atMillis, history: history) { return .weeklyCap }
        if channelCapReached(channel, atMillis: atMillis, history: history) { return .channelCap }
        return nil
    }

    /// `now - span`, saturating instead of overflowing.
    private static func cutoff(_ now: Int64, _ span: Int64) -> Int64 {
        let (value, overflow) = now.subtractingReportingOverflow(span)
        return overflow ? Int64.min : value
    }

    // MARK: - Codable

    private enum Key: String, CodingKey, CaseIterable {
        case channelCap = "channel_cap"
        case channelWindowHours = "channel_window_hours"
        case customerCap = "customer_cap"
        case customerWindowDays = "customer_window_days"
        case cooldownMinutes = "cooldown_minutes"
    }

    /// Any key, so that unknown fields can be named in the error.
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Decodes and validates; errors are `ContactPolicyError`s naming the field.
    public init(from decoder: any Decoder) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        let known = Key.allCases.map(\.rawValue)
        for key in all.allKeys where !known.contains(key.stringValue) {
            throw ContactPolicyError(field: key.stringValue,
                                     problem: "is not a contact policy field; known fields: \(known.joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: Key.self)
        let d = Self.default
        func number(_ key: Key) throws -> Double? {
            do {
                guard let v = try c.decodeIfPresent(Double.self, forKey: key) else { return nil }
                guard v.isFinite else { throw ContactPolicyError(field: key.rawValue, problem: "must be a finite number") }
                return v
            } catch is DecodingError {
                throw ContactPolicyError(field: key.rawValue, problem: "must be a number")
            }
        }
        func cap(_ key: Key, _ fallback: Int) throws -> Int {
            guard let v = try number(key) else { return fallback }
            guard v == v.rounded(), let i = Int(exactly: v) else {
                throw ContactPolicyError(field: key.rawValue, problem: "is \(v); use a whole number from 1 to \(ContactHistory.capacity)")
            }
            return i
        }
        func span(_ key: Key, unit: Int64, _ fallback: Int64) throws -> Int64 {
            guard let v = try number(key) else { return fallback }
            let millis = (v * Double(unit)).rounded()
            guard abs(millis) <= Double(Self.longest) * 2 else {
                throw ContactPolicyError(field: key.rawValue, problem: "is out of range; use a duration up to 366 days")
            }
            return Int64(millis)
        }
        try self.init(channelCap: cap(.channelCap, d.channelCap),
                      channelWindowMillis: span(.channelWindowHours, unit: Self.hour, d.channelWindowMillis),
                      customerCap: cap(.customerCap, d.customerCap),
                      customerWindowMillis: span(.customerWindowDays, unit: Self.day, d.customerWindowMillis),
                      cooldownMillis: span(.cooldownMinutes, unit: Self.minute, d.cooldownMillis))
    }

    /// Encodes in the JSON units (hours, days, minutes).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(channelCap, forKey: .channelCap)
        try c.encode(Double(channelWindowMillis) / Double(Self.hour), forKey: .channelWindowHours)
        try c.encode(customerCap, forKey: .customerCap)
        try c.encode(Double(customerWindowMillis) / Double(Self.day), forKey: .customerWindowDays)
        try c.encode(Double(cooldownMillis) / Double(Self.minute), forKey: .cooldownMinutes)
    }
}
