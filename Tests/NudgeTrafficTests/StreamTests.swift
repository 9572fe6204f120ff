import Foundation
import NudgeEvents
import Testing
@testable import NudgeTraffic

/// Properties of the stream as a consumer sees it: determinism, contract shape, event time,
/// noise (late, duplicate, malformed) and identity stitching.
struct StreamTests {
    @Test func sameSeedGivesIdenticalBytesAndAnotherSeedDoesNot() {
        var noisy = config(seed: 9)
        noisy.duplicateRate = 0.03
        noisy.malformedRate = 0.03
        noisy.outcomeRate = 0.2
        let first = capture(noisy, 10_000)
        let second = capture(noisy, 10_000)
        var identical = true
        for (a, b) in zip(first, second) where a.value != b.value || a.key != b.key || a.topic != b.topic
            || a.time != b.time || a.malformed != b.malformed || a.duplicate != b.duplicate {
            identical = false
        }
        #expect(identical)
        noisy.seed = 10
        let other = capture(noisy, 10_000)
        let differing = zip(first, other).filter { $0.value != $1.value }.count
        #expect(differing > 9_000)
    }

    @Test func everyWellFormedMessageFollowsTheContract() throws {
        // 1,000 customers: 40,000 events span four weeks, long enough for refunds (days after an order).
        var noisy = config(customers: 1_000)
        noisy.duplicateRate = 0.02
        noisy.outcomeRate = 0.1
        let messages = capture(noisy, 40_000)
        let types: Set = ["track", "page", "screen", "identify"]
        let channels: Set = ["web", "app", "store", "call_center", "email", "sms", "push", "social", "partner"]
        let actions = Set(OfferAction.allCases.map(\.id))
        var seenMessageIds = Set<String>()
        var kinds = Set<EventKind>()
        var channelNames = [String: Int]()
        var withoutChannel = 0
        var currencies = Set<String>()
        for message in messages {
            let kind = try #require(message.kind)
            let event = try #require(message.json, "not a JSON object: \(message.text)")
            let type = try #require(event["type"] as? String)
            #expect(types.contains(type))
            let messageId = try #require(event["messageId"] as? String)
            #expect(messageId.hasPrefix("m-2a-"))
            if !message.duplicate {
                #expect(seenMessageIds.insert(messageId).inserted, "messageId reused: \(messageId)")
            }
            let userId = event["userId"] as? String
            let anonymousId = event["anonymousId"] as? String
            #expect(userId != nil || anonymousId != nil)
            if let userId { #expect(customerNumber(userId).map { (1...1_000).contains($0) } == true) }
            if let anonymousId { #expect(anonymousId.hasPrefix("a-") && anonymousId.count == 14) }
            #expect(message.keyText == (userId ?? anonymousId))
            let stamp = try #require(event["timestamp"] as? String)
            #expect(stamp.count == 24 && stamp.hasSuffix("Z"))
            #expect(parseTimestamp(stamp) == message.time)
            if let channel = event["channel"] {
                let name = try #require(channel as? String)
                channelNames[name, default: 0] += 1
            } else {
                withoutChannel += 1
            }
            let body = try #require(event[type == "identify" ? "traits" : "properties"] as? [String: Any])
            switch type {
            case "track":
                #expect(event["event"] as? String == kind.wireName)
            case "page", "screen":
                #expect(kind.wireName == type)
                #expect((event["name"] as? String)?.isEmpty == false)
            default:
                #expect(kind == .identify)
                #expect(userId != nil && anonymousId != nil)
            }
            #expect(message.topic == TrafficTopic(carrying: kind))
            kinds.insert(kind)
            try checkProperties(body, of: kind, actions: actions, currencies: &currencies)
        }
        // Every event kind of the contract occurs, on its topic.
        #expect(kinds == Set(EventKind.allCases).subtracting([.otherActivity]))
        #expect(Set(channelNames.keys).isSuperset(of: channels))
        let unknown = channelNames.filter { !channels.contains($0.key) }.values.reduce(0, +)
        let share = Double(unknown + withoutChannel) / Double(messages.count)
        #expect(share > 0.01 && share < 0.06, "unknown or missing channel share \(share)")
        #expect(withoutChannel > 0)
        #expect(currencies == ["USD", "EUR", "GBP"])
    }

    @Test func theDecoderReadsWhatTheGeneratorMeant() throws {
        // The generator writes NudgeEvents' own names, so the decoder must agree on every message:
        // kind, event name, channel (unknown or missing ones as .other), event time; and it must
        // dead-letter every malformed one.
        var noisy = config(customers: 1_000)
        noisy.duplicateRate = 0.02
        noisy.malformedRate = 0.05
        noisy.outcomeRate = 0.1
        let contractChannels: [String: Channel] = [
            "web": .web, "app": .app, "store": .store, "call_center": .callCenter, "email": .email,
            "sms": .sms, "push": .push, "social": .social, "partner": .partner,
        ]
        let decoder = SegmentDecoder()
        var rejected = 0
        var others = 0
        for message in capture(noisy, 20_000) {
            let decoded: SegmentEvent? = message.value.withUnsafeBytes { try? decoder.decode($0) }
            guard let kind = message.kind else {
                #expect(decoded == nil, "malformed message decoded: \(message.text)")
                rejected += 1
                continue
            }
            let event = try #require(decoded, "not decodable: \(message.text)")
            let json = try #require(message.json)
            #expect(event.kind == kind)
            #expect(event.timestampMillis == message.time)
            #expect(TrafficTopic(carrying: event.kind) == message.topic)
            let name = json["channel"] as? String
            let expected = name.flatMap { contractChannels[$0] } ?? .other
            #expect(event.channel == expected, "\(String(describing: name))")
            if expected == .other { others += 1 }
        }
        #expect(rejected > 800)
        #expect(others > 100)
    }

    @Test func topicsFollowTheContract() {
        let transactions: Set<EventKind> = [.orderCompleted, .orderRefunded, .orderCancelled,
                                            .ticketOpened, .ticketClosed, .complaintFiled, .surveyAnswered]
        let outcomes: Set<EventKind> = [.offerDelivered, .offerViewed, .offerAccepted, .offerDismissed]
        for kind in EventKind.allCases {
            let expected: TrafficTopic = transactions.contains(kind) ? .transactions
                : outcomes.contains(kind) ? .outcomes : .clickstream
            #expect(TrafficTopic(carrying: kind) == expected, "\(kind)")
        }
    }

    /// Property types by event: money and counts are numbers, ids are strings.
    private func checkProperties(_ body: [String: Any], of kind: EventKind, actions: Set<String>,
                                 currencies: inout Set<String>) throws {
        if let currency = body["currency"] { currencies.insert(try #require(currency as? String)) }
        for name in ["price", "total", "revenue", "value", "discount", "tax", "shipping"] {
            if let number = body[name] { #expect(!(number is String) && number as? Double != nil, "\(name)") }
        }
        switch kind {
        case .productViewed, .productAdded, .productRemoved, .productAddedToWishlist:
            #expect((body["product_id"] as? String)?.hasPrefix("p-") == true)
            #expect(body["category"] is String)
            #expect((body["price"] as? Double).map { $0 > 0 } == true)
            if kind == .productAdded || kind == .productRemoved {
                #expect((body["quantity"] as? Int).map { $0 >= 1 } == true)
            }
        case .orderCompleted:
            #expect((body["order_id"] as? String)?.hasPrefix("o-") == true)
            let total = try #require(body["total"] as? Double)
            let revenue = try #require(body["revenue"] as? Double)
            #expect(total >= revenue && revenue >= 0)
            #expect(body["currency"] is String)
            let products = try #require(body["products"] as? [[String: Any]])
            #expect(!products.isEmpty)
        case .orderRefunded, .orderCancelled:
            #expect((body["order_id"] as? String)?.hasPrefix("o-") == true)
            #expect(body["total"] as? Double != nil)
        case .ticketOpened, .ticketClosed:
            #expect((body["ticket_id"] as? String)?.hasPrefix("t-") == true)
        case .surveyAnswered:
            #expect((body["score"] as? Int).map { (0...10).contains($0) } == true)
        case .offerDelivered, .offerViewed, .offerAccepted, .offerDismissed:
            #expect((body["recommendation_id"] as? String)?.hasPrefix("r-") == true)
            #expect((body["action"] as? String).map { actions.contains($0) } == true)
        case .productsSearched:
            #expect(body["query"] is String)
        default:
            break
        }
    }

    @Test func lateEventsAreTheConfiguredShareAndEventTimeOtherwiseNeverGoesBack() {
        var late = config()
        late.outOfOrderRate = 0.05
        late.maxLatenessMillis = 10 * 60_000
        let messages = capture(late, 40_000)
        var latest = Int64.min
        var behind = 0
        for message in messages {
            #expect((message.time < latest) == message.outOfOrder, "message \(message.index)")
            if message.time < latest {
                behind += 1
                #expect(latest - message.time <= late.maxLatenessMillis + 1)
            }
            latest = max(latest, message.time)
        }
        let share = Double(behind) / Double(messages.count)
        #expect(abs(share - 0.05) < 0.006, "out-of-order share \(share)")
    }

    @Test func withoutLatenessEventTimeIsNonDecreasing() {
        var ordered = config(customers: 500)
        ordered.outOfOrderRate = 0
        let messages = capture(ordered, 10_000)
        #expect(zip(messages, messages.dropFirst()).allSatisfy { $0.time <= $1.time })
        #expect(messages.allSatisfy { !$0.outOfOrder })
    }

    @Test func malformedMessagesAreTheConfiguredShareAndCoverEveryKind() throws {
        var broken = config()
        broken.malformedRate = 0.1
        let messages = capture(broken, 30_000)
        let malformed = messages.filter(\.malformed)
        let share = Double(malformed.count) / Double(messages.count)
        #expect(abs(share - 0.1) < 0.01, "malformed share \(share)")
        var unparsable = 0, truncated = 0, noIds = 0, badTime = 0, wrongType = 0, unknownType = 0
        for message in malformed {
            #expect(message.kind == nil)
            guard let event = message.json else {
                unparsable += 1
                if message.value.first == UInt8(ascii: "{") { truncated += 1 }
                continue
            }
            let body = try #require(event["properties"] as? [String: Any])
            if event["userId"] == nil && event["anonymousId"] == nil {
                noIds += 1
                #expect(message.key.isEmpty)
            } else if let stamp = event["timestamp"] as? String, parseTimestamp(stamp) == nil {
                badTime += 1
            } else if body["price"] is String || body["total"] is String {
                wrongType += 1
            } else if event["type"] as? String == "alias" {
                unknownType += 1
            } else {
                Issue.record("malformed message that is valid: \(message.text)")
            }
        }
        // Six kinds in equal parts: about 500 each.
        for count in [truncated, unparsable - truncated, noIds, badTime, wrongType, unknownType] {
            #expect(count > 350, "kinds: \([truncated, unparsable - truncated, noIds, badTime, wrongType, unknownType])")
        }
        // Everything else still parses.
        #expect(messages.filter { !$0.malformed }.allSatisfy { $0.json != nil })
    }

    @Test func duplicatesRepeatEarlierMessagesByteForByte() throws {
        var repeated = config()
        repeated.duplicateRate = 0.05
        let messages = capture(repeated, 20_000)
        var firstById = [String: Captured]()
        var duplicates = 0
        for message in messages {
            let id = try #require(message.json?["messageId"] as? String)
            if message.duplicate {
                duplicates += 1
                let original = try #require(firstById[id], "duplicate of an unseen message")
                #expect(original.value == message.value && original.key == message.key)
                #expect(original.topic == message.topic && original.time == message.time)
                #expect(message.index - original.index <= 25)
            } else {
                #expect(firstById[id] == nil, "fresh message reuses \(id)")
                firstById[id] = message
            }
        }
        let share = Double(duplicates) / Double(messages.count - duplicates)
        #expect(abs(share - 0.05) < 0.008, "duplicate share \(share)")
    }

    @Test func identifyLinksAnonymousSessionsToTheCustomer() throws {
        var anonymous = config()
        anonymous.anonymousShare = 0.3
        anonymous.outOfOrderRate = 0
        let messages = capture(anonymous, 30_000)
        var linked = [String: String]()
        var anonymousOnly = 0
        var carried = 0
        var sessionStarts = 0
        var anonymousStarts = 0
        for message in messages {
            let event = try #require(message.json)
            let userId = event["userId"] as? String
            let anonymousId = event["anonymousId"] as? String
            if event["name"] as? String == "Home" {
                sessionStarts += 1
                if userId == nil { anonymousStarts += 1 }
            }
            guard let anonymousId else { continue }
            if message.kind == .identify {
                let user = try #require(userId)
                #expect(linked[anonymousId] == nil, "identified twice")
                linked[anonymousId] = user
            } else if let user = linked[anonymousId] {
                // After the identify the session continues as the customer.
                #expect(userId == user)
                #expect(message.keyText == user)
                carried += 1
            } else {
                #expect(userId == nil)
                #expect(message.keyText == anonymousId)
                anonymousOnly += 1
            }
        }
        #expect(linked.count > 300)
        #expect(carried > linked.count)
        #expect(anonymousOnly > linked.count)
        let share = Double(anonymousStarts) / Double(sessionStarts)
        #expect(abs(share - 0.3) < 0.03, "anonymous session share \(share)")
    }

    @Test func noiseDoesNotChangeTheSimulatedWorld() {
        var clean = config(customers: 2_000)
        clean.outOfOrderRate = 0
        var noisy = clean
        noisy.outOfOrderRate = 0.1
        noisy.duplicateRate = 0.1
        noisy.malformedRate = 0.1
        let world = capture(clean, 5_000).map { "\(String(describing: $0.kind)) \($0.keyText)" }
        let filtered = capture(noisy, 7_000).filter { !$0.malformed && !$0.duplicate }.prefix(5_000)
        #expect(filtered.map { "\(String(describing: $0.kind)) \($0.keyText)" } == world)
    }

    @Test func meanGapSpansTheConfiguredSimulatedPeriod() {
        for gap: Int64 in [6_000, 60_000] {
            var timed = config(customers: 2_000)
            timed.meanGapMillis = gap
            let generator = TrafficGenerator(timed)
            for _ in 0..<60_000 { _ = generator.next() }
            let measured = Double(generator.simulatedNowMillis - timed.startMillis) / 60_000
            #expect(abs(measured / Double(gap) - 1) < 0.15, "gap \(gap): measured \(measured)")
            #expect(generator.generated == 60_000)
        }
    }

    @Test func summaryCountsWhatWasGenerated() {
        var noisy = config(customers: 1_000)
        noisy.duplicateRate = 0.05
        noisy.malformedRate = 0.05
        let generator = TrafficGenerator(noisy)
        var byTopic = [TrafficTopic: Int]()
        var byKind = [EventKind: Int]()
        var duplicates = 0, malformed = 0, late = 0
        for _ in 0..<5_000 {
            let message = generator.next()
            byTopic[message.topic, default: 0] += 1
            if let kind = message.kind { byKind[kind, default: 0] += 1 }
            if message.isDuplicate { duplicates += 1 }
            if message.isMalformed { malformed += 1 }
            if message.isOutOfOrder { late += 1 }
        }
        let summary = generator.summary
        #expect(summary.total == 5_000)
        #expect(summary.duplicates == duplicates && summary.malformed == malformed && summary.outOfOrder == late)
        for topic in TrafficTopic.allCases { #expect(summary.count(topic) == byTopic[topic, default: 0]) }
        for kind in EventKind.allCases { #expect(summary.count(kind) == byKind[kind, default: 0]) }
        #expect(summary.description.hasPrefix("5000 messages"))
        #expect(summary.description.contains("events.clickstream: \(byTopic[.clickstream, default: 0])"))
    }

    @Test func outOfRangeConfigIsClampedAndStillProducesValidEvents() {
        var odd = TrafficConfig()
        odd.customers = 0
        odd.meanGapMillis = -5
        odd.outOfOrderRate = .nan
        odd.duplicateRate = 7
        odd.anonymousShare = -1
        let generator = TrafficGenerator(odd)
        #expect(generator.config.customers == 1)
        #expect(generator.config.meanGapMillis == 1)
        #expect(generator.config.outOfOrderRate == 0)
        #expect(generator.config.duplicateRate == 1)
        #expect(generator.latentType(customerNumber: 1) != nil)
        #expect(generator.latentType(customerNumber: 2) == nil)
        for _ in 0..<200 {
            let message = generator.next()
            #expect((try? JSONSerialization.jsonObject(with: Data(message.value))) != nil)
        }
    }
}
