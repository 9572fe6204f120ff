import NudgeEvents

/// A deliberate defect in an event's envelope (for malformed messages).
enum EnvelopeFault {
    case none
    /// Neither userId nor anonymousId.
    case missingIds
    /// `"timestamp":"yesterday"`.
    case badTimestamp
    /// `"type":"alias"`: a Segment type the contract does not accept.
    case unknownType
}

/// JSON writing: the Segment envelope and the property fields, straight into the reusable buffer.
///
/// Every event has the contract's shape and key order:
/// `{"type":"track","event":"Product Added","messageId":"m-2a-17","userId":"c-1042",
/// "anonymousId":"a-77e1…","timestamp":"2026-11-23T10:15:02.120Z","channel":"web","properties":{…}}`.
/// Strings written here never need escaping: they are literals or digits.
extension TrafficEngine {
    /// Starts a world event of `kind` for the journey at simulated `time`, deciding whether it
    /// arrives late. `pageName` names a page or screen.
    mutating func beginEvent(_ kind: EventKind, for journey: Journey, at time: Int64,
                             pageName: StaticString = "Home") {
        var stamp = time
        currentOutOfOrder = false
        if config.outOfOrderRate > 0 && noise.chance(config.outOfOrderRate) {
            // Behind everything emitted so far, so it is out of order whatever came just before.
            stamp = latestStamp - 1 - noise.between(0, config.maxLatenessMillis)
            currentOutOfOrder = true
        } else {
            latestStamp = max(latestStamp, time)
        }
        currentKind = kind
        currentStamp = stamp
        let known = journey.anonymousId == 0 || journey.identified || kind == .identify
        messages += 1
        writeEnvelope(kind, name: pageName, messageNumber: messages, noiseId: false,
                      customer: journey.customer, userId: known, anonymousId: journey.anonymousId,
                      stamp: stamp, channel: journey.channel, fault: .none)
    }

    /// Writes everything up to and including the opening brace of `properties` (or `traits`),
    /// and the key.
    mutating func writeEnvelope(_ kind: EventKind, name: StaticString, messageNumber: UInt64,
                                noiseId: Bool, customer: Int, userId: Bool, anonymousId: UInt64,
                                stamp: Int64, channel: TrafficChannel, fault: EnvelopeFault) {
        value.reset()
        key.reset()
        value.append("{\"type\":\"")
        let type = Self.segmentType(of: kind)
        if fault == .unknownType {
            value.append("alias")
        } else {
            value.append(names.name(of: type))
        }
        switch type {
        case .page, .screen:
            value.append("\",\"name\":\"")
            value.append(name)
        case .identify:
            break
        case .track:
            value.append("\",\"event\":\"")
            value.append(names.name(of: kind))
        }
        value.append("\",\"messageId\":\"m-")
        value.append(idPrefix.bytes)
        if noiseId { value.append(UInt8(ascii: "x")) }
        value.appendDecimal(messageNumber)
        value.append(UInt8(ascii: "\""))
        if fault != .missingIds {
            if userId {
                value.append(",\"userId\":\"")
                writeCustomerId(customer, into: &value)
                value.append(UInt8(ascii: "\""))
                writeCustomerId(customer, into: &key)
            }
            if anonymousId != 0 {
                value.append(",\"anonymousId\":\"")
                writeAnonymousId(anonymousId, into: &value)
                value.append(UInt8(ascii: "\""))
                if !userId { writeAnonymousId(anonymousId, into: &key) }
            }
        }
        value.append(",\"timestamp\":\"")
        if fault == .badTimestamp {
            value.append("yesterday")
        } else {
            value.appendTimestamp(stamp)
        }
        value.append(UInt8(ascii: "\""))
        writeChannel(channel)
        value.append(kind == .identify ? ",\"traits\":{" : ",\"properties\":{")
    }

    /// `,"channel":"<name>"`, or nothing when the field is missing.
    @inline(__always)
    private mutating func writeChannel(_ channel: TrafficChannel) {
        switch channel {
        case .known(let known):
            value.append(",\"channel\":\"")
            value.append(names.name(of: known))
        case .unknown(let unknown):
            value.append(",\"channel\":\"")
            value.append(unknown.literal)
        case .missing:
            return
        }
        value.append(UInt8(ascii: "\""))
    }

    /// The Segment message type an event of `kind` is sent as.
    private static func segmentType(of kind: EventKind) -> SegmentType {
        switch kind {
        case .page: .page
        case .screen: .screen
        case .identify: .identify
        default: .track
        }
    }

    /// Closes `properties` and the event.
    @inline(__always)
    mutating func endEvent() {
        value.append("}}")
    }

    func writeCustomerId(_ customer: Int, into out: inout ByteWriter) {
        out.append("c-")
        out.appendDecimal(UInt64(customer + 1))
    }

    func writeAnonymousId(_ id: UInt64, into out: inout ByteWriter) {
        out.append("a-")
        out.appendHex(id, digits: 12)
    }

    // MARK: Property fields

    /// Writes `"name":`, preceded by a comma unless it is the first field of the object.
    @inline(__always)
    mutating func field(_ name: StaticString) {
        if let last = value.bytes.last, last != UInt8(ascii: "{") {
            value.append(UInt8(ascii: ","))
        }
        value.append(UInt8(ascii: "\""))
        value.append(name)
        value.append("\":")
    }

    mutating func string(_ name: StaticString, _ text: StaticString) {
        field(name)
        value.append(UInt8(ascii: "\""))
        value.append(text)
        value.append(UInt8(ascii: "\""))
    }

    mutating func integer(_ name: StaticString, _ number: Int64) {
        field(name)
        value.appendDecimal(number)
    }

    mutating func money(_ name: StaticString, _ cents: Int64) {
        field(name)
        value.appendCents(cents)
    }

    /// An id of the form `<prefix><customer number>-<sequence>` (`o-1042-7`).
    mutating func reference(_ name: StaticString, _ prefix: StaticString, customer: Int, sequence: UInt64) {
        field(name)
        value.append(UInt8(ascii: "\""))
        value.append(prefix)
        value.appendDecimal(UInt64(customer + 1))
        value.append(UInt8(ascii: "-"))
        value.appendDecimal(sequence)
        value.append(UInt8(ascii: "\""))
    }

    /// `recommendation_id`: `r-<seed hex>-<n>`, unique across the stream.
    mutating func recommendationId(_ number: UInt64) {
        field("recommendation_id")
        value.append("\"r-")
        value.append(idPrefix.bytes)
        value.appendDecimal(number)
        value.append(UInt8(ascii: "\""))
    }

    mutating func category(_ index: Int) {
        string("category", Catalog.categories[index])
    }

    /// `product_id`, `category`, `price` (and `quantity` when positive) of one product.
    mutating func productFields(_ product: Int, quantity: Int, currency: Currency) {
        field("product_id")
        value.append("\"p-")
        value.appendDecimal(Catalog.productNumber(product))
        value.append(UInt8(ascii: "\""))
        category(Catalog.category(of: product))
        money("price", catalog.price(of: product, in: currency))
        if quantity > 0 { integer("quantity", Int64(quantity)) }
    }

    /// `currency`, written always for orders and only when not the USD default for product events.
    mutating func currency(_ currency: Currency, always: Bool) {
        if always || currency != .usd { string("currency", currency.literal) }
    }

    /// `"products":[{…},…]` for the cart's lines.
    mutating func products(_ cart: Cart, currency: Currency) {
        field("products")
        value.append(UInt8(ascii: "["))
        for line in 0..<cart.count {
            if line > 0 { value.append(UInt8(ascii: ",")) }
            value.append(UInt8(ascii: "{"))
            let item = cart.item(line)
            productFields(item.product, quantity: item.quantity, currency: currency)
            value.append(UInt8(ascii: "}"))
        }
        value.append(UInt8(ascii: "]"))
    }

    /// Sum of price × quantity over the cart, in the customer's currency.
    func subtotal(_ cart: Cart, currency: Currency) -> Int64 {
        var sum: Int64 = 0
        for line in 0..<cart.count {
            let item = cart.item(line)
            sum += catalog.price(of: item.product, in: currency) * Int64(item.quantity)
        }
        return sum
    }
}
