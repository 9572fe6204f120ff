import NudgeEvents

/// The ways a malformed message is broken, drawn in equal parts.
enum MalformedKind: Int, CaseIterable {
    /// A valid event cut short.
    case truncated
    /// Not JSON at all (an HTTP line, CSV, XML, binary).
    case notJSON
    /// Neither userId nor anonymousId.
    case missingIds
    /// `"timestamp":"yesterday"`.
    case badTimestamp
    /// A number sent as a string: `"price":"abc"` or `"total":"abc"`.
    case wrongType
    /// `"type":"alias"`.
    case unknownType
}

/// Malformed messages: they come from the noise stream and never touch the simulated world.
extension TrafficEngine {
    private static let notJSON: [StaticString] = [
        "GET /v1/track?event=Product%20Viewed HTTP/1.1",
        "Product Viewed,c-17,59.90,2026-11-23",
        "<event name=\"Product Viewed\" user=\"c-17\"/>",
        "\u{7}\u{1}\u{0}\u{2}binary\u{0}",
    ]

    mutating func emitMalformed() -> GeneratedMessage {
        let kind = MalformedKind(rawValue: noise.below(MalformedKind.allCases.count)) ?? .notJSON
        let customer = noise.below(customers.count)
        let asOrder = noise.chance(0.3)
        let time = now
        malformedMessages += 1
        if kind == .notJSON {
            value.reset()
            key.reset()
            value.append(Self.notJSON[noise.below(Self.notJSON.count)])
            writeCustomerId(customer, into: &key)
        } else {
            let fault: EnvelopeFault = switch kind {
            case .missingIds: .missingIds
            case .badTimestamp: .badTimestamp
            case .unknownType: .unknownType
            default: .none
            }
            writeEnvelope(asOrder ? .orderCompleted : .productViewed, name: "", messageNumber: malformedMessages,
                          noiseId: true, customer: customer, userId: true, anonymousId: 0,
                          stamp: time, channel: .known(asOrder ? .store : .web), fault: fault)
            let product = noise.below(Catalog.productCount)
            let price = catalog.price(of: product, in: .usd)
            if asOrder {
                reference("order_id", "o-", customer: customer, sequence: 0)
                if kind == .wrongType { string("total", "abc") } else { money("total", price) }
                currency(.usd, always: true)
            } else {
                field("product_id")
                value.append("\"p-")
                value.appendDecimal(Catalog.productNumber(product))
                value.append(UInt8(ascii: "\""))
                if kind == .wrongType { string("price", "abc") } else { money("price", price) }
            }
            endEvent()
            if kind == .truncated {
                // Any proper prefix of a JSON object is invalid: the closing brace is missing at least.
                value.truncate(to: 1 + noise.below(value.count - 2))
            }
        }
        return GeneratedMessage(
            topic: asOrder && kind != .notJSON ? .transactions : .clickstream, kind: nil,
            key: key.bytes, value: value.bytes, eventTimeMillis: time,
            isMalformed: true, isDuplicate: false, isOutOfOrder: false)
    }
}

/// Messages held back to be emitted again a few messages later with the same bytes, as an
/// at-least-once producer re-sends after a lost acknowledgement. Fixed slots with their own
/// buffers: holding a copy allocates nothing once the buffers are warm.
struct DuplicateQueue {
    private struct Slot {
        var value = ByteWriter(capacity: 1_024)
        var key = ByteWriter(capacity: 32)
        var topic = TrafficTopic.clickstream
        var kind: EventKind?
        var eventTime: Int64 = 0
        var outOfOrder = false
        var due = 0
        var busy = false
    }

    private var slots: [Slot]
    private var pending = 0

    init(slots count: Int) {
        slots = (0..<count).map { _ in Slot() }
    }

    func release() {
        for slot in slots {
            slot.value.release()
            slot.key.release()
        }
    }

    /// Copies `message` to re-emit it once `generated` reaches `due`; dropped when all slots are busy.
    mutating func hold(_ message: GeneratedMessage, due: Int) {
        guard pending < slots.count, let index = slots.firstIndex(where: { !$0.busy }) else { return }
        slots[index].value.reset()
        slots[index].value.append(message.value)
        slots[index].key.reset()
        slots[index].key.append(message.key)
        slots[index].topic = message.topic
        slots[index].kind = message.kind
        slots[index].eventTime = message.eventTimeMillis
        slots[index].outOfOrder = message.isOutOfOrder
        slots[index].due = due
        slots[index].busy = true
        pending += 1
    }

    /// A held message whose turn has come, if any. Its bytes stay valid until the next call.
    mutating func takeDue(at generated: Int) -> GeneratedMessage? {
        guard pending > 0 else { return nil }
        for index in slots.indices where slots[index].busy && slots[index].due <= generated {
            slots[index].busy = false
            pending -= 1
            let slot = slots[index]
            return GeneratedMessage(
                topic: slot.topic, kind: slot.kind, key: slot.key.bytes, value: slot.value.bytes,
                eventTimeMillis: slot.eventTime, isMalformed: false, isDuplicate: true,
                isOutOfOrder: slot.outOfOrder)
        }
        return nil
    }
}
