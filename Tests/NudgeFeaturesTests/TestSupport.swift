import NudgeEvents
import NudgeFeatures

/// Owns the bytes behind test RawTexts (RawText only borrows memory).
final class TextPool {
    /// Keyed by bytes, not String: String equality is canonical ("ü" == "u\u{308}"), ids are bytes.
    private var buffers: [[UInt8]: UnsafeMutableRawBufferPointer] = [:]

    func text(_ string: String) -> RawText {
        let utf8 = Array(string.utf8)
        let buffer: UnsafeMutableRawBufferPointer
        if let existing = buffers[utf8] {
            buffer = existing
        } else {
            buffer = .allocate(byteCount: max(utf8.count, 1), alignment: 1)
            buffer.copyBytes(from: utf8)
            buffers[utf8] = buffer
        }
        var text = RawText.empty
        text.bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<utf8.count])
        return text
    }

    private var propertyBuffers: [UnsafeMutableBufferPointer<PropertyValue>] = []

    /// `values` in memory that lives as long as the pool.
    func properties(_ values: [PropertyValue]) -> EventProperties {
        guard !values.isEmpty else { return .none }
        let buffer = UnsafeMutableBufferPointer<PropertyValue>.allocate(capacity: values.count)
        _ = buffer.initialize(from: values)
        propertyBuffers.append(buffer)
        return EventProperties(UnsafeBufferPointer(buffer))
    }

    deinit {
        for buffer in buffers.values { buffer.deallocate() }
        for buffer in propertyBuffers { buffer.deallocate() }
    }
}

/// One test event in plain values, convertible to a SegmentEvent.
struct TestEvent {
    var customer: String
    var kind: EventKind
    var channel: Channel = .web
    var time: Int64
    var amount: Double = 0
    var score: Double = .nan
    var category = ""
    var productId = ""
    /// `properties.payment_method` (text; empty: absent).
    var payment = ""
    /// `properties.items` (a number; NaN: absent).
    var items: Double = .nan

    /// `items` as the decoder gives a number's text: its digits (here Swift's rendering), empty when absent.
    var itemsText: String { items.isNaN ? "" : String(items) }

    /// The event's value of `properties.<name>`, as the decoder would give it.
    func property(_ name: String) -> (text: String, number: Double) {
        switch name {
        case "payment_method": (payment, .nan)
        case "items": (itemsText, items)
        default: ("", .nan)
        }
    }
}

/// A CustomerTable plus the memory behind the events fed to it, addressed by customer name.
final class TestShop {
    let table: CustomerTable
    let pool = TextPool()

    init(_ features: FeatureSet = .standard, expectedCustomers: Int = 16,
         coldBudgetBytes: Int = CustomerTable.defaultColdBudgetBytes) {
        table = CustomerTable(features: features, expectedCustomers: expectedCustomers, coldBudgetBytes: coldBudgetBytes)
    }

    init(table: CustomerTable) { self.table = table }

    func segmentEvent(_ event: TestEvent) -> SegmentEvent {
        var segment = SegmentEvent()
        segment.kind = event.kind
        segment.channel = event.channel
        segment.timestampMillis = event.time
        segment.userId = pool.text(event.customer)
        segment.amount = event.amount
        segment.score = event.score
        segment.category = event.category.isEmpty ? .empty : pool.text(event.category)
        segment.productId = event.productId.isEmpty ? .empty : pool.text(event.productId)
        // The slots the table reads, in the set's order, as a decoder built for it fills them.
        segment.properties = pool.properties(table.features.readProperties.map { name in
            let (text, number) = event.property(name)
            return PropertyValue(name: pool.text(name), text: text.isEmpty ? .empty : pool.text(text), number: number)
        })
        return segment
    }

    func send(_ event: TestEvent) {
        let segment = segmentEvent(event)
        table.apply(segment, to: table.slot(for: segment.customerId))
    }

    func send(_ kind: EventKind, at time: Int64, for customer: String = "c-1", channel: Channel = .web,
              amount: Double = 0, score: Double = .nan, category: String = "", productId: String = "") {
        send(TestEvent(customer: customer, kind: kind, channel: channel, time: time, amount: amount, score: score,
                       category: category, productId: productId))
    }

    func slot(_ customer: String) -> CustomerSlot? { table.existingSlot(for: pool.text(customer)) }

    /// All feature values of `customer` at `time`, in FeatureSet order.
    func values(_ customer: String = "c-1", at time: Int64) -> [Double] {
        var output = [Double](repeating: .nan, count: table.features.count)
        guard let slot = slot(customer) else { return output }
        output.withUnsafeMutableBufferPointer { table.evaluate(slot, atMillis: time, into: $0) }
        return output
    }

    /// One named feature of `customer` at `time`.
    func value(_ name: String, _ customer: String = "c-1", at time: Int64) -> Double {
        guard let index = table.features.index(of: name) else { return .nan }
        return values(customer, at: time)[index]
    }
}

enum Time {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    /// 2026-01-01T00:00:00Z: a multiple of every standard resolution (1m, 5m, 1h, 6h, 1d, 3d).
    static let t0: Int64 = 1_767_225_600_000
}
