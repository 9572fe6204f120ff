import NudgeEvents

/// Store purchases, what follows an order (cancellation, refund, delivery trouble, survey) and
/// service cases: `Ticket Opened` → (`Complaint Filed`) → `Ticket Closed` → (`Order Refunded`)
/// → (`Survey Answered`), hours to days apart.
extension TrafficEngine {
    private static let hour: Int64 = 3_600_000
    private static let day: Int64 = 86_400_000

    /// Ticket subjects: the first four follow a delivered order, the others are spontaneous.
    private static let subjects: [StaticString] = [
        "late_delivery", "damaged_item", "missing_item", "wrong_item",
        "billing", "return_request", "product_question", "account_access",
    ]
    private static let resolutions: [StaticString] = ["resolved", "refunded", "unresolved"]
    private static let priorities: [StaticString] = ["low", "normal", "high"]

    // MARK: Store

    mutating func stepStoreOrder(_ journey: inout Journey, at time: Int64) -> Int64? {
        let lines = 1 + world.below(3)
        for _ in 0..<lines {
            let category = world.chance(0.6)
                ? customers[journey.customer].favoriteCategory
                : world.below(Catalog.categories.count)
            let product = category * Catalog.productsPerCategory + world.below(Catalog.productsPerCategory)
            journey.cart.add(product: product, quantity: world.chance(0.85) ? 1 : 2)
        }
        writeOrder(journey, at: time, store: true)
        return nil
    }

    // MARK: Order follow-ups

    /// After an order: at most one of a quick cancellation, delivery trouble (a ticket days
    /// later), a refund, or a satisfaction survey, with the customer type's rates.
    mutating func scheduleFollowUp(customer: Int, order: UInt64, total: Int64, at time: Int64, store: Bool) {
        let profile = profile(of: customer)
        if !store && world.chance(profile.cancelRate) {
            var journey = Journey(stage: .cancel, customer: customer, channel: decorate(.web))
            journey.reference = order
            journey.amountCents = total
            queue.add(journey, at: time + world.delay(minimum: 2 * 60_000, mean: 20 * 60_000))
        } else if world.chance(store ? profile.troubleRate / 3 : profile.troubleRate) {
            startService(customer, at: time + world.delay(minimum: Self.day, mean: 2 * Double(Self.day)),
                         order: order, amountCents: total)
        } else if world.chance(profile.refundRate) {
            var journey = Journey(stage: .refund, customer: customer, channel: decorate(store ? .store : .web))
            journey.reference = order
            journey.amountCents = total
            queue.add(journey, at: time + world.delay(minimum: 3 * Self.day, mean: 7 * Double(Self.day)))
        } else if world.chance(0.08) {
            var journey = Journey(stage: .purchaseSurvey, customer: customer,
                                  channel: decorate(world.chance(0.7) ? .email : .sms))
            journey.reference = order
            queue.add(journey, at: time + world.delay(minimum: 12 * Self.hour, mean: Double(Self.day)))
        }
    }

    mutating func stepOrderFollowUp(_ journey: inout Journey, at time: Int64) -> Int64? {
        let customer = journey.customer
        switch journey.stage {
        case .cancel:
            writeOrderReversal(.orderCancelled, journey, order: journey.reference, reason: "changed_mind", at: time)
        case .refund:
            writeOrderReversal(.orderRefunded, journey, order: journey.reference, reason: "returned", at: time)
        default:
            let score = surveyScore(customer, penalty: 0)
            writeSurvey(journey, score: score, at: time, about: "order_id", "o-", sequence: journey.reference)
        }
        return nil
    }

    // MARK: Service

    /// Opens a service case now or later; `order` (non-zero) is the order it is about.
    mutating func startService(_ customer: Int, at time: Int64, order: UInt64, amountCents: Int64) {
        let draw = world.unit()
        let channel: Channel = draw < 0.5 ? .callCenter : (draw < 0.75 ? .web : (draw < 0.95 ? .email : .app))
        var journey = Journey(stage: .ticketOpened, customer: customer, channel: decorate(channel))
        journey.order = order
        journey.amountCents = amountCents
        journey.subject = order != 0 ? world.below(4) : 4 + world.below(4)
        queue.add(journey, at: time)
    }

    mutating func stepService(_ journey: inout Journey, at time: Int64) -> Int64? {
        let customer = journey.customer
        let profile = profile(of: customer)
        let troubled = customers[customer].type == .serviceTroubled
        let closeMean = Double(troubled ? 40 * Self.hour : 16 * Self.hour)
        switch journey.stage {
        case .ticketOpened:
            customers[customer].tickets += 1
            customers[customer].lastTroubleAt = time
            journey.reference = customers[customer].tickets
            beginEvent(.ticketOpened, for: journey, at: time)
            reference("ticket_id", "t-", customer: customer, sequence: journey.reference)
            string("subject", Self.subjects[journey.subject])
            string("priority", Self.priorities[journey.order != 0 ? 1 + world.below(2) : world.below(2)])
            if journey.order != 0 {
                reference("order_id", "o-", customer: customer, sequence: journey.order)
            }
            endEvent()
            if world.chance(profile.complaintRate) {
                journey.stage = .complaint
                return time + world.delay(minimum: 10 * 60_000, mean: 6 * Double(Self.hour))
            }
            journey.stage = .ticketClosed
            return time + world.delay(minimum: Self.hour, mean: closeMean)

        case .complaint:
            customers[customer].complaints += 1
            customers[customer].lastTroubleAt = time
            beginEvent(.complaintFiled, for: journey, at: time)
            reference("complaint_id", "cp-", customer: customer, sequence: customers[customer].complaints)
            reference("ticket_id", "t-", customer: customer, sequence: journey.reference)
            string("reason", Self.subjects[journey.subject])
            endEvent()
            if world.chance(profile.churnAfterTrouble) {
                customers.startChurning(customer, at: time + world.delay(minimum: 0, mean: 3 * Double(Self.day)))
            }
            journey.stage = .ticketClosed
            return time + world.delay(minimum: 2 * Self.hour, mean: closeMean)

        case .ticketClosed:
            journey.outcome = world.chance(profile.unresolvedRate) ? 2
                : (journey.order != 0 && world.chance(0.4) ? 1 : 0)
            beginEvent(.ticketClosed, for: journey, at: time)
            reference("ticket_id", "t-", customer: customer, sequence: journey.reference)
            string("resolution", Self.resolutions[journey.outcome])
            endEvent()
            if journey.outcome == 1 {
                journey.stage = .serviceRefund
                return time + world.delay(minimum: Self.hour, mean: 12 * Double(Self.hour))
            }
            return scheduleServiceSurvey(&journey, at: time)

        case .serviceRefund:
            writeOrderReversal(.orderRefunded, journey, order: journey.order,
                               reason: Self.subjects[journey.subject], at: time)
            return scheduleServiceSurvey(&journey, at: time)

        default:
            let score = surveyScore(customer, penalty: journey.outcome == 2 ? 3 : 0)
            writeSurvey(journey, score: score, at: time, about: "ticket_id", "t-", sequence: journey.reference)
            if score <= 4 && world.chance(profile.churnAfterTrouble) {
                customers.startChurning(customer, at: time + world.delay(minimum: 0, mean: 5 * Double(Self.day)))
            }
            return nil
        }
    }

    /// Most closed cases get a satisfaction survey by e-mail or SMS a few hours later.
    private mutating func scheduleServiceSurvey(_ journey: inout Journey, at time: Int64) -> Int64? {
        guard world.chance(0.6) else { return nil }
        journey.stage = .serviceSurvey
        journey.channel = decorate(world.chance(0.7) ? .email : .sms)
        return time + world.delay(minimum: Self.hour, mean: Double(Self.day))
    }

    /// An NPS answer (0-10) around the type's mean, lowered by `penalty`.
    private mutating func surveyScore(_ customer: Int, penalty: Double) -> Int {
        // Sum of four uniforms: a cheap bell shape with standard deviation ~1.5 after scaling.
        let bell = (world.unit() + world.unit() + world.unit() + world.unit() - 2) * 2.6
        let score = profile(of: customer).surveyMean - penalty + bell
        return Int(min(10, max(0, score.rounded())))
    }

    /// `Order Cancelled` or `Order Refunded`: the order, its total in the customer's currency, and why.
    private mutating func writeOrderReversal(_ kind: EventKind, _ journey: Journey, order: UInt64,
                                             reason: StaticString, at time: Int64) {
        beginEvent(kind, for: journey, at: time)
        reference("order_id", "o-", customer: journey.customer, sequence: order)
        money("total", journey.amountCents)
        currency(customers[journey.customer].currency, always: true)
        string("reason", reason)
        endEvent()
    }

    private mutating func writeSurvey(_ journey: Journey, score: Int, at time: Int64,
                                      about name: StaticString, _ prefix: StaticString, sequence: UInt64) {
        let customer = journey.customer
        customers[customer].surveys += 1
        beginEvent(.surveyAnswered, for: journey, at: time)
        reference("survey_id", "sv-", customer: customer, sequence: customers[customer].surveys)
        integer("score", Int64(score))
        reference(name, prefix, customer: customer, sequence: sequence)
        endEvent()
    }
}
