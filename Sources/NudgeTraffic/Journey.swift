/// Where a journey stands: the next event it will emit. One enum covers every journey kind, so
/// a single switch dispatches a step.
enum JourneyStage: UInt8 {
    // Online session (clickstream, ending in `Order Completed` on transactions when it converts).
    case landing, search, list, view, add, remove, wishlist, cartView, coupon, checkout, order
    // In-store purchase: a single `Order Completed` on channel `store`.
    case storeOrder
    // Order follow-ups, hours or days after an order.
    case cancel, refund, purchaseSurvey
    // Service journey: ticket, optional complaint, close, optional refund and survey.
    case ticketOpened, complaint, ticketClosed, serviceRefund, serviceSurvey
    // Offer journey on the outcomes topic.
    case offerDelivered, offerViewed, offerAccepted, offerDismissed
}

/// Up to four cart lines packed into two words, so a journey stays a small value with no
/// per-event allocation.
struct Cart {
    static let capacity = 4
    private var products: UInt64 = 0
    private var quantities: UInt32 = 0
    private(set) var count = 0

    /// Product index and quantity of line `line` (0-based, below `count`).
    func item(_ line: Int) -> (product: Int, quantity: Int) {
        let product = Int(truncatingIfNeeded: (products >> UInt64(line * 16)) & 0xFFFF)
        let quantity = Int(truncatingIfNeeded: (quantities >> UInt32(line * 8)) & 0xFF)
        return (product, quantity)
    }

    /// Adds a line, or raises the quantity of an existing line of the same product (also when full).
    mutating func add(product: Int, quantity: Int) {
        for line in 0..<count where item(line).product == product {
            setQuantity(line, min(99, item(line).quantity + quantity))
            return
        }
        guard count < Self.capacity else {
            setQuantity(count - 1, min(99, item(count - 1).quantity + quantity))
            return
        }
        products |= UInt64(product & 0xFFFF) << UInt64(count * 16)
        quantities |= UInt32(quantity & 0xFF) << UInt32(count * 8)
        count += 1
    }

    /// Removes and returns the last line.
    mutating func removeLast() -> (product: Int, quantity: Int)? {
        guard count > 0 else { return nil }
        let last = item(count - 1)
        count -= 1
        products &= ~(0xFFFF << UInt64(count * 16))
        quantities &= ~(0xFF << UInt32(count * 8))
        return last
    }

    private mutating func setQuantity(_ line: Int, _ quantity: Int) {
        quantities &= ~(0xFF << UInt32(line * 8))
        quantities |= UInt32(quantity & 0xFF) << UInt32(line * 8)
    }
}

/// One customer's journey in progress: its stage plus what later events of it need to repeat
/// (ids, cart, amounts). Plain values only, so the queue stores journeys inline.
struct Journey {
    var stage: JourneyStage
    /// 0-based customer index (`c-<customer+1>` on the wire).
    var customer: Int
    var channel: TrafficChannel
    /// Non-zero for a session that began anonymous: the device's anonymousId.
    var anonymousId: UInt64 = 0
    /// The anonymous session has sent its `identify`; later events carry the userId too.
    var identified = false
    /// Anonymous events to send before the `identify`.
    var identifyAfter = 0
    /// Events emitted so far by this journey.
    var steps = 0
    /// A page/screen view is due before the stage's own event.
    var pageDue = false
    /// Purchase propensity multiplier fixed at the start of the session.
    var conversion = 1.0
    /// Session number of the customer (names the cart: `k-<customer>-<session>`).
    var session: UInt64 = 0
    var category = 0
    var product = 0
    var views = 0
    var cart = Cart()
    /// Coupon index + 1 once a coupon was applied.
    var coupon = 0
    /// Order, ticket or recommendation sequence number this journey refers to.
    var reference: UInt64 = 0
    /// Order total in cents (follow-ups repeat it).
    var amountCents: Int64 = 0
    /// Ticket subject index, or offer action raw value.
    var subject = 0
    /// Ticket resolution index, or whether the offer will be accepted (1) or dismissed (2).
    var outcome = 0
    /// Order the service journey is about (0 when none).
    var order: UInt64 = 0

    init(stage: JourneyStage, customer: Int, channel: TrafficChannel) {
        self.stage = stage
        self.customer = customer
        self.channel = channel
    }
}

/// Journeys waiting for their next event, in event-time order: a binary min-heap of small
/// entries over a slab of journeys with a free list. After warm-up it allocates nothing.
struct JourneyQueue {
    private struct Entry {
        var time: Int64
        /// Insertion order: breaks ties so the order is deterministic.
        var sequence: UInt64
        var slot: Int
    }

    private var heap: [Entry] = []
    private(set) var journeys: [Journey] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0

    init(capacity: Int) {
        heap.reserveCapacity(capacity)
        journeys.reserveCapacity(capacity)
        freeSlots.reserveCapacity(capacity)
    }

    var isEmpty: Bool { heap.isEmpty }

    /// Time of the earliest pending event; `Int64.max` when nothing is pending.
    var nextTime: Int64 { heap.first?.time ?? .max }

    var pendingCount: Int { heap.count }

    /// Stores a new journey whose next event happens at `time`.
    mutating func add(_ journey: Journey, at time: Int64) {
        let slot: Int
        if let reused = freeSlots.popLast() {
            journeys[reused] = journey
            slot = reused
        } else {
            journeys.append(journey)
            slot = journeys.count - 1
        }
        push(slot: slot, at: time)
    }

    /// Takes the earliest journey out of the heap (its slot stays reserved for `reschedule` or `finish`).
    mutating func popEarliest() -> (time: Int64, slot: Int)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return (top.time, top.slot)
    }

    func journey(at slot: Int) -> Journey {
        journeys[slot]
    }

    /// Stores the journey's new state and its next event time.
    mutating func reschedule(_ journey: Journey, slot: Int, at time: Int64) {
        journeys[slot] = journey
        push(slot: slot, at: time)
    }

    /// Frees the slot of a journey that has ended.
    mutating func finish(slot: Int) {
        freeSlots.append(slot)
    }

    private mutating func push(slot: Int, at time: Int64) {
        sequence &+= 1
        heap.append(Entry(time: time, sequence: sequence, slot: slot))
        siftUp(heap.count - 1)
    }

    @inline(__always)
    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let moving = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(moving, heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = moving
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let moving = heap[parent]
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            guard child < count else { break }
            if child + 1 < count && precedes(heap[child + 1], heap[child]) { child += 1 }
            guard precedes(heap[child], moving) else { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = moving
    }
}
