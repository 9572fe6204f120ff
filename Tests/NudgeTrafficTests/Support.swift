import Foundation
import NudgeEvents
@testable import NudgeTraffic

/// A generated message with its bytes copied out of the generator's reusable buffers.
struct Captured {
    let index: Int
    let topic: TrafficTopic
    /// nil for a malformed message.
    let kind: EventKind?
    let key: [UInt8]
    let value: [UInt8]
    let time: Int64
    let malformed: Bool
    let duplicate: Bool
    let outOfOrder: Bool

    var keyText: String { String(decoding: key, as: UTF8.self) }
    var text: String { String(decoding: value, as: UTF8.self) }

    /// The value parsed by Foundation (independent of the generator's writer), nil when not a JSON object.
    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any]
    }
}

/// The first `count` messages of a generator built from `config`.
func capture(_ config: TrafficConfig, _ count: Int) -> [Captured] {
    let generator = TrafficGenerator(config)
    var out: [Captured] = []
    out.reserveCapacity(count)
    for index in 0..<count {
        let message = generator.next()
        out.append(Captured(
            index: index, topic: message.topic, kind: message.kind,
            key: Array(message.key), value: Array(message.value), time: message.eventTimeMillis,
            malformed: message.isMalformed, duplicate: message.isDuplicate, outOfOrder: message.isOutOfOrder))
    }
    return out
}

/// A config with `customers` customers at the default per-customer activity.
func config(seed: UInt64 = 42, customers: Int = 10_000) -> TrafficConfig {
    var config = TrafficConfig()
    config.seed = seed
    config.customers = customers
    config.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: customers)
    return config
}

/// Parses `2026-11-23T10:15:02.120Z` with Foundation, to milliseconds.
func parseTimestamp(_ text: String) -> Int64? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    guard let date = formatter.date(from: text) else { return nil }
    return Int64((date.timeIntervalSince1970 * 1_000).rounded())
}

/// Customer number of `c-<n>`.
func customerNumber(_ id: String) -> Int? {
    guard id.hasPrefix("c-") else { return nil }
    return Int(id.dropFirst(2))
}
