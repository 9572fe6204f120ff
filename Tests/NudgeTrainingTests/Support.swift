import NudgeEvents
import NudgeTraining
import NudgeTraffic

enum Time {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    /// 2026-01-01T00:00:00Z, a UTC midnight.
    static let t0: Int64 = 1_767_225_600_000
}

/// Builds Segment JSON lines by hand, each with a fresh messageId unless one is given.
struct History {
    private(set) var lines: [String] = []
    private var counter = 0

    /// A track event of `customer` (userId) at `time`.
    mutating func track(_ event: String, _ customer: String, at time: Int64, channel: String = "web",
                        properties: String = "{}", messageId: String? = nil) {
        counter += 1
        let id = messageId ?? "m-\(counter)"
        lines.append(#"{"type":"track","event":"\#(event)","messageId":"\#(id)","userId":"\#(customer)","timestamp":"\#(ISO8601Time.format(millis: time))","channel":"\#(channel)","properties":\#(properties)}"#)
    }

    /// A page view of an anonymous visitor.
    mutating func anonymousPage(_ anonymousId: String, at time: Int64) {
        counter += 1
        lines.append(#"{"type":"page","messageId":"m-\#(counter)","anonymousId":"\#(anonymousId)","timestamp":"\#(ISO8601Time.format(millis: time))","channel":"web"}"#)
    }

    /// An order with `revenue`.
    mutating func order(_ customer: String, at time: Int64, revenue: Double = 50) {
        track("Order Completed", customer, at: time, properties: #"{"revenue":\#(revenue)}"#)
    }

    /// An outcome event of an offer.
    mutating func outcome(_ event: String, _ customer: String, at time: Int64, recommendation: String,
                          action: String = "cart_reminder", channel: String = "push") {
        track(event, customer, at: time, channel: channel,
              properties: #"{"recommendation_id":"\#(recommendation)","action":"\#(action)"}"#)
    }

    /// An `identify` linking `anonymousId` to `customer`.
    mutating func identify(_ customer: String, anonymousId: String, at time: Int64) {
        counter += 1
        lines.append(#"{"type":"identify","messageId":"m-\#(counter)","userId":"\#(customer)","anonymousId":"\#(anonymousId)","timestamp":"\#(ISO8601Time.format(millis: time))","channel":"web"}"#)
    }

    /// A raw line (malformed input, duplicates).
    mutating func raw(_ line: String) { lines.append(line) }
}

/// Feeds lines to a builder in order and finishes it.
func replay(_ lines: [String], config: DatasetConfig) -> PointInTimeDataset {
    let builder = PointInTimeDatasetBuilder(config: config)
    for line in lines {
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { builder.consume($0) }
    }
    return builder.finish()
}

extension SplitMix64 {
    /// A standard normal draw (Box-Muller).
    mutating func normal() -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
