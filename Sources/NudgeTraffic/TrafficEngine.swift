import NudgeEvents

/// The simulation behind ``TrafficGenerator``: a discrete-event simulation of customer journeys.
///
/// Journeys (an online session, a store purchase, a service case, an offer, an order follow-up)
/// wait in a queue ordered by event time; each step emits exactly one event and schedules the
/// journey's next one. New journeys arrive as a Poisson process modulated by the hour of day,
/// each customer at a rate proportional to their current activity. The rate is calibrated
/// (from the events a journey produces on average) so that the stream averages
/// `meanGapMillis` between events over its first two months.
///
/// Two random streams keep the simulated world independent of injected noise: `world` drives
/// behaviour, `noise` drives out-of-order shifts, duplicates and malformed messages, so turning
/// noise on or off leaves the world's events (ids, names, order) unchanged.
struct TrafficEngine {
    let config: TrafficConfig
    var world: Xoshiro256StarStar
    var noise: Xoshiro256StarStar
    var customers: CustomerBook
    let catalog = Catalog()
    let profiles = TypeProfile.table
    var queue = JourneyQueue(capacity: 1_024)
    let names = WireNames()

    /// The message being written, and its key.
    var value = ByteWriter(capacity: 4_096)
    var key = ByteWriter(capacity: 64)
    /// `<seed hex>-`, the middle of every messageId and recommendation id.
    var idPrefix = ByteWriter(capacity: 32)
    var duplicates: DuplicateQueue

    /// Event time of the latest journey event.
    var now: Int64
    /// Largest timestamp written so far; late events are placed behind it.
    var latestStamp: Int64
    var nextArrivalAt: Int64
    var arrivals = 0
    /// Expected share of candidate arrivals that start a journey (see `acceptance(of:profiles:at:)`).
    let referenceAcceptance: Double
    var journeyEvents = 0
    /// Counters behind unique ids: world messageIds (`m-<seed>-<n>`), malformed ones
    /// (`m-<seed>-x<n>`, a separate series so noise leaves world ids alone), recommendation ids
    /// and anonymous devices.
    var messages: UInt64 = 0
    var malformedMessages: UInt64 = 0
    var recommendations: UInt64 = 0
    var anonymousDevices: UInt64 = 0
    private(set) var generated = 0
    private(set) var summary = TrafficSummary()

    /// Metadata of the event being written (set by `beginEvent`).
    var currentKind = EventKind.page
    var currentStamp: Int64 = 0
    var currentOutOfOrder = false

    /// Prior for the events one arrival produces, weighted as this many arrivals, until real counts dominate.
    private static let priorEventsPerArrival = 5.0
    private static let priorWeight = 200.0
    /// When the arrival rate is calibrated: mid-way through a typical two-month run.
    private static let calibrationDays: Int64 = 30

    init(_ requested: TrafficConfig) {
        var config = requested
        config.customers = min(max(1, config.customers), 10_000_000)
        config.meanGapMillis = max(1, config.meanGapMillis)
        config.maxLatenessMillis = max(1, config.maxLatenessMillis)
        config.outOfOrderRate = Self.clampRate(config.outOfOrderRate)
        config.duplicateRate = Self.clampRate(config.duplicateRate)
        config.malformedRate = Self.clampRate(config.malformedRate)
        config.anonymousShare = Self.clampRate(config.anonymousShare)
        config.outcomeRate = Self.clampRate(config.outcomeRate)
        self.config = config

        world = Xoshiro256StarStar(seed: config.seed, stream: 1)
        noise = Xoshiro256StarStar(seed: config.seed, stream: 2)
        customers = CustomerBook(count: config.customers, start: config.startMillis, random: &world)
        duplicates = DuplicateQueue(slots: 16)
        referenceAcceptance = Self.acceptance(
            of: customers, profiles: TypeProfile.table,
            at: config.startMillis + Self.calibrationDays * 86_400_000)
        now = config.startMillis
        latestStamp = config.startMillis
        nextArrivalAt = config.startMillis
        idPrefix.appendHex(config.seed)
        idPrefix.append(UInt8(ascii: "-"))
    }

    private static func clampRate(_ rate: Double) -> Double {
        rate.isNaN ? 0 : min(max(rate, 0), 1)
    }

    func release() {
        names.release()
        value.release()
        key.release()
        idPrefix.release()
        duplicates.release()
    }

    mutating func next() -> GeneratedMessage {
        generated += 1
        let message: GeneratedMessage
        if let repeated = duplicates.takeDue(at: generated) {
            message = repeated
        } else if config.malformedRate > 0 && noise.chance(config.malformedRate) {
            message = emitMalformed()
        } else {
            message = emitWorldEvent()
            if config.duplicateRate > 0 && noise.chance(config.duplicateRate) {
                duplicates.hold(message, due: generated + 1 + noise.below(24))
            }
        }
        summary.record(message)
        return message
    }

    /// Advances the simulation to its next event and writes it.
    private mutating func emitWorldEvent() -> GeneratedMessage {
        while true {
            if nextArrivalAt <= queue.nextTime {
                arrive()
                continue
            }
            guard let (time, slot) = queue.popEarliest() else { continue }
            now = time
            var journey = queue.journey(at: slot)
            if let nextTime = step(&journey, at: time) {
                journey.steps += 1
                queue.reschedule(journey, slot: slot, at: max(nextTime, time))
            } else {
                queue.finish(slot: slot)
            }
            journeyEvents += 1
            return GeneratedMessage(
                topic: TrafficTopic(carrying: currentKind), kind: currentKind, key: key.bytes, value: value.bytes,
                eventTimeMillis: currentStamp, isMalformed: false, isDuplicate: false,
                isOutOfOrder: currentOutOfOrder)
        }
    }

    /// Emits the journey's current event and returns when its next one happens (nil: it ended).
    private mutating func step(_ journey: inout Journey, at time: Int64) -> Int64? {
        switch journey.stage {
        case .landing, .search, .list, .view, .add, .remove, .wishlist, .cartView, .coupon, .checkout, .order:
            stepSession(&journey, at: time)
        case .storeOrder:
            stepStoreOrder(&journey, at: time)
        case .cancel, .refund, .purchaseSurvey:
            stepOrderFollowUp(&journey, at: time)
        case .ticketOpened, .complaint, .ticketClosed, .serviceRefund, .serviceSurvey:
            stepService(&journey, at: time)
        case .offerDelivered, .offerViewed, .offerAccepted, .offerDismissed:
            stepOffer(&journey, at: time)
        }
    }

    // MARK: Arrivals

    /// A candidate arrival: a uniformly drawn customer starts a journey with probability
    /// (hour weight) × (activity / max activity). This is the thinning of one Poisson process
    /// per customer, so each customer's rate follows their own activity: churned customers
    /// fade out and the shop gets quieter, rather than the survivors getting busier.
    private mutating func arrive() {
        let time = nextArrivalAt
        // Events each arrival has produced so far, so the arrival rate yields the configured event rate.
        let eventsPerArrival = (Self.priorEventsPerArrival * Self.priorWeight + Double(journeyEvents))
            / (Self.priorWeight + Double(arrivals))
        let candidateGap = Double(config.meanGapMillis) * eventsPerArrival * referenceAcceptance / DailyRhythm.peak
        nextArrivalAt = time + max(1, Int64(min(world.exponential(mean: candidateGap), 1.0e12)))
        guard world.chance(DailyRhythm.acceptance[DailyRhythm.hour(of: time)]) else { return }
        let customer = world.below(customers.count)
        let weight = profiles[Int(customers[customer].type.rawValue)].activity * customers.lifecycle(customer, at: time)
        guard world.unit() * TypeProfile.maxActivity < weight else { return }
        arrivals += 1
        startJourney(customer, at: time)
    }

    /// Share of candidate customers accepted at the reference time (`calibrationDays` in): the
    /// arrival rate is calibrated there, so the stream averages `meanGapMillis` over its first
    /// months and thins slowly afterwards as churned customers fall silent.
    static func acceptance(of customers: CustomerBook, profiles: [TypeProfile], at time: Int64) -> Double {
        var sum = 0.0
        for customer in 0..<customers.count {
            sum += profiles[Int(customers[customer].type.rawValue)].activity * customers.lifecycle(customer, at: time)
        }
        return max(1e-3, sum / Double(customers.count) / TypeProfile.maxActivity)
    }

    private mutating func startJourney(_ customer: Int, at time: Int64) {
        if world.chance(config.outcomeRate) {
            startOffer(customer, at: time)
            return
        }
        let profile = profile(of: customer)
        let draw = world.unit()
        if draw < profile.storeShare {
            let lifecycle = customers.lifecycle(customer, at: time)
            // A churning customer walks past the store: the visit becomes an online browse.
            let need = customers.orderNeed(customer, at: time, cycleDays: profile.orderCycleDays)
            if world.chance(profile.conversion * lifecycle * lifecycle * need) {
                queue.add(Journey(stage: .storeOrder, customer: customer, channel: decorate(.store)), at: time)
                return
            }
        } else if draw < profile.storeShare + profile.serviceShare {
            startService(customer, at: time, order: 0, amountCents: 0)
            return
        }
        startSession(customer, at: time, intent: false)
    }

    @inline(__always)
    func profile(of customer: Int) -> TypeProfile {
        profiles[Int(customers[customer].type.rawValue)]
    }

    /// The channel field of a journey on `channel`: for a small share of journeys an unknown
    /// string or no field instead.
    mutating func decorate(_ channel: Channel) -> TrafficChannel {
        let draw = world.unit()
        if draw < TrafficChannel.unknownShare {
            return .unknown(UnknownChannel.draw(using: &world))
        }
        if draw < TrafficChannel.unknownShare + TrafficChannel.missingShare { return .missing }
        return .known(channel)
    }

    /// A fresh, unique anonymousId: a bijection of a counter onto 48 bits, so ids look random
    /// but can never repeat within 2^48 sessions.
    mutating func nextAnonymousId() -> UInt64 {
        anonymousDevices += 1
        let mask: UInt64 = 0xFFFF_FFFF_FFFF
        var x = (anonymousDevices &+ config.seed) & mask
        x = (x &* 0x9E37_79B9_7F4B) & mask
        x ^= x >> 23
        x = (x &* 0xC2B2_AE3D_27D5) & mask
        // Zero marks "no anonymousId" inside a journey; the one counter that maps to 0 uses the mask instead.
        return x == 0 ? mask : x
    }
}

/// Relative traffic by hour of day (UTC): quiet nights, a lunchtime bump and an evening peak.
enum DailyRhythm {
    private static let weights: [Double] = [
        0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.50, 0.80, 1.00, 1.10, 1.20,
        1.30, 1.20, 1.10, 1.10, 1.20, 1.40, 1.60, 1.80, 1.90, 1.70, 1.20, 0.70,
    ]
    private static let mean = weights.reduce(0, +) / Double(weights.count)

    /// The peak hour's rate relative to the daily mean.
    static let peak = (weights.max() ?? 1) / mean

    /// Probability that a candidate arrival at each hour is kept.
    static let acceptance: [Double] = weights.map { $0 / (weights.max() ?? 1) }

    private static let millisPerDay: Int64 = 86_400_000

    /// Hour of the day (0-23, UTC) of a Unix millisecond instant, also before 1970.
    static func hour(of millis: Int64) -> Int {
        let inDay = millis % millisPerDay
        return Int((inDay < 0 ? inDay + millisPerDay : inDay) / 3_600_000)
    }
}
