import NudgeEvents

/// One recommendation sent to a customer.
public struct Contact: Sendable, Equatable {
    /// Event time of the decision, in milliseconds since the epoch.
    public var atMillis: Int64
    /// The channel it went out on.
    public var channel: Channel
    /// Index of the action in the NBA model at the time.
    public var action: UInt8

    /// Creates a contact record.
    public init(atMillis: Int64, channel: Channel, action: UInt8) {
        self.atMillis = atMillis
        self.channel = channel
        self.action = action
    }
}

/// The last few recommendations made to a customer, kept by the feature store beside the
/// features. A plain value of fixed size (61 bytes, no references) so that the store holds
/// one per customer without allocation and can copy it into snapshots byte for byte.
///
/// When full, a new contact replaces the oldest by event time (a contact older than all
/// kept ones is dropped). That never changes a policy answer as long as caps are at most
/// `capacity` and the channel window is no longer than the customer window (``ContactPolicy``
/// refuses others): if the dropped contact were inside a window, all kept (newer) ones would be
/// inside the customer window, and the customer cap would already be reached.
public struct ContactHistory: Sendable, Equatable {
    /// How many contacts are kept.
    public static let capacity = 6

    // Homogeneous tuples have the layout of C arrays (Swift ABI), which the raw accessors rely on.
    private var times: (Int64, Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0, 0)
    private var channels: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
    private var actions: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
    private var used: UInt8 = 0

    /// No contacts.
    public init() {}

    /// The number of contacts kept (bounded even if the bytes came from a damaged snapshot).
    public var count: Int { min(Int(used), Self.capacity) }

    /// Contact `i` for `0 <= i < count`, in no particular order; nil otherwise.
    public func contact(at i: Int) -> Contact? {
        guard i >= 0, i < count else { return nil }
        return Contact(atMillis: time(i), channel: channel(i), action: action(i))
    }

    /// Remembers a recommendation made at event time `atMillis`.
    public mutating func record(atMillis: Int64, channel: Channel, action: UInt8) {
        var slot = count
        if slot == Self.capacity {
            slot = 0
            for i in 1..<Self.capacity where time(i) < time(slot) { slot = i }
            guard atMillis >= time(slot) else { return }
        } else {
            used += 1
        }
        withUnsafeMutableBytes(of: &times) { $0.storeBytes(of: atMillis, toByteOffset: slot * 8, as: Int64.self) }
        withUnsafeMutableBytes(of: &channels) { $0[slot] = channel.rawValue }
        withUnsafeMutableBytes(of: &actions) { $0[slot] = action }
    }

    /// Remembers `decision` if it recommends an action on a channel; "none" is not a contact.
    public mutating func record(_ decision: Decision, atMillis: Int64) {
        guard let index = decision.actionIndex, let channel = decision.channel else { return }
        record(atMillis: atMillis, channel: channel, action: UInt8(clamping: index))
    }

    /// How many contacts (on `channel`, or on any channel when nil) have an event time after
    /// `cutoffMillis`. Contacts later than the deciding event count too: they were already
    /// delivered, and an out-of-order event must not slip past a cap.
    public func contacts(after cutoffMillis: Int64, on channel: Channel? = nil) -> Int {
        var n = 0
        for i in 0..<count where time(i) > cutoffMillis {
            if let channel, self.channel(i) != channel { continue }
            n += 1
        }
        return n
    }

    /// The contact with the latest event time, or nil when there is none.
    public var latest: Contact? {
        guard count > 0 else { return nil }
        var best = 0
        for i in 1..<count where time(i) > time(best) { best = i }
        return contact(at: best)
    }

    private func time(_ i: Int) -> Int64 {
        withUnsafeBytes(of: times) { $0.load(fromByteOffset: i * 8, as: Int64.self) }
    }

    private func channel(_ i: Int) -> Channel {
        Channel(rawValue: withUnsafeBytes(of: channels) { $0[i] }) ?? .other
    }

    private func action(_ i: Int) -> UInt8 {
        withUnsafeBytes(of: actions) { $0[i] }
    }

    /// Equal when the same contacts sit in the same slots.
    public static func == (lhs: ContactHistory, rhs: ContactHistory) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for i in 0..<lhs.count {
            if lhs.time(i) != rhs.time(i) || lhs.channel(i) != rhs.channel(i) || lhs.action(i) != rhs.action(i) {
                return false
            }
        }
        return true
    }
}

extension ContactHistory {
    /// Adds another history's contacts (identity stitching: what was sent to the anonymous visitor counts
    /// toward the known customer's caps); when more than ``capacity`` result, the newest are kept.
    public mutating func absorb(_ other: ContactHistory) {
        for i in 0..<other.count {
            guard let contact = other.contact(at: i) else { continue }
            record(atMillis: contact.atMillis, channel: contact.channel, action: contact.action)
        }
    }
}
