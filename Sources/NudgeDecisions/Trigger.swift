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

/// The trigger of a decision, as recommendations report it (`trigger` object).
/// Holds a borrowed view of the message id: valid only while the caller's bytes are.
public struct Trigger {
    /// Event or timer.
    public var kind: TriggerKind
    /// The event's wire name (`Ticket Opened`) or the timer's name (`Cart Abandoned`).
    public var name: String
    /// The triggering message's `messageId` (for a timer: the message that armed it), as
    /// UTF-8 bytes of the decoded string.
    public var messageId: UnsafeRawBufferPointer

    /// Creates a trigger.
    public init(kind: TriggerKind, name: String, messageId: UnsafeRawBufferPointer) {
        self.kind = kind
        self.name = name
        self.messageId = messageId
    }

    /// An incoming event of kind `event` with id `messageId`.
    public static func event(_ event: EventKind, messageId: UnsafeRawBufferPointer) -> Trigger {
        Trigger(kind: .event, name: event.wireName, messageId: messageId)
    }

    /// A timer named `name` (e.g. `Cart Abandoned`), armed by message `messageId`.
    public static func timer(_ name: String, messageId: UnsafeRawBufferPointer) -> Trigger {
        Trigger(kind: .timer, name: name, messageId: messageId)
    }
}
