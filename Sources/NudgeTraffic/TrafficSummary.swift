import NudgeEvents

/// Counts of generated messages per topic and event, plus noise, for the CLI's summary line.
/// Recording is a few integer increments.
public struct TrafficSummary: Sendable, CustomStringConvertible {
    /// All messages, duplicates and malformed ones included.
    public private(set) var total = 0
    /// Deliberately broken messages.
    public private(set) var malformed = 0
    /// Byte-identical repeats of earlier messages.
    public private(set) var duplicates = 0
    /// Messages whose timestamp is behind one emitted earlier.
    public private(set) var outOfOrder = 0
    private var perTopic = [Int](repeating: 0, count: TrafficTopic.allCases.count)
    private var perKind = [Int](repeating: 0, count: EventKind.allCases.count)

    /// An empty summary.
    public init() {}

    /// Counts one message.
    public mutating func record(_ message: GeneratedMessage) {
        total += 1
        if message.isMalformed { malformed += 1 }
        if message.isDuplicate { duplicates += 1 }
        if message.isOutOfOrder { outOfOrder += 1 }
        perTopic[message.topic.index] += 1
        if let kind = message.kind { perKind[Int(kind.rawValue)] += 1 }
    }

    /// Messages on `topic`.
    public func count(_ topic: TrafficTopic) -> Int {
        perTopic[topic.index]
    }

    /// Well-formed messages of `kind` (duplicates included; `malformed` counts the broken ones).
    public func count(_ kind: EventKind) -> Int {
        perKind[Int(kind.rawValue)]
    }

    /// A few lines: totals, per topic, then every event name seen, most frequent first.
    public var description: String {
        var lines = ["\(total) messages: \(malformed) malformed, \(duplicates) duplicates, \(outOfOrder) out of order"]
        for topic in TrafficTopic.allCases {
            lines.append("  \(topic.rawValue): \(count(topic))")
        }
        let seen = EventKind.allCases
            .filter { count($0) > 0 }
            .sorted { count($0) != count($1) ? count($0) > count($1) : $0.rawValue < $1.rawValue }
        for kind in seen {
            lines.append("  \(kind.wireName): \(count(kind))")
        }
        return lines.joined(separator: "\n")
    }
}
