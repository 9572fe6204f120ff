import NudgeEvents

/// What asked for a decision.
public enum TriggerKind: UInt8, Sendable {
    /// An incoming event (see `DecisionTriggers`).
    case event
    /// An event-time timer, e.g. a cart abandoned for 30 minutes.
    case timer

    /// `event` or `timer`, as the contract writes it.
    public var wireName: String {
        switch self {
        case .event: "event"
        case .timer: "timer"
        }
    }
}

/// The trigger of a decision, as recommendations report it (`trigger` object), and what its
/// `recommendation_id` is derived from. Holds borrowed views of id bytes: valid only while the
/// caller's bytes are.
public struct Trigger {
    /// Event or timer.
    public var kind: TriggerKind
    /// The event's wire name (`Ticket Opened`) or the timer's name (`Cart Abandoned`).
    public var name: String
    /// An event's `messageId` (UTF-8 bytes of the decoded string); empty for a timer, which no
    /// single message caused (written as `"message_id":null`).
    public var messageId: UnsafeRawBufferPointer
    /// A timer's customer id bytes; empty for an event.
    public var customerId: UnsafeRawBufferPointer
    /// A timer's deadline (event time, Unix ms); 0 for an event.
    public var deadlineMillis: Int64

    /// An incoming event of kind `event` with id `messageId`.
    public static func event(_ event: EventKind, messageId: UnsafeRawBufferPointer) -> Trigger {
        Trigger(kind: .event, name: event.wireName, messageId: messageId, customerId: UnsafeRawBufferPointer(start: nil, count: 0),
                deadlineMillis: 0)
    }

    /// A timer named `name` (e.g. `Cart Abandoned`) of customer `customerId` that fired at event time
    /// `deadlineMillis`. The customer and deadline identify the firing, so a replay that fires it again
    /// gets the same `recommendation_id`.
    public static func timer(_ name: String, customerId: UnsafeRawBufferPointer, deadlineMillis: Int64) -> Trigger {
        Trigger(kind: .timer, name: name, messageId: UnsafeRawBufferPointer(start: nil, count: 0), customerId: customerId,
                deadlineMillis: deadlineMillis)
    }
}
