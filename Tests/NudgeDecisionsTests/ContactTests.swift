import Foundation
import NudgeDecisions
import NudgeEvents
import Testing

@Suite("Contact history")
struct ContactHistoryTests {
    @Test func isASmallPlainValue() {
        #expect(MemoryLayout<ContactHistory>.size <= 64)
        #expect(MemoryLayout<ContactHistory>.stride <= 64)
        #expect(_isPOD(ContactHistory.self))
    }

    @Test func recordsAndCountsByWindowAndChannel() {
        var history = ContactHistory()
        #expect(history.count == 0)
        #expect(history.latest == nil)
        history.record(atMillis: 1_000, channel: .email, action: 2)
        history.record(atMillis: 5_000, channel: .sms, action: 0)
        history.record(atMillis: 3_000, channel: .email, action: 1)
        #expect(history.count == 3)
        #expect(history.contact(at: 1) == Contact(atMillis: 5_000, channel: .sms, action: 0))
        #expect(history.contact(at: 3) == nil)
        #expect(history.contact(at: -1) == nil)
        #expect(history.latest == Contact(atMillis: 5_000, channel: .sms, action: 0))
        // "after" is strict: a contact exactly at the cutoff is outside the window.
        #expect(history.contacts(after: 999) == 3)
        #expect(history.contacts(after: 1_000) == 2)
        #expect(history.contacts(after: 999, on: .email) == 2)
        #expect(history.contacts(after: 999, on: .push) == 0)
        #expect(history.contacts(after: 4_000, on: .sms) == 1)
    }

    @Test func whenFullTheOldestByEventTimeMakesRoom() {
        var history = ContactHistory()
        for i in 0..<ContactHistory.capacity {
            history.record(atMillis: Int64(10 + i), channel: .web, action: UInt8(i))
        }
        #expect(history.count == 6)
        history.record(atMillis: 100, channel: .push, action: 9)  // replaces the contact at 10
        #expect(history.count == 6)
        #expect(history.contacts(after: 10) == 6)
        #expect(history.contacts(after: 0) == 6)
        #expect(history.latest?.channel == .push)
        history.record(atMillis: 5, channel: .sms, action: 7)  // older than everything kept: dropped
        #expect(history.contacts(after: 0, on: .sms) == 0)
    }

    /// Random contacts (out of order too) on four channels under random valid policies (any caps, a channel
    /// window no longer than the customer window): at every later time the six kept contacts give every
    /// channel the answer the whole list gives, so dropping the oldest never lets a recommendation through.
    @Test func theKeptContactsAnswerAsTheWholeListDoes() throws {
        var random = SystemRandomNumberGenerator()
        let hour: Int64 = 3_600_000
        let channels: [Channel] = [.email, .sms, .push, .web]
        for _ in 0..<200 {
            let customerWindow = Int64.random(in: 1...96, using: &random) * hour
            let policy = try ContactPolicy(channelCap: Int.random(in: 1...ContactHistory.capacity, using: &random),
                                           channelWindowMillis: Int64.random(in: 1...customerWindow / hour, using: &random) * hour,
                                           customerCap: Int.random(in: 1...ContactHistory.capacity, using: &random),
                                           customerWindowMillis: customerWindow,
                                           cooldownMillis: Int64.random(in: 0...3, using: &random) * hour)
            var history = ContactHistory()
            var all: [Contact] = []
            var now: Int64 = 0
            for _ in 0..<25 {
                now += Int64.random(in: 0...(8 * hour), using: &random)
                let at = now - Int64.random(in: 0...(4 * hour), using: &random)
                let channel = channels[Int.random(in: 0..<channels.count, using: &random)]
                history.record(atMillis: at, channel: channel, action: 0)
                all.append(Contact(atMillis: at, channel: channel, action: 0))
                for hours in 0...100 {
                    let probe = now + Int64(hours) * hour
                    for asked in channels {
                        let expected = Self.reference(policy, all, channel: asked, at: probe)
                        let got = policy.blockedReason(channel: asked, atMillis: probe, history: history)
                        #expect(got == expected, "\(policy) \(all) \(asked) at \(probe)")
                        if got != expected { return }
                    }
                }
            }
        }
    }

    /// The policy's answer from the whole list of contacts.
    static func reference(_ policy: ContactPolicy, _ all: [Contact], channel: Channel, at: Int64) -> SuppressionReason? {
        if policy.cooldownMillis > 0 && all.contains(where: { $0.atMillis > at - policy.cooldownMillis }) { return .cooldown }
        if all.count(where: { $0.atMillis > at - policy.customerWindowMillis }) >= policy.customerCap { return .weeklyCap }
        if all.count(where: { $0.channel == channel && $0.atMillis > at - policy.channelWindowMillis }) >= policy.channelCap {
            return .channelCap
        }
        return nil
    }

    @Test func recordsDecisionsButNotSilence() {
        var history = ContactHistory()
        history.record(Decision(), atMillis: 1)
        #expect(history.count == 0)
        var decision = Decision()
        decision.actionIndex = 3
        decision.channel = .callCenter
        history.record(decision, atMillis: 2)
        #expect(history.contact(at: 0) == Contact(atMillis: 2, channel: .callCenter, action: 3))
    }

    @Test func equalityComparesContacts() {
        var a = ContactHistory()
        var b = ContactHistory()
        #expect(a == b)
        a.record(atMillis: 1, channel: .app, action: 1)
        #expect(a != b)
        b.record(atMillis: 1, channel: .app, action: 1)
        #expect(a == b)
        b.record(atMillis: 2, channel: .app, action: 1)
        #expect(a != b)
    }
}

@Suite("Contact policy")
struct ContactPolicyTests {
    let now = Fixture.now
    let minute = Fixture.minute
    let hour = Fixture.hour
    let day = Fixture.day

    @Test func defaults() {
        let policy = ContactPolicy.default
        #expect(policy.channelCap == 1)
        #expect(policy.channelWindowMillis == 24 * hour)
        #expect(policy.customerCap == 3)
        #expect(policy.customerWindowMillis == 7 * day)
        #expect(policy.cooldownMillis == 30 * minute)
        #expect(policy.blockedReason(channel: .email, atMillis: now, history: ContactHistory()) == nil)
    }

    @Test func cooldownRunsThirtyMinutesOnEventTime() {
        var history = ContactHistory()
        history.record(atMillis: now - 29 * minute, channel: .sms, action: 0)
        let policy = ContactPolicy.default
        #expect(policy.blockedReason(channel: .email, atMillis: now, history: history) == .cooldown)
        #expect(policy.blockedReason(channel: .email, atMillis: now + minute - 1, history: history) == .cooldown)
        #expect(policy.blockedReason(channel: .email, atMillis: now + minute, history: history) == nil)
        // An earlier event arriving late still sees the later contact: no slipping past the cooldown.
        #expect(policy.blockedReason(channel: .email, atMillis: now - 2 * hour, history: history) == .cooldown)
    }

    @Test func channelCapIsOnePerChannelPerDay() {
        var history = ContactHistory()
        history.record(atMillis: now - 2 * hour, channel: .email, action: 0)
        let policy = ContactPolicy.default
        #expect(policy.blockedReason(channel: .email, atMillis: now, history: history) == .channelCap)
        #expect(policy.blockedReason(channel: .sms, atMillis: now, history: history) == nil)
        #expect(policy.blockedReason(channel: .email, atMillis: now + 22 * hour, history: history) == nil)
        #expect(policy.blockedReason(channel: .email, atMillis: now + 22 * hour - 1, history: history) == .channelCap)
    }

    @Test func customerCapIsThreePerSevenDays() {
        var history = ContactHistory()
        history.record(atMillis: now - 6 * day, channel: .email, action: 0)
        history.record(atMillis: now - 3 * day, channel: .sms, action: 1)
        history.record(atMillis: now - 1 * day, channel: .push, action: 2)
        let policy = ContactPolicy.default
        #expect(policy.blockedReason(channel: .web, atMillis: now, history: history) == .weeklyCap)
        // The first contact leaves the 7-day window one day later.
        #expect(policy.blockedReason(channel: .web, atMillis: now + day, history: history) == nil)
        #expect(policy.blockedReason(channel: .web, atMillis: now + day - 1, history: history) == .weeklyCap)
    }

    @Test func cooldownComesBeforeCapsInTheReason() {
        var history = ContactHistory()
        history.record(atMillis: now - 10 * minute, channel: .email, action: 0)
        history.record(atMillis: now - 2 * day, channel: .email, action: 0)
        history.record(atMillis: now - 3 * day, channel: .email, action: 0)
        #expect(ContactPolicy.default.blockedReason(channel: .email, atMillis: now, history: history) == .cooldown)
        #expect(ContactPolicy.default.blockedReason(channel: .email, atMillis: now + 30 * minute, history: history) == .weeklyCap)
    }

    @Test func validatedInit() throws {
        let policy = try ContactPolicy(channelCap: 2, channelWindowMillis: hour, customerCap: 6,
                                       customerWindowMillis: day, cooldownMillis: 0)
        var history = ContactHistory()
        history.record(atMillis: now, channel: .email, action: 0)
        // No cooldown; a second email within the hour is fine, a third is not.
        #expect(policy.blockedReason(channel: .email, atMillis: now, history: history) == nil)
        history.record(atMillis: now, channel: .email, action: 0)
        #expect(policy.blockedReason(channel: .email, atMillis: now, history: history) == .channelCap)

        #expect(throws: ContactPolicyError(field: "channel_cap", problem: "is 0; use a whole number from 1 to 6 (the contacts kept per customer)")) {
            try ContactPolicy(channelCap: 0)
        }
        #expect(throws: ContactPolicyError.self) { try ContactPolicy(customerCap: 7) }
        #expect(throws: ContactPolicyError.self) { try ContactPolicy(channelWindowMillis: 0) }
        #expect(throws: ContactPolicyError.self) { try ContactPolicy(cooldownMillis: -1) }
    }

    @Test func decodesJSONWithDefaultsForMissingFields() throws {
        let json = #"{"channel_cap":2,"channel_window_hours":12,"customer_window_days":3.5,"cooldown_minutes":15}"#
        let policy = try JSONDecoder().decode(ContactPolicy.self, from: Data(json.utf8))
        #expect(policy.channelCap == 2)
        #expect(policy.channelWindowMillis == 12 * hour)
        #expect(policy.customerCap == 3)
        #expect(policy.customerWindowMillis == 84 * hour)
        #expect(policy.cooldownMillis == 15 * minute)
        #expect(try JSONDecoder().decode(ContactPolicy.self, from: Data("{}".utf8)) == .default)

        let encoded = try JSONEncoder().encode(policy)
        #expect(try JSONDecoder().decode(ContactPolicy.self, from: encoded) == policy)
    }

    @Test(arguments: [
        (#"{"cooldown_minute":10}"#, "cooldown_minute", "is not a contact policy field; known fields: channel_cap"),
        (#"{"channel_cap":0}"#, "channel_cap", "is 0; use a whole number from 1 to 6"),
        (#"{"customer_cap":1.5}"#, "customer_cap", "is 1.5; use a whole number"),
        (#"{"customer_cap":"3"}"#, "customer_cap", "must be a number"),
        (#"{"channel_window_hours":0}"#, "channel_window_hours", "is out of range"),
        (#"{"channel_window_hours":720,"customer_window_days":1}"#, "channel_window_hours",
         "is 720.0 h, longer than customer_window_days (1.0 d): the 6 contacts kept per customer enforce a channel cap only within the customer window; use at most 24.0 h"),
        (#"{"customer_window_days":-1}"#, "customer_window_days", "is out of range"),
        (#"{"customer_window_days":1e300}"#, "customer_window_days", "is out of range"),
        (#"{"cooldown_minutes":-5}"#, "cooldown_minutes", "is out of range"),
    ])
    func refusesBadJSONNamingTheField(json: String, field: String, says: String) {
        do {
            _ = try JSONDecoder().decode(ContactPolicy.self, from: Data(json.utf8))
            Issue.record("accepted \(json)")
        } catch let error as ContactPolicyError {
            #expect(error.field == field)
            #expect(error.problem.contains(says), "\(error)")
            #expect(error.description.hasPrefix("\(field): "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
