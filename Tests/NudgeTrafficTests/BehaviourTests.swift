import Foundation
import NudgeEvents
import Testing
@testable import NudgeTraffic

/// The learnable signal: latent types show in tickets, NPS, churn and offer acceptance.
struct BehaviourTests {
    /// Per-customer tallies over a simulated stream, with each customer's latent type.
    private struct Tally {
        var types: [Int: CustomerType] = [:]
        var population: [CustomerType: Int] = [:]
        var tickets: [CustomerType: Int] = [:]
        var complaints: [CustomerType: Int] = [:]
        var scores: [CustomerType: [Int]] = [:]
        /// Orders per type in the first and last `windowDays` of the stream.
        var earlyOrders: [CustomerType: Int] = [:]
        var lateOrders: [CustomerType: Int] = [:]
        /// Offers delivered and accepted by (type, action).
        var delivered: [String: Int] = [:]
        var accepted: [String: Int] = [:]

        func perCustomer(_ counts: [CustomerType: Int], _ type: CustomerType) -> Double {
            Double(counts[type, default: 0]) / Double(max(1, population[type, default: 0]))
        }

        func acceptance(_ type: CustomerType, _ action: OfferAction) -> Double {
            let key = "\(type.name) \(action.id)"
            return Double(accepted[key, default: 0]) / Double(max(1, delivered[key, default: 0]))
        }
    }

    /// `events` messages for 2,000 customers: 200,000 span about 70 simulated days.
    private func simulate(outcomeRate: Double = 0.05, events: Int = 200_000, windowDays: Int64 = 20) throws -> Tally {
        var settings = config(seed: 5, customers: 2_000)
        settings.outcomeRate = outcomeRate
        let generator = TrafficGenerator(settings)
        var tally = Tally()
        for number in 1...settings.customers {
            let type = try #require(generator.latentType(customerNumber: number))
            tally.types[number] = type
            tally.population[type, default: 0] += 1
        }
        var offers: [String: String] = [:]
        var messages: [(kind: EventKind?, time: Int64, value: [UInt8])] = []
        messages.reserveCapacity(events)
        for _ in 0..<events {
            let message = generator.next()
            switch message.kind {
            case .ticketOpened, .complaintFiled, .surveyAnswered, .orderCompleted, .offerDelivered, .offerAccepted:
                messages.append((message.kind, message.eventTimeMillis, Array(message.value)))
            default:
                break
            }
        }
        let first = settings.startMillis
        let last = generator.simulatedNowMillis
        let window = windowDays * 86_400_000
        for message in messages {
            let event = try #require((try? JSONSerialization.jsonObject(with: Data(message.value))) as? [String: Any])
            let user = try #require((event["userId"] as? String).flatMap(customerNumber))
            let type = try #require(tally.types[user])
            let properties = try #require(event["properties"] as? [String: Any])
            switch message.kind {
            case .ticketOpened: tally.tickets[type, default: 0] += 1
            case .complaintFiled: tally.complaints[type, default: 0] += 1
            case .surveyAnswered: tally.scores[type, default: []].append(try #require(properties["score"] as? Int))
            case .orderCompleted:
                if message.time < first + window { tally.earlyOrders[type, default: 0] += 1 }
                if message.time >= last - window { tally.lateOrders[type, default: 0] += 1 }
            case .offerDelivered:
                let key = "\(type.name) \(try #require(properties["action"] as? String))"
                offers[try #require(properties["recommendation_id"] as? String)] = key
                tally.delivered[key, default: 0] += 1
            default:
                let id = try #require(properties["recommendation_id"] as? String)
                if let key = offers[id] { tally.accepted[key, default: 0] += 1 }
            }
        }
        #expect(last - first > 2 * window)
        return tally
    }

    @Test func serviceTroubledCustomersOpenMoreTicketsComplainAndScoreLow() throws {
        let tally = try simulate()
        let troubledTickets = tally.perCustomer(tally.tickets, .serviceTroubled)
        let loyalTickets = tally.perCustomer(tally.tickets, .loyal)
        #expect(troubledTickets > 2.5 * loyalTickets, "tickets per customer \(troubledTickets) vs \(loyalTickets)")
        #expect(tally.perCustomer(tally.complaints, .serviceTroubled) > 5 * tally.perCustomer(tally.complaints, .loyal))
        let mean = { (type: CustomerType) -> Double in
            let scores = tally.scores[type, default: []]
            return Double(scores.reduce(0, +)) / Double(max(1, scores.count))
        }
        #expect(mean(.serviceTroubled) < 5 && mean(.loyal) > 8)
    }

    @Test func atRiskAndTroubledCustomersStopOrderingWhileLoyalOnesDoNot() throws {
        let tally = try simulate()
        func ratio(_ type: CustomerType) -> Double {
            Double(tally.lateOrders[type, default: 0]) / Double(max(1, tally.earlyOrders[type, default: 0]))
        }
        #expect(tally.earlyOrders[.atRisk, default: 0] > 40)
        #expect(ratio(.atRisk) < 0.4, "at_risk late/early orders \(ratio(.atRisk))")
        #expect(ratio(.serviceTroubled) < 0.8, "service_troubled late/early orders \(ratio(.serviceTroubled))")
        #expect(ratio(.loyal) > 0.85, "loyal late/early orders \(ratio(.loyal))")
        #expect(tally.perCustomer(tally.earlyOrders, .browser) < 0.2 * tally.perCustomer(tally.earlyOrders, .loyal))
    }

    @Test func offerAcceptanceDependsOnTypeAndAction() throws {
        let tally = try simulate(outcomeRate: 0.3, events: 120_000)
        #expect(tally.delivered.values.reduce(0, +) > 3_000)
        #expect(tally.acceptance(.bargainHunter, .promoDiscount) > 2 * tally.acceptance(.browser, .promoDiscount))
        #expect(tally.acceptance(.serviceTroubled, .serviceRecoveryCall)
            > 2 * tally.acceptance(.loyal, .serviceRecoveryCall))
        #expect(tally.acceptance(.bargainHunter, .promoDiscount) > 2 * tally.acceptance(.bargainHunter, .serviceRecoveryCall))
    }
}
